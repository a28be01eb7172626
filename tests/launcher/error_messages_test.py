"""Tests that error messages say gin's context and object reprs in words."""
import re

import gin
import pytest

from official_ext.launcher import error_messages
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config

OBJECT_REPR = re.compile(r'<[^>]* at 0x[0-9a-f]+>')


def _gin_error_of_a_bad_lars_momentum() -> ValueError:
  """What the launcher sees for `LARS.momentum = 1.5`: gin's augmented error
  from the configurable OptimizerFactory.build_optimizer."""
  factory = optimizer_factory.OptimizerFactory(
      optimization_config.OptimizationConfig({
          'optimizer': {'type': 'lars', 'lars': {'momentum': 1.5}},
          'learning_rate': {'type': 'constant'}}))
  with pytest.raises(ValueError) as error:
    factory.build_optimizer(factory.build_learning_rate())
  return error.value


def test_gin_call_context_is_said_in_words():
  raw = str(_gin_error_of_a_bad_lars_momentum())
  assert OBJECT_REPR.search(raw)  # What gin itself says.
  message = error_messages.in_words(raw)
  assert not OBJECT_REPR.search(message)
  assert message == (
      'LARS: momentum must be in [0.0, 1.0), got 1.5.\n'
      "  Raised in gin's call to configurable 'build_optimizer' "
      '(function OptimizerFactory.build_optimizer).')


class _Failing:

  def __init__(self, value=0):
    raise ValueError(f'value {value} is bad.')


def test_a_configurable_class_in_a_scope_is_named_with_its_scope():
  configurable = gin.external_configurable(
      _Failing, name='ErrorMessagesTestFailing')
  with pytest.raises(ValueError) as error:
    with gin.config_scope('outer'):
      configurable(value=3)
  message = error_messages.in_words(str(error.value))
  assert "<class '" in str(error.value)
  assert message == (
      'value 3 is bad.\n'
      "  Raised in gin's call to configurable 'ErrorMessagesTestFailing' "
      f"(class {__name__}._Failing) in scope 'outer'.")


def test_other_object_reprs_keep_what_they_name():
  message = error_messages.in_words(
      f'cannot use {object()!r} with {len!r} or {_Failing.__init__!r}')
  assert message == ('cannot use object object with <built-in function len> '
                     'or function _Failing.__init__')
