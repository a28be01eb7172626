"""Step time of the Keras 3 LARS next to Keras 3's momentum SGD.

    python -m official_ext.keras.benchmark [--backends=tensorflow,jax,torch]
        [--workloads=resnet50,many_small,bert_base] [--repeats=7]
        [--steps_per_repeat=10] [--quick] [--output=FILE]

The workloads are the tf_keras benchmark's variable shapes
(`official_ext.benchmarks.workloads`); the optimizers and their settings are
`benchmark_optimizers`'. Each backend runs in its own process (KERAS_BACKEND
is fixed at import), with the step run as Keras runs it in `fit`: XLA on
TensorFlow (`tf.function(jit_compile=True)` around `optimizer.apply`),
`jax.jit` of `stateless_apply` with donated buffers on JAX, eager
`optimizer.apply` on PyTorch. The TensorFlow process also runs official_ext's
tf_keras LARS under XLA, the JAX process optax's `lars` when optax is
installed. In each process the optimizers update their own variables with the
same fixed gradients, in interleaved timed bursts whose order rotates from
one round to the next; the table gives the median over bursts of the time
per step and its ratio to Keras 3's momentum SGD's.
"""

import contextlib
import datetime
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Sequence

from absl import app
from absl import flags

from official_ext.benchmarks import optimizer_runs
from official_ext.keras import benchmark_optimizers

BACKENDS = ('tensorflow', 'jax', 'torch')
# The row of official_ext's tf_keras LARS in the TensorFlow process.
TF_KERAS_LARS_LABEL = 'tf_keras LARS (official_ext), XLA'
_RESULT_PREFIX = 'RESULT '

flags.DEFINE_list('backends', None,
                  f'Keras backends to measure, from {list(BACKENDS)}; by '
                  'default every one whose package is installed.')
flags.DEFINE_list('workloads', ['resnet50', 'many_small', 'bert_base'],
                  'Workloads of official_ext.benchmarks.workloads.')
flags.DEFINE_integer('repeats', 7, 'Timed bursts per optimizer.',
                     lower_bound=1)
flags.DEFINE_integer('steps_per_repeat', 10, 'Steps in each timed burst.',
                     lower_bound=1)
flags.DEFINE_integer('warmup_steps', 3,
                     'Untimed steps per optimizer after compilation.',
                     lower_bound=0)
flags.DEFINE_bool('quick', False,
                  'Smoke run on tiny versions of the workloads.')
flags.DEFINE_string('output', None,
                    'Also write the markdown table to this file.')
flags.DEFINE_string('worker', None,
                    'Internal: measure in this process, whose KERAS_BACKEND '
                    'is this backend, and print the result as JSON.')


def _keras_variables(keras, specs, values) -> List[Any]:
  """Keras 3 variables whose paths are the workload's names."""
  variables = []
  for spec, value in zip(specs, values):
    *scopes, name = spec.name.split('/')
    with contextlib.ExitStack() as stack:
      for scope in scopes:
        stack.enter_context(keras.name_scope(scope))
      variables.append(keras.Variable(value, name=name))
  return variables


def _tensorflow_burst(optimizer, variables, gradients) -> Callable[[int], None]:
  """`burst(steps)` running XLA-compiled `optimizer.apply` steps."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  @tf.function(jit_compile=True)
  def step():
    optimizer.apply(gradients, variables)

  def burst(steps: int):
    for _ in range(steps):
      step()
    # Reading the step counter waits for the last step.
    optimizer.iterations.numpy()

  return burst


def _jax_burst(jax_step: benchmark_optimizers.JaxStep,
               gradients) -> Callable[[int], None]:
  """`burst(steps)` running a `benchmark_optimizers` JAX step."""
  import jax  # pylint: disable=g-import-not-at-top
  step, state = jax_step
  state = list(state)

  def burst(steps: int):
    for _ in range(steps):
      state[:] = step(*state, gradients)
    jax.block_until_ready(state[0])

  return burst


def _torch_burst(optimizer, variables, gradients) -> Callable[[int], None]:
  """`burst(steps)` running eager `optimizer.apply` steps, as `fit` does."""
  optimizer.build(variables)

  def burst(steps: int):
    for _ in range(steps):
      optimizer.apply(gradients, variables)
    # CPU kernels run synchronously: the last step is done on return.

  return burst


def _tf_keras_lars_burst(specs, gradients) -> Callable[[int], None]:
  """`burst(steps)` of official_ext's tf_keras LARS, XLA-compiled."""
  runner = optimizer_runs.make_runner(
      optimizer_runs.contender('official_ext_lars'), specs, gradients,
      jit_compile=True)
  return runner.run_burst


def _bursts(backend: str, specs, values, gradients
           ) -> Dict[str, Callable[[int], None]]:
  """Each compared optimizer's `burst(steps)` on its own variables, by label.

  Args:
    backend: the Keras backend of this process.
    specs: the workload's variables.
    values: their initial values (numpy).
    gradients: one fixed gradient per variable, backend tensors.

  Returns:
    `{label: burst}`, the Keras 3 LARS first and Keras 3 SGD last.
  """
  import keras  # pylint: disable=g-import-not-at-top
  lars = benchmark_optimizers.LARS_LABEL
  sgd = benchmark_optimizers.SGD_LABEL

  def variables():
    return _keras_variables(keras, specs, values)

  if backend == 'jax':
    steps = {lars: benchmark_optimizers.jax_keras_step(
        benchmark_optimizers.make_lars(), variables())}
    if benchmark_optimizers.optax_available():
      steps[benchmark_optimizers.OPTAX_LABEL] = (
          benchmark_optimizers.jax_optax_step(variables()))
    steps[sgd] = benchmark_optimizers.jax_keras_step(
        benchmark_optimizers.make_sgd(), variables())
    return {label: _jax_burst(step, gradients)
            for label, step in steps.items()}
  make_burst = {'tensorflow': _tensorflow_burst,
                'torch': _torch_burst}[backend]
  bursts = {lars: make_burst(benchmark_optimizers.make_lars(), variables(),
                             gradients)}
  if backend == 'tensorflow':
    bursts[TF_KERAS_LARS_LABEL] = _tf_keras_lars_burst(specs, gradients)
  bursts[sgd] = make_burst(benchmark_optimizers.make_sgd(), variables(),
                           gradients)
  return bursts


def measure_backend(workload_names: Sequence[str], quick: bool, repeats: int,
                    steps_per_repeat: int,
                    warmup_steps: int) -> Dict[str, Dict[str, List[float]]]:
  """Seconds per step of each burst, per workload and optimizer.

  Runs in the process of one backend (KERAS_BACKEND set before import).

  Args:
    workload_names: keys of `workloads.WORKLOADS`.
    quick: whether to shrink the workloads.
    repeats: timed bursts per optimizer.
    steps_per_repeat: steps per burst.
    warmup_steps: untimed steps after the compiling first one.

  Returns:
    `{workload: {optimizer label: [seconds per step of each burst]}}`, with
    Keras 3's momentum SGD last.
  """
  import keras  # pylint: disable=g-import-not-at-top
  from official_ext.benchmarks import workloads  # pylint: disable=g-import-not-at-top
  backend = keras.backend.backend()
  results = {}
  for name in workload_names:
    specs = workloads.workload_specs(name, quick)
    values = [v.numpy() for v in workloads.make_variables(specs)]
    gradients = [keras.ops.convert_to_tensor(g.numpy())
                 for g in workloads.gradients(specs)]
    bursts = _bursts(backend, specs, values, gradients)
    del values
    # Every step is compiled before any is warmed up: run right after the
    # other optimizers' compilations, the first timed burst took up to twice
    # its time here, whichever optimizer came first.
    for burst in bursts.values():
      burst(1)
    for burst in bursts.values():
      burst(warmup_steps)
    times = {label: [] for label in bursts}
    # Interleaved, so that drift in machine load hits every optimizer, and
    # rotated, so that none always runs first or after the same one.
    labels = list(bursts)
    for repeat in range(repeats):
      shift = repeat % len(labels)
      for label in labels[shift:] + labels[:shift]:
        burst = bursts[label]
        start = time.perf_counter()
        burst(steps_per_repeat)
        times[label].append((time.perf_counter() - start) / steps_per_repeat)
    results[name] = times
    # Frees this workload's variables and compiled steps before the next.
    del bursts, gradients
    keras.backend.clear_session()
    gc.collect()
  return results


def run_worker(backend: str, argv: Sequence[str]) -> Dict[str, Any]:
  """Runs this module with `--worker=backend` in a fresh process.

  Args:
    backend: the Keras backend.
    argv: the flags to pass on.

  Returns:
    The worker's `measure_backend` result.

  Raises:
    RuntimeError: if the worker fails, with the end of its stderr.
  """
  env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL='2',
             JAX_PLATFORMS='cpu')
  process = subprocess.run(
      [sys.executable, '-m', 'official_ext.keras.benchmark',
       f'--worker={backend}', *argv],
      env=env, capture_output=True, text=True, check=False)
  lines = [line for line in process.stdout.splitlines()
           if line.startswith(_RESULT_PREFIX)]
  if process.returncode or not lines:
    raise RuntimeError(f'{backend} worker failed:\n{process.stderr[-3000:]}')
  return json.loads(lines[-1].removeprefix(_RESULT_PREFIX))


def format_table(results: Dict[str, Dict[str, Dict[str, List[float]]]]
                ) -> str:
  """Markdown table of medians, per workload, backend and optimizer.

  Args:
    results: `{backend: measure_backend(...)}`.

  Returns:
    The table; each median step also as a ratio to Keras 3's momentum SGD on
    the same workload and backend.
  """
  rows = ['| workload | backend | optimizer | median step (ms) | '
          f'÷ {benchmark_optimizers.SGD_LABEL} |',
          '|---|---|---|---:|---:|']
  for backend, workloads_times in results.items():
    for workload, times in workloads_times.items():
      baseline = statistics.median(times[benchmark_optimizers.SGD_LABEL])
      for label, seconds in times.items():
        median = statistics.median(seconds)
        rows.append(f'| {workload} | {backend} | {label} | {1e3 * median:.2f} '
                    f'| {median / baseline:.2f} |')
  return '\n'.join(rows)


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  flag_values = flags.FLAGS
  if flag_values.worker:
    result = measure_backend(flag_values.workloads, flag_values.quick,
                             flag_values.repeats, flag_values.steps_per_repeat,
                             flag_values.warmup_steps)
    print(_RESULT_PREFIX + json.dumps(result), flush=True)
    return
  installed = [backend for backend in BACKENDS
               if importlib.util.find_spec(backend) is not None]
  backends = flag_values.backends or installed
  unknown = sorted(set(backends) - set(BACKENDS))
  if unknown:
    raise app.UsageError(f'--backends: {unknown} not in {list(BACKENDS)}')
  missing = sorted(set(backends) - set(installed))
  if missing:
    raise app.UsageError(f'--backends: {missing} not installed (the torch '
                         'backend: pip install -e ".[torch]")')
  passed_on = [f'--{name}={flag_values[name].serialize().split("=", 1)[1]}'
               for name in ('workloads', 'repeats', 'steps_per_repeat',
                            'warmup_steps')]
  passed_on.append('--quick' if flag_values.quick else '--noquick')
  results = {backend: run_worker(backend, passed_on) for backend in backends}
  now = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
  report = (f'`python -m official_ext.keras.benchmark '
            f'{" ".join(sys.argv[1:])}`, {now}, {os.cpu_count()} CPUs; '
            f'{flag_values.repeats} bursts of {flag_values.steps_per_repeat} '
            f'steps per optimizer.\n\n{format_table(results)}\n')
  not_measured = [
      f'{backend} (not {"asked for" if backend in installed else "installed"})'
      for backend in BACKENDS if backend not in backends]
  if not_measured:
    report += f'\nNot measured: {", ".join(not_measured)}.\n'
  print(report, flush=True)
  if flag_values.output:
    with open(flag_values.output, 'w') as output:
      output.write(report)


if __name__ == '__main__':
  app.run(main)
