r"""Benchmarks one optimizer step: official_ext LARS, Model Garden LARS, SGD.

  python -m official_ext.benchmarks.optimizer_step
  python -m official_ext.benchmarks.optimizer_step --jit_compile
  python -m official_ext.benchmarks.optimizer_step --quick

For each workload (real models' variable names and shapes, see `workloads`),
the three optimizers each get their own copy of the variables, fixed random
gradients and a `tf.function` that calls `apply_gradients` once; on the
end-to-end workload (`train_step`) each trains its own ResNet-50 instead, so
that a step is forward, backward and update. All run in
one process: first calls one after the other, then after warm-up steps
round-robin bursts of steps, the order rotating every repeat so that no
optimizer always runs after the same neighbour. With `--measure_memory`,
peak memory is measured separately, one fresh process per optimizer (see
`memory_probe`).

Prints, per workload, a markdown table of median step time, first-call time,
traced graph op count and peak memory, each with its ratio to legacy momentum
SGD (`tf_keras.optimizers.legacy.SGD(0.1, momentum=0.9)`, a fused kernel),
and a line comparing official_ext's LARS with Model Garden's, under a header
naming the date, machine and versions.
"""

import dataclasses
import datetime
import gc
import logging
import os
import statistics
from typing import Callable, List, Optional, Sequence

from absl import app
from absl import flags
import tensorflow as tf
import tf_keras

from official_ext.benchmarks import graph_size
from official_ext.benchmarks import memory_probe
from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import train_step
from official_ext.benchmarks import workloads

_QUICK_REPEATS = 2
_QUICK_STEPS_PER_REPEAT = 2
_QUICK_WARMUP_STEPS = 1
_MIB = 1024 * 1024

# Variable-set workloads, then the end-to-end train step.
WORKLOADS = (*workloads.WORKLOADS, train_step.WORKLOAD)

COLUMNS = ('optimizer', 'median step (ms)', 'step min–max (ms)',
           'step ratio vs SGD', 'first call (s)', 'first-call ratio',
           'graph ops', 'graph-op ratio', 'expanded ops', 'expanded-op ratio',
           'expanded ops/var', 'peak memory (MiB)')

LEGEND = """\
Columns:
- median step: median over repeats of one burst's wall time / its steps; a
  burst is N back-to-back calls of the step `tf.function`, ended by reading
  the optimizer's step counter. min–max: the fastest and slowest repeat.
- first call: wall time of the step function's first call (tracing, slot
  creation, the first update), after an unmeasured one-variable warm-up of the
  process.
- graph ops: nodes of the traced step graph
  (`concrete_function.graph.get_operations()`: the update math plus the
  Placeholders that capture variables, slots and gradients, constants, reads,
  no-ops) plus the nodes of each distinct function it calls, counted once as
  each was traced once. expanded ops: every function call expanded at every
  call site, i.e. every op that runs each step, inside a call or not (the
  runtime inlines ordinary calls, but not official_ext's per-variable
  update, marked `_noinline`: it runs as one call per variable, see
  `runtime_calls`); expanded ops/var = expanded ops / variables.
- peak memory: in a fresh process per optimizer, with the variables and
  gradients already built, how far the resident set size peaks (Linux VmHWM)
  above its level before creating the optimizer, over its first call and
  warm-up steps: slots, step temporaries and the traced graph.
- ratios are to legacy momentum SGD on the same workload."""


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
  """What to run; see the flags of the same names."""
  workloads: Sequence[str]
  repeats: int
  steps_per_repeat: int
  warmup_steps: int
  quick: bool
  jit_compile: bool
  measure_memory: bool


@dataclasses.dataclass(frozen=True)
class ContenderResult:
  """One optimizer's measurements on one workload."""
  label: str
  first_call_seconds: float
  graph: graph_size.GraphSize
  step_seconds: Sequence[float]  # One per-step time for each repeat.
  peak_memory_bytes: Optional[int]


@dataclasses.dataclass(frozen=True)
class WorkloadResult:
  """All optimizers' measurements on one workload, baseline last."""
  name: str
  num_variables: int
  num_parameters: int
  contenders: Sequence[ContenderResult]

  @property
  def baseline(self) -> ContenderResult:
    return self.contenders[-1]


def rotated_order(count: int, repeat: int) -> List[int]:
  """Round-robin order for a repeat: each repeat starts one place later."""
  return [(repeat + i) % count for i in range(count)]


def measure_steady_state(bursts: Sequence[Callable[[int], float]],
                         repeats: int, steps: int) -> List[List[float]]:
  """Alternates bursts of steps between contenders.

  Args:
    bursts: per contender, a function running that many steps and returning
      their wall time in seconds.
    repeats: how many bursts each contender runs.
    steps: steps per burst.

  Returns:
    Per contender, the per-step time of each of its bursts.
  """
  per_step = [[] for _ in bursts]
  for repeat in range(repeats):
    for index in rotated_order(len(bursts), repeat):
      per_step[index].append(bursts[index](steps) / steps)
  return per_step


def _runners(name: str,
             config: BenchmarkConfig) -> List[optimizer_runs.StepRunner]:
  """Every contender's runner on workload `name`, in `CONTENDERS` order."""
  if name == train_step.WORKLOAD:
    return [train_step.make_runner(c, config.quick, config.jit_compile)
            for c in optimizer_runs.CONTENDERS]
  specs = workloads.workload_specs(name, config.quick)
  gradients = workloads.gradients(specs)
  return [optimizer_runs.make_runner(c, specs, gradients, config.jit_compile)
          for c in optimizer_runs.CONTENDERS]


def benchmark_workload(name: str, config: BenchmarkConfig) -> WorkloadResult:
  """Measures every contender on one workload.

  Args:
    name: one of `WORKLOADS`.
    config: the run's settings.

  Returns:
    The measurements, contenders in `optimizer_runs.CONTENDERS` order.
  """
  runners = _runners(name, config)
  num_variables = runners[0].num_variables
  num_parameters = runners[0].num_parameters
  first_calls = [runner.first_call() for runner in runners]
  graphs = [runner.traced_graph_size() for runner in runners]
  for runner in runners:
    runner.run_burst(config.warmup_steps)
  step_seconds = measure_steady_state([r.run_burst for r in runners],
                                      config.repeats, config.steps_per_repeat)
  # Free this process's copies before the probes build theirs.
  del runners
  gc.collect()
  # The probes build variable sets; the train step's memory is the model's.
  measure_memory = config.measure_memory and name != train_step.WORKLOAD
  peaks = (probe_peak_memory(name, config) if measure_memory else
           [None] * len(optimizer_runs.CONTENDERS))
  return WorkloadResult(
      name=name,
      num_variables=num_variables,
      num_parameters=num_parameters,
      contenders=[
          ContenderResult(c.label, first, ops, steps, peak)
          for c, first, ops, steps, peak in zip(
              optimizer_runs.CONTENDERS, first_calls, graphs, step_seconds,
              peaks, strict=True)
      ])


def probe_peak_memory(name: str, config: BenchmarkConfig) -> List[int]:
  """Peak RSS growth per contender, each in its own process.

  One probe at a time: the peak of temporaries depends on how many ops the
  executor runs at once, which probes competing for the cores would lower.

  Args:
    name: the workload.
    config: the run's settings.

  Returns:
    Bytes per contender, in `optimizer_runs.CONTENDERS` order.
  """
  return [
      memory_probe.probe_in_subprocess(name, c.key, config.quick,
                                       config.jit_compile, config.warmup_steps)
      for c in optimizer_runs.CONTENDERS
  ]


def median_step_ms(result: ContenderResult) -> float:
  return 1e3 * statistics.median(result.step_seconds)


def _ratio(value: float, baseline: float) -> str:
  return f'{value / baseline:.2f}×'


def _memory_mib(peak_bytes: Optional[int]) -> str:
  return 'not measured' if peak_bytes is None else f'{peak_bytes / _MIB:.1f}'


def table_row(result: ContenderResult, baseline: ContenderResult,
              num_variables: int) -> List[str]:
  """One table row, columns as `COLUMNS`."""
  return [
      result.label,
      f'{median_step_ms(result):.2f}',
      f'{1e3 * min(result.step_seconds):.2f}–'
      f'{1e3 * max(result.step_seconds):.2f}',
      _ratio(median_step_ms(result), median_step_ms(baseline)),
      f'{result.first_call_seconds:.2f}',
      _ratio(result.first_call_seconds, baseline.first_call_seconds),
      f'{result.graph.traced_ops:,}',
      _ratio(result.graph.traced_ops, baseline.graph.traced_ops),
      f'{result.graph.expanded_ops:,}',
      _ratio(result.graph.expanded_ops, baseline.graph.expanded_ops),
      f'{result.graph.expanded_ops / num_variables:.1f}',
      _memory_mib(result.peak_memory_bytes),
  ]


def comparison_line(result: WorkloadResult) -> str:
  """official_ext LARS's step, first call and graph over Model Garden's."""
  ours, model_garden = result.contenders[0], result.contenders[1]
  ratios = {
      'step': median_step_ms(ours) / median_step_ms(model_garden),
      'first call': (ours.first_call_seconds /
                     model_garden.first_call_seconds),
      'graph ops': ours.graph.traced_ops / model_garden.graph.traced_ops,
  }
  return (f'{ours.label} ÷ {model_garden.label}: ' +
          ', '.join(f'{metric} {ratio:.2f}×'
                    for metric, ratio in ratios.items()) + '.')


def format_workload(result: WorkloadResult) -> str:
  """The markdown section for one workload: title, table, goal line."""
  rows = [COLUMNS, ['---'] + ['---:'] * (len(COLUMNS) - 1)]
  rows += [
      table_row(c, result.baseline, result.num_variables)
      for c in result.contenders
  ]
  table = '\n'.join('| ' + ' | '.join(row) + ' |' for row in rows)
  return (f'### {result.name}: {result.num_variables:,} variables, '
          f'{result.num_parameters:,} parameters\n\n{table}\n\n'
          f'{comparison_line(result)}\n')


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo ('unknown CPU' if absent)."""
  try:
    with open('/proc/cpuinfo') as cpuinfo:
      for line in cpuinfo:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return 'unknown CPU'


def command_line(config: BenchmarkConfig) -> str:
  """The command that reproduces a run with `config`."""
  args = [
      'python -m official_ext.benchmarks.optimizer_step',
      f'--workloads={",".join(config.workloads)}',
      f'--repeats={config.repeats}',
      f'--steps_per_repeat={config.steps_per_repeat}',
      f'--warmup_steps={config.warmup_steps}',
      f'--measure_memory={config.measure_memory}',
  ]
  args += [f'--{name}' for name in ('quick', 'jit_compile')
           if getattr(config, name)]
  return ' '.join(args)


def format_header(config: BenchmarkConfig, now: datetime.datetime) -> str:
  """Date, machine, versions and settings of a run."""
  return (
      f'## Optimizer step benchmark{" (--quick)" if config.quick else ""}\n\n'
      f'Measured {now:%Y-%m-%d %H:%M} UTC on {cpu_model()}, '
      f'{os.cpu_count()} cores; TensorFlow {tf.__version__}, '
      f'tf_keras {tf_keras.__version__}; {config.repeats} repeats × '
      f'{config.steps_per_repeat} steps per optimizer, round-robin, after '
      f'untimed warm-up steps: {config.warmup_steps}; '
      f'jit_compile={config.jit_compile}.\n\n'
      f'Command: `{command_line(config)}`\n')


def run(config: BenchmarkConfig) -> str:
  """Runs the benchmark and returns the markdown report.

  Args:
    config: what to run.

  Returns:
    Header, one section per workload (printed as each finishes) and the
    column legend.
  """
  header = format_header(config, datetime.datetime.now(datetime.UTC))
  print(header, flush=True)
  optimizer_runs.warm_up_process(optimizer_runs.CONTENDERS, config.jit_compile)
  sections = []
  for name in config.workloads:
    sections.append(format_workload(benchmark_workload(name, config)))
    print(sections[-1], flush=True)
  print(LEGEND, flush=True)
  return '\n'.join([header, *sections, LEGEND]) + '\n'


def define_timing_flags(flag_values: flags.FlagValues,
                        workload_names: Sequence[str], subject: str,
                        steps_per_repeat: int, warmup_steps: int,
                        quick_help: str):
  """Defines the flags every timing benchmark program has.

  `--workloads` (validated: one or more of `workload_names`, each once),
  `--repeats`, `--steps_per_repeat`, `--warmup_steps` and `--quick`.

  Args:
    flag_values: where to define them.
    workload_names: the workloads the program can run, all by default.
    subject: what is timed, for the help texts ('optimizer', 'variant').
    steps_per_repeat: the default steps in each timed burst.
    warmup_steps: the default untimed steps after the first call.
    quick_help: the help text of `--quick`.
  """
  flags.DEFINE_list(
      'workloads', list(workload_names),
      f'Comma-separated workloads, from {list(workload_names)}.',
      flag_values=flag_values)
  flags.DEFINE_integer('repeats', 7, f'Timed bursts per {subject}.',
                       lower_bound=1, flag_values=flag_values)
  flags.DEFINE_integer('steps_per_repeat', steps_per_repeat,
                       'Steps in each timed burst.', lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer('warmup_steps', warmup_steps,
                       f'Untimed steps per {subject} after its first call.',
                       lower_bound=0, flag_values=flag_values)
  flags.DEFINE_bool('quick', False, quick_help, flag_values=flag_values)
  flags.register_validator(
      'workloads',
      lambda names: (bool(names) and len(set(names)) == len(names) and
                     all(name in workload_names for name in names)),
      message=f'--workloads must name one or more of '
      f'{list(workload_names)}, each once', flag_values=flag_values)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS):
  """Defines the benchmark's command-line flags on `flag_values`."""
  define_timing_flags(
      flag_values, WORKLOADS, 'optimizer', steps_per_repeat=5,
      warmup_steps=2,
      quick_help=(f'Smoke run: each workload cut to its first '
                  f'{workloads.QUICK_NUM_VARIABLES} variables with '
                  f'dimensions <= {workloads.QUICK_MAX_DIM}; unless given, '
                  f'--repeats={_QUICK_REPEATS} '
                  f'--steps_per_repeat={_QUICK_STEPS_PER_REPEAT} '
                  f'--warmup_steps={_QUICK_WARMUP_STEPS}.'))
  flags.DEFINE_bool('jit_compile', False,
                    'Wrap the step in tf.function(jit_compile=True).',
                    flag_values=flag_values)
  flags.DEFINE_bool('measure_memory', False,
                    'Measure peak memory (one extra process per optimizer '
                    'and workload).', flag_values=flag_values)
  flags.DEFINE_string('output', None,
                      'Also write the markdown report to this file.',
                      flag_values=flag_values)
  flags.register_validator(
      'output', _valid_output,
      message='--output must be a file path in an existing directory',
      flag_values=flag_values)


def _valid_output(path: Optional[str]) -> bool:
  return path is None or (
      not os.path.isdir(path) and
      os.path.isdir(os.path.dirname(os.path.abspath(path))))


def config_from_flags(flag_values: flags.FlagValues) -> BenchmarkConfig:
  """A `BenchmarkConfig` from parsed flags, with `--quick`'s defaults."""

  def setting(name: str, quick_default):
    if flag_values.quick and not flag_values[name].present:
      return quick_default
    return flag_values[name].value

  return BenchmarkConfig(
      workloads=tuple(flag_values.workloads),
      repeats=setting('repeats', _QUICK_REPEATS),
      steps_per_repeat=setting('steps_per_repeat', _QUICK_STEPS_PER_REPEAT),
      warmup_steps=setting('warmup_steps', _QUICK_WARMUP_STEPS),
      quick=flag_values.quick,
      jit_compile=flag_values.jit_compile,
      measure_memory=flag_values.measure_memory)


def run_from_flags(flag_values: flags.FlagValues) -> str:
  """Runs with parsed flags; writes `--output` only once the run succeeded."""
  report = run(config_from_flags(flag_values))
  if flag_values.output:
    partial_path = flag_values.output + '.partial'
    with open(partial_path, 'w') as output:
      output.write(report)
    os.replace(partial_path, flag_values.output)
  return report


def benchmark_main(
    run_with_flags: Callable[[flags.FlagValues], str]
) -> Callable[[Sequence[str]], None]:
  """The absl `main` of a benchmark program.

  Args:
    run_with_flags: the program's `run_from_flags`.

  Returns:
    A function for `app.run` that refuses positional arguments and runs
    `run_with_flags` on the parsed flags.
  """

  def main(argv: Sequence[str]):
    if len(argv) > 1:
      raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
    # Every contender gets its own tf.function by design; TensorFlow's
    # "excessive retracing" warning about that would bury the tables.
    tf.get_logger().setLevel(logging.ERROR)
    run_with_flags(flags.FLAGS)

  return main


main = benchmark_main(run_from_flags)


if __name__ == '__main__':
  define_flags()
  app.run(main)
