"""The LARS exclusion report: what LARS does with each trainable variable.

`exclusion_report` says, for every trainable variable, whether it gets weight
decay and layer adaptation and which setting decided it, and warns about
every setting that selects nothing; it asks the optimizer's own
`lars_exclusion.ExclusionRules`, so it reports exactly what training does.
`build_report` builds an experiment's model and optimizer as the launcher
would and reports on them; `python -m official_ext.lars_report` prints it
without training, and the launcher's trainer logs it at the start of
training (`log_exclusion_report`).
"""
import dataclasses
from typing import Any, List, Optional, Sequence

from absl import logging
import tensorflow as tf

from official.core import config_definitions
from official.core import task_factory
from official.core import train_utils as mg_train_utils

from official_ext.launcher import task_optimizer
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import lars_exclusion
from official_ext.modeling.optimization import normalization_layers
from official_ext.modeling.optimization import optimizer_wrappers
from official_ext.modeling.optimization import variable_names


@dataclasses.dataclass(frozen=True)
class VariableDecision:
  """What LARS does with one variable.

  Attributes:
    name: the variable's name.
    shape: its shape.
    weight_decay_exclusion: None if it gets weight decay, else the setting
      that excludes it.
    layer_adaptation_exclusion: None if it gets layer adaptation, else the
      setting that excludes it.
  """
  name: str
  shape: tf.TensorShape
  weight_decay_exclusion: Optional[str]
  layer_adaptation_exclusion: Optional[str]


_HEADER = ('variable', 'shape', 'weight decay', 'layer adaptation')


def _decision_text(exclusion: Optional[str]) -> str:
  return 'yes' if exclusion is None else f'no ({exclusion})'


@dataclasses.dataclass(frozen=True)
class ExclusionReport:
  """Every trainable variable's LARS treatment, and unmatched settings.

  Attributes:
    variables: one decision per trainable variable, in the model's order.
    warnings: one message per exclusion setting that matched no variable.
  """
  variables: Sequence[VariableDecision]
  warnings: Sequence[str]

  def table(self) -> str:
    """The decisions as an aligned text table, with a summary line."""
    rows = [_HEADER] + [
        (d.name, str(d.shape), _decision_text(d.weight_decay_exclusion),
         _decision_text(d.layer_adaptation_exclusion))
        for d in self.variables
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ['  '.join(cell.ljust(width)
                       for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, '  '.join('-' * width for width in widths))
    decayed = sum(d.weight_decay_exclusion is None for d in self.variables)
    adapted = sum(d.layer_adaptation_exclusion is None for d in self.variables)
    lines.append(f'{len(self.variables)} trainable variables: {decayed} get '
                 f'weight decay, {adapted} get layer adaptation.')
    return '\n'.join(lines)

  def text(self) -> str:
    """The table followed by the warnings."""
    return '\n'.join([self.table()] +
                     [f'WARNING: {warning}' for warning in self.warnings])


def exclusion_report(variables: Sequence[tf.Variable],
                     optimizer: Any) -> ExclusionReport:
  """What the LARS inside `optimizer` does with each of `variables`.

  Args:
    variables: the model's trainable variables.
    optimizer: a LARS, possibly wrapped; with normalization selectors on,
      `normalization_layers.use_model` must have been called.

  Returns:
    The report.

  Raises:
    ValueError: if `optimizer` holds no official_ext LARS.
  """
  found = optimizer_wrappers.find(optimizer, lars.LARS)
  if found is None:
    raise ValueError(f'The exclusion report describes official_ext LARS; the '
                     f'optimizer is {type(optimizer).__name__}.')
  names_and_ranks = [(variable_names.variable_name(var), var.shape.rank)
                     for var in variables]
  normalization_names = found.normalization_variable_names
  rules = [found.exclusion_rules[purpose]
           for purpose in lars_exclusion.PURPOSES]
  decisions = [
      VariableDecision(name, var.shape,
                       *(r.reason(name, rank, normalization_names)
                         for r in rules))
      for var, (name, rank) in zip(variables, names_and_ranks)
  ]
  layer_classes = [
      cls.__name__ for cls in normalization_layers.normalization_layer_classes()
  ]
  warnings: List[str] = []
  for r in rules:
    warnings += r.unmatched_settings(names_and_ranks, normalization_names,
                                     layer_classes)
  return ExclusionReport(decisions, warnings)


def build_report(
    params: config_definitions.ExperimentConfig) -> ExclusionReport:
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
  task_optimizer.use_lars(task)
  model = task.build_model()
  # What Model Garden's create_trainer calls, differential privacy included.
  optimizer = mg_train_utils.create_optimizer(task, params)
  normalization_layers.use_model(optimizer, model)
  return exclusion_report(model.trainable_variables, optimizer)


def log_exclusion_report(model, optimizer):
  """Logs the report's table, then each warning as a warning.

  Args:
    model: the model being trained.
    optimizer: its optimizer, which must hold an official_ext LARS on which
      `normalization_layers.use_model` was called.
  """
  report = exclusion_report(model.trainable_variables, optimizer)
  logging.info('LARS exclusion report:\n%s', report.table())
  for warning in report.warnings:
    logging.warning('%s', warning)
