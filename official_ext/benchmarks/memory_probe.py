r"""Peak memory of one optimizer's steps, measured in a fresh process.

TensorFlow's allocator statistics (`tf.config.experimental.get_memory_info`)
miss tensors under 256 KiB on this CPU build (oneDNN's small-allocation path),
so they would report nothing for many small variables. This module measures
the process's resident-set high-water mark instead (Linux `VmHWM`, reset
through `/proc/self/clear_refs`): after the workload's variables and
gradients exist, how far above the current RSS the process peaks while it
creates the optimizer, traces and runs its first call and warm-up steps.
That counts slots, step temporaries and the traced graph itself.

Allocators keep freed memory for reuse, so a second optimizer in the same
process could reuse the first one's temporaries and look cheaper; each
measurement therefore runs in its own process:

  python -m official_ext.benchmarks.memory_probe --workload=resnet50 \
      --optimizer=model_garden_lars

prints one JSON line `{"peak_rss_growth_bytes": N}`.
"""

import gc
import json
import logging
import os
import re
import subprocess
import sys
from typing import Callable, Dict, Sequence

from absl import app
from absl import flags
import tensorflow as tf

from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import workloads

_STATUS_PATH = '/proc/self/status'
_CLEAR_REFS_PATH = '/proc/self/clear_refs'
# Writing "5" to clear_refs resets VmHWM to the current VmRSS (Linux >= 4.0).
_RESET_PEAK_RSS = '5'
RESULT_KEY = 'peak_rss_growth_bytes'
_MODULE = 'official_ext.benchmarks.memory_probe'


def _status_kib(field: str, status_text: str) -> int:
  match = re.search(rf'^{field}:\s+(\d+) kB$', status_text, re.MULTILINE)
  if match is None:
    raise RuntimeError(f'{_STATUS_PATH} has no {field} line')
  return int(match.group(1))


def rss_and_peak_bytes() -> Dict[str, int]:
  """The process's current and peak resident set size, in bytes."""
  with open(_STATUS_PATH) as status:
    text = status.read()
  return {
      'rss': _status_kib('VmRSS', text) * 1024,
      'peak': _status_kib('VmHWM', text) * 1024,
  }


def peak_rss_growth(fn: Callable[[], object]) -> int:
  """How far above its starting RSS the process peaks while `fn` runs.

  Args:
    fn: the work to measure.

  Returns:
    `VmHWM` after `fn` minus `VmRSS` before it, in bytes (never negative).
  """
  gc.collect()
  with open(_CLEAR_REFS_PATH, 'w') as clear_refs:
    clear_refs.write(_RESET_PEAK_RSS)
  before = rss_and_peak_bytes()['rss']
  fn()
  return max(0, rss_and_peak_bytes()['peak'] - before)


def probe(workload: str, optimizer_key: str, quick: bool, jit_compile: bool,
          warmup_steps: int) -> int:
  """Peak RSS growth of one optimizer's first call and warm-up steps.

  Must run in a fresh process (see the module docstring).

  Args:
    workload: a key of `workloads.WORKLOADS`.
    optimizer_key: a key of `optimizer_runs.CONTENDERS`.
    quick: shrink the workload as `--quick` does.
    jit_compile: XLA-compile the step.
    warmup_steps: steps run after the first call.

  Returns:
    Bytes, as `peak_rss_growth`.
  """
  candidate = optimizer_runs.contender(optimizer_key)
  specs = workloads.workload_specs(workload, quick)
  variables = workloads.make_variables(specs)
  gradients = workloads.gradients(specs)
  optimizer_runs.warm_up_process([candidate], jit_compile)

  def optimizer_steps():
    runner = optimizer_runs.update_runner(candidate.make(), variables,
                                          gradients, jit_compile)
    runner.first_call()
    runner.run_burst(warmup_steps)

  return peak_rss_growth(optimizer_steps)


def probe_command(workload: str, optimizer_key: str, quick: bool,
                  jit_compile: bool, warmup_steps: int) -> Sequence[str]:
  """The command line that runs `probe` in a fresh interpreter."""
  return [
      sys.executable, '-m', _MODULE, f'--workload={workload}',
      f'--optimizer={optimizer_key}', f'--warmup_steps={warmup_steps}',
      f'--quick={quick}', f'--jit_compile={jit_compile}'
  ]


def probe_in_subprocess(workload: str, optimizer_key: str, quick: bool,
                        jit_compile: bool, warmup_steps: int) -> int:
  """Runs `probe` in a fresh interpreter and returns its result.

  Args:
    workload: as for `probe`.
    optimizer_key: as for `probe`.
    quick: as for `probe`.
    jit_compile: as for `probe`.
    warmup_steps: as for `probe`.

  Returns:
    The child's peak RSS growth in bytes.

  Raises:
    RuntimeError: if the child fails, with the end of its stderr.
  """
  package_root = os.path.dirname(
      os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      p for p in (package_root, env.get('PYTHONPATH')) if p)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  completed = subprocess.run(
      probe_command(workload, optimizer_key, quick, jit_compile,
                    warmup_steps),
      capture_output=True, text=True, env=env, check=False)
  if completed.returncode != 0:
    raise RuntimeError(
        f'memory probe for workload={workload} optimizer={optimizer_key} '
        f'exited with {completed.returncode}:\n{completed.stderr[-3000:]}')
  return int(json.loads(completed.stdout.strip().splitlines()[-1])[RESULT_KEY])


def define_flags(flag_values: flags.FlagValues = flags.FLAGS):
  """Defines the probe's command-line flags on `flag_values`."""
  flags.DEFINE_string('workload', None, 'Workload to build.',
                      flag_values=flag_values, required=True)
  flags.DEFINE_string('optimizer', None, 'Optimizer key to measure.',
                      flag_values=flag_values, required=True)
  flags.DEFINE_bool('quick', False, 'Shrink the workload as --quick does.',
                    flag_values=flag_values)
  flags.DEFINE_bool('jit_compile', False, 'XLA-compile the step.',
                    flag_values=flag_values)
  flags.DEFINE_integer('warmup_steps', 3, 'Steps after the first call.',
                       lower_bound=0, flag_values=flag_values)


def main(argv: Sequence[str]):
  del argv  # Unused.
  tf.get_logger().setLevel(logging.ERROR)  # As in optimizer_step.main.
  growth = probe(flags.FLAGS.workload, flags.FLAGS.optimizer,
                 flags.FLAGS.quick, flags.FLAGS.jit_compile,
                 flags.FLAGS.warmup_steps)
  print(json.dumps({RESULT_KEY: growth}))


if __name__ == '__main__':
  define_flags()
  app.run(main)
