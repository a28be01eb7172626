"""The optimizers the Keras 3 benchmarks compare, and their compiled JAX steps.

The Keras 3 LARS gets the tf_keras benchmark's settings
(`official_ext.benchmarks.optimizer_runs`), Keras 3's momentum SGD (the
yardstick) the same learning rate and momentum, and optax's `lars`, when
optax is installed (`pip install official_ext[benchmark]`), the same learning
rate, momentum, weight decay, trust coefficient and exclusions. Keras is
imported by the caller, whose process has fixed its backend.
"""

import functools
import importlib.util
from typing import Any, Callable, List, Sequence, Tuple

from official_ext.benchmarks import optimizer_runs

LARS_LABEL = 'Keras 3 LARS'
SGD_LABEL = 'Keras 3 momentum SGD'
OPTAX_LABEL = 'optax lars'

# `step(trainable, optimizer_state, gradients) -> (trainable, optimizer_state)`
# and the state it starts from.
JaxStep = Tuple[Callable[..., Tuple[Any, Any]], Tuple[Any, Any]]


def make_lars():
  """official_ext's Keras 3 LARS with the tf_keras benchmark's settings."""
  from official_ext.keras import LARS  # pylint: disable=g-import-not-at-top
  return LARS(optimizer_runs.LEARNING_RATE, optimizer_runs.MOMENTUM,
              optimizer_runs.WEIGHT_DECAY_RATE,
              exclude_from_weight_decay=list(
                  optimizer_runs.EXCLUDE_FROM_WEIGHT_DECAY))


def make_sgd():
  """Keras 3's SGD with the benchmark's learning rate and momentum."""
  import keras  # pylint: disable=g-import-not-at-top
  return keras.optimizers.SGD(optimizer_runs.LEARNING_RATE,
                              momentum=optimizer_runs.MOMENTUM)


def optax_available() -> bool:
  """Whether optax is installed (it is an optional benchmark extra)."""
  return importlib.util.find_spec('optax') is not None


def jax_keras_step(optimizer, variables: Sequence[Any]) -> JaxStep:
  """A Keras 3 optimizer's step as `fit` compiles it on JAX.

  Args:
    optimizer: a fresh Keras 3 optimizer.
    variables: Keras variables (their values are the starting point).

  Returns:
    `jax.jit` of `optimizer.stateless_apply`, with the trainable values and
    the optimizer's state donated (each step's results reuse the buffers of
    the previous ones, as in training), and the starting state.
  """
  import jax  # pylint: disable=g-import-not-at-top
  optimizer.build(variables)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(trainable, optimizer_values, gradients):
    return optimizer.stateless_apply(optimizer_values, gradients, trainable)

  return step, ([v.value for v in variables],
                [v.value for v in optimizer.variables])


def jax_optax_step(variables: Sequence[Any]) -> JaxStep:
  """optax's `lars` on the same variables, jitted with donated buffers.

  The variables that the Keras 3 LARS excludes from weight decay (and so,
  with the benchmark's settings, from layer adaptation) are masked out of
  both in optax. optax's `lars` (trust ratio of `g + λw`, then the learning
  rate, then momentum) is the Keras 3 LARS's default classic momentum with
  Model Garden's denominator, composed of four transformations.

  Args:
    variables: Keras variables.

  Returns:
    `(step, state)` as `jax_keras_step`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  lars = make_lars()
  adapted: List[bool] = [lars.weight_decay_exclusion(v) is None
                         for v in variables]
  transformation = optax.lars(
      optimizer_runs.LEARNING_RATE,
      weight_decay=optimizer_runs.WEIGHT_DECAY_RATE,
      weight_decay_mask=adapted,
      trust_coefficient=lars.options['eeta'],
      trust_ratio_mask=adapted,
      momentum=optimizer_runs.MOMENTUM)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, state, gradients):
    updates, state = transformation.update(gradients, state, params)
    return optax.apply_updates(params, updates), state

  params = [v.value for v in variables]
  return step, (params, transformation.init(params))
