"""Tests for official_ext/benchmarks/optimizer_step.py (never a time value)."""

from absl import flags
import pytest

from official_ext.benchmarks import graph_size
from official_ext.benchmarks import optimizer_step

_HEADER = ('| optimizer | median step (ms) | step min–max (ms) | '
           'step ratio vs SGD | first call (s) | first-call ratio | '
           'graph ops | graph-op ratio | expanded ops | expanded-op ratio | '
           'expanded ops/var | peak memory (MiB) |')
_LABELS = ('official_ext LARS', 'Model Garden LARS', 'legacy momentum SGD')


def _parse(argv):
  flag_values = flags.FlagValues()
  optimizer_step.define_flags(flag_values)
  flag_values(['optimizer_step', *argv])
  return flag_values


def _rows(report, label):
  return [
      line for line in report.splitlines() if line.startswith(f'| {label} |')
  ]


def test_quick_run_prints_a_full_table_for_every_optimizer(tmp_path, capsys):
  output = tmp_path / 'report.md'
  # --quick skips the memory probes (one process each); memory_probe_test
  # runs one.
  report = optimizer_step.run_from_flags(
      _parse(['--quick', f'--output={output}']))

  printed = capsys.readouterr().out
  assert printed.count(_HEADER) == 4
  for workload in ('resnet50', 'many_small', 'bert_base'):
    assert f'### {workload}: 20 variables' in printed
  # The quick model: convolution, batch normalization, dense layer.
  assert '### resnet50_train: 6 variables, 170 parameters' in printed
  for label in _LABELS:
    rows = _rows(printed, label)
    assert len(rows) == 4
    for row in rows:
      cells = [cell.strip() for cell in row.strip('|').split('|')]
      assert len(cells) == _HEADER.count('|') - 1
      assert all(cells) and cells[-1] == 'not measured'
  assert printed.count('official_ext LARS ÷ Model Garden LARS: step ') == 4
  assert 'Command: `python -m official_ext.benchmarks.optimizer_step' in printed
  assert output.read_text() == report
  assert not (tmp_path / 'report.md.partial').exists()


def test_unknown_workload_is_rejected_naming_flag_and_value():
  with pytest.raises(flags.IllegalFlagValueError,
                     match=r'--workloads=.*bogus'):
    _parse(['--workloads=resnet50,bogus'])


def test_output_in_missing_directory_is_rejected(tmp_path):
  with pytest.raises(flags.IllegalFlagValueError, match='--output='):
    _parse([f'--output={tmp_path}/missing/report.md'])


def test_quick_defaults_yield_to_explicit_flags():
  config = optimizer_step.config_from_flags(
      _parse(['--quick', '--repeats=5', '--measure_memory']))
  assert (config.repeats, config.steps_per_repeat, config.warmup_steps,
          config.measure_memory) == (5, 2, 1, True)
  quick = optimizer_step.config_from_flags(_parse(['--quick']))
  assert (quick.repeats, quick.measure_memory) == (2, False)
  full = optimizer_step.config_from_flags(_parse([]))
  assert (full.repeats, full.steps_per_repeat, full.quick,
          full.measure_memory) == (7, 5, False, False)
  assert full.workloads == ('resnet50', 'many_small', 'bert_base',
                            'resnet50_train')


@pytest.mark.parametrize('argv', [
    [],
    ['--quick', '--measure_memory', '--steps_per_repeat=4'],
    ['--jit_compile', '--nomeasure_memory', '--workloads=bert_base,resnet50'],
])
def test_printed_command_reproduces_the_config(argv):
  config = optimizer_step.config_from_flags(_parse(argv))
  printed_argv = optimizer_step.command_line(config).split()[3:]
  assert optimizer_step.config_from_flags(_parse(printed_argv)) == config


def test_steady_state_alternates_and_rotates_the_order():
  calls = []

  def burst(index):

    def run(steps):
      calls.append(index)
      return 10.0 * (index + 1) * steps

    return run

  per_step = optimizer_step.measure_steady_state(
      [burst(0), burst(1), burst(2)], repeats=3, steps=4)

  assert calls == [0, 1, 2, 1, 2, 0, 2, 0, 1]
  assert per_step == [[10.0] * 3, [20.0] * 3, [30.0] * 3]


def _result(label, step_ms, first_s, ops, expanded_ops=None, peak_bytes=None):
  return optimizer_step.ContenderResult(
      label=label,
      first_call_seconds=first_s,
      graph=graph_size.GraphSize(ops, expanded_ops or ops),
      step_seconds=[step_ms / 1e3 * f for f in (0.5, 1.0, 3.0)],
      peak_memory_bytes=peak_bytes)


def test_row_shows_medians_and_ratios_to_the_baseline():
  baseline = _result('SGD', step_ms=10.0, first_s=2.0, ops=500)
  lars = _result('LARS', step_ms=15.0, first_s=5.0, ops=750,
                 expanded_ops=2000, peak_bytes=3 * 1024 * 1024)

  assert optimizer_step.table_row(lars, baseline, num_variables=100) == [
      'LARS', '15.00', '7.50–45.00', '1.50×', '5.00', '2.50×', '750',
      '1.50×', '2,000', '4.00×', '20.0', '3.0'
  ]
  assert optimizer_step.table_row(baseline, baseline, 100)[-1] == (
      'not measured')


def test_comparison_line_divides_ours_by_model_garden():
  result = optimizer_step.WorkloadResult(
      name='w', num_variables=10, num_parameters=100,
      contenders=[
          _result('official_ext LARS', step_ms=15.0, first_s=4.0, ops=1000),
          _result('Model Garden LARS', step_ms=20.0, first_s=16.0, ops=4000),
          _result('SGD', step_ms=10.0, first_s=2.0, ops=500),
      ])
  assert optimizer_step.comparison_line(result) == (
      'official_ext LARS ÷ Model Garden LARS: step 0.75×, first call 0.25×, '
      'graph ops 0.25×.')
