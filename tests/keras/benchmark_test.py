"""Tests of the Keras 3 optimizer-step benchmark."""

import os
import pathlib
import subprocess
import sys

import pytest

from official_ext.keras import benchmark

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_table_gives_medians_and_their_ratio():
  results = {'jax': {'resnet50': {'LARS': [0.003, 0.001, 0.002],
                                  'SGD': [0.001, 0.0005, 0.004]}}}
  rows = benchmark.format_table(results).splitlines()
  assert rows[-1] == '| resnet50 | jax | 2.00 | 1.00 | 2.00 |'
  assert len(rows) == 3


@pytest.mark.e2e
def test_quick_run_measures_every_backend(tmp_path):
  output = tmp_path / 'speed.md'
  env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL='2')
  process = subprocess.run(
      [sys.executable, '-m', 'official_ext.keras.benchmark', '--quick',
       '--workloads=many_small', '--repeats=2', '--steps_per_repeat=1',
       '--warmup_steps=0', f'--output={output}'],
      cwd=REPO, env=env, capture_output=True, text=True, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  rows = [line for line in output.read_text().splitlines()
          if line.startswith('| many_small')]
  assert [row.split(' | ')[1] for row in rows] == list(benchmark.BACKENDS)
  for row in rows:
    assert float(row.split(' | ')[-1].rstrip(' |')) > 0
