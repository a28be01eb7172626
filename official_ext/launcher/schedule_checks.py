"""Checks the learning rate and warmup schedules before training builds them.

Model Garden builds the schedule only when training starts
(`OptimizerFactory.build_learning_rate`), and several bad schedule lengths do
not fail there at all: they give a NaN or an ever growing learning rate that
the first training steps turn into inf or NaN weights. `check_schedules`
rejects them up front, naming the dotted field:

- `decay_steps` (cosine, polynomial, exponential) and `total_decay_steps`
  (power_linear): a positive int. 0 divides by zero (NaN from the first step);
  a negative length makes cosine 0 and exponential grow without bound.
- `warmup_steps` of the chosen warmup: a positive int (leave `warmup.type`
  unset for no warmup).
- `boundaries` (stepwise, step_cosine_with_offset): strictly increasing ints,
  with one more value than boundaries (stepwise) or as many
  (step_cosine_with_offset). Decreasing boundaries fail inside the training
  step (stepwise) or give NaN (step_cosine_with_offset's segment lengths).
  step_cosine_with_offset is NaN from its last boundary on (its last segment
  has length 0), so that boundary (plus `offset`) must be at or after
  `trainer.train_steps`.
- `learning_rate.type` is set, and every field a schedule needs
  (`initial_learning_rate`, `decay_rate`, ...): unset, they fail when
  training builds the schedule or at its first step.
- Learning rates: finite and >= 0.
"""
import dataclasses
import math
from typing import Any, Dict, Iterator, Optional, Tuple

from official.modeling.hyperparams import oneof

_OPTIMIZATION = 'trainer.optimizer_config'
# Fields a schedule needs a value for (Model Garden's default is None).
_REQUIRED = ('initial_learning_rate', 'decay_steps', 'decay_rate',
             'total_decay_steps', 'warmup_steps', 'boundaries', 'values')
_POSITIVE_LENGTHS = ('decay_steps', 'total_decay_steps', 'warmup_steps')
# Schedule type -> how many more values than boundaries it needs.
_EXTRA_VALUES = {'stepwise': 1, 'step_cosine_with_offset': 0}


def _fail(field: str, value: Any, requirement: str):
  raise ValueError(f'{field} must be {requirement}, got {value!r}.')


def chosen_schedules(optimization_config: Any
                    ) -> Iterator[Tuple[str, str, Any]]:
  """(dotted name, type, config) of the chosen learning rate and warmup.

  Args:
    optimization_config: a Model Garden OptimizationConfig.

  Yields:
    E.g. ('trainer.optimizer_config.learning_rate.cosine', 'cosine', config).
  """
  for part in ('learning_rate', 'warmup'):
    chosen = getattr(optimization_config, part, None)
    if not isinstance(chosen, oneof.OneOfConfig) or chosen.get() is None:
      continue
    yield f'{_OPTIMIZATION}.{part}.{chosen.type}', chosen.type, chosen.get()


def _check_boundaries(name: str, schedule_type: str, fields: Dict[str, Any],
                      train_steps: Optional[int]):
  """Boundaries strictly increasing ints; values as many as the type needs."""
  boundaries, values = fields['boundaries'], fields['values']
  if not all(isinstance(b, int) and not isinstance(b, bool)
             for b in boundaries) or any(
                 later <= earlier
                 for earlier, later in zip(boundaries, boundaries[1:])):
    _fail(f'{name}.boundaries', list(boundaries),
          'a strictly increasing list of step numbers')
  if not values:
    _fail(f'{name}.values', list(values), 'a non-empty list of learning rates')
  expected = len(boundaries) + _EXTRA_VALUES[schedule_type]
  if len(values) != expected:
    _fail(f'{name}.values', list(values),
          f'{expected} learning rates for boundaries {list(boundaries)}')
  if schedule_type == 'step_cosine_with_offset' and train_steps:
    end = train_steps - fields['offset']
    if len(boundaries) < 2 or boundaries[-1] < end:
      _fail(f'{name}.boundaries', list(boundaries),
            f'at least 2 step numbers, the last >= {end} '
            '(trainer.train_steps - offset): the schedule is NaN from its '
            'last boundary on')


def check_schedules(optimization_config: Any,
                    train_steps: Optional[int] = None):
  """Fails on a schedule that would fail, or give NaN, during training.

  Args:
    optimization_config: the experiment's `trainer.optimizer_config`.
    train_steps: `trainer.train_steps`, if the schedule must last that long.

  Raises:
    ValueError: a one-line message naming the first bad field, its value and
      what is accepted.
  """
  learning_rate = getattr(optimization_config, 'learning_rate', None)
  if (isinstance(learning_rate, oneof.OneOfConfig) and
      learning_rate.type is None):
    choices = sorted(field.name for field in dataclasses.fields(learning_rate)
                     if field.name != 'type')
    _fail(f'{_OPTIMIZATION}.learning_rate.type', None,
          f'one of {", ".join(choices)}')
  for name, schedule_type, config in chosen_schedules(optimization_config):
    fields = config.as_dict()
    for field in _REQUIRED:
      if field in fields and fields[field] is None:
        _fail(f'{name}.{field}', None, 'set')
    for field in _POSITIVE_LENGTHS:
      value = fields.get(field)
      if field in fields and (not isinstance(value, int) or value <= 0):
        _fail(f'{name}.{field}', value, 'a positive int')
    if schedule_type in _EXTRA_VALUES:
      _check_boundaries(name, schedule_type, fields, train_steps)
    for field, value in fields.items():
      rates = value if field == 'values' else [value]
      if 'learning_rate' in field or field == 'values':
        for rate in rates:
          if (isinstance(rate, (int, float)) and
              not (math.isfinite(rate) and rate >= 0)):
            _fail(f'{name}.{field}', value, 'finite and >= 0')
