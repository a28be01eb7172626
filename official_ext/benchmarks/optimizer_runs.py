"""The optimizers the step benchmark compares, and how one step is run.

Each contender gets its own copy of the workload's variables and a
`tf.function` that calls `apply_gradients` once with fixed gradients.
`StepRunner` measures that function's first call, its traced graph and bursts
of steady-state steps.
"""

import dataclasses
import time
from typing import Callable, Sequence

import tensorflow as tf
import tf_keras

from official.modeling.optimization import lars as model_garden_lars
from official_ext.benchmarks import graph_size
from official_ext.benchmarks import workloads
from official_ext.modeling.optimization import lars

LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY_RATE = 1e-4
# Layer adaptation falls back to the same list when it is not given.
EXCLUDE_FROM_WEIGHT_DECAY = ('batch_normalization', 'bias', 'LayerNorm',
                             'beta', 'gamma')


@dataclasses.dataclass(frozen=True)
class Contender:
  """An optimizer under test: registry key, table label and factory."""
  key: str
  label: str
  make: Callable[[], tf_keras.optimizers.legacy.Optimizer]


def _lars_kwargs():
  return dict(
      learning_rate=LEARNING_RATE,
      momentum=MOMENTUM,
      weight_decay_rate=WEIGHT_DECAY_RATE,
      exclude_from_weight_decay=list(EXCLUDE_FROM_WEIGHT_DECAY))


BASELINE_KEY = 'momentum_sgd'

# Table order: the optimizer being optimized first, the yardstick last.
CONTENDERS = (
    Contender('official_ext_lars', 'official_ext LARS',
              lambda: lars.LARS(**_lars_kwargs())),
    Contender('model_garden_lars', 'Model Garden LARS',
              lambda: model_garden_lars.LARS(**_lars_kwargs())),
    Contender(BASELINE_KEY, 'legacy momentum SGD',
              lambda: tf_keras.optimizers.legacy.SGD(
                  LEARNING_RATE, momentum=MOMENTUM)),
)


def contender(key: str) -> Contender:
  """Looks up a contender by key; ValueError naming the bad key otherwise."""
  for candidate in CONTENDERS:
    if candidate.key == key:
      return candidate
  raise ValueError(f'optimizer={key!r} is not one of '
                   f'{[c.key for c in CONTENDERS]}')


class StepRunner:
  """One optimizer's step `tf.function`: first call, graph size, bursts."""

  def __init__(self, optimizer: tf_keras.optimizers.legacy.Optimizer,
               step: Callable[[], None], variables: Sequence[tf.Variable],
               jit_compile: bool):
    """Wraps `step` in a `tf.function`.

    Args:
      optimizer: the optimizer `step` applies; fresh (no slots yet).
      step: a Python function running one step, e.g. calling
        `optimizer.apply_gradients` once.
      variables: the variables the step updates.
      jit_compile: whether the `tf.function` is XLA-compiled.
    """
    self.optimizer = optimizer
    self.variables = list(variables)
    self._apply_step = tf.function(step, jit_compile=jit_compile)
    self._steps_run = 0

  @property
  def step_function(self) -> tf.types.experimental.PolymorphicFunction:
    """The step's `tf.function`."""
    return self._apply_step

  @property
  def num_variables(self) -> int:
    return len(self.variables)

  @property
  def num_parameters(self) -> int:
    return sum(v.shape.num_elements() for v in self.variables)

  def first_call(self) -> float:
    """Runs the first step: tracing, slot creation and the update.

    Returns:
      Its wall time in seconds.
    """
    if self._steps_run:
      raise RuntimeError('first_call() after steps were already run')
    return self.run_burst(1)

  def traced_graph_size(self) -> graph_size.GraphSize:
    """Node counts of the traced step (after `first_call`).

    Counts every node of the `tf.function`'s graph (the update math, the
    `Placeholder`s through which variables, slots and gradients are captured,
    constants, reads, no-ops) and of the functions it calls; see `graph_size`.

    Returns:
      The traced and expanded op counts.
    """
    if not self._steps_run:
      raise RuntimeError('traced_graph_size() needs first_call() first')
    concrete = self._apply_step.get_concrete_function()
    return graph_size.graph_size(concrete.graph.as_graph_def())

  def run_burst(self, steps: int) -> float:
    """Runs `steps` steps back to back and waits for the last one.

    Args:
      steps: how many steps.

    Returns:
      Elapsed wall time in seconds.

    Raises:
      RuntimeError: if the optimizer's step counter disagrees with the number
        of calls, i.e. a call did not apply the update.
    """
    start = time.perf_counter()
    for _ in range(steps):
      self._apply_step()
    # Reading the step counter, which the step updates last, waits for it.
    iterations = int(self.optimizer.iterations.numpy())
    elapsed = time.perf_counter() - start
    self._steps_run += steps
    if iterations != self._steps_run:
      raise RuntimeError(f'{self.optimizer.name} counted {iterations} steps, '
                         f'expected {self._steps_run}')
    return elapsed


def update_runner(optimizer: tf_keras.optimizers.legacy.Optimizer,
                  variables: Sequence[tf.Variable],
                  gradients: Sequence[tf.Tensor],
                  jit_compile: bool) -> StepRunner:
  """A `StepRunner` whose step applies fixed gradients to `variables`.

  Args:
    optimizer: a fresh optimizer (no slots yet).
    variables: this optimizer's own copy of the workload's variables.
    gradients: one fixed gradient per variable.
    jit_compile: whether the step is XLA-compiled.

  Returns:
    The runner.
  """
  grads_and_vars = list(zip(gradients, variables, strict=True))

  def apply_step():
    optimizer.apply_gradients(grads_and_vars)

  return StepRunner(optimizer, apply_step, variables, jit_compile)


def make_runner(candidate: Contender, specs: Sequence[workloads.VariableSpec],
                gradients: Sequence[tf.Tensor],
                jit_compile: bool) -> StepRunner:
  """An `update_runner` for `candidate` with a fresh copy of the variables."""
  return update_runner(candidate.make(), workloads.make_variables(specs),
                       gradients, jit_compile)


def warm_up_process(candidates: Sequence[Contender], jit_compile: bool):
  """Runs each contender once on a one-variable problem, unmeasured.

  A process's first traced function and first kernel launches pay one-off
  runtime set-up; this keeps it out of the first measured contender's numbers.

  Args:
    candidates: the contenders to warm up.
    jit_compile: as in the measured runs.
  """
  specs = [workloads.VariableSpec('warm_up/kernel', (2, 2))]
  grads = workloads.gradients(specs)
  for candidate in candidates:
    runner = make_runner(candidate, specs, grads, jit_compile)
    runner.first_call()
    runner.run_burst(1)

