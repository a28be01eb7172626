"""The bad-input table: every row is refused clearly, before training.

Each row is one test id, `test_bad_input_is_refused[<row>]`, matching a row of
the README's table. A row names where the input goes in (the LARS
constructor, or the launcher's flags: `--config_file`, `--params_override`,
gin, other flags), the input, and the field and value the error must name.
Launcher rows run `launch_checks.checked_configuration`, the function
`official_ext.train` runs before writing anything; the rows marked `launcher`
run `python -m official_ext.train` itself (concurrently, once per module) and
also check the exit code and stderr.
"""
import dataclasses
import os
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import gin
import pytest

from official.core import train_utils as mg_train_utils
from official.vision import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import launch_checks
from official_ext.modeling.optimization import lars

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARS_FIELD = 'trainer.optimizer_config.optimizer.lars'
ERROR_PREFIX = 'official_ext.train: error: '


@dataclasses.dataclass
class Flags(mg_train_utils.ParseConfigOptions):
  """The launcher's flags, as `launch_checks.checked_configuration` reads them."""
  mode: str = 'train'
  model_dir: str = ''
  gin_file: Optional[List[str]] = None
  gin_params: Optional[List[str]] = None


@dataclasses.dataclass(frozen=True)
class Row:
  """One bad input.

  Attributes:
    name: the test id.
    via: 'constructor' (LARS(**kwargs)), 'in_process'
      (`checked_configuration`) or 'launcher' (`python -m official_ext.train`).
    args: constructor kwargs, or flag name -> value. `{tmp}` in a value is the
      test's scratch directory, `{model_dir}` the model_dir's path.
    named: strings the one-line error must contain: the field and the value.
  """
  name: str
  via: str
  args: Tuple[Tuple[str, object], ...]
  named: Tuple[str, ...]


def row(name, via, named, **args):
  return pytest.param(Row(name, via, tuple(args.items()), named), id=name)


ROWS = [
    # The LARS constructor.
    row('constructor-momentum-out-of-range', 'constructor',
        ('momentum', '1.5'), momentum=1.5),
    row('constructor-bare-string-exclusion', 'constructor',
        ('exclude_from_weight_decay', "'bias'"),
        exclude_from_weight_decay='bias'),
    # YAML config files.
    row('yaml-unknown-field', 'in_process', (f'{LARS_FIELD}.etta', '0.1'),
        config_file=['{tmp}/unknown_field.yaml']),
    row('yaml-wrong-type', 'in_process', ('momentum', "'fast'"),
        config_file=['{tmp}/wrong_type.yaml']),
    row('yaml-missing-file', 'in_process',
        ('--config_file', '{tmp}/missing.yaml'),
        config_file=['{tmp}/missing.yaml']),
    row('yaml-syntax-error', 'in_process',
        ('--config_file={tmp}/syntax_error.yaml', 'invalid YAML', 'line 2'),
        config_file=['{tmp}/syntax_error.yaml']),
    # --params_override.
    row('override-unknown-optimizer-type', 'in_process',
        ('trainer.optimizer_config.optimizer.type', "'larz'"),
        params_override='trainer.optimizer_config.optimizer.type=larz'),
    row('override-momentum-out-of-range', 'launcher', ('momentum', '1.5'),
        params_override=f'{LARS_FIELD}.momentum=1.5'),
    row('override-bad-regex', 'in_process',
        ('exclude_from_weight_decay', "'(bias'"),
        params_override=f"{LARS_FIELD}.exclude_from_weight_decay=['(bias']"),
    row('override-wrong-type', 'in_process', ('trainer.train_steps', "'abc'"),
        params_override='trainer.train_steps=abc'),
    row('override-negative-train-steps', 'in_process',
        ('trainer.train_steps', '-5'),
        params_override='trainer.train_steps=-5'),
    row('override-zero-batch-size', 'in_process',
        ('task.train_data.global_batch_size', '0'),
        params_override='task.train_data.global_batch_size=0'),
    row('override-negative-learning-rate', 'in_process',
        ('trainer.optimizer_config.learning_rate.polynomial.'
         'initial_learning_rate', '-1.0'),
        params_override=('trainer.optimizer_config.learning_rate.polynomial.'
                         'initial_learning_rate=-1.0')),
    row('override-unknown-precision', 'in_process',
        ('runtime.mixed_precision_dtype', "'float8'"),
        params_override='runtime.mixed_precision_dtype=float8'),
    row('override-unknown-strategy', 'in_process',
        ('runtime.distribution_strategy', "'foo'"),
        params_override='runtime.distribution_strategy=foo'),
    row('override-unknown-field', 'in_process', ('trainer.trian_steps', '10'),
        params_override='trainer.trian_steps=10'),
    row('override-not-field-value', 'in_process',
        ('--params_override', "'trainer.train_steps'"),
        params_override='trainer.train_steps'),
    row('override-missing-input-files', 'launcher',
        ('task.train_data.input_path', '/nonexistent/train*'),
        experiment='resnet_imagenet',
        params_override='task.train_data.input_path=/nonexistent/train*'),
    # Gin.
    row('gin-unknown-configurable', 'in_process', ('LRAS.eeta', '0.1'),
        gin_params=['LRAS.eeta = 0.1']),
    row('gin-unknown-lars-field', 'launcher', ('LARS.etta', '0.1'),
        gin_params=['LARS.etta = 0.1']),
    row('gin-momentum-out-of-range', 'in_process', ('momentum', '1.5'),
        gin_params=['LARS.momentum = 1.5']),
    row('gin-missing-file', 'in_process', ('{tmp}/missing.gin',),
        gin_file=['{tmp}/missing.gin']),
    # Other flags.
    row('flag-unknown-experiment', 'in_process', ('--experiment', "'nope'"),
        experiment='nope'),
    row('flag-unsupported-mode', 'in_process',
        ('--mode', "'train_and_validate'"), mode='train_and_validate'),
    row('flag-model-dir-is-a-file', 'in_process',
        ('--model_dir', '{tmp}/a_file', 'existing file'),
        model_dir='{tmp}/a_file'),
    row('flag-model-dir-unwritable', 'launcher',
        ('--model_dir', '{tmp}/a_file/model', 'cannot be created'),
        model_dir='{tmp}/a_file/model'),
]


def _prepare_scratch(tmp: str):
  """Writes the files the rows refer to."""
  files = {
      'unknown_field.yaml': f'trainer:\n  optimizer_config:\n    optimizer:\n'
                            f'      lars:\n        etta: 0.1\n',
      'wrong_type.yaml': 'trainer:\n  optimizer_config:\n    optimizer:\n'
                         '      lars:\n        momentum: fast\n',
      'syntax_error.yaml': 'trainer: {train_steps: [\n',
      'a_file': 'not a directory\n',
  }
  for name, text in files.items():
    with open(os.path.join(tmp, name), 'w') as f:
      f.write(text)


def _prepare_model_dir(path: str):
  """An earlier run's model_dir, which a refused launch must leave alone."""
  os.makedirs(path)
  for name, data in {'params.yaml': b'earlier run\n',
                     'checkpoint': b'model_checkpoint_path: "ckpt-7"\n',
                     'ckpt-7.index': b'\x00\x01index'}.items():
    with open(os.path.join(path, name), 'wb') as f:
      f.write(data)


def _snapshot(tmp: str) -> Dict[str, bytes]:
  """Every file under `tmp`, path -> bytes."""
  files = {}
  for directory, _, names in os.walk(tmp):
    for name in names:
      path = os.path.join(directory, name)
      with open(path, 'rb') as f:
        files[os.path.relpath(path, tmp)] = f.read()
  return files


def _resolve(value, tmp: str, model_dir: str):
  if isinstance(value, list):
    return [_resolve(v, tmp, model_dir) for v in value]
  if isinstance(value, str):
    return value.format(tmp=tmp, model_dir=model_dir)
  return value


def _flags(bad: Row, tmp: str) -> Dict[str, object]:
  """The row's launcher flags, over a valid lars_digits training run."""
  model_dir = os.path.join(tmp, 'model_dir')
  flags = {'experiment': 'lars_digits', 'mode': 'train',
           'model_dir': model_dir}
  flags.update({k: _resolve(v, tmp, model_dir) for k, v in bad.args})
  return flags


def _setup(tmp: str) -> Dict[str, bytes]:
  """Prepares the scratch files and model_dir; returns their snapshot."""
  _prepare_scratch(tmp)
  _prepare_model_dir(os.path.join(tmp, 'model_dir'))
  return _snapshot(tmp)


def _argv(flags: Dict[str, object]) -> List[str]:
  argv = []
  for name, value in flags.items():
    for v in value if isinstance(value, list) else [value]:
      argv.append(f'--{name}={v}')
  return argv


@pytest.fixture(scope='module')
def launcher_results(tmp_path_factory):
  """Runs every 'launcher' row's command at once; name -> (process, tmp)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  started = {}
  for param in ROWS:
    bad = param.values[0]
    if bad.via != 'launcher':
      continue
    tmp = str(tmp_path_factory.mktemp(bad.name))
    before = _setup(tmp)
    process = subprocess.Popen(
        [sys.executable, '-m', 'official_ext.train', *_argv(_flags(bad, tmp))],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    started[bad.name] = (process, tmp, before)
  results = {}
  try:
    for name, (process, tmp, before) in started.items():
      _, stderr = process.communicate(timeout=300)
      results[name] = (process.returncode, stderr, tmp, before)
  finally:
    for process, _, _ in started.values():
      if process.poll() is None:
        process.kill()
        process.wait()
  return results


@pytest.fixture
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _assert_names(message: str, bad: Row, tmp: str):
  assert '\n' not in message
  for text in bad.named:
    assert text.format(tmp=tmp) in message, (text, message)


@pytest.mark.parametrize('bad', ROWS)
def test_bad_input_is_refused(bad, tmp_path, clean_gin, request):
  del clean_gin  # Used for its cleanup.
  if bad.via == 'constructor':
    with pytest.raises((TypeError, ValueError)) as excinfo:
      lars.LARS(**dict(bad.args))
    _assert_names(str(excinfo.value), bad, '')
    return

  if bad.via == 'launcher':
    returncode, stderr, tmp, before = request.getfixturevalue(
        'launcher_results')[bad.name]
    assert returncode != 0, stderr[-3000:]
    errors = [line for line in stderr.splitlines()
              if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, stderr[-3000:]
    assert 'Traceback' not in stderr
    _assert_names(errors[0], bad, tmp)
    assert 'Training with optimizer' not in stderr  # Refused before training.
    assert _snapshot(tmp) == before
    return

  tmp = str(tmp_path)
  before = _setup(tmp)
  with pytest.raises(launch_checks.LaunchError) as excinfo:
    launch_checks.checked_configuration(Flags(**{
        'config_file': [], **_flags(bad, tmp)}))
  _assert_names(str(excinfo.value), bad, tmp)
  assert _snapshot(tmp) == before


def test_a_valid_launch_passes_the_same_checks(tmp_path, clean_gin):
  del clean_gin
  params = launch_checks.checked_configuration(Flags(
      experiment='lars_digits', config_file=[
          os.path.join(REPO, 'experiments', 'lars_digits.yaml')],
      model_dir=str(tmp_path / 'new' / 'model_dir'),
      params_override=('trainer.optimizer_config.learning_rate.polynomial.'
                       'initial_learning_rate=2'),
      gin_file=[os.path.join(REPO, 'experiments', 'lars.gin')]))
  # An int in a float field becomes a float: TensorFlow's schedules fail on
  # an int there.
  rate = params.trainer.optimizer_config.learning_rate.polynomial
  assert rate.initial_learning_rate == 2.0
  assert isinstance(rate.initial_learning_rate, float)
  assert params.trainer.optimizer_config.optimizer.lars.eeta == 0.002
  assert not os.path.exists(tmp_path / 'new')
