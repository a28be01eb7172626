"""Runs an experiment through Model Garden's train_lib with official_ext's LARS."""
from typing import Any, Mapping, Tuple

import tf_keras

from official.common import distribute_utils
from official.core import config_definitions
from official.core import task_factory
from official.core import train_lib as mg_train_lib
from official.modeling import performance

from official_ext.core import actions
from official_ext.core import task_optimizer


def run_experiment(params: config_definitions.ExperimentConfig, mode: str,
                   model_dir: str,
                   **kwargs) -> Tuple[tf_keras.Model, Mapping[str, Any]]:
  """Sets up precision and strategy, builds the task, and runs `mode`.

  Args:
    params: the experiment config, from `train_utils.parse_configuration`.
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
  task_optimizer.use_official_ext_optimizers(task,
                                             params.trainer.optimizer_config)
  eval_actions = list(kwargs.pop('eval_actions', None) or [])
  eval_actions.append(actions.EvalMetricsExporter(model_dir))
  return mg_train_lib.run_experiment(
      distribution_strategy=strategy,
      task=task,
      mode=mode,
      params=params,
      model_dir=model_dir,
      eval_actions=eval_actions,
      **kwargs)
