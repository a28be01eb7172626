"""The private TensorFlow, tf_keras, Keras 3 and Model Garden internals in use.

official_ext reads a few things that its dependencies keep private because
they have no public form. Each is read here, in one function, and nowhere
else; each was checked against the version `CHECKED_AGAINST` names for its
package (tests/internals_test.py asserts those versions and each internal's
behaviour). If an upgrade removes one, the function raises
`InternalChangedError` naming it and the version it was checked against,
instead of an AttributeError deep inside a training step.

Importing this module loads no framework: each function imports what it
reads when first called, so that Keras 3 users do not load tf_keras.
"""
from typing import Any, Iterable, Optional

# The release series each internal below was checked against.
CHECKED_AGAINST = {
    'tensorflow': '2.20',
    'tf_keras': '2.20',
    'keras': '3.15',
    'tf-models-official': '2.20',
}


class InternalChangedError(RuntimeError):
  """A private internal official_ext reads is gone from the installed package."""


def _changed(internal: str, package: str) -> InternalChangedError:
  return InternalChangedError(
      f'official_ext reads {internal}, private to {package}, and was checked '
      f'against {package} {CHECKED_AGAINST[package]}.*; the installed '
      f'{package} no longer has it. Install {package} '
      f'{CHECKED_AGAINST[package]}.* or an official_ext release that '
      f'supports yours.')


def _attribute(owner: Any, name: str, internal: str, package: str) -> Any:
  try:
    return getattr(owner, name)
  except AttributeError:
    raise _changed(internal, package) from None


def optimizer_variable_key(variable: Any) -> str:
  """The key tf_keras' OptimizerV2 files a variable's slots under.

  Args:
    variable: a tf.Variable, or the resource handle a `_resource_apply_*`
      method receives (both give the same key).

  Returns:
    `optimizer_v2._var_key(variable)`.
  """
  from tf_keras.src.optimizers.legacy import optimizer_v2  # pylint: disable=g-import-not-at-top
  var_key = _attribute(optimizer_v2, '_var_key',
                       'tf_keras.src.optimizers.legacy.optimizer_v2._var_key',
                       'tf_keras')
  return var_key(variable)


def create_optimizer_weights(optimizer: Any, variables: Iterable[Any]):
  """Creates a tf_keras legacy optimizer's slots and iterations now.

  What the optimizer's first `apply_gradients` would create; created eagerly,
  they are not created while a `tf.function` is traced, which would trace it
  twice.

  Args:
    optimizer: a tf_keras legacy (OptimizerV2) optimizer.
    variables: the variables it will update.
  """
  create = _attribute(optimizer, '_create_all_weights',
                      'tf_keras OptimizerV2._create_all_weights', 'tf_keras')
  create(list(variables))


def variable_shared_name(variable: Any) -> str:
  """A tf.Variable's name without `:0`, the same on every replica.

  Args:
    variable: a tf.Variable, possibly distributed.

  Returns:
    `variable._shared_name`.
  """
  return _attribute(variable, '_shared_name', 'tf.Variable._shared_name',
                    'tensorflow')


def distributed_container(variable: Any) -> Optional[Any]:
  """The distributed variable a per-replica component belongs to.

  Args:
    variable: a per-replica component of a distributed variable, its resource
      handle, or any other variable.

  Returns:
    The container (`_distributed_container()` of the variable or of its
    handle, where tf.distribute sets it), or None outside a distribution.
  """
  for owner in (variable, getattr(variable, 'handle', None)):
    container = getattr(owner, '_distributed_container', None)
    if container is not None and container() is not None:
      return container()
  return None


def in_xla_context() -> bool:
  """Whether the graph being traced is compiled with XLA.

  Returns:
    tf_keras' `control_flow_util.GraphOrParentsInXlaContext` of the default
    graph, as tf_keras' optimizers ask it.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_keras.src.utils import control_flow_util  # pylint: disable=g-import-not-at-top
  in_xla = _attribute(
      control_flow_util, 'GraphOrParentsInXlaContext',
      'tf_keras.src.utils.control_flow_util.GraphOrParentsInXlaContext',
      'tf_keras')
  return in_xla(tf.compat.v1.get_default_graph())


def warmup_wrapped_schedule(schedule: Any) -> Optional[Any]:
  """The schedule a Model Garden warmup schedule warms up to.

  Args:
    schedule: a learning-rate schedule.

  Returns:
    `_after_warmup_lr_sched` of Model Garden's `LinearWarmup` or
    `PolynomialWarmUp` (which `get_config` leaves out); None for any other
    schedule.
  """
  from official.modeling.optimization import lr_schedule  # pylint: disable=g-import-not-at-top
  if not isinstance(schedule,
                    (lr_schedule.LinearWarmup, lr_schedule.PolynomialWarmUp)):
    return None
  return _attribute(schedule, '_after_warmup_lr_sched',
                    f'{type(schedule).__name__}._after_warmup_lr_sched',
                    'tf-models-official')


def schedule_offset(schedule: Any) -> Optional[Any]:
  """The step offset of Model Garden's offset-wrapped Keras schedules.

  Args:
    schedule: a learning-rate schedule.

  Returns:
    `_offset` of a schedule whose class Model Garden's `lr_schedule` made by
    wrapping a Keras schedule (it has `base_lr_class`, e.g.
    `CosineDecayWithOffset`): its `get_config` is the Keras class's and
    leaves the offset out. None for any other schedule.
  """
  if 'base_lr_class' not in vars(type(schedule)):
    return None
  return _attribute(schedule, '_offset', f'{type(schedule).__name__}._offset',
                    'tf-models-official')


def keras_nested_layers(model: Any) -> Iterable[Any]:
  """Every layer inside a Keras 3 model, at any depth, the model excluded.

  Args:
    model: a Keras 3 model or layer.

  Returns:
    `model._flatten_layers(include_self=False, recursive=True)`, what Keras'
    `summary` and saving walk.
  """
  flatten_layers = _attribute(model, '_flatten_layers',
                              'keras.Layer._flatten_layers', 'keras')
  return flatten_layers(include_self=False, recursive=True)
