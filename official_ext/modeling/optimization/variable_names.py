"""The name by which every replica knows a variable."""

import tensorflow as tf

from official_ext import internals


def variable_name(var: tf.Variable) -> str:
  """The name exclusion patterns and telemetry see: the same on every replica.

  Under a distribution strategy the optimizer updates per-replica components
  named like `dense/kernel/replica_1:0`; their distributed container carries
  the single-device name `dense/kernel:0`.

  Args:
    var: a variable, possibly a per-replica component or a distributed
      variable (whose `handle` is unavailable in cross-replica context).

  Returns:
    The variable's single-device name.
  """
  if isinstance(var, tf.distribute.DistributedValues):
    return var.name
  container = internals.distributed_container(var)
  return var.name if container is None else container.name
