"""Tests for the warnings about settings that training does not follow.

That a flagged setting is ignored, and that a flagged warmup outlasts
training, is checked against what Model Garden's optimizer factory builds.
"""
import copy
import logging

from absl import flags
import gin
import numpy as np
import pytest

from official.common import registry_imports  # pylint: disable=unused-import
from official.core import exp_factory
from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import config_parsing
from official_ext.launcher import config_warnings
from official_ext.launcher import launch_checks
from official_ext.launcher import launcher_flags

OPTIMIZATION = 'trainer.optimizer_config'
_STEPS = (0, 3, 7, 12, 30)


def _optimization(**fields) -> mg_optimization_config.OptimizationConfig:
  """Model Garden's optimization config: LARS, cosine decay, linear warmup."""
  config = {
      'optimizer': {'type': 'lars'},
      'learning_rate': {'type': 'cosine',
                        'cosine': {'initial_learning_rate': 0.5,
                                   'decay_steps': 40}},
      'warmup': {'type': 'linear', 'linear': {'warmup_steps': 5}},
  }
  for part, value in fields.items():
    config[part] = {**config[part], **value}
  return mg_optimization_config.OptimizationConfig(config)


def _built(config: mg_optimization_config.OptimizationConfig):
  """Model Garden's optimizer config and learning rates from `config`."""
  factory = mg_optimizer_factory.OptimizerFactory(config)
  schedule = factory.build_learning_rate()
  optimizer = factory.build_optimizer(schedule)
  return optimizer.get_config(), [float(schedule(step)) for step in _STEPS]


@pytest.mark.parametrize('fields,part,block,listed,chosen', [
    ({'optimizer': {'sgd': {'momentum': 0.8, 'nesterov': True}}},
     'optimizer', 'sgd', 'momentum=0.8, nesterov=True', 'lars'),
    ({'learning_rate': {'stepwise': {'boundaries': [10], 'values': [1., .1]}}},
     'learning_rate', 'stepwise', 'boundaries=[10], values=[1.0, 0.1]',
     'cosine'),
    ({'warmup': {'polynomial': {'power': 2.0}}},
     'warmup', 'polynomial', 'power=2.0', 'linear'),
    ({'warmup': {'type': None}},  # The linear warmup's steps, without type.
     'warmup', 'linear', 'warmup_steps=5', 'unset'),
])
def test_values_under_an_unselected_block_warn_and_are_ignored(
    fields, part, block, listed, chosen):
  config = _optimization(**fields)
  path = f'{OPTIMIZATION}.{part}'
  assert config_warnings.unselected_settings(config) == [
      f'{path}.{block} sets {listed}, which training ignores: {path}.type is '
      f'{chosen} (set {path}.type={block} to use them).']
  # Model Garden builds the same optimizer and schedule without them.
  without = _optimization(**fields)
  choice = getattr(without, part)
  setattr(choice, block, type(getattr(choice, block))())
  assert not config_warnings.unselected_settings(without)
  optimizer, rates = _built(config)
  expected_optimizer, expected_rates = _built(without)
  assert optimizer == expected_optimizer
  np.testing.assert_allclose(rates, expected_rates)


def test_values_under_the_selected_block_change_what_is_built():
  # The reference above can tell: the same values, selected, are not ignored.
  config = _optimization(optimizer={'type': 'sgd', 'sgd': {'momentum': 0.8}})
  assert not config_warnings.unselected_settings(config)
  assert _built(config)[0]['momentum'] == pytest.approx(0.8)
  assert _built(_optimization(optimizer={'type': 'sgd'}))[0]['momentum'] == 0


def test_a_value_equal_to_the_default_or_a_deleted_field_is_not_a_setting():
  config = _optimization(optimizer={'sgd': {'momentum': 0.0}})
  del config.optimizer.adam.epsilon
  assert not config_warnings.unselected_settings(config)


@pytest.mark.parametrize('experiment', [
    'lars_digits', 'resnet50_imagenet_lars', 'resnet_imagenet',
    'image_classification', 'retinanet_resnetfpn_coco',
    'bert/sentence_prediction'])
def test_registered_experiments_do_not_warn(experiment):
  params = config_parsing.with_official_ext_optimization_config(
      exp_factory.get_exp_config(experiment))
  optimization = params.trainer.optimizer_config
  assert not config_warnings.unselected_settings(optimization)
  assert not config_warnings.warmups_longer_than_training(
      optimization, params.trainer.train_steps)


@pytest.mark.parametrize('warmup_steps,train_steps,warns', [
    (6, 5, True), (5, 5, False), (2, 5, False)])
def test_warmup_longer_than_training_warns(warmup_steps, train_steps, warns):
  config = _optimization(warmup={'linear': {'warmup_steps': warmup_steps}})
  messages = config_warnings.warmups_longer_than_training(config, train_steps)
  assert messages == [
      f'{OPTIMIZATION}.warmup.linear.warmup_steps={warmup_steps} is longer '
      f'than trainer.train_steps={train_steps}: training ends before the '
      'learning rate has warmed up.'] * warns
  # Model Garden's schedule: the rate peaks when warmup ends; training
  # reaches the peak exactly when it does not warn.
  schedule = mg_optimizer_factory.OptimizerFactory(config).build_learning_rate()
  rates = [float(schedule(step)) for step in range(train_steps + 1)]
  assert (max(rates) < float(schedule(warmup_steps))) == warns


@pytest.fixture
def launch(tmp_path, caplog):
  """Runs the launch checks on a lars_digits command line; returns the
  warnings they log."""
  launcher_flags.define_flags()

  def checked(mode, params_override, gin_params=()):
    flag_values = copy.deepcopy(flags.FLAGS)  # absl's FLAGS stay unparsed.
    flag_values([
        'official_ext.train', '--experiment=lars_digits', f'--mode={mode}',
        f'--model_dir={tmp_path}', f'--params_override={params_override}',
        *(f'--gin_params={binding}' for binding in gin_params)])
    gin.clear_config()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
      launch_checks.checked_configuration(flag_values)
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING]

  yield checked
  gin.clear_config()


def test_the_launch_checks_warn_once_per_mistake(launch):
  warnings = launch('train', ','.join([
      f'{OPTIMIZATION}.optimizer.sgd.momentum=0.5',
      'trainer.train_steps=20']))  # lars_digits warms up for 40 steps.
  assert len(warnings) == 2, warnings
  assert warnings[0].startswith(
      f'{OPTIMIZATION}.optimizer.sgd sets momentum=0.5, which training ignores')
  assert warnings[1].startswith(
      f'{OPTIMIZATION}.warmup.linear.warmup_steps=40 is longer than '
      'trainer.train_steps=20')
  # Evaluation does not use them.
  assert not launch('eval', f'{OPTIMIZATION}.optimizer.sgd.momentum=0.5,'
                    'trainer.train_steps=20')


def test_lars_gin_bindings_with_another_optimizer_warn(launch):
  # With lars_digits's own LARS values, which sgd ignores too.
  [warning] = launch('train', f'{OPTIMIZATION}.optimizer.type=sgd',
                     ['LARS.eeta = 0.005'])
  assert warning.startswith(
      f'{OPTIMIZATION}.optimizer.lars sets eeta=0.005, ')
  assert warning.endswith(
      f', which training ignores: {OPTIMIZATION}.optimizer.type is sgd (set '
      f'{OPTIMIZATION}.optimizer.type=lars to use them).')
