"""Tests for the launcher's flags: those of Model Garden's vision launcher."""
import ast
import copy
import os
from unittest import mock

from absl import flags
import gin
import official
import pytest

from official_ext import train
from official_ext.launcher import launcher_flags

_MODEL_GARDEN = os.path.dirname(official.__file__)
# official/vision/train.py defines its own flags and calls Model Garden's
# common `define_flags`.
_VISION_FLAG_SOURCES = ('vision/train.py', 'common/flags.py')


def _vision_flag_definitions():
  """{name: (DEFINE function, keyword arguments)} read from Model Garden."""
  definitions = {}
  for source in _VISION_FLAG_SOURCES:
    with open(os.path.join(_MODEL_GARDEN, source)) as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      if (isinstance(node, ast.Call) and
          isinstance(node.func, ast.Attribute) and
          node.func.attr.startswith('DEFINE_')):
        name = ast.literal_eval(node.args[0])
        keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords
                    if k.arg in ('default', 'enum_values')}
        definitions[name] = (node.func.attr, keywords)
  return definitions


VISION_FLAGS = _vision_flag_definitions()


def _command_line(name, define, keywords):
  """Flags that set `name` away from its default, and the value they set."""
  if define == 'DEFINE_bool':
    value = not keywords['default']
    return [f'--{name}' if value else f'--no{name}'], value
  if define == 'DEFINE_enum':
    value = keywords['enum_values'][-1]
    return [f'--{name}={value}'], value
  if define == 'DEFINE_multi_string':
    return [f'--{name}=first', f'--{name}=second'], ['first', 'second']
  assert define == 'DEFINE_string', define
  return [f'--{name}=value'], 'value'


@pytest.fixture(scope='module')
def launcher_flag_values():
  """A copy of the launcher's flags as absl's FLAGS holds them, unparsed."""
  launcher_flags.define_flags()
  launcher_flags.define_flags()  # A second call changes nothing.
  return copy.deepcopy(flags.FLAGS)


def _parsed(flag_values, *argv):
  parsed = copy.deepcopy(flag_values)
  parsed(['official_ext.train', *argv])
  return parsed


def test_model_garden_sources_list_the_vision_flags():
  assert {'experiment', 'mode', 'model_dir', 'config_file', 'params_override',
          'gin_file', 'gin_params', 'tpu',
          'enable_async_checkpointing'} <= set(VISION_FLAGS)


@pytest.mark.parametrize('name', sorted(VISION_FLAGS))
def test_vision_flag_has_its_model_garden_default(launcher_flag_values, name):
  _, keywords = VISION_FLAGS[name]
  assert launcher_flag_values[name].default == keywords['default']


@pytest.mark.parametrize('name', sorted(VISION_FLAGS))
def test_vision_flag_parses(launcher_flag_values, name):
  argv, value = _command_line(name, *VISION_FLAGS[name])
  assert getattr(_parsed(launcher_flag_values, *argv), name) == value


@pytest.mark.parametrize('argv,expected', [
    ([], True),  # Model Garden's vision launcher's default.
    (['--noenable_async_checkpointing'], False),
    (['--enable_async_checkpointing=true'], True),
])
def test_async_checkpointing_reaches_run_experiment(launcher_flag_values,
                                                    tmp_path, argv, expected):
  parsed = _parsed(launcher_flag_values, '--experiment=lars_digits',
                   '--mode=train', f'--model_dir={tmp_path}', *argv)
  gin.clear_config()
  try:
    with mock.patch.object(train.experiment_runner, 'run_experiment',
                           autospec=True) as run_experiment:
      train.launch(parsed)
  finally:
    gin.clear_config()
  [call] = run_experiment.call_args_list
  assert call.kwargs['enable_async_checkpointing'] is expected
