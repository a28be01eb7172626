"""The Keras 3 LARS on many devices and hosts computes what one device does.

Each engine runs in its own processes (`tests/keras/distribution_cases.py`:
the backend, the device count and the cluster are fixed at startup), which
train the same model from the same weights on the same global batches; this
file compares what they saved with one device. The one-device reference is
the Keras 3 LARS that `lars_test.py` checks against the tf_keras LARS and
NumPy; here it is also checked across engines (TensorFlow against JAX), and
the first step of each sharded variable against its norm in NumPy.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import pytest

from tests import loopback
from tests import required_or_skipped
from tests.keras import distribution_cases as cases

REPO = pathlib.Path(__file__).resolve().parents[2]
# ‖distributed − one device‖ / ‖one device − start‖ per weight and slot
# (start: the initial weight, or 0 for a slot). What limits it: float32
# sums in another order (the gradient all-reduce, norms of sharded
# variables), ~1e-7 per step, carried through 12 steps of layer
# normalization and trust ratios; measured ≤ 2e-6.
TOLERANCE = 1e-4
# Seconds a process (or a pair of cooperating processes) may take.
PROCESS_TIMEOUT = 300
PATHS = ['embedding/embeddings', 'hidden/kernel', 'hidden/bias', 'norm/gamma',
         'norm/beta', 'logits/kernel', 'logits/bias']


@dataclasses.dataclass(frozen=True)
class Run:
  """One `distribution_cases` process.

  Attributes:
    command: the command, then its arguments after the output path.
    backend: the Keras backend.
    devices: JAX's host device count, if set.
    environment: extra environment variables.
  """
  command: Sequence[str]
  backend: str
  devices: Optional[int] = None
  environment: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _run(directory: pathlib.Path,
         runs: Sequence[Run]) -> List[Dict[str, np.ndarray]]:
  """Runs processes at the same time; what each saved.

  All are killed if one fails or they outlast `PROCESS_TIMEOUT`.

  Args:
    directory: where the outputs and logs go.
    runs: the processes.

  Returns:
    Each process's saved arrays.
  """
  processes, outputs, logs = [], [], []
  for index, run in enumerate(runs):
    env = dict(os.environ, KERAS_BACKEND=run.backend, PYTHONPATH=str(REPO),
               TF_CPP_MIN_LOG_LEVEL='2', **run.environment)
    if run.devices:
      env['XLA_FLAGS'] = (
          f'--xla_force_host_platform_device_count={run.devices}')
    name = f'{run.command[0]}_{index}'
    outputs.append(directory / f'{name}.npz')
    logs.append(directory / f'{name}.log')
    with open(logs[-1], 'w') as log:
      processes.append(subprocess.Popen(
          [sys.executable, '-m', 'tests.keras.distribution_cases',
           run.command[0], str(outputs[-1]), *run.command[1:]],
          cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
  try:
    for process in processes:
      process.wait(timeout=PROCESS_TIMEOUT)
  except subprocess.TimeoutExpired:
    pass
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
  failed = [(run, log) for run, log, process in zip(runs, logs, processes)
            if process.returncode != 0]
  assert not failed, '\n'.join(
      f'{run} failed:\n{log.read_text()[-3000:]}' for run, log in failed)
  results = []
  for output in outputs:
    with np.load(output) as saved:
      results.append(dict(saved))
  return results


def assert_same_training(got: Mapping[str, np.ndarray], case: str,
                         want: Mapping[str, np.ndarray],
                         reference: str = 'one_device',
                         options: Sequence[str] = tuple(cases.OPTIONS),
                         tolerance: float = TOLERANCE) -> None:
  """Every weight and slot of `got[case/...]` is `want[reference/...]`'s.

  Prints the worst relative difference.

  Args:
    got: a run's arrays.
    case: the prefix of what to check in `got` (`<case>/<options>/...`).
    want: the reference run's arrays (with `initial/<path>`).
    reference: the prefix of the reference in `want`.
    options: the `cases.OPTIONS` that `got` must have trained with.
    tolerance: bound on `‖got − want‖ / ‖want − start‖`.
  """
  checked = sorted(key[len(case) + 1:] for key in got
                   if key.startswith(f'{case}/'))
  assert {key.split('/')[0] for key in checked} == set(options)
  for name in options:
    for kind in ('weights', 'slots'):
      assert {f'{name}/{kind}/{path}' for path in PATHS} <= set(checked)
  worst = 0.0
  for key in checked:
    _, kind, path = key.split('/', 2)
    expected = want[f'{reference}/{key}']
    start = 0 if kind == 'slots' else want[f'initial/{path}']
    moved = np.linalg.norm(expected - start)
    assert moved > 0, key
    error = np.linalg.norm(got[f'{case}/{key}'] - expected) / moved
    assert error <= tolerance, f'{case}/{key}: {error:.3g} > {tolerance}'
    worst = max(worst, error)
  # Shown by `pytest -rP`: the figures of docs/keras.md.
  print(f'{case} against {reference}: worst relative difference {worst:.2g}')


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Dict[str, Dict[str, np.ndarray]]:
  """The 4-device JAX and 2-CPU TensorFlow processes, then their resumes.

  JAX and TensorFlow run at the same time: the processes spend much of
  their time importing and compiling, which overlaps well.
  """
  directory = tmp_path_factory.mktemp('runs')
  first = _run(directory, [
      Run(['jax_devices', str(directory)], 'jax', devices=4),
      Run(['tf_mirrored', str(directory)], 'tensorflow')])
  resumed = _run(directory, [
      Run(['jax_resume', str(directory)], 'jax', devices=4),
      Run(['tf_resume', str(directory)], 'tensorflow')])
  return dict(zip(['jax', 'tensorflow', 'jax_resumed', 'tensorflow_resumed'],
                  first + resumed))


def test_jax_data_parallel_over_4_devices_equals_one_device(runs):
  devices = runs['jax']
  assert devices['backend'] == 'jax'
  assert_same_training(devices, 'data_parallel', devices)


def test_jax_model_parallel_on_2x2_mesh_equals_one_device(runs):
  devices = runs['jax']
  for kind in ('layout', 'slot_layout'):  # Each slot is laid out as its weight.
    assert str(devices[f'{kind}/embedding/embeddings']) == "P(None, 'model')"
    assert str(devices[f'{kind}/hidden/kernel']) == "P('model', None)"
    assert str(devices[f'{kind}/logits/kernel']) == 'P(None, None)'
  assert_same_training(devices, 'model_parallel', devices)


@pytest.mark.parametrize('path', ['embedding/embeddings', 'hidden/kernel'])
def test_jax_model_parallel_trust_ratio_is_the_whole_variables(
    runs, path):
  """With classic momentum the first step is `lr·η‖w‖·ĝ`: ‖w‖ over all shards.

  The same step from one shard's norms (what a per-shard computation would
  give) is computed here, and differs by far more than `TOLERANCE`.
  """
  devices = runs['jax']
  options = cases.OPTIONS['classic']
  assert options['momentum'] and 'classic_momentum' not in options
  initial = devices[f'initial/{path}']
  step = initial - devices[f'model_parallel/classic/first_step/{path}']
  whole_step = cases.LEARNING_RATE * options['eeta'] * np.linalg.norm(initial)
  np.testing.assert_allclose(np.linalg.norm(step), whole_step, rtol=1e-5)

  layout = next(layout for pattern, layout in cases.SHARDED_LAYOUTS.items()
                if pattern.endswith(path))
  axis = layout.index('model')
  shards = cases.MESH_SHAPE[cases.MESH_AXES.index('model')]
  shard_step = np.concatenate([
      cases.LEARNING_RATE * options['eeta'] * np.linalg.norm(weights)
      * direction / np.linalg.norm(direction)
      for weights, direction in zip(np.split(initial, shards, axis),
                                    np.split(step, shards, axis))], axis)
  difference = np.linalg.norm(shard_step - step) / np.linalg.norm(step)
  assert difference > 100 * TOLERANCE


def test_jax_model_parallel_resumes_in_a_new_process(runs):
  devices, resumed = runs['jax'], runs['jax_resumed']
  assert resumed['resumed_at'] == cases.RESUME_AT
  assert str(resumed['layout/hidden/kernel']) == "P('model', None)"
  assert str(resumed['slot_layout/hidden/kernel']) == "P('model', None)"
  assert_same_training(resumed, 'resumed', devices, 'model_parallel',
                       options=['classic'])


def test_tf_mirrored_over_2_cpus_equals_one_device(runs):
  devices = runs['tensorflow']
  assert devices['backend'] == 'tensorflow'
  assert devices['replicas'] == 2
  assert_same_training(devices, 'mirrored', devices)


def test_tf_mirrored_resumes_in_a_new_process(runs):
  devices, resumed = runs['tensorflow'], runs['tensorflow_resumed']
  assert resumed['resumed_at'] == cases.RESUME_AT
  assert_same_training(resumed, 'resumed', devices, 'mirrored',
                       options=['classic'])


def test_one_device_is_the_same_on_tensorflow_and_jax(runs):
  assert_same_training(runs['tensorflow'], 'one_device', runs['jax'])


@pytest.mark.multiprocess
def test_tf_two_multi_worker_mirrored_workers_equal_one_device(
    runs, tmp_path):
  cluster = {'worker': [f'127.0.0.1:{port}' for port in loopback.free_ports(2)]}
  workers = _run(tmp_path, [
      Run(['tf_worker'], 'tensorflow', environment={'TF_CONFIG': json.dumps({
          'cluster': cluster, 'task': {'type': 'worker', 'index': index}})})
      for index in range(2)])
  for worker in workers:
    assert worker['replicas'] == 2
    assert_same_training(worker, 'multi_worker', runs['tensorflow'])


@pytest.mark.multiprocess
def test_jax_two_processes_of_2_devices_equal_one_process(runs, tmp_path):
  coordinator = f'127.0.0.1:{loopback.free_ports(1)[0]}'
  processes = _run(tmp_path, [
      Run(['jax_process', coordinator, str(index)], 'jax', devices=2)
      for index in range(2)])
  for process in processes:
    # 4 devices in the mesh, 2 of them this process's.
    np.testing.assert_array_equal(process['devices'], [4, 2])
    assert_same_training(process, 'multi_process', runs['jax'])


@pytest.mark.multiprocess
def test_torch_two_ddp_processes_equal_one_device(runs, tmp_path):
  required_or_skipped.require_torch()
  coordinator = f'127.0.0.1:{loopback.free_ports(1)[0]}'
  processes = _run(tmp_path, [
      Run(['torch_process', coordinator, str(index)], 'torch')
      for index in range(2)])
  for process in processes:
    assert process['backend'] == 'torch'
    assert process['world_size'] == 2
    # What docs/keras.md says Keras 3 offers on PyTorch: no keras.distribution.
    assert 'list_devices' in str(process['distribution_error'])
    assert_same_training(process, 'torch_ddp', runs['jax'])
