"""Checks that an experiment config's scalar fields hold the declared types.

Model Garden's configs take any scalar from YAML or `--params_override`
(`trainer.train_steps=abc` is stored as the string 'abc'); the launcher checks
them against the dataclass annotations before anything runs.
"""
import dataclasses
import types
import typing
from typing import Any, Optional, Tuple

from official.modeling.hyperparams import base_config

_SCALARS = (int, float, bool, str)


def _scalar_types(annotation: Any) -> Optional[Tuple[type, ...]]:
  """The scalar types of a field annotation, None if it is not all scalar.

  Args:
    annotation: e.g. `int`, `Optional[float]`, `Union[str, float]`.

  Returns:
    The annotation's types other than None, e.g. `(str, float)`, or None for
    annotations such as `List[int]`, `Any` or a Config class.
  """
  members = (typing.get_args(annotation)
             if typing.get_origin(annotation) in (typing.Union, types.UnionType)
             else (annotation,))
  members = tuple(m for m in members if m is not type(None))
  if not members or not all(m in _SCALARS for m in members):
    return None
  return members


def _accepts(scalar_types: Tuple[type, ...], value: Any) -> bool:
  if isinstance(value, bool):
    return bool in scalar_types
  if isinstance(value, int):
    return int in scalar_types or float in scalar_types
  return isinstance(value, scalar_types)


def check_field_types(config: base_config.Config, path: str = ''):
  """Fails if a scalar field holds a value of the wrong type.

  Walks the dataclass fields annotated with scalar types (int, float, bool,
  str, and Optional/Union of them). None is accepted anywhere: Model Garden
  uses it for "unset". An int in a float field becomes a float, because
  TensorFlow's learning rate schedules fail on ints there.

  Args:
    config: an unlocked experiment config, or part of it.
    path: dotted path of `config`, for messages.

  Raises:
    ValueError: naming the field, the value and the expected type.
  """
  try:
    annotations = typing.get_type_hints(type(config))
  except (NameError, TypeError):  # Unresolvable forward references.
    annotations = {}
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    name = f'{path}{field.name}'
    children = value if isinstance(value, (list, tuple)) else [value]
    for i, child in enumerate(children):
      if isinstance(child, base_config.Config):
        suffix = f'[{i}]' if child is not value else ''
        check_field_types(child, f'{name}{suffix}.')
    scalar_types = _scalar_types(annotations.get(field.name))
    if scalar_types is None or value is None:
      continue
    if not _accepts(scalar_types, value):
      expected = ' or '.join(t.__name__ for t in scalar_types)
      raise ValueError(f'{name} must be {expected}, got {value!r} '
                        f'({type(value).__name__}).')
    if scalar_types == (float,) and not isinstance(value, float):
      setattr(config, field.name, float(value))
