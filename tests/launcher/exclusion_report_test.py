"""Tests for the LARS exclusion report: rows, warnings, experiments, logs."""
import logging

import gin
import pytest
import tensorflow as tf
import tf_keras

from official.core import train_utils as mg_train_utils
from official.vision import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import exclusion_report
from official_ext.launcher import config_parsing
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import normalization_layers
from tests.modeling.optimization import lars_testing

LARS = 'trainer.optimizer_config.optimizer.lars'


@pytest.fixture(autouse=True)
def no_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _params(experiment, params_override):
  return config_parsing.parse_configuration(
      mg_train_utils.ParseConfigOptions(experiment=experiment, config_file=[],
                                        params_override=params_override),
      print_return=False)


def test_model_garden_resnet_report_finds_batch_norm_by_type():
  """A pattern spelt as in another framework matches nothing and says so;
  the normalization selector finds every batch norm variable by layer type."""
  report = exclusion_report.build_report(_params('resnet_imagenet', ','.join([
      'task.model.backbone.resnet.model_id=10',
      'task.model.backbone.resnet.depth_multiplier=0.25',
      'task.model.num_classes=5',
      'trainer.optimizer_config.optimizer.type=lars',
      f'{LARS}.weight_decay_rate=0.0001',
      f'{LARS}.exclude_from_weight_decay=[BatchNorm]',
      f'{LARS}.exclude_from_layer_adaptation=[]',
      f'{LARS}.exclude_normalization_from_weight_decay=true',
  ])))
  assert report.warnings == [
      "LARS exclude_from_weight_decay pattern 'BatchNorm' matches no "
      'trainable variable.']
  batch_norm = [d for d in report.variables
                if 'batch_normalization' in d.name]
  assert len(batch_norm) >= 20
  assert all(d.weight_decay_exclusion ==
             'exclude_normalization_from_weight_decay' for d in batch_norm)
  kernels = [d for d in report.variables if d.name.endswith('kernel:0')]
  assert kernels and all(d.weight_decay_exclusion is None for d in kernels)
  assert all(d.layer_adaptation_exclusion is None for d in report.variables)


def test_other_optimizer_is_refused():
  with pytest.raises(ValueError, match="optimizer.type=lars, got 'sgd'"):
    exclusion_report.build_report(_params('resnet_imagenet', ''))


def test_log_exclusion_report_logs_the_table_and_each_warning(caplog):
  model = tf_keras.Sequential([
      tf_keras.Input((4,)), tf_keras.layers.Dense(2, name='head')])
  optimizer = lars.LARS(exclude_from_weight_decay=['bias', 'gamma'])
  with caplog.at_level(logging.INFO, logger='absl'):
    exclusion_report.log_exclusion_report(model, optimizer)
  records = [(r.levelno, r.getMessage()) for r in caplog.records
             if r.filename == 'exclusion_report.py']
  assert records[0][0] == logging.INFO
  assert records[0][1].startswith('LARS exclusion report:\nvariable')
  assert 'head/kernel:0' in records[0][1] and 'head/bias:0' in records[0][1]
  assert records[1:] == [(logging.WARNING,
                          "LARS exclude_from_weight_decay pattern 'gamma' "
                          'matches no trainable variable.')]


def test_report_rows_say_what_and_why():
  model = lars_testing.normalization_model()
  optimizer = lars.LARS(
      weight_decay_rate=1e-4, exclude_from_weight_decay=['head'],
      exclude_from_layer_adaptation=[],
      exclude_one_dimensional_from_weight_decay=True,
      exclude_normalization_from_layer_adaptation=True,
      exclude_variables_from_layer_adaptation=['stem/kernel'])
  normalization_layers.use_model(optimizer, model)
  report = exclusion_report.exclusion_report(model.trainable_variables,
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
  normalization_layers.use_model(optimizer, model)
  report = exclusion_report.exclusion_report(model.trainable_variables,
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
  report = exclusion_report.exclusion_report(
      [var], lars.LARS(exclude_from_weight_decay=['nothing']))
  assert len(report.warnings) == 1
  assert report.variables[0].layer_adaptation_exclusion is None


def test_report_refuses_other_optimizers():
  with pytest.raises(ValueError, match='SGD'):
    exclusion_report.exclusion_report([], tf_keras.optimizers.legacy.SGD())
