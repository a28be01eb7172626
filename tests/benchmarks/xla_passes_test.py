"""Tests for official_ext/benchmarks/xla_passes.py."""

from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import xla_passes

_HLO = """HloModule m

%fused (p: f32[4,2]) -> f32[4,2] {
  %p = f32[4,2]{1,0} parameter(0)
  ROOT %n = f32[4,2]{1,0} negate(%p)
}

ENTRY %main (a: f32[4,2], b: f32[4,2]) -> (f32[4,2], f32[]) {
  %a = f32[4,2]{1,0} parameter(0)
  %b = f32[4,2]{1,0} parameter(1)
  %flat = f32[8]{0} bitcast(%a)
  %sum = f32[] reduce(%flat, %zero), dimensions={0}, to_apply=%add
  %fusion = f32[4,2]{1,0} fusion(%a, %b), kind=kLoop, calls=%fused
  ROOT %t = (f32[4,2]{1,0}, f32[]) tuple(%fusion, %sum)
}
"""


def test_counts_full_size_reads_and_writes_of_entry_kernels():
  # reduce reads the bitcast of a; the fusion reads a and b, writes one.
  assert xla_passes.count_passes(_HLO, num_elements=8) == (
      xla_passes.ArrayPasses(kernels=2, reads=3, writes=1))


def test_compiled_momentum_sgd_reads_four_and_writes_two_arrays():
  # v ← m·v + lr·g reads v and g, writes v; w ← w − v reads both, writes w.
  hlo = xla_passes.compiled_step_hlo(
      optimizer_runs.contender('momentum_sgd'))
  passes = xla_passes.count_passes(
      hlo, xla_passes.SHAPE[0] * xla_passes.SHAPE[1])
  assert (passes.reads, passes.writes) == (4, 2)


def test_table_has_a_row_per_optimizer_with_ratio_to_the_last():
  table = xla_passes.format_table({
      'LARS': xla_passes.ArrayPasses(7, 10, 5),
      'SGD': xla_passes.ArrayPasses(2, 4, 2),
  })
  assert '| LARS | 7 | 10 | 5 | 15 | 2.50× |' in table
  assert '| SGD | 2 | 4 | 2 | 6 | 1.00× |' in table
