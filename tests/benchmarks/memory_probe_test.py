"""Tests for official_ext/benchmarks/memory_probe.py."""

import numpy as np

from official_ext.benchmarks import memory_probe

_MIB = 1024 * 1024


def test_peak_rss_growth_sees_memory_freed_before_it_returns():

  def touch_and_free():
    block = np.ones(64 * _MIB, np.uint8)  # Touched, so resident.
    del block

  # Linux updates RSS counters lazily (per-CPU batches), hence the slack.
  assert memory_probe.peak_rss_growth(touch_and_free) >= 60 * _MIB
  sizes = memory_probe.rss_and_peak_bytes()
  assert sizes['peak'] >= sizes['rss'] > 0


def test_probe_command_names_every_setting():
  command = memory_probe.probe_command('resnet50', 'momentum_sgd', quick=True,
                                       jit_compile=False, warmup_steps=2)
  assert command[1:] == [
      '-m', 'official_ext.benchmarks.memory_probe', '--workload=resnet50',
      '--optimizer=momentum_sgd', '--warmup_steps=2', '--quick=True',
      '--jit_compile=False'
  ]


def test_probe_in_subprocess_reports_the_childs_growth():
  growth = memory_probe.probe_in_subprocess(
      'many_small', 'momentum_sgd', quick=True, jit_compile=False,
      warmup_steps=1)
  # Slots and the traced graph take some memory; a 20-variable toy far less
  # than a gibibyte.
  assert 0 < growth < 1024 * _MIB
