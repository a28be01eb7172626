"""Warns, before training, about settings that training will not follow.

Model Garden accepts these and trains, but not as the config reads; each
warning is one line naming the fields, and training still runs:

- Hyperparameters set under an optimizer, learning-rate or warmup block that
  the block's `type` does not select, e.g. `optimizer.type: lars` with
  `momentum` under `optimizer.sgd`: Model Garden builds only the selected
  block, so they are ignored. Set means different from the block's dataclass
  default (a LARS gin binding with another optimizer type is such a setting).
- A warmup longer than `trainer.train_steps`: training ends before the
  learning rate has warmed up.
"""
import dataclasses
from typing import Any, Dict, Iterator, List, Tuple

from absl import logging

from official.core import config_definitions
from official.modeling.hyperparams import base_config
from official.modeling.hyperparams import oneof

from official_ext.launcher import schedule_checks

_OPTIMIZATION = 'trainer.optimizer_config'


def _flattened(tree: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
  """Nested dicts as {'dotted.name': leaf value}."""
  flat = {}
  for name, value in tree.items():
    if isinstance(value, dict) and value:
      flat.update(_flattened(value, f'{prefix}{name}.'))
    else:
      flat[f'{prefix}{name}'] = value
  return flat


def _default(field: dataclasses.Field) -> Any:
  if field.default_factory is not dataclasses.MISSING:
    return field.default_factory()
  return field.default


def _set_values(block: base_config.Config, default: Any) -> Dict[str, Any]:
  """The fields of `block` that differ from `default`, a config or None.

  A field the experiment deleted from `block` is not set.
  """
  defaults = (_flattened(default.as_dict())
              if isinstance(default, base_config.Config) else {})
  return {name: value for name, value in _flattened(block.as_dict()).items()
          if name not in defaults or value != defaults[name]}


def _oneofs(optimization_config: Any) -> Iterator[Tuple[str, Any]]:
  """(dotted name, OneOfConfig) of the optimization config's choices."""
  for field in dataclasses.fields(optimization_config):
    choice = getattr(optimization_config, field.name, None)
    if isinstance(choice, oneof.OneOfConfig):
      yield f'{_OPTIMIZATION}.{field.name}', choice


def unselected_settings(optimization_config: Any) -> List[str]:
  """One message per block that `type` does not select but that sets values.

  Args:
    optimization_config: the experiment's `trainer.optimizer_config`.

  Returns:
    E.g. "trainer.optimizer_config.optimizer.sgd sets momentum=0.9, which
    training ignores: trainer.optimizer_config.optimizer.type is lars (set
    trainer.optimizer_config.optimizer.type=sgd to use them)".
  """
  messages = []
  for path, choice in _oneofs(optimization_config):
    for field in dataclasses.fields(choice):
      block = getattr(choice, field.name, None)
      if field.name in ('type', choice.type) or not isinstance(
          block, base_config.Config):
        continue
      settings = _set_values(block, _default(field))
      if not settings:
        continue
      listed = ', '.join(f'{name}={value!r}'
                         for name, value in sorted(settings.items()))
      messages.append(
          f'{path}.{field.name} sets {listed}, which training ignores: '
          f'{path}.type is {choice.type or "unset"} (set '
          f'{path}.type={field.name} to use them).')
  return messages


def warmups_longer_than_training(optimization_config: Any,
                                 train_steps: int) -> List[str]:
  """A message for each chosen schedule whose warmup outlasts training.

  Args:
    optimization_config: the experiment's `trainer.optimizer_config`.
    train_steps: `trainer.train_steps`.

  Returns:
    E.g. 'trainer.optimizer_config.warmup.linear.warmup_steps=1560 is longer
    than trainer.train_steps=2: ...'.
  """
  messages = []
  for name, _, config in schedule_checks.chosen_schedules(optimization_config):
    warmup_steps = config.as_dict().get('warmup_steps')
    if isinstance(warmup_steps, int) and warmup_steps > train_steps:
      messages.append(
          f'{name}.warmup_steps={warmup_steps} is longer than '
          f'trainer.train_steps={train_steps}: training ends before the '
          'learning rate has warmed up.')
  return messages


def warn_about_ignored_settings(params: config_definitions.ExperimentConfig,
                                mode: str):
  """Logs a warning line for each setting that training will not follow.

  Args:
    params: the checked experiment config.
    mode: the --mode; a mode that does not train gets no warnings.
  """
  if 'train' not in mode:
    return
  optimization_config = params.trainer.optimizer_config
  for message in (unselected_settings(optimization_config) +
                  warmups_longer_than_training(optimization_config,
                                               params.trainer.train_steps)):
    logging.warning('%s', message)
