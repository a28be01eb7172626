"""Makes Model Garden tasks build official_ext's LARS for `type: lars`.

`Task.create_optimizer` (official/core/base_task.py) builds the optimizer with
Model Garden's OptimizerFactory, whose `lars` is Model Garden's LARS.
`use_lars` extends it for one task instance: the config is routed to
official_ext's LARS (`optimizer_factory.route_lars`), then Model Garden's
`create_optimizer` runs unchanged, so differential privacy, EMA and loss
scaling are Model Garden's own. Model Garden's classes and modules are left
untouched.

In a training script of one's own, one call after building the task:

```
task = task_factory.get_task(params.task, logging_dir=model_dir)
task = official_ext.use_lars(task)
train_lib.run_experiment(distribution_strategy=strategy, task=task, ...)
```
"""
from typing import Optional

from absl import logging
import tf_keras

from official.core import base_task
from official.core import config_definitions
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.modeling.privacy import configs as privacy_configs

from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization import optimizer_wrappers


def describe(optimizer) -> str:
  """Names an optimizer and the optimizers it wraps, outermost first.

  Args:
    optimizer: an optimizer, possibly a LossScaleOptimizer or EMA wrapper.

  Returns:
    E.g. 'tf_keras...LossScaleOptimizer(official_ext...lars.LARS)'.
  """
  names = [f'{type(o).__module__}.{type(o).__qualname__}'
           for o in optimizer_wrappers.unwrap(optimizer)]
  return '('.join(names) + ')' * (len(names) - 1)


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


def use_lars(task: base_task.Task) -> base_task.Task:
  """Makes `task` build official_ext's LARS for `optimizer.type: lars`.

  Extends Model Garden's `Task.create_optimizer` for this task instance only:
  an optimization config whose optimizer type is `lars` is routed to
  official_ext's LARS (`optimizer_factory.route_lars`) and then built by Model
  Garden's `create_optimizer`, unchanged; any other config is passed on as it
  is. Call it once, after building the task and before the trainer builds
  the optimizer (`train_lib.run_experiment` or `train_utils.create_trainer`).

  Args:
    task: a Model Garden task instance.

  Returns:
    `task`, modified in place.

  Raises:
    ValueError: if the task overrides `create_optimizer`.
  """
  task_cls = type(task)
  if not routable(task_cls):
    raise unroutable_error(task_cls)
  model_garden_create_optimizer = task_cls.create_optimizer

  def create_optimizer(
      optimizer_config: mg_optimization_config.OptimizationConfig,
      runtime_config: Optional[config_definitions.RuntimeConfig] = None,
      dp_config: Optional[privacy_configs.DifferentialPrivacyConfig] = None
  ) -> tf_keras.optimizers.Optimizer:
    optimizer = model_garden_create_optimizer(
        optimizer_factory.route_lars(optimizer_config), runtime_config,
        dp_config)
    logging.info('Training with optimizer %s', describe(optimizer))
    return optimizer

  # An instance attribute shadows the classmethod for this task only.
  task.create_optimizer = create_optimizer
  return task

