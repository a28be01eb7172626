"""Step time of the Keras 3 LARS next to Keras 3's momentum SGD.

    python -m official_ext.keras.benchmark [--backends=tensorflow,jax]
        [--workloads=resnet50,many_small,bert_base] [--repeats=7]
        [--steps_per_repeat=10] [--quick] [--output=FILE]

The workloads are the tf_keras benchmark's variable shapes
(`official_ext.benchmarks.workloads`), LARS gets that benchmark's settings
(`official_ext.benchmarks.optimizer_runs`), and SGD the same learning rate and
momentum. Each backend runs in its own process (KERAS_BACKEND is fixed at
import), with the step compiled as Keras compiles it in `fit`: XLA on
TensorFlow (`tf.function(jit_compile=True)`), `jax.jit` of `stateless_apply`
on JAX. In that process the two optimizers update their own variables with
the same fixed gradients, in interleaved timed bursts; the table gives the
median over bursts of the time per step and the ratio of the medians.
"""

import contextlib
import datetime
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Sequence

from absl import app
from absl import flags

BACKENDS = ('tensorflow', 'jax')
OPTIMIZERS = ('LARS', 'SGD')
_RESULT_PREFIX = 'RESULT '

flags.DEFINE_list('backends', list(BACKENDS),
                  f'Keras backends to measure, from {list(BACKENDS)}.')
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


def _make_optimizer(keras, which: str):
  """LARS with the tf_keras benchmark's settings, or SGD with its momentum."""
  from official_ext.benchmarks import optimizer_runs  # pylint: disable=g-import-not-at-top
  from official_ext.keras import LARS  # pylint: disable=g-import-not-at-top
  if which == 'LARS':
    return LARS(optimizer_runs.LEARNING_RATE, optimizer_runs.MOMENTUM,
                optimizer_runs.WEIGHT_DECAY_RATE,
                exclude_from_weight_decay=list(
                    optimizer_runs.EXCLUDE_FROM_WEIGHT_DECAY))
  return keras.optimizers.SGD(optimizer_runs.LEARNING_RATE,
                              momentum=optimizer_runs.MOMENTUM)


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


def _jax_burst(optimizer, variables, gradients) -> Callable[[int], None]:
  """`burst(steps)` running `jax.jit`-compiled `stateless_apply` steps."""
  import jax  # pylint: disable=g-import-not-at-top
  optimizer.build(variables)
  state = {'trainable': [v.value for v in variables],
           'optimizer': [v.value for v in optimizer.variables]}

  # Donated: each step's new values reuse the buffers of the previous ones,
  # so BERT-base's two optimizers fit in memory as in training.
  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(trainable, optimizer_values, grads):
    return optimizer.stateless_apply(optimizer_values, grads, trainable)

  def burst(steps: int):
    for _ in range(steps):
      state['trainable'], state['optimizer'] = step(
          state['trainable'], state['optimizer'], gradients)
    jax.block_until_ready(state['trainable'])

  return burst


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
    `{workload: {optimizer: [seconds per step of each burst]}}`.
  """
  import keras  # pylint: disable=g-import-not-at-top
  from official_ext.benchmarks import workloads  # pylint: disable=g-import-not-at-top
  make_burst = {'tensorflow': _tensorflow_burst,
                'jax': _jax_burst}[keras.backend.backend()]
  results = {}
  for name in workload_names:
    specs = workloads.workload_specs(name, quick)
    values = [v.numpy() for v in workloads.make_variables(specs)]
    gradients = [keras.ops.convert_to_tensor(g.numpy())
                 for g in workloads.gradients(specs)]
    bursts = {}
    for which in OPTIMIZERS:
      bursts[which] = make_burst(_make_optimizer(keras, which),
                                 _keras_variables(keras, specs, values),
                                 gradients)
      bursts[which](1 + warmup_steps)
    del values
    times = {which: [] for which in OPTIMIZERS}
    # Interleaved, so that drift in machine load hits both optimizers.
    for _ in range(repeats):
      for which, burst in bursts.items():
        start = time.perf_counter()
        burst(steps_per_repeat)
        times[which].append((time.perf_counter() - start) / steps_per_repeat)
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
  """Markdown table of medians, per workload and backend.

  Args:
    results: `{backend: measure_backend(...)}`.

  Returns:
    The table, one row per workload and backend.
  """
  rows = ['| workload | backend | LARS median step (ms) | '
          'SGD momentum median step (ms) | LARS / SGD |',
          '|---|---|---:|---:|---:|']
  for backend, workloads_times in results.items():
    for workload, times in workloads_times.items():
      lars_ms, sgd_ms = (1e3 * statistics.median(times[which])
                         for which in OPTIMIZERS)
      rows.append(f'| {workload} | {backend} | {lars_ms:.2f} | {sgd_ms:.2f} '
                  f'| {lars_ms / sgd_ms:.2f} |')
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
  unknown = sorted(set(flag_values.backends) - set(BACKENDS))
  if unknown:
    raise app.UsageError(f'--backends: {unknown} not in {list(BACKENDS)}')
  passed_on = [f'--{name}={flag_values[name].serialize().split("=", 1)[1]}'
               for name in ('workloads', 'repeats', 'steps_per_repeat',
                            'warmup_steps')]
  passed_on.append('--quick' if flag_values.quick else '--noquick')
  results = {backend: run_worker(backend, passed_on)
             for backend in flag_values.backends}
  now = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
  report = (f'`python -m official_ext.keras.benchmark '
            f'{" ".join(sys.argv[1:])}`, {now}, {os.cpu_count()} CPUs; '
            f'{flag_values.repeats} bursts of {flag_values.steps_per_repeat} '
            f'steps per optimizer.\n\n{format_table(results)}\n')
  print(report, flush=True)
  if flag_values.output:
    with open(flag_values.output, 'w') as output:
      output.write(report)


if __name__ == '__main__':
  app.run(main)
