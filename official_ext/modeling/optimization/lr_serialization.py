"""Lossless (de)serialization of learning rates, Model Garden schedules included.

Keras serializes a `LearningRateSchedule` as `{'class_name', 'config'}` and
looks the class up among its built-ins and registered objects. Model Garden's
schedules (`official.modeling.optimization.lr_schedule`) are neither, and two
of their `get_config` methods lose information:

* the warmup wrappers (`LinearWarmup`, `PolynomialWarmUp`) store the wrapped
  schedule's bare `get_config()`, without its class name;
* the `*WithOffset` schedules inherit their base class's `get_config`, which
  omits `offset`.

`serialize_learning_rate` writes both back in, recursively, and
`deserialize_learning_rate` reverses it, so an optimizer's learning rate
survives `get_config`/`from_config`, `model.save` and `load_model`.
"""

from typing import Any, Callable, Dict, Mapping, Optional, Union

import tensorflow as tf
import tf_keras

from official.modeling.optimization import optimizer_factory as mg_optimizer_factory

from official_ext import internals

LearningRate = Union[float, tf.Tensor,
                     tf_keras.optimizers.schedules.LearningRateSchedule,
                     Callable[[], float]]

# Every schedule class that Model Garden's optimizer factory can build, read
# from its registries of decay and warmup schedules.
MODEL_GARDEN_SCHEDULES: Dict[str, type] = {
    cls.__name__: cls
    for registry in (mg_optimizer_factory.LR_CLS,
                     mg_optimizer_factory.WARMUP_CLS)
    for cls in registry.values()
}

_WRAPPED_SCHEDULE_KEY = 'after_warmup_lr_sched'


def _is_schedule(value: Any) -> bool:
  return isinstance(value, tf_keras.optimizers.schedules.LearningRateSchedule)


def _is_serialized_schedule(value: Any) -> bool:
  return isinstance(value, Mapping) and 'class_name' in value and (
      'config' in value)


def serialize_learning_rate(schedule: Any) -> Any:
  """Returns a JSON-friendly form of a learning rate that loses nothing.

  Args:
    schedule: a `LearningRateSchedule`, or any other learning-rate value
      (float, tensor), which is returned unchanged.

  Returns:
    `{'class_name': ..., 'config': ...}` for a schedule, with wrapped
    schedules serialized the same way; other values as given.
  """
  if not _is_schedule(schedule):
    return schedule
  config = dict(schedule.get_config())
  wrapped = internals.warmup_wrapped_schedule(schedule)
  if wrapped is not None:
    config[_WRAPPED_SCHEDULE_KEY] = serialize_learning_rate(wrapped)
  offset = internals.schedule_offset(schedule)
  if offset is not None and 'offset' not in config:
    config['offset'] = offset
  return {'class_name': type(schedule).__name__, 'config': config}


def _schedule_class(class_name: str,
                    custom_objects: Optional[Mapping[str, Any]]) -> type:
  """Finds a schedule class by name: custom objects, Model Garden, Keras."""
  if custom_objects and class_name in custom_objects:
    return custom_objects[class_name]
  if class_name in MODEL_GARDEN_SCHEDULES:
    return MODEL_GARDEN_SCHEDULES[class_name]
  registered = tf_keras.saving.get_registered_object(class_name,
                                                     custom_objects)
  if registered is not None:
    return registered
  builtin = getattr(tf_keras.optimizers.schedules, class_name, None)
  if isinstance(builtin, type) and issubclass(
      builtin, tf_keras.optimizers.schedules.LearningRateSchedule):
    return builtin
  raise ValueError(
      f'learning_rate: unknown LearningRateSchedule class {class_name!r}; '
      'pass it in `custom_objects`.')


def deserialize_learning_rate(
    value: Any, custom_objects: Optional[Mapping[str, Any]] = None) -> Any:
  """Inverse of `serialize_learning_rate`.

  Args:
    value: a serialized schedule (`{'class_name', 'config'}`, possibly nested),
      or a plain learning-rate value, which is returned unchanged.
    custom_objects: optional mapping from class name to schedule class, for
      schedules that are neither Keras built-ins, registered Keras objects nor
      Model Garden schedules.

  Returns:
    The learning rate, with schedules rebuilt.
  """
  if not _is_serialized_schedule(value):
    return value
  cls = _schedule_class(value['class_name'], custom_objects)
  config = {
      key: deserialize_learning_rate(item, custom_objects)
      for key, item in value['config'].items()
  }
  return cls.from_config(config)
