"""Tests of the Keras 3 optimizer benchmarks: tables, optimizers, passes."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from official_ext.keras import benchmark
from official_ext.keras import benchmark_optimizers

REPO = pathlib.Path(__file__).resolve().parents[2]

# One Keras 3 LARS step and one optax `lars` step on the quick ResNet-50
# shapes under the JAX backend, printed as the largest relative difference.
_ONE_STEP_OF_EACH = '''
import json
import keras
import numpy as np
from official_ext.benchmarks import workloads
from official_ext.keras import benchmark, benchmark_optimizers
specs = workloads.workload_specs('resnet50', quick=True)
values = [v.numpy() for v in workloads.make_variables(specs)]
grads = [keras.ops.convert_to_tensor(g.numpy())
         for g in workloads.gradients(specs)]
results = []
for make_step in (
    lambda v: benchmark_optimizers.jax_keras_step(
        benchmark_optimizers.make_lars(), v),
    benchmark_optimizers.jax_optax_step):
  step, state = make_step(benchmark._keras_variables(keras, specs, values))
  for _ in range(3):
    state = step(*state, grads)
  results.append([np.asarray(w) for w in state[0]])
moved = max(float(np.max(np.abs(w - v))) for w, v in zip(results[0], values))
print(json.dumps({'moved': moved, 'difference': max(
    float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    for a, b in zip(*results))}))
'''


def _jax_env():
  return dict(os.environ, KERAS_BACKEND='jax', JAX_PLATFORMS='cpu',
              PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL='2')


def test_table_gives_medians_and_their_ratio_to_keras_sgd():
  sgd = benchmark_optimizers.SGD_LABEL
  results = {'jax': {'resnet50': {
      benchmark_optimizers.LARS_LABEL: [0.003, 0.001, 0.002],
      benchmark_optimizers.OPTAX_LABEL: [0.009, 0.008, 0.007],
      sgd: [0.001, 0.0005, 0.004]}}}
  rows = benchmark.format_table(results).splitlines()
  assert rows[2:] == [
      '| resnet50 | jax | Keras 3 LARS | 2.00 | 2.00 |',
      '| resnet50 | jax | optax lars | 8.00 | 8.00 |',
      f'| resnet50 | jax | {sgd} | 1.00 | 1.00 |']


def test_optax_lars_is_the_keras_lars_step():
  pytest.importorskip('optax')
  process = subprocess.run([sys.executable, '-c', _ONE_STEP_OF_EACH],
                           cwd=REPO, env=_jax_env(), capture_output=True,
                           text=True, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  result = json.loads(process.stdout.splitlines()[-1])
  assert result['moved'] > 1e-4  # The steps did change the variables,
  assert result['difference'] < 1e-5  # and both the same way.


def test_jax_passes_counts_each_optimizer_and_lars_adds_four_reads_to_sgd():
  process = subprocess.run(
      [sys.executable, '-m', 'official_ext.keras.jax_passes'], cwd=REPO,
      env=_jax_env(), capture_output=True, text=True, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  passes = {row.split(' | ')[0].lstrip('| '): int(row.split(' | ')[4])
            for row in process.stdout.splitlines()
            if row.startswith('| ') and row.split(' | ')[4].isdigit()}
  expected = [benchmark_optimizers.LARS_LABEL, benchmark_optimizers.SGD_LABEL]
  if benchmark_optimizers.optax_available():
    expected.insert(1, benchmark_optimizers.OPTAX_LABEL)
    assert passes[benchmark_optimizers.LARS_LABEL] < passes[
        benchmark_optimizers.OPTAX_LABEL]
  assert list(passes) == expected
  # One more read of `w` for the weight decay, and the trust ratio's norms:
  # `w` for `‖w‖`, `w` and `g` for `‖g + λw‖`, formed in its reduction.
  assert passes[benchmark_optimizers.LARS_LABEL] <= passes[
      benchmark_optimizers.SGD_LABEL] + 4


def test_jax_passes_refuses_another_backend():
  env = dict(_jax_env(), KERAS_BACKEND='tensorflow')
  process = subprocess.run(
      [sys.executable, '-m', 'official_ext.keras.jax_passes'], cwd=REPO,
      env=env, capture_output=True, text=True, check=False)
  assert process.returncode != 0
  assert "needs KERAS_BACKEND=jax, not 'tensorflow'" in process.stderr


@pytest.mark.e2e
def test_quick_run_measures_every_installed_backend(tmp_path):
  output = tmp_path / 'speed.md'
  env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL='2')
  process = subprocess.run(
      [sys.executable, '-m', 'official_ext.keras.benchmark', '--quick',
       '--workloads=many_small', '--repeats=2', '--steps_per_repeat=1',
       '--warmup_steps=0', f'--output={output}'],
      cwd=REPO, env=env, capture_output=True, text=True, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  report = output.read_text()
  rows = [row.split(' | ') for row in report.splitlines()
          if row.startswith('| many_small')]
  installed = [backend for backend in benchmark.BACKENDS
               if importlib.util.find_spec(backend) is not None]
  assert sorted({row[1] for row in rows}) == sorted(installed)
  assert ('torch (not installed)' in report) == ('torch' not in installed)
  labels = {(row[1], row[2]) for row in rows}
  assert ('tensorflow', benchmark.TF_KERAS_LARS_LABEL) in labels
  assert (('jax', benchmark_optimizers.OPTAX_LABEL) in labels) == (
      benchmark_optimizers.optax_available())
  for row in rows:
    assert float(row[-1].rstrip(' |')) > 0


# The benchmark's command line in a process where torch cannot be imported.
_WITHOUT_TORCH = '''
import sys
from absl import app
from official_ext.keras import benchmark
sys.modules['torch'] = None  # What importlib.util.find_spec reads as absent.
app.run(benchmark.main)
'''


@pytest.mark.parametrize('backends, message', [
    ('jax,mxnet', "--backends: ['mxnet'] not in"),
    ('jax,torch', "--backends: ['torch'] not installed (the torch backend: "
     'pip install -e ".[torch]")')])
def test_a_backend_it_cannot_measure_is_refused_before_measuring(
    backends, message):
  env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL='2')
  process = subprocess.run(
      [sys.executable, '-c', _WITHOUT_TORCH, f'--backends={backends}'],
      cwd=REPO, env=env, capture_output=True, text=True, check=False,
      timeout=120)
  assert process.returncode != 0
  assert message in process.stderr
  assert 'worker' not in process.stderr
