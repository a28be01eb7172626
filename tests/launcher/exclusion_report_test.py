"""Tests for the LARS exclusion report of an experiment."""
import logging

import gin
import pytest
import tf_keras

from official.core import train_utils as mg_train_utils
from official.vision import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import exclusion_report
from official_ext.launcher import config_parsing
from official_ext.modeling.optimization import lars

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
