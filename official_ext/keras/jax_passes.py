r"""How often the jitted Keras 3 optimizer step reads and writes a variable.

  KERAS_BACKEND=jax python -m official_ext.keras.jax_passes

The JAX counterpart of `official_ext.benchmarks.xla_passes`: each optimizer
of `benchmark_optimizers` (the Keras 3 LARS, optax's `lars` when installed,
Keras 3's momentum SGD) is compiled as the benchmark runs it (`jax.jit` of
one step, donated buffers) for one `xla_passes.SHAPE` kernel, and
`xla_passes.count_passes` counts the full-size reads and writes in the
optimized HLO. Needs the JAX backend, which KERAS_BACKEND selects before
Keras is imported (importing `official_ext.keras` imports it).
"""

from typing import Dict, Sequence

from absl import app

from official_ext.benchmarks import xla_passes
from official_ext.keras import benchmark_optimizers


def compiled_step_hlo(jax_step: benchmark_optimizers.JaxStep,
                      gradients: Sequence[object]) -> str:
  """Optimized HLO of one `benchmark_optimizers` JAX step."""
  step, state = jax_step
  return step.lower(*state, gradients).compile().as_text()


def measure() -> Dict[str, xla_passes.ArrayPasses]:
  """`count_passes` of each optimizer's step on one kernel, SGD last."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  if keras.backend.backend() != 'jax':
    raise RuntimeError(f'jax_passes needs KERAS_BACKEND=jax, not '
                       f'{keras.backend.backend()!r}')
  rng = np.random.default_rng(0)

  def kernel():
    with keras.name_scope('dense'):
      return [keras.Variable(
          rng.standard_normal(xla_passes.SHAPE).astype('float32'),
          name='kernel')]

  gradients = [keras.ops.convert_to_tensor(
      rng.standard_normal(xla_passes.SHAPE).astype('float32'))]
  steps = {benchmark_optimizers.LARS_LABEL: benchmark_optimizers.jax_keras_step(
      benchmark_optimizers.make_lars(), kernel())}
  if benchmark_optimizers.optax_available():
    steps[benchmark_optimizers.OPTAX_LABEL] = (
        benchmark_optimizers.jax_optax_step(kernel()))
  steps[benchmark_optimizers.SGD_LABEL] = benchmark_optimizers.jax_keras_step(
      benchmark_optimizers.make_sgd(), kernel())
  num_elements = xla_passes.SHAPE[0] * xla_passes.SHAPE[1]
  return {label: xla_passes.count_passes(compiled_step_hlo(step, gradients),
                                         num_elements)
          for label, step in steps.items()}


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  import jax  # pylint: disable=g-import-not-at-top
  print(f'jax.jit step on one {xla_passes.SHAPE[0]}×{xla_passes.SHAPE[1]} '
        f'kernel (weight decay and layer adaptation on), JAX '
        f'{jax.__version__}:\n')
  print(xla_passes.format_table(measure()))


if __name__ == '__main__':
  app.run(main)
