"""Makes a Model Garden task build its optimizer with official_ext's factory.

`Task.create_optimizer` (official/core/base_task.py) builds the optimizer with
Model Garden's own OptimizerFactory, whose `lars` is Model Garden's LARS. The
launcher gives each task instance `create_optimizer` below instead: the same
steps (differential-privacy gradient transformers, optimizer and EMA from the
factory, then loss scaling for float16), with official_ext's factory. Model
Garden's classes and modules are left untouched.
"""
import functools
from typing import Optional

from absl import logging
import tf_keras

from official.core import base_task
from official.core import config_definitions
from official.modeling import performance
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.modeling.privacy import configs as privacy_configs
from official.modeling.privacy import ops as privacy_ops

from official_ext.modeling.optimization import optimizer_factory


def describe(optimizer) -> str:
  """Names an optimizer and the optimizers it wraps, outermost first.

  Args:
    optimizer: an optimizer, possibly a LossScaleOptimizer or EMA wrapper.

  Returns:
    E.g. 'tf_keras...LossScaleOptimizer(official_ext...lars.LARS)'.
  """
  cls = type(optimizer)
  name = f'{cls.__module__}.{cls.__qualname__}'
  inner = (getattr(optimizer, 'inner_optimizer', None) or
           getattr(optimizer, '_optimizer', None))
  return f'{name}({describe(inner)})' if inner is not None else name


def create_optimizer(
    optimizer_config: mg_optimization_config.OptimizationConfig,
    runtime_config: Optional[config_definitions.RuntimeConfig] = None,
    dp_config: Optional[privacy_configs.DifferentialPrivacyConfig] = None
) -> tf_keras.optimizers.Optimizer:
  """`Task.create_optimizer`, built by official_ext's OptimizerFactory.

  Args:
    optimizer_config: the optimization config.
    runtime_config: the runtime config; float16 mixed precision wraps the
      optimizer in a LossScaleOptimizer with its `loss_scale`.
    dp_config: differential-privacy config; adds gradient clipping and noise.

  Returns:
    The optimizer, wrapped as Model Garden would wrap it.
  """
  gradient_transformers = None
  if dp_config is not None:
    logging.info('Adding differential privacy transform with config %s.',
                 dp_config.as_dict())
    noise_stddev = dp_config.clipping_norm * dp_config.noise_multiplier
    gradient_transformers = [
        functools.partial(
            privacy_ops.clip_l2_norm, l2_norm_clip=dp_config.clipping_norm),
        functools.partial(privacy_ops.add_noise, noise_stddev=noise_stddev),
    ]

  opt_factory = optimizer_factory.OptimizerFactory(optimizer_config)
  optimizer = opt_factory.build_optimizer(
      opt_factory.build_learning_rate(),
      gradient_transformers=gradient_transformers)
  if runtime_config:
    optimizer = performance.configure_optimizer(
        optimizer,
        use_float16=runtime_config.mixed_precision_dtype == 'float16',
        loss_scale=runtime_config.loss_scale)
  logging.info('Training with optimizer %s', describe(optimizer))
  return optimizer


def routable(task_cls: type) -> bool:
  """Whether `task_cls` builds its optimizer with `Task.create_optimizer`.

  A task that overrides `create_optimizer` has its own optimizer logic, which
  official_ext cannot reroute without changing it.

  Args:
    task_cls: a Task subclass.

  Returns:
    True if `task_cls.create_optimizer` is Model Garden's base one.
  """
  return (getattr(task_cls.create_optimizer, '__func__', None) is
          base_task.Task.create_optimizer.__func__)


def unroutable_error(task_cls: type) -> ValueError:
  """The error for `optimizer.type: lars` on a task that is not routable."""
  return ValueError(
      f'optimizer.type is lars, but task {task_cls.__module__}.'
      f'{task_cls.__qualname__} overrides create_optimizer, so official_ext '
      f'cannot make it build official_ext\'s LARS.')


def use_official_ext_optimizers(
    task: base_task.Task,
    optimizer_config: mg_optimization_config.OptimizationConfig
) -> base_task.Task:
  """Makes `task` build its optimizer with official_ext's factory.

  Args:
    task: a Model Garden task instance.
    optimizer_config: the experiment's optimization config.

  Returns:
    `task`, whose `create_optimizer` is this module's when the task uses Model
    Garden's; a task with its own `create_optimizer` is returned unchanged.

  Raises:
    ValueError: if the optimizer type is lars but the task has its own
      `create_optimizer`.
  """
  if routable(type(task)):
    # An instance attribute shadows the classmethod for this task only.
    task.create_optimizer = create_optimizer
  elif optimizer_config.optimizer.type == 'lars':
    raise unroutable_error(type(task))
  return task
