"""Tests of how the Keras 3 LARS sorts and checks its constructor arguments."""

import keras
import pytest

from official_ext.keras import options
from official_ext.modeling.optimization import lars_options


def test_positional_arguments_follow_model_gardens_order():
  _, checked, keras_kwargs = options.split_arguments(
      0.2, (0.8, 1e-4, 0.01, True, False, ['bias'], ['gamma'], 'my_lars'), {})
  assert [checked[name] for name in (
      'momentum', 'weight_decay_rate', 'eeta', 'nesterov', 'classic_momentum',
      'exclude_from_weight_decay', 'exclude_from_layer_adaptation')] == [
          0.8, 1e-4, 0.01, True, False, ['bias'], ['gamma']]
  assert keras_kwargs == {'name': 'my_lars'}


def test_defaults_are_lars_options_defaults():
  learning_rate, checked, _ = options.split_arguments(1, (), {})
  assert learning_rate == 1.0 and isinstance(learning_rate, float)
  assert checked == {o.name: o.default for o in lars_options.OPTIONS}


def test_keras_arguments_pass_through():
  _, checked, keras_kwargs = options.split_arguments(
      0.1, (), {'clipnorm': 1, 'use_ema': True, 'momentum': 0.5})
  assert keras_kwargs == {'clipnorm': 1.0, 'use_ema': True, 'name': 'LARS'}
  assert checked['momentum'] == 0.5


def test_schedule_is_accepted():
  schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
  assert options.split_arguments(schedule, (), {})[0] is schedule


@pytest.mark.parametrize('args,kwargs,error,message', [
    ((0.9,) * 9, {}, TypeError, 'LARS: takes at most 9 positional'),
    ((0.9,), {'momentum': 0.8}, TypeError,
     'LARS: got momentum both by position and by name.'),
    ((), {'weight_decay': 0.01}, ValueError,
     "LARS: weight_decay=0.01 is Keras' decoupled weight decay"),
    ((), {'decay': 0.01}, ValueError, 'LARS: decay=0.01 is ignored'),
    ((), {'telemetry': True}, ValueError,
     'LARS: telemetry=True records into tf_keras'),
    ((), {'clipnorm': -1.0}, ValueError, 'LARS: clipnorm must be in'),
    ((), {'momentom': 0.9}, TypeError, "LARS: unexpected argument 'momentom'"),
    ((), {'eeta': 0.0}, ValueError, 'LARS: eeta must be in (0.0, inf)'),
])
def test_bad_arguments_get_one_line_errors(args, kwargs, error, message):
  with pytest.raises(error) as raised:
    options.split_arguments(0.1, args, kwargs)
  assert str(raised.value).startswith(message)
  assert '\n' not in str(raised.value)


def test_negative_learning_rate_is_refused():
  with pytest.raises(ValueError, match=r'^LARS: learning_rate must be in'):
    options.split_arguments(-0.1, (), {})


def test_constructor_signature_lists_every_option():
  parameters = list(options.constructor_signature(0.01).parameters.values())
  assert [p.name for p in parameters] == [
      'self', 'learning_rate', *lars_options.OPTION_NAMES, 'kwargs']
  assert parameters[1].default == 0.01
  for parameter, option in zip(parameters[2:], lars_options.OPTIONS):
    assert parameter.default == option.default
    assert (parameter.kind == parameter.KEYWORD_ONLY) == option.keyword_only
