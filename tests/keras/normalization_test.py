"""Tests of finding a Keras 3 model's normalization variables for LARS."""

import keras
import pytest

from official_ext.keras import LARS
from official_ext.keras import normalization


class _Block(keras.layers.Layer):
  """A custom layer holding a normalization layer (not in `model.layers`)."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.dense = keras.layers.Dense(3)
    self.norm = keras.layers.RMSNormalization()

  def call(self, x):
    return self.norm(self.dense(x))


def _model() -> keras.Model:
  return keras.Sequential([
      keras.Input((4, 4, 2)),
      keras.layers.Conv2D(2, 1),
      keras.layers.BatchNormalization(),
      keras.layers.GroupNormalization(groups=2),
      keras.layers.Flatten(),
      _Block(),
      keras.layers.LayerNormalization(),
  ])


def test_finds_every_normalization_layer_including_nested():
  model = _model()
  found = normalization.normalization_variables(model)
  expected = [v for layer in (model.layers[1], model.layers[2],
                              model.layers[4].norm, model.layers[5])
              for v in layer.trainable_variables]
  assert [v.path for v in found] == [v.path for v in expected]
  assert len(found) == 7  # gamma/beta ×3 + RMSNorm scale


def test_use_model_sets_the_optimizers_selection():
  model = _model()
  optimizer = LARS(exclude_normalization_from_weight_decay=True,
                   weight_decay_rate=0.1)
  assert normalization.use_model(optimizer, model) is optimizer
  assert optimizer.weight_decay_exclusion(model.layers[1].gamma) == (
      'exclude_normalization_from_weight_decay')
  assert optimizer.weight_decay_exclusion(model.layers[0].kernel) is None


def test_use_model_finds_lars_inside_loss_scaling():
  model = _model()
  optimizer = LARS(exclude_normalization_from_weight_decay=True,
                   weight_decay_rate=0.1)
  scaled = keras.optimizers.LossScaleOptimizer(optimizer)
  assert normalization.use_model(scaled, model) is optimizer
  assert optimizer.weight_decay_exclusion(model.layers[1].gamma) == (
      'exclude_normalization_from_weight_decay')


def test_use_model_ignores_other_optimizers():
  assert normalization.use_model(keras.optimizers.SGD(), _model()) is None


def test_unbuilt_normalization_layer_is_an_error():
  model = keras.Sequential([keras.layers.LayerNormalization()])
  with pytest.raises(ValueError, match='is not built'):
    normalization.normalization_variables(model)
