r"""Benchmarks what LARS telemetry costs: off (default), off (explicit), on.

  python -m official_ext.benchmarks.lars_telemetry
  python -m official_ext.benchmarks.lars_telemetry --quick
  python -m official_ext.benchmarks.lars_telemetry --workloads=resnet50 \
      --repeats=11

Runs one `apply_gradients` step of official_ext's LARS on the optimizer-step
benchmark's workloads (`workloads`, same hyperparameters and exclusions as
`optimizer_runs`) three times over: constructed without `telemetry` (the
default), with `telemetry=False`, and with `telemetry=True`. Bursts of steps
alternate round-robin, as in `optimizer_step`. Prints, per workload, each
variant's median step time, traced and expanded graph size, and, with
telemetry on, the time of one `telemetry_scalars()` read (what the trainer
does once per summary interval, not per step).
"""

import dataclasses
import statistics
import time
from typing import Callable, List, Optional, Sequence

from absl import app
from absl import flags
import tensorflow as tf

from official_ext.benchmarks import graph_size
from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import optimizer_step
from official_ext.benchmarks import workloads
from official_ext.modeling.optimization import lars

_QUICK_REPEATS = 2
_QUICK_STEPS_PER_REPEAT = 2


def _lars(**telemetry) -> Callable[[], lars.LARS]:
  return lambda: lars.LARS(
      learning_rate=optimizer_runs.LEARNING_RATE,
      momentum=optimizer_runs.MOMENTUM,
      weight_decay_rate=optimizer_runs.WEIGHT_DECAY_RATE,
      exclude_from_weight_decay=list(optimizer_runs.EXCLUDE_FROM_WEIGHT_DECAY),
      **telemetry)


# Table order: the baseline (LARS as everybody constructs it) first.
VARIANTS = (
    optimizer_runs.Contender('default', 'LARS (no telemetry argument)',
                             _lars()),
    optimizer_runs.Contender('off', 'LARS telemetry=False',
                             _lars(telemetry=False)),
    optimizer_runs.Contender('on', 'LARS telemetry=True',
                             _lars(telemetry=True)),
)

COLUMNS = ('variant', 'median step (ms)', 'step min–max (ms)',
           'step ratio vs default', 'graph ops', 'expanded ops',
           'telemetry read (ms)')


@dataclasses.dataclass(frozen=True)
class VariantResult:
  """One variant's measurements on one workload."""
  label: str
  graph: graph_size.GraphSize
  step_seconds: Sequence[float]
  telemetry_read_seconds: Optional[float]


def _telemetry_read_seconds(optimizer: lars.LARS) -> Optional[float]:
  if not optimizer.telemetry:
    return None
  start = time.perf_counter()
  optimizer.telemetry_scalars()
  return time.perf_counter() - start


def benchmark_workload(name: str, quick: bool, repeats: int,
                       steps_per_repeat: int,
                       warmup_steps: int) -> List[VariantResult]:
  """Measures every variant on one workload.

  Args:
    name: a key of `workloads.WORKLOADS`.
    quick: shrink the workload (`workloads.shrink`).
    repeats: timed bursts per variant.
    steps_per_repeat: steps per burst.
    warmup_steps: untimed steps per variant after its first call.

  Returns:
    One result per variant, in `VARIANTS` order.
  """
  specs = workloads.workload_specs(name, quick)
  gradients = workloads.gradients(specs)
  runners = [optimizer_runs.make_runner(v, specs, gradients, False)
             for v in VARIANTS]
  for runner in runners:
    runner.first_call()
    runner.run_burst(warmup_steps)
  graphs = [runner.traced_graph_size() for runner in runners]
  step_seconds = optimizer_step.measure_steady_state(
      [r.run_burst for r in runners], repeats, steps_per_repeat)
  return [
      VariantResult(v.label, graph, steps,
                    _telemetry_read_seconds(runner.optimizer))
      for v, graph, steps, runner in zip(VARIANTS, graphs, step_seconds,
                                         runners, strict=True)
  ]


def _ms(seconds: float) -> str:
  return f'{1e3 * seconds:.2f}'


def format_workload(name: str, results: Sequence[VariantResult]) -> str:
  """A markdown section: the workload's title and its table."""
  baseline = statistics.median(results[0].step_seconds)
  rows = [COLUMNS, ['---'] + ['---:'] * (len(COLUMNS) - 1)]
  for result in results:
    median = statistics.median(result.step_seconds)
    rows.append([
        result.label, _ms(median),
        f'{_ms(min(result.step_seconds))}–{_ms(max(result.step_seconds))}',
        f'{median / baseline:.2f}×', f'{result.graph.traced_ops:,}',
        f'{result.graph.expanded_ops:,}',
        ('—' if result.telemetry_read_seconds is None else
         _ms(result.telemetry_read_seconds))
    ])
  table = '\n'.join('| ' + ' | '.join(row) + ' |' for row in rows)
  return f'### {name}\n\n{table}\n'


def run(workload_names: Sequence[str], quick: bool, repeats: int,
        steps_per_repeat: int, warmup_steps: int) -> str:
  """Runs every workload; prints and returns the markdown report."""
  optimizer_runs.warm_up_process(VARIANTS, jit_compile=False)
  sections = [f'## LARS telemetry cost{" (--quick)" if quick else ""}\n\n'
              f'TensorFlow {tf.__version__}; {repeats} repeats × '
              f'{steps_per_repeat} steps per variant, round-robin.\n']
  print(sections[0], flush=True)
  for name in workload_names:
    sections.append(format_workload(name, benchmark_workload(
        name, quick, repeats, steps_per_repeat, warmup_steps)))
    print(sections[-1], flush=True)
  return '\n'.join(sections)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS):
  """Defines the benchmark's flags on `flag_values`."""
  optimizer_step.define_timing_flags(
      flag_values, workloads.WORKLOADS, 'variant', steps_per_repeat=10,
      warmup_steps=3,
      quick_help=(f'Smoke run on shrunken workloads; unless given, '
                  f'--repeats={_QUICK_REPEATS} --steps_per_repeat='
                  f'{_QUICK_STEPS_PER_REPEAT}.'))


def run_from_flags(flag_values: flags.FlagValues) -> str:
  """Runs with parsed flags, applying `--quick`'s defaults."""

  def setting(name: str, quick_default: int) -> int:
    if flag_values.quick and not flag_values[name].present:
      return quick_default
    return flag_values[name].value

  return run(flag_values.workloads, flag_values.quick,
             setting('repeats', _QUICK_REPEATS),
             setting('steps_per_repeat', _QUICK_STEPS_PER_REPEAT),
             flag_values.warmup_steps)


main = optimizer_step.benchmark_main(run_from_flags)


if __name__ == '__main__':
  define_flags()
  app.run(main)
