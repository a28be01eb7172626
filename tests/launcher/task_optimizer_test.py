"""Tests that tasks build official_ext's LARS with Model Garden's wrapping."""
import json

import pytest
import tensorflow as tf
import tf_keras

import official_ext
from official.core import base_task
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import train_lib as mg_train_lib
from official.core import train_utils as mg_train_utils
from official.modeling.optimization import lars as mg_lars
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.modeling.privacy import configs as privacy_configs
from official_ext.experiments import lars_digits
from official_ext.launcher import task_optimizer
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization.configs import optimization_config


def _optimization(optimizer_type, ema=None,
                  config_cls=optimization_config.OptimizationConfig):
  return config_cls({
      'optimizer': {'type': optimizer_type},
      'learning_rate': {'type': 'constant', 'constant': {'learning_rate': 0.1}},
      'ema': ema,
  })


def _chain(optimizer):
  """The optimizer and those it wraps, outermost first."""
  chain = [optimizer]
  while True:
    inner = (getattr(chain[-1], 'inner_optimizer', None) or
             getattr(chain[-1], '_optimizer', None))
    if inner is None:
      return chain
    chain.append(inner)


def _innermost(optimizer):
  return _chain(optimizer)[-1]


def _transformer_specs(optimizer):
  return [(t.func, t.keywords)
          for t in _innermost(optimizer).gradient_transformers or []]


def _digits_task():
  return lars_digits.DigitsTask(lars_digits.DigitsTaskConfig())


def _float16_runtime(loss_scale=None):
  return cfg.RuntimeConfig(mixed_precision_dtype='float16',
                           loss_scale=loss_scale)


_DP_CONFIG = privacy_configs.DifferentialPrivacyConfig(
    clipping_norm=1.0, noise_multiplier=0.5)


@pytest.mark.parametrize('loss_scale', [None, 'dynamic', 128.0])
@pytest.mark.parametrize('ema', [None, {'average_decay': 0.9}])
@pytest.mark.parametrize('optimizer_type', ['sgd', 'lars'])
def test_wrapping_matches_model_garden(optimizer_type, loss_scale, ema):
  runtime = _float16_runtime(loss_scale)
  task = official_ext.use_lars(_digits_task())
  ours = task.create_optimizer(_optimization(optimizer_type, ema), runtime,
                               _DP_CONFIG)
  theirs = base_task.Task.create_optimizer(
      _optimization(optimizer_type, ema,
                    mg_optimization_config.OptimizationConfig), runtime,
      _DP_CONFIG)
  expected_innermost = {'sgd': tf_keras.optimizers.legacy.SGD,
                        'lars': mg_lars.LARS}[optimizer_type]
  assert type(_innermost(theirs)) is expected_innermost
  assert type(_innermost(ours)) is (
      lars.LARS if optimizer_type == 'lars' else expected_innermost)
  wrappers = [type(o) for o in _chain(ours)[:-1]]
  assert wrappers == [type(o) for o in _chain(theirs)[:-1]]
  assert len(wrappers) == (2 if ema else 1)
  assert isinstance(ours, tf_keras.mixed_precision.LossScaleOptimizer)
  assert ours.dynamic == theirs.dynamic == (loss_scale != 128.0)
  assert float(ours.loss_scale) == float(theirs.loss_scale)
  assert _transformer_specs(ours) == _transformer_specs(theirs)
  assert len(_transformer_specs(ours)) == 2


def test_describe_names_official_ext_lars_inside_model_garden_wrappers():
  task = official_ext.use_lars(_digits_task())
  optimizer = task.create_optimizer(
      _optimization('lars', {'average_decay': 0.9}), _float16_runtime())
  assert task_optimizer.describe(optimizer) == (
      'tf_keras.src.mixed_precision.loss_scale_optimizer.LossScaleOptimizer('
      'official.modeling.optimization.ema_optimizer.ExponentialMovingAverage('
      'official_ext.modeling.optimization.lars.LARS))')


def test_float32_runtime_is_not_loss_scaled():
  task = official_ext.use_lars(_digits_task())
  optimizer = task.create_optimizer(_optimization('lars'), cfg.RuntimeConfig())
  assert type(optimizer) is lars.LARS


def _experiment(optimizer_type,
                config_cls=optimization_config.OptimizationConfig):
  return cfg.ExperimentConfig(
      task=lars_digits.DigitsTaskConfig(),
      trainer=cfg.TrainerConfig(optimizer_config=_optimization(
          optimizer_type, config_cls=config_cls)))


@pytest.mark.parametrize('config_cls', [
    optimization_config.OptimizationConfig,
    mg_optimization_config.OptimizationConfig])
def test_model_garden_trainer_path_builds_official_ext_lars(config_cls):
  params = _experiment('lars', config_cls)
  task = _digits_task()
  untouched = _digits_task()
  assert task_optimizer.use_lars(task) is task
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
  task = _OwnOptimizerTask(lars_digits.DigitsTaskConfig())
  with pytest.raises(ValueError, match='_OwnOptimizerTask.*create_optimizer'):
    official_ext.use_lars(task)


def test_one_call_trains_lars_digits_with_official_ext_lars(tmp_path):
  # A training script of one's own: Model Garden's create_trainer and
  # run_experiment, with official_ext.use_lars as the only addition.
  params = exp_factory.get_exp_config('lars_digits')
  params.override({'trainer': {
      'train_steps': 100, 'steps_per_loop': 50, 'summary_interval': 50,
      'checkpoint_interval': 100, 'validation_interval': 100,
      'optimizer_config': {'optimizer': {'lars': {
          'exclude_from_weight_decay': [],
          'exclude_one_dimensional_from_weight_decay': True}}}}})
  task = official_ext.use_lars(
      lars_digits.DigitsTask(params.task, logging_dir=str(tmp_path)))
  trainer = mg_train_utils.create_trainer(params, task, train=True,
                                          evaluate=True)
  _, eval_logs = mg_train_lib.run_experiment(
      distribution_strategy=tf.distribute.get_strategy(), task=task,
      mode='train_and_eval', params=params, model_dir=str(tmp_path),
      trainer=trainer, run_post_eval=True)
  optimizer = trainer.optimizer
  assert type(optimizer) is lars.LARS
  assert optimizer.iterations.numpy() == 100
  for variable in trainer.model.trainable_variables:
    expected = ('exclude_one_dimensional_from_weight_decay'
                if variable.shape.rank == 1 else None)
    assert optimizer.weight_decay_exclusion(variable) == expected, (
        variable.name)
  # Chance is 0.1.
  assert eval_logs['accuracy'] > 0.5, json.dumps(
      {k: float(v) for k, v in eval_logs.items()})
