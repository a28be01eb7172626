"""Tests for official_ext/benchmarks/lars_telemetry.py (never a time value)."""
from absl import flags
import pytest

from official_ext.benchmarks import lars_telemetry


def _parse(argv):
  flag_values = flags.FlagValues()
  lars_telemetry.define_flags(flag_values)
  flag_values(['lars_telemetry', *argv])
  return flag_values


def test_quick_run_prints_every_variant(capsys):
  report = lars_telemetry.run_from_flags(
      _parse(['--quick', '--workloads=many_small', '--warmup_steps=1']))
  assert capsys.readouterr().out.strip() == report.strip()
  header = '| ' + ' | '.join(lars_telemetry.COLUMNS) + ' |'
  assert report.count(header) == 1
  rows = {line.split('|')[1].strip(): [c.strip() for c in
                                        line.strip('|').split('|')]
          for line in report.splitlines() if line.startswith('| LARS')}
  assert list(rows) == [v.label for v in lars_telemetry.VARIANTS]
  for cells in rows.values():
    assert len(cells) == len(lars_telemetry.COLUMNS) and all(cells)
  assert rows['LARS (no telemetry argument)'][-1] == '—'
  assert rows['LARS telemetry=True'][-1] != '—'


def test_telemetry_off_traces_the_default_graph_and_on_a_larger_one():
  results = lars_telemetry.benchmark_workload(
      'resnet50', quick=True, repeats=1, steps_per_repeat=1, warmup_steps=0)
  default, off, on = results
  assert default.graph == off.graph
  assert on.graph.traced_ops > off.graph.traced_ops
  assert on.graph.expanded_ops > off.graph.expanded_ops
  assert (default.telemetry_read_seconds, off.telemetry_read_seconds) == (
      None, None)
  assert on.telemetry_read_seconds is not None


def test_unknown_workload_is_rejected():
  with pytest.raises(flags.IllegalFlagValueError, match='--workloads'):
    _parse(['--workloads=bogus'])
