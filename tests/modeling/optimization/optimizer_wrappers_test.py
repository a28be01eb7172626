"""Tests for optimizer_wrappers: unwrap and find through real wrappers."""
import keras
import tf_keras

from official.modeling.optimization import ema_optimizer

from official_ext import keras as official_ext_keras
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import optimizer_wrappers
from tests.modeling.optimization import lars_testing


def test_unwrap_lists_tf_keras_wrappers_outermost_first():
  inner = lars.LARS()
  ema = ema_optimizer.ExponentialMovingAverage(inner)
  scaled = tf_keras.mixed_precision.LossScaleOptimizer(ema)
  assert optimizer_wrappers.unwrap(scaled) == [scaled, ema, inner]
  assert optimizer_wrappers.unwrap(inner) == [inner]


def test_find_sees_through_wrappers_and_checks_the_class():
  inner = lars.LARS()
  wrapped = tf_keras.mixed_precision.LossScaleOptimizer(
      ema_optimizer.ExponentialMovingAverage(inner))
  assert optimizer_wrappers.find(wrapped, lars.LARS) is inner
  assert optimizer_wrappers.find(
      tf_keras.optimizers.legacy.SGD(), lars.LARS) is None
  # A Keras 3 LARS is not the tf_keras class, whatever attributes it has.
  keras_lars = keras.optimizers.LossScaleOptimizer(official_ext_keras.LARS())
  assert optimizer_wrappers.find(keras_lars, lars.LARS) is None
  assert optimizer_wrappers.find(
      keras_lars, official_ext_keras.LARS) is keras_lars.inner_optimizer


def test_unwrap_stops_at_a_wrapper_that_wraps_itself():

  class SelfWrapping:

    def __init__(self):
      self.inner_optimizer = self

  optimizer = SelfWrapping()
  assert optimizer_wrappers.unwrap(optimizer) == [optimizer]


def test_importing_needs_no_framework():
  lars_testing.assert_imports_no_framework(
      'official_ext.modeling.optimization.optimizer_wrappers')
