"""Runs an experiment through Model Garden's train_lib with official_ext's LARS.

Model Garden's OrbitExperimentRunner, with two additions: official_ext's
Trainer (a resumable training input resumes where it stopped; LARS gets the
model for its normalization selectors, the exclusion report is logged, and
LARS telemetry joins the train summaries, see `lars_trainer`) and, after
Model Garden's own train actions, the check that no inf or NaN reaches a
checkpoint. A run that blows up ends in `finite_check.NonFiniteTrainingError`,
whichever check notices first, Model Garden's included.
"""
import functools
from typing import Any, Mapping, Optional, Tuple

from absl import logging
import tensorflow as tf
import tf_keras

from official.common import distribute_utils
from official.core import base_task
from official.core import base_trainer
from official.core import config_definitions
from official.core import task_factory
from official.core import train_lib as mg_train_lib
from official.core import train_utils as mg_train_utils
from official.modeling import performance

from official_ext.launcher import eval_metrics_export
from official_ext.launcher import finite_check
from official_ext.launcher import lars_trainer
from official_ext.launcher import task_optimizer


class ExperimentRunner(mg_train_lib.OrbitExperimentRunner):
  """Model Garden's runner with official_ext's Trainer and finite check."""

  def _build_trainer(self, task: base_task.Task, train: bool,
                     evaluate: bool) -> base_trainer.Trainer:
    """Model Garden's `_build_trainer`, building official_ext's Trainer.

    The same call of `train_utils.create_trainer` plus `trainer_cls`: Model
    Garden's runner passes none and has no other way to choose the class.

    Args:
      task: the task.
      train: whether the trainer trains.
      evaluate: whether it evaluates.

    Returns:
      A `lars_trainer.Trainer`.
    """
    with self.strategy.scope():
      return mg_train_utils.create_trainer(
          self.params,
          task,
          train=train,
          evaluate=evaluate,
          checkpoint_exporter=self._build_best_checkpoint_exporter(),
          trainer_cls=lars_trainer.Trainer)

  def _maybe_build_checkpoint_manager(
      self) -> Optional[tf.train.CheckpointManager]:
    manager = super()._maybe_build_checkpoint_manager()
    if manager is None or self.strategy.extended.should_checkpoint:
      return manager
    # Model Garden points a worker that does not write checkpoints (not the
    # chief) at a new temporary directory, so after a restart it would start
    # over while the chief resumes, and the workers would fall out of step.
    # It still writes there, but starts from the chief's latest checkpoint.
    return tf.train.CheckpointManager(
        self.trainer.checkpoint,
        directory=manager.directory,
        max_to_keep=1,
        step_counter=self.trainer.global_step,
        checkpoint_interval=self.params.trainer.checkpoint_interval,
        init_fn=self._restore_chief_checkpoint_or_initialize)

  def _restore_chief_checkpoint_or_initialize(self):
    latest = tf.train.latest_checkpoint(self.model_dir)
    if latest is None:
      self.trainer.initialize()
    else:
      logging.info('Restoring the chief\'s checkpoint %s.', latest)
      self.trainer.checkpoint.restore(latest)

  def _build_controller(self, trainer, evaluator, **kwargs):
    controller = super()._build_controller(trainer, evaluator, **kwargs)
    if trainer:
      report = finite_check.StopReport(trainer.optimizer, trainer.global_step,
                                       self.checkpoint_manager)
      finite_check.report_recovery_limits(controller.train_actions, report)
      # Last, so that Model Garden's blow-up recovery
      # (trainer.recovery_max_trials > 0) restores a good checkpoint first.
      controller.train_actions += (finite_check.FiniteVariablesCheck(
          functools.partial(finite_check.trainer_variables, trainer.model,
                            trainer.optimizer), report),)
    return controller


def run_experiment(params: config_definitions.ExperimentConfig, mode: str,
                   model_dir: str,
                   **kwargs) -> Tuple[tf_keras.Model, Mapping[str, Any]]:
  """Sets up precision and strategy, builds the task, and runs `mode`.

  Args:
    params: the experiment config, from `config_parsing.parse_configuration`.
    mode: 'train', 'eval', 'train_and_eval', ... as for Model Garden.
    model_dir: where checkpoints, summaries and `eval_metrics.json` go.
    **kwargs: passed on to `official.core.train_lib.run_experiment`.

  Returns:
    Model Garden's `(model, eval_logs)`.
  """
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
  # A task with its own create_optimizer trains any other optimizer as is.
  if params.trainer.optimizer_config.optimizer.type == 'lars':
    task_optimizer.use_lars(task)
  eval_actions = list(kwargs.pop('eval_actions', None) or [])
  eval_actions.append(eval_metrics_export.EvalMetricsExporter(model_dir))
  return ExperimentRunner(
      distribution_strategy=strategy,
      task=task,
      mode=mode,
      params=params,
      model_dir=model_dir,
      eval_actions=eval_actions,
      **kwargs).run()
