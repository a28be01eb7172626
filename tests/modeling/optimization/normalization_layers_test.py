"""Tests for normalization_layers: normalization variables found by type."""
import pytest
import tf_keras

from official.modeling.optimization import ema_optimizer
from official_ext import keras as official_ext_keras
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import normalization_layers
from tests.modeling.optimization import lars_testing


def test_normalization_variables_found_by_layer_type_at_any_depth():
  names = sorted(v.name for v in normalization_layers.normalization_variables(
      lars_testing.normalization_model()))
  assert names == sorted(lars_testing.NORMALIZATION_NAMES)


def test_unbuilt_normalization_layer_is_an_error():
  model = tf_keras.Sequential([tf_keras.layers.Dense(2),
                               tf_keras.layers.BatchNormalization(name='bn')])
  with pytest.raises(ValueError, match="'bn'.*not built"):
    normalization_layers.normalization_variables(model)


def test_registered_layer_classes_count_as_normalization():

  class Scale(tf_keras.layers.Layer):

    def build(self, input_shape):
      self.scale = self.add_weight('scale', shape=input_shape[-1:])

    def call(self, x):
      return x * self.scale

  model = tf_keras.Sequential([tf_keras.Input((3,)), Scale(name='my_norm')])
  assert normalization_layers.normalization_variables(model) == []
  with pytest.raises(TypeError, match='Layer subclass'):
    normalization_layers.register_normalization_layer(object)
  normalization_layers.register_normalization_layer(Scale)
  try:
    assert [v.name for v in normalization_layers.normalization_variables(
        model)] == ['my_norm/scale:0']
  finally:
    normalization_layers._NORMALIZATION_LAYERS.remove(Scale)  # pylint: disable=protected-access


def test_use_model_sees_through_wrappers():
  model = lars_testing.normalization_model()
  inner = lars.LARS(weight_decay_rate=1e-4,
                    exclude_normalization_from_weight_decay=True)
  wrapped = tf_keras.mixed_precision.LossScaleOptimizer(
      ema_optimizer.ExponentialMovingAverage(inner))
  assert normalization_layers.use_model(wrapped, model) is inner
  assert inner.normalization_variable_names == frozenset(
      lars_testing.NORMALIZATION_NAMES)
  assert normalization_layers.use_model(
      tf_keras.optimizers.legacy.SGD(), model) is None
  # A Keras 3 LARS takes normalization variables too, but Keras 3 ones.
  keras_lars = official_ext_keras.LARS(
      weight_decay_rate=1e-4, exclude_normalization_from_weight_decay=True)
  assert normalization_layers.use_model(keras_lars, model) is None
  assert keras_lars.normalization_variable_paths is None


def test_use_model_leaves_lars_without_normalization_selectors_alone():
  optimizer = lars.LARS()
  model = lars_testing.normalization_model()
  assert normalization_layers.use_model(optimizer, model) is optimizer
  assert optimizer.normalization_variable_names is None
