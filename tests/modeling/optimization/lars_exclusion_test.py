"""Tests for LARS exclusion on a model: normalization layers and the report."""
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import ema_optimizer
from official.nlp.modeling.layers import transformer_encoder_block
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import lars_exclusion


class _Block(tf_keras.layers.Layer):
  """A custom layer holding a normalization layer: found by type, not name."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.projection = tf_keras.layers.Dense(4, name='projection')
    self.norm = tf_keras.layers.GroupNormalization(groups=2, name='gn')

  def call(self, x):
    return self.norm(self.projection(x))


def _model():
  inputs = tf_keras.Input((6, 6, 2))
  x = tf_keras.layers.Conv2D(4, 3, use_bias=False, name='stem')(inputs)
  x = tf_keras.layers.BatchNormalization(name='bn_renamed')(x)
  x = tf_keras.layers.experimental.SyncBatchNormalization(name='sync')(x)
  x = tf_keras.layers.Flatten()(x)
  x = _Block(name='block')(x)
  x = tf_keras.layers.LayerNormalization(name='ln')(x)
  x = transformer_encoder_block.RMSNorm(name='rms')(x)
  return tf_keras.Model(inputs, tf_keras.layers.Dense(3, name='head')(x))


NORMALIZATION_NAMES = [
    'bn_renamed/gamma:0', 'bn_renamed/beta:0', 'sync/gamma:0', 'sync/beta:0',
    'block/gn/gamma:0', 'block/gn/beta:0', 'ln/gamma:0', 'ln/beta:0',
    'rms/rms/scale:0']


def test_normalization_variables_found_by_layer_type_at_any_depth():
  names = sorted(v.name for v in lars_exclusion.normalization_variables(
      _model()))
  assert names == sorted(NORMALIZATION_NAMES)


def test_unbuilt_normalization_layer_is_an_error():
  model = tf_keras.Sequential([tf_keras.layers.Dense(2),
                               tf_keras.layers.BatchNormalization(name='bn')])
  with pytest.raises(ValueError, match="'bn'.*not built"):
    lars_exclusion.normalization_variables(model)


def test_registered_layer_classes_count_as_normalization():

  class Scale(tf_keras.layers.Layer):

    def build(self, input_shape):
      self.scale = self.add_weight('scale', shape=input_shape[-1:])

    def call(self, x):
      return x * self.scale

  model = tf_keras.Sequential([tf_keras.Input((3,)), Scale(name='my_norm')])
  assert lars_exclusion.normalization_variables(model) == []
  with pytest.raises(TypeError, match='Layer subclass'):
    lars_exclusion.register_normalization_layer(object)
  lars_exclusion.register_normalization_layer(Scale)
  try:
    assert [v.name for v in lars_exclusion.normalization_variables(model)] == [
        'my_norm/scale:0']
  finally:
    lars_exclusion._NORMALIZATION_LAYERS.remove(Scale)  # pylint: disable=protected-access


def test_find_lars_and_use_model_see_through_wrappers():
  model = _model()
  inner = lars.LARS(weight_decay_rate=1e-4,
                    exclude_normalization_from_weight_decay=True)
  wrapped = tf_keras.mixed_precision.LossScaleOptimizer(
      ema_optimizer.ExponentialMovingAverage(inner))
  assert lars_exclusion.find_lars(wrapped) is inner
  assert lars_exclusion.use_model(wrapped, model) is inner
  assert inner.normalization_variable_names == frozenset(NORMALIZATION_NAMES)
  sgd = tf_keras.optimizers.legacy.SGD()
  assert lars_exclusion.find_lars(sgd) is None
  assert lars_exclusion.use_model(sgd, model) is None


def test_use_model_leaves_lars_without_normalization_selectors_alone():
  optimizer = lars.LARS()
  assert lars_exclusion.use_model(optimizer, _model()) is optimizer
  assert optimizer.normalization_variable_names is None


def test_report_rows_say_what_and_why():
  model = _model()
  optimizer = lars.LARS(
      weight_decay_rate=1e-4, exclude_from_weight_decay=['head'],
      exclude_from_layer_adaptation=[],
      exclude_one_dimensional_from_weight_decay=True,
      exclude_normalization_from_layer_adaptation=True,
      exclude_variables_from_layer_adaptation=['stem/kernel'])
  lars_exclusion.use_model(optimizer, model)
  report = lars_exclusion.exclusion_report(model.trainable_variables,
                                           optimizer)
  rows = {d.name: (d.shape.as_list(), d.weight_decay_exclusion,
                   d.layer_adaptation_exclusion) for d in report.variables}
  assert list(rows) == [v.name for v in model.trainable_variables]
  assert rows['stem/kernel:0'] == (
      [3, 3, 2, 4], None, 'exclude_variables_from_layer_adaptation')
  assert rows['bn_renamed/gamma:0'] == (
      [4], 'exclude_one_dimensional_from_weight_decay',
      'exclude_normalization_from_layer_adaptation')
  assert rows['block/projection/kernel:0'] == ([64, 4], None, None)
  assert rows['block/projection/bias:0'][1:] == (
      'exclude_one_dimensional_from_weight_decay', None)
  assert rows['head/kernel:0'][1:] == ("exclude_from_weight_decay 'head'",
                                       None)
  # RMSNorm's scale has shape [1, 4]: only the layer-type selector sees it.
  assert rows['rms/rms/scale:0'] == (
      [1, 4], None, 'exclude_normalization_from_layer_adaptation')
  assert report.warnings == []
  table = report.table()
  assert 'no (exclude_normalization_from_layer_adaptation)' in table
  assert table.splitlines()[0].split() == ['variable', 'shape', 'weight',
                                           'decay', 'layer', 'adaptation']
  assert table.splitlines()[-1] == (
      '14 trainable variables: 3 get weight decay, 4 get layer adaptation.')


def test_report_warns_about_every_setting_that_matches_nothing():
  model = tf_keras.Sequential([
      tf_keras.Input((3, 3, 1)),
      tf_keras.layers.Conv2D(2, 3, use_bias=False, name='conv'),
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(2, use_bias=False, name='dense')])
  optimizer = lars.LARS(
      weight_decay_rate=1e-4,
      exclude_from_weight_decay=['batch_normalization', 'kernel'],
      exclude_from_layer_adaptation=['LayerNorm'],
      exclude_variables_from_weight_decay=['dense/kernel:0', 'Dense/kernel'],
      exclude_one_dimensional_from_layer_adaptation=True,
      exclude_normalization_from_weight_decay=True)
  lars_exclusion.use_model(optimizer, model)
  report = lars_exclusion.exclusion_report(model.trainable_variables,
                                           optimizer)
  assert len(report.warnings) == 5, report.warnings
  warnings = '\n'.join(report.warnings)
  for expected in (
      "exclude_from_weight_decay pattern 'batch_normalization' matches no",
      "exclude_from_layer_adaptation pattern 'LayerNorm' matches no",
      "exclude_variables_from_weight_decay names 'Dense/kernel', which is no",
      'exclude_one_dimensional_from_layer_adaptation is on, but no trainable '
      'variable has rank <= 1',
      'exclude_normalization_from_weight_decay is on, but the model has no '
      'trainable variable in a normalization layer'):
    assert expected in warnings
  assert report.text().count('WARNING: ') == 5


def test_layer_adaptation_patterns_falling_back_are_checked_once():
  var = tf.Variable([1.0], name='w')
  report = lars_exclusion.exclusion_report(
      [var], lars.LARS(exclude_from_weight_decay=['nothing']))
  assert len(report.warnings) == 1
  assert report.variables[0].layer_adaptation_exclusion is None


def test_report_refuses_other_optimizers():
  with pytest.raises(ValueError, match='SGD'):
    lars_exclusion.exclusion_report([], tf_keras.optimizers.legacy.SGD())
