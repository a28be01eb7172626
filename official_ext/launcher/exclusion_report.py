"""The LARS exclusion report of an experiment: built, printed or logged.

`build_report` builds an experiment's model and optimizer as the launcher
would and reports what LARS does with every trainable variable
(`lars_exclusion.exclusion_report`); `python -m official_ext.lars_report`
prints it without training, and the launcher's trainer logs it at the start
of training (`log_exclusion_report`).
"""
from absl import logging

from official.core import config_definitions
from official.core import task_factory
from official.core import train_utils as mg_train_utils

from official_ext.launcher import task_optimizer
from official_ext.modeling.optimization import lars_exclusion


def build_report(
    params: config_definitions.ExperimentConfig
) -> lars_exclusion.ExclusionReport:
  """Builds the task's model and optimizer and reports LARS's exclusions.

  Args:
    params: an experiment config with `optimizer.type: lars`, as
      `config_parsing.parse_configuration` returns it.

  Returns:
    The exclusion report of the model's trainable variables.

  Raises:
    ValueError: if the optimizer type is not lars.
  """
  optimizer_type = params.trainer.optimizer_config.optimizer.type
  if optimizer_type != 'lars':
    raise ValueError(f'The LARS report needs trainer.optimizer_config.'
                     f'optimizer.type=lars, got {optimizer_type!r}.')
  task = task_factory.get_task(params.task)
  task_optimizer.use_official_ext_optimizers(task,
                                             params.trainer.optimizer_config)
  model = task.build_model()
  # What Model Garden's create_trainer calls, differential privacy included.
  optimizer = mg_train_utils.create_optimizer(task, params)
  lars_exclusion.use_model(optimizer, model)
  return lars_exclusion.exclusion_report(model.trainable_variables, optimizer)


def log_exclusion_report(model, optimizer):
  """Logs the report's table, then each warning as a warning.

  Args:
    model: the model being trained.
    optimizer: its optimizer, which must hold an official_ext LARS on which
      `lars_exclusion.use_model` was called.
  """
  report = lars_exclusion.exclusion_report(model.trainable_variables,
                                           optimizer)
  logging.info('LARS exclusion report:\n%s', report.table())
  for warning in report.warnings:
    logging.warning('%s', warning)
