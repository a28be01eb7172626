"""Tests of how the Keras 3 LARS lists and checks its constructor arguments."""

import inspect

import keras
import pytest

from official_ext.keras import lars
from official_ext.keras import options
from official_ext.modeling.optimization import lars_options


def test_positional_arguments_follow_model_gardens_order():
  optimizer = lars.LARS(0.2, 0.8, 1e-4, 0.01, True, False, ['bias'],
                        ['gamma'], 'my_lars')
  assert [optimizer.options[name] for name in (
      'momentum', 'weight_decay_rate', 'eeta', 'nesterov', 'classic_momentum',
      'exclude_from_weight_decay', 'exclude_from_layer_adaptation')] == [
          0.8, 1e-4, 0.01, True, False, ['bias'], ['gamma']]
  assert optimizer.name == 'my_lars'


def test_defaults_are_lars_options_defaults():
  learning_rate, checked, _ = options.check_arguments(1, {}, {}, {})
  assert learning_rate == 1.0 and isinstance(learning_rate, float)
  assert checked == {o.name: o.default for o in lars_options.OPTIONS}
  assert lars.LARS().options == checked


def test_keras_arguments_pass_through():
  _, checked, keras_kwargs = options.check_arguments(
      0.1, {'momentum': 0.5}, {'clipnorm': 1, 'use_ema': True}, {})
  assert keras_kwargs == {'clipnorm': 1.0, 'use_ema': True, 'name': 'LARS'}
  assert checked['momentum'] == 0.5
  optimizer = lars.LARS(0.1, clipnorm=1, use_ema=True)
  assert optimizer.clipnorm == 1.0 and optimizer.use_ema


def test_schedule_is_accepted():
  schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
  assert options.check_arguments(schedule, {}, {}, {})[0] is schedule


@pytest.mark.parametrize('kwargs,error,message', [
    ({'weight_decay': 0.01}, ValueError,
     "LARS: weight_decay=0.01 is Keras' decoupled weight decay"),
    ({'decay': 0.01}, ValueError, 'LARS: decay=0.01 is ignored'),
    ({'telemetry': True}, ValueError,
     'LARS: telemetry=True records into tf_keras'),
    ({'clipnorm': -1.0}, ValueError, 'LARS: clipnorm must be in'),
    ({'momentom': 0.9}, TypeError, "LARS: unexpected argument 'momentom'"),
    ({'eeta': 0.0}, ValueError, 'LARS: eeta must be in (0.0, inf)'),
])
def test_bad_arguments_get_one_line_errors(kwargs, error, message):
  with pytest.raises(error) as raised:
    lars.LARS(0.1, **kwargs)
  assert str(raised.value).startswith(message)
  assert '\n' not in str(raised.value)


def test_python_refuses_extra_or_repeated_positional_arguments():
  with pytest.raises(TypeError, match='positional arguments'):
    lars.LARS(*(0.9,) * 10)
  with pytest.raises(TypeError, match="multiple values for argument 'momentum'"):
    lars.LARS(0.1, 0.9, momentum=0.8)


def test_negative_learning_rate_is_refused():
  with pytest.raises(ValueError, match=r'^LARS: learning_rate must be in'):
    lars.LARS(-0.1)


def test_constructor_signature_is_options_then_keras_arguments():
  parameters = list(inspect.signature(lars.LARS).parameters.values())
  lars_parameters = parameters[1:1 + len(lars_options.OPTIONS)]
  assert parameters[0].name == 'learning_rate'
  assert parameters[0].default == lars.DEFAULT_LEARNING_RATE
  assert [(p.name, p.default, p.kind == p.KEYWORD_ONLY)
          for p in lars_parameters] == [
              (o.name, o.default, o.keyword_only)
              for o in lars_options.OPTIONS]
  assert all(p.kind == p.POSITIONAL_OR_KEYWORD
             for p in lars_parameters if p.kind != p.KEYWORD_ONLY)
  keras_parameters = parameters[1 + len(lars_options.OPTIONS):-1]
  sgd = inspect.signature(keras.optimizers.SGD).parameters
  assert [(p.name, p.default, p.kind) for p in keras_parameters] == [
      (name, sgd[name].default, inspect.Parameter.KEYWORD_ONLY)
      for name in options.KERAS_ARGUMENTS]
  assert parameters[-1].kind == inspect.Parameter.VAR_KEYWORD
