"""Tests that tasks build official_ext's LARS with Model Garden's wrapping."""
import pytest
import tf_keras

from official.core import base_task
from official.core import config_definitions as cfg
from official.core import train_utils as mg_train_utils
from official.modeling.optimization import lars as mg_lars
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.modeling.privacy import configs as privacy_configs
from official_ext.launcher import task_optimizer
from official_ext.experiments import lars_digits
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization.configs import optimization_config


def _optimization(optimizer_type, ema=None,
                  config_cls=optimization_config.OptimizationConfig):
  # Model Garden's own path gets Model Garden's schema: its factory passes
  # every LARSConfig field to its LARS, which lacks official_ext's options.
  return config_cls({
      'optimizer': {'type': optimizer_type},
      'learning_rate': {'type': 'constant', 'constant': {'learning_rate': 0.1}},
      'ema': ema,
  })


def _innermost(optimizer):
  while True:
    inner = (getattr(optimizer, 'inner_optimizer', None) or
             getattr(optimizer, '_optimizer', None))
    if inner is None:
      return optimizer
    optimizer = inner


def _transformer_specs(optimizer):
  return [(t.func, t.keywords)
          for t in _innermost(optimizer).gradient_transformers or []]


@pytest.mark.parametrize('loss_scale', [None, 'dynamic', 128.0])
@pytest.mark.parametrize('ema', [None, {'average_decay': 0.9}])
def test_wrapping_matches_model_garden(loss_scale, ema):
  runtime = cfg.RuntimeConfig(mixed_precision_dtype='float16',
                              loss_scale=loss_scale)
  dp_config = privacy_configs.DifferentialPrivacyConfig(
      clipping_norm=1.0, noise_multiplier=0.5)
  config = _optimization('sgd', ema)
  ours = task_optimizer.create_optimizer(config, runtime, dp_config)
  theirs = base_task.Task.create_optimizer(config, runtime, dp_config)
  assert task_optimizer.describe(ours) == task_optimizer.describe(theirs)
  assert isinstance(ours, tf_keras.mixed_precision.LossScaleOptimizer)
  assert ours.dynamic == theirs.dynamic == (loss_scale != 128.0)
  assert float(ours.loss_scale) == float(theirs.loss_scale)
  assert _transformer_specs(ours) == _transformer_specs(theirs)
  assert len(_transformer_specs(ours)) == 2


def test_lars_is_official_ext_inside_model_garden_wrappers():
  runtime = cfg.RuntimeConfig(mixed_precision_dtype='float16')
  ours = task_optimizer.create_optimizer(
      _optimization('lars', {'average_decay': 0.9}), runtime)
  theirs = base_task.Task.create_optimizer(
      _optimization('lars', {'average_decay': 0.9},
                    mg_optimization_config.OptimizationConfig), runtime)
  our_lars = ours.inner_optimizer._optimizer  # pylint: disable=protected-access
  their_lars = theirs.inner_optimizer._optimizer  # pylint: disable=protected-access
  assert type(our_lars) is lars.LARS
  assert type(their_lars) is mg_lars.LARS
  assert task_optimizer.describe(ours) == (
      'tf_keras.src.mixed_precision.loss_scale_optimizer.LossScaleOptimizer('
      'official.modeling.optimization.ema_optimizer.ExponentialMovingAverage('
      'official_ext.modeling.optimization.lars.LARS))')


def test_float32_runtime_is_not_loss_scaled():
  optimizer = task_optimizer.create_optimizer(
      _optimization('lars'), cfg.RuntimeConfig())
  assert type(optimizer) is lars.LARS


def _experiment(optimizer_type,
                config_cls=optimization_config.OptimizationConfig):
  return cfg.ExperimentConfig(
      task=lars_digits.DigitsTaskConfig(),
      trainer=cfg.TrainerConfig(optimizer_config=_optimization(
          optimizer_type, config_cls=config_cls)))


def test_model_garden_trainer_path_builds_official_ext_lars():
  params = _experiment('lars')
  task = lars_digits.DigitsTask(params.task)
  untouched = lars_digits.DigitsTask(params.task)
  assert task_optimizer.use_official_ext_optimizers(
      task, params.trainer.optimizer_config) is task
  # What official.core.train_utils.create_trainer calls.
  assert type(mg_train_utils.create_optimizer(task, params)) is lars.LARS
  mg_params = _experiment('lars', mg_optimization_config.OptimizationConfig)
  assert type(mg_train_utils.create_optimizer(untouched, mg_params)) is (
      mg_lars.LARS)
  assert lars_digits.DigitsTask.create_optimizer.__func__ is (
      base_task.Task.create_optimizer.__func__)


class _OwnOptimizerTask(lars_digits.DigitsTask):

  @classmethod
  def create_optimizer(cls, optimizer_config, runtime_config=None):
    return tf_keras.optimizers.legacy.SGD()


def test_task_with_own_create_optimizer():
  assert task_optimizer.routable(lars_digits.DigitsTask)
  assert not task_optimizer.routable(_OwnOptimizerTask)
  params = _experiment('sgd')
  task = _OwnOptimizerTask(params.task)
  task_optimizer.use_official_ext_optimizers(task,
                                             params.trainer.optimizer_config)
  assert task.create_optimizer.__func__ is (
      _OwnOptimizerTask.create_optimizer.__func__)
  with pytest.raises(ValueError, match='_OwnOptimizerTask.*create_optimizer'):
    task_optimizer.use_official_ext_optimizers(
        task, _experiment('lars').trainer.optimizer_config)
