"""Tests for official_ext's LARS class: get_config and from_config lose
nothing, learning-rate schedules included, where Model Garden's class loses
them (its tests are expected to fail: `lars_testing.MG_DEFECT`)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import lr_schedule
from official_ext.modeling.optimization import lars
from tests.modeling.optimization import lars_testing

BOTH_CLASSES = lars_testing.BOTH_CLASSES


# ------------------------------------------------ get_config / from_config


MODEL_GARDEN_ARGUMENTS = dict(
    momentum=0.8, weight_decay_rate=1e-4, eeta=0.002, nesterov=True,
    classic_momentum=False, exclude_from_weight_decay=['bias'],
    exclude_from_layer_adaptation=['gamma'], name='my_lars')


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_get_config_returns_every_constructor_argument(cls):
  opt = cls(learning_rate=0.3, clipnorm=1.0, **MODEL_GARDEN_ARGUMENTS)
  expected = dict(MODEL_GARDEN_ARGUMENTS, clipnorm=1.0)
  clone = cls.from_config(opt.get_config())
  for config in (opt.get_config(), clone.get_config()):
    assert {key: config[key] for key in expected} == expected
    assert config['learning_rate'] == pytest.approx(0.3)


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_from_config_continues_training_identically(cls):
  opt = cls(learning_rate=0.4, weight_decay_rate=1e-3,
            exclude_from_weight_decay=['batch_normalization'],
            exclude_from_layer_adaptation=['layer_normalization'])
  clone = cls.from_config(opt.get_config())
  lars_testing.assert_weights_close(
      lars_testing.train(clone, steps=4).get_weights(),
      lars_testing.train(opt, steps=4).get_weights(), rtol=0)


def _schedules():
  keras_schedules = tf_keras.optimizers.schedules
  yield keras_schedules.PiecewiseConstantDecay([2, 4], [0.5, 0.2, 0.1])
  yield keras_schedules.CosineDecay(0.5, 10, alpha=0.1)
  yield lr_schedule.PolynomialWarmUp(
      keras_schedules.PolynomialDecay(0.5, 10, 0.01, power=2.0),
      warmup_steps=3, power=1.0)
  yield lr_schedule.LinearWarmup(
      lr_schedule.CosineDecayWithOffset(offset=2, initial_learning_rate=0.5,
                                        decay_steps=10),
      warmup_steps=2, warmup_learning_rate=0.01)
  yield lr_schedule.PowerAndLinearDecay(0.5, total_decay_steps=10, power=-0.5,
                                        linear_decay_fraction=0.5)
  yield lr_schedule.StepCosineDecayWithOffset(
      boundaries=[0, 5], values=[0.5, 0.1], offset=1)


@pytest.mark.parametrize('cls', BOTH_CLASSES)
@pytest.mark.parametrize('schedule', list(_schedules()),
                         ids=lambda s: type(s).__name__)
def test_from_config_rebuilds_learning_rate_schedules(cls, schedule):
  opt = cls(learning_rate=schedule)
  clone = cls.from_config(opt.get_config())
  restored = clone._get_hyper('learning_rate')  # pylint: disable=protected-access
  assert type(restored) is type(schedule)  # pylint: disable=unidiomatic-typecheck
  for step in (0, 1, 2, 3, 5, 8, 12):
    np.testing.assert_allclose(float(restored(step)), float(schedule(step)),
                               rtol=1e-6)


class HalvingSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
  """A user schedule known only through `custom_objects`."""

  def __init__(self, initial):
    self.initial = initial

  def __call__(self, step):
    return self.initial * tf.pow(0.5, tf.cast(step, tf.float32))

  def get_config(self):
    return {'initial': self.initial}


def test_from_config_honours_custom_objects():
  config = lars.LARS(learning_rate=HalvingSchedule(0.8)).get_config()
  with pytest.raises(ValueError, match='HalvingSchedule'):
    lars.LARS.from_config(config)
  clone = lars.LARS.from_config(
      config, custom_objects={'HalvingSchedule': HalvingSchedule})
  restored = clone._get_hyper('learning_rate')  # pylint: disable=protected-access
  assert float(restored(2)) == pytest.approx(0.2)


def _train_one_variable(optimizer, steps=3):
  var = tf.Variable([[1.0, -2.0], [0.5, 3.0]], name='dense/kernel')
  for _ in range(steps):
    optimizer.apply_gradients([(tf.constant([[0.1, 0.2], [-0.3, 0.4]]), var)])
  return optimizer


EVERY_OPTION = dict(
    momentum=0.8, weight_decay_rate=1e-4, eeta=0.002, nesterov=True,
    classic_momentum=True, exclude_from_weight_decay=['bias'],
    exclude_from_layer_adaptation=['gamma'], name='my_lars',
    trust_ratio_denominator='paper', epsilon=1e-7, trust_clip=True,
    max_trust_ratio=2.5, exclude_one_dimensional_from_weight_decay=True,
    exclude_one_dimensional_from_layer_adaptation=True,
    exclude_normalization_from_weight_decay=False,
    exclude_normalization_from_layer_adaptation=False,
    exclude_variables_from_weight_decay=['a/kernel'],
    exclude_variables_from_layer_adaptation=['b/kernel:0'], telemetry=True)


def test_trained_optimizer_config_round_trips_every_argument():
  opt = _train_one_variable(lars.LARS(learning_rate=0.25, decay=0.01,
                                      clipvalue=0.5, **EVERY_OPTION))
  assert int(opt.iterations) == 3
  expected = dict(EVERY_OPTION, learning_rate=0.25, decay=0.01, clipvalue=0.5)
  config = opt.get_config()
  assert config == expected
  clone = lars.LARS.from_config(config)
  assert clone.get_config() == expected
  # The clone decays the learning rate as the original: 0.25 / (1 + 0.01·t).
  clone.iterations.assign(4)
  assert float(clone._decayed_lr(tf.float32)) == pytest.approx(0.25 / 1.04)  # pylint: disable=protected-access


def test_trained_optimizer_with_float_learning_rate_round_trips():
  # After a step the learning rate is read back from its variable, as a
  # numpy float32.
  opt = _train_one_variable(lars.LARS(learning_rate=0.1))
  clone = lars.LARS.from_config(opt.get_config())
  assert float(clone._get_hyper('learning_rate')) == pytest.approx(0.1)  # pylint: disable=protected-access


@pytest.mark.parametrize('schedule,expected', [
    (tf_keras.optimizers.schedules.PiecewiseConstantDecay(
        [2, 4], [0.5, 0.2, 0.1]), [0.5, 0.5, 0.5, 0.2, 0.2, 0.1]),
    (lr_schedule.LinearWarmup(
        lr_schedule.CosineDecayWithOffset(
            offset=2, initial_learning_rate=0.5, decay_steps=8),
        warmup_steps=2, warmup_learning_rate=0.1),
     [0.1, 0.3] + [0.25 * (1 + np.cos(np.pi * t / 8)) for t in (0, 1, 2, 3)]),
], ids=['PiecewiseConstantDecay', 'LinearWarmup_CosineDecayWithOffset'])
def test_trained_optimizer_with_schedule_round_trips(schedule, expected):
  opt = _train_one_variable(lars.LARS(learning_rate=schedule, decay=0.5))
  clone = lars.LARS.from_config(opt.get_config())
  restored = clone._get_hyper('learning_rate')  # pylint: disable=protected-access
  np.testing.assert_allclose([float(restored(step)) for step in range(6)],
                             expected, rtol=1e-6)
  assert clone.get_config()['decay'] == 0.5
