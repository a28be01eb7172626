"""Tests for lars_options: each option declared once, validated, and every
place that lists the options (constructor, LARSConfig, get_config, docs)
agrees with `OPTIONS`."""

import dataclasses
import inspect
import pathlib
import re

import numpy as np
import pytest

from official.modeling.optimization import lars as mg_lars
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import lars_options
from official_ext.modeling.optimization.configs import optimizer_config
from tests.modeling.optimization import lars_testing

REPO = pathlib.Path(__file__).resolve().parents[3]

# Model Garden's constructor arguments besides learning_rate, in order, with
# their defaults, as its source states them.
MODEL_GARDEN_ARGUMENTS = [
    ('momentum', 0.9), ('weight_decay_rate', 0.0), ('eeta', 0.001),
    ('nesterov', False), ('classic_momentum', True),
    ('exclude_from_weight_decay', None),
    ('exclude_from_layer_adaptation', None), ('name', 'LARS')]

# official_ext's additions, in order, with their defaults.
ADDED_ARGUMENTS = [
    ('trust_ratio_denominator', 'model_garden'), ('epsilon', 0.0),
    ('trust_clip', False), ('max_trust_ratio', None),
    ('exclude_one_dimensional_from_weight_decay', False),
    ('exclude_one_dimensional_from_layer_adaptation', False),
    ('exclude_normalization_from_weight_decay', False),
    ('exclude_normalization_from_layer_adaptation', False),
    ('exclude_variables_from_weight_decay', None),
    ('exclude_variables_from_layer_adaptation', None),
    ('telemetry', False)]


# ------------------------------------------------------------ the table


def test_options_are_model_gardens_then_the_additions():
  assert [(o.name, o.default) for o in lars_options.OPTIONS] == (
      MODEL_GARDEN_ARGUMENTS + ADDED_ARGUMENTS)
  assert [o.keyword_only for o in lars_options.OPTIONS] == (
      [False] * len(MODEL_GARDEN_ARGUMENTS) + [True] * len(ADDED_ARGUMENTS))


def test_model_garden_arguments_are_model_gardens_signature():
  parameters = list(inspect.signature(mg_lars.LARS).parameters.values())
  assert [(p.name, p.default) for p in parameters[1:-1]] == (
      MODEL_GARDEN_ARGUMENTS)


def test_every_doc_is_one_sentence():
  for option in lars_options.OPTIONS:
    assert option.doc.endswith('.') and '\n' not in option.doc, option.name
    assert re.match('[A-Zη\'ε]', option.doc), option.name


def test_defaults_pass_their_own_checks():
  assert lars_options.check_options({}) == dict(
      MODEL_GARDEN_ARGUMENTS + ADDED_ARGUMENTS)


# ------------------------------------------- every listing equals OPTIONS


def _expected_parameters():
  return [('learning_rate', 0.01, inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
      (o.name, o.default, inspect.Parameter.KEYWORD_ONLY if o.keyword_only
       else inspect.Parameter.POSITIONAL_OR_KEYWORD)
      for o in lars_options.OPTIONS
  ] + [('kwargs', inspect.Parameter.empty, inspect.Parameter.VAR_KEYWORD)]


def test_constructor_signature_is_options():
  parameters = inspect.signature(lars.LARS).parameters.values()
  assert [(p.name, p.default, p.kind) for p in parameters] == (
      _expected_parameters())


def _docstring_section_names(docstring, section):
  """The argument names a Google-style docstring section lists, in order."""
  lines = inspect.cleandoc(docstring).splitlines()
  start = lines.index(f'{section}:') + 1
  names = []
  for line in lines[start:]:
    if not line.strip() or not line.startswith(' '):
      break
    match = re.match(r'  (\**\w+):', line)
    if match:
      names.append(match.group(1))
  return names


def test_constructor_docstring_lists_every_option_in_order():
  assert _docstring_section_names(lars.LARS.__init__.__doc__, 'Args') == (
      ['learning_rate', *lars_options.OPTION_NAMES, '**kwargs'])


def test_lars_config_fields_are_options():
  fields = {f.name: f for f in dataclasses.fields(optimizer_config.LARSConfig)}
  inherited = {'clipnorm', 'clipvalue', 'global_clipnorm'}
  assert [n for n in fields if n not in inherited] == list(
      lars_options.OPTION_NAMES)
  for option in lars_options.OPTIONS:
    assert fields[option.name].default == option.default, option.name
  assert _docstring_section_names(optimizer_config.LARSConfig.__doc__,
                                  'Attributes') == list(
                                      lars_options.OPTION_NAMES)


def test_get_config_keys_are_options_and_keras_keys():
  assert set(lars.LARS(clipnorm=1.0).get_config()) == (
      {'learning_rate', 'decay', 'clipnorm'} |
      set(lars_options.OPTION_NAMES))


def _docs_table_rows():
  """(name, default, description) of each row of docs/options.md's table."""
  text = (REPO / 'docs' / 'options.md').read_text()
  rows = re.findall(r'^\| `(\w+)` \| `([^`]*)` \| (.*) \|$', text, re.M)
  assert rows, 'docs/options.md has no options table'
  return rows


def test_docs_table_is_options():
  assert _docs_table_rows() == [
      (o.name, repr(o.default), o.doc) for o in lars_options.OPTIONS]


# ------------------------------------------------------------ validation


@pytest.mark.parametrize('values,error,field,value', [
    *lars_testing.BAD_MODEL_GARDEN_OPTIONS,
    ({'weight_decay_rate': True}, TypeError, 'weight_decay_rate', 'True'),
    ({'exclude_from_weight_decay': {'bias'}}, TypeError,
     'exclude_from_weight_decay', "{'bias'}"),
    ({'name': 3}, TypeError, 'name', '3'),
    ({'name': None}, TypeError, 'name', 'None'),
    ({'trust_ratio_denominator': 'papers'}, ValueError,
     'trust_ratio_denominator', 'papers'),
    ({'epsilon': -1e-8}, ValueError, 'epsilon', '-1e-08'),
    ({'epsilon': 'tiny'}, TypeError, 'epsilon', 'tiny'),
    ({'max_trust_ratio': 0.0}, ValueError, 'max_trust_ratio', '0.0'),
    ({'max_trust_ratio': float('inf')}, ValueError, 'max_trust_ratio', 'inf'),
    ({'trust_clip': 'yes'}, TypeError, 'trust_clip', 'yes'),
    ({'telemetry': 1}, TypeError, 'telemetry', '1'),
    ({'exclude_one_dimensional_from_weight_decay': 'True'}, TypeError,
     'exclude_one_dimensional_from_weight_decay', 'True'),
    ({'exclude_normalization_from_layer_adaptation': None}, TypeError,
     'exclude_normalization_from_layer_adaptation', 'None'),
    ({'exclude_variables_from_weight_decay': 'dense/kernel'}, TypeError,
     'exclude_variables_from_weight_decay', "'dense/kernel'"),
    ({'exclude_variables_from_layer_adaptation': ['a', 1]}, TypeError,
     'exclude_variables_from_layer_adaptation', '1'),
    ({'trust_ratio_denominator': 'paper', 'classic_momentum': False},
     ValueError, 'trust_ratio_denominator', 'classic_momentum=True'),
    ({'learning_rate': 0.1}, TypeError, 'learning_rate', 'unexpected'),
])
def test_bad_values_are_one_line_errors_naming_field_and_value(
    values, error, field, value):
  with pytest.raises(error) as excinfo:
    lars_options.check_options(values)
  message = str(excinfo.value)
  assert message.startswith('LARS: ') and '\n' not in message
  assert field in message and value in message


def test_values_are_normalized():
  checked = lars_options.check_options({
      'momentum': np.float32(0.5), 'eeta': 1, 'max_trust_ratio': np.int64(3),
      'exclude_from_weight_decay': ('bias',)})
  assert checked['momentum'] == 0.5 and type(checked['momentum']) is float  # pylint: disable=unidiomatic-typecheck
  assert checked['eeta'] == 1.0 and type(checked['eeta']) is float  # pylint: disable=unidiomatic-typecheck
  assert checked['max_trust_ratio'] == 3.0
  assert checked['exclude_from_weight_decay'] == ['bias']
  assert list(checked) == list(lars_options.OPTION_NAMES)


@pytest.mark.parametrize('value', [np.float32(0.25), np.float64(0.25), 0.25,
                                   np.int32(0)])
def test_check_non_negative_accepts_numpy_numbers(value):
  assert lars_options.check_non_negative('clipnorm', value) == float(value)


def test_check_non_negative_refuses_negative_and_non_numbers():
  with pytest.raises(ValueError, match=r"^LARS: clipnorm must be in \[0.0, "
                     r'inf\), got -1.0'):
    lars_options.check_non_negative('clipnorm', -1)
  with pytest.raises(TypeError, match="^LARS: decay must be a number, got "
                     "'0.1'"):
    lars_options.check_non_negative('decay', '0.1')


def test_importing_needs_no_framework():
  lars_testing.assert_imports_no_framework(
      'official_ext.modeling.optimization.lars_options',
      "official_ext.modeling.optimization.lars_options.check_options("
      "{'momentum': 0.5})")
