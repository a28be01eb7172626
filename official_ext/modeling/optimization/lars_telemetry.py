"""LARS telemetry: per-variable trust ratio, norms and local learning rate.

With telemetry on, the per-variable update (`lars_update`) writes
`TELEMETRY_FIELDS` into a small float32 variable per model variable;
`TelemetryVariables` creates those variables, placed like the optimizer's
slots, and reads them back as TensorBoard scalars. They are not optimizer
weights: checkpoints and `get_weights()` do not see them.
"""

from typing import Any, Callable, ContextManager, Dict, Tuple

import tensorflow as tf

from official_ext import internals
from official_ext.modeling.optimization import lars_exclusion
from official_ext.modeling.optimization import lars_update
from official_ext.modeling.optimization import variable_names

TELEMETRY_FIELDS = lars_update.TELEMETRY_FIELDS


class TelemetryVariables:
  """One `[len(TELEMETRY_FIELDS)]` float32 variable per model variable."""

  def __init__(self, strategy_scope: Callable[[], ContextManager[Any]]):
    """Creates an empty set.

    Args:
      strategy_scope: enters the optimizer's distribution strategy, e.g. the
        optimizer's `_distribution_strategy_scope`.
    """
    self._strategy_scope = strategy_scope
    # Variable key -> (variable name, telemetry variable).
    self._variables: Dict[Any, Tuple[str, tf.Variable]] = {}

  def create(self, key: Any, var: tf.Variable):
    """Creates `var`'s telemetry variable, placed like its slots, once.

    Args:
      key: the optimizer's key of `var` (as for its slots).
      var: the model variable.
    """
    if key in self._variables:
      return
    with self._strategy_scope():
      strategy = tf.distribute.get_strategy()
      # As `add_slot` does: each replica's copy sits with the variable's.
      with strategy.extended.colocate_vars_with(var):
        stats = tf.Variable(
            tf.zeros([len(TELEMETRY_FIELDS)], tf.float32), trainable=False,
            name=f'{internals.variable_shared_name(var)}/lars_telemetry')
    self._variables[key] = (variable_names.variable_name(var), stats)

  def handle(self, key: Any) -> tf.Tensor:
    """The resource handle of the telemetry variable created for `key`."""
    return self._variables[key][1].handle

  def scalars(self) -> Dict[str, float]:
    """The last step's telemetry, as TensorBoard scalars.

    Returns:
      `{'lars/<variable>/<field>': value}` for every variable with a
      telemetry variable and every field of `TELEMETRY_FIELDS` (`<variable>`
      without its `:0`, suffixed `_2`, `_3`, ... when names repeat).
    """
    scalars = {}
    for name, stats in self._variables.values():
      tag = lars_exclusion.without_output_index(name)
      suffix, count = '', 1
      while f'lars/{tag}{suffix}/{TELEMETRY_FIELDS[0]}' in scalars:
        count += 1
        suffix = f'_{count}'
      for field, value in zip(TELEMETRY_FIELDS, stats.numpy().tolist()):
        scalars[f'lars/{tag}{suffix}/{field}'] = value
    return scalars
