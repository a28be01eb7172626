"""End-to-end: multi-worker training, and kill -9 then resume.

Every run is `python -m official_ext.train` on the lars_digits experiment
(each a fork of one process that has imported what the launcher imports:
tests/forked_launcher.py), whose training is deterministic and independent of
the device topology; runs are compared through their checkpoints.
"""
import json
import os
import signal
import time
from typing import Dict, List, Mapping, Optional

import numpy as np
import pytest
import tensorflow as tf
import yaml

from tests import forked_launcher
from tests import loopback

TRAIN_STEPS = 200
CHECKPOINT_INTERVAL = 20
# Every run: global batch 32, a checkpoint (kept) every 20 steps.
COMMON = ('task.train_data.global_batch_size=32,'
          f'trainer.steps_per_loop={CHECKPOINT_INTERVAL},'
          f'trainer.checkpoint_interval={CHECKPOINT_INTERVAL},'
          f'trainer.summary_interval={CHECKPOINT_INTERVAL},'
          'trainer.max_to_keep=20')
TIMEOUT = 600

pytestmark = pytest.mark.e2e


def _launch(launcher: forked_launcher.ForkedLauncher, model_dir: str,
            override: str, env: Optional[Mapping[str, str]] = None
           ) -> forked_launcher.Launch:
  """Starts a lars_digits training run; `env` is set in its environment."""
  return launcher.start(
      ['--experiment=lars_digits', '--mode=train', f'--model_dir={model_dir}',
       f'--params_override={COMMON},{override}'], env=env)


def _finish(launches: List[forked_launcher.Launch]) -> List[str]:
  """Waits for every launch to succeed; returns their logs (stderr).

  The session's launcher (tests/conftest.py) kills those still running when a
  wait fails.
  """
  logs = []
  for launch in launches:
    returncode = launch.wait(TIMEOUT)
    log = launch.stderr()
    assert returncode == 0, log[-5000:]
    logs.append(log)
  return logs


def _checkpoint(model_dir: str, step: int) -> Dict[str, np.ndarray]:
  """The values of a run's checkpoint at `step`, by checkpoint key."""
  reader = tf.train.load_checkpoint(os.path.join(model_dir, f'ckpt-{step}'))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name != '_CHECKPOINTABLE_OBJECT_GRAPH'}


def _model_values(values: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Weights and optimizer slots only."""
  return {k: v for k, v in values.items() if k.startswith('model/')}


class Run:
  """A launcher run started now and waited for when its result is needed."""

  def __init__(self, launcher: forked_launcher.ForkedLauncher,
               model_dir: str, override: str):
    self.model_dir = model_dir
    self._launch = _launch(launcher, model_dir, override)
    self._log = None

  def log(self) -> str:
    if self._log is None:
      self._log = _finish([self._launch])[0]
    return self._log


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, launcher):
  """The reference: an uninterrupted run of TRAIN_STEPS steps."""
  return Run(launcher, str(tmp_path_factory.mktemp('uninterrupted')),
             f'trainer.train_steps={TRAIN_STEPS}')


def test_killed_run_resumes_and_ends_like_an_uninterrupted_one(
    uninterrupted, launcher, tmp_path):
  model_dir = str(tmp_path / 'run')
  override = f'trainer.train_steps={TRAIN_STEPS}'
  killed = _launch(launcher, model_dir, override)
  deadline = time.time() + TIMEOUT
  while (tf.train.latest_checkpoint(model_dir) is None and
         killed.poll() is None and time.time() < deadline):
    time.sleep(0.02)
  os.kill(killed.pid, signal.SIGKILL)
  returncode = killed.wait(TIMEOUT)
  assert returncode == -signal.SIGKILL, killed.stderr()[-5000:]
  latest = tf.train.latest_checkpoint(model_dir)
  killed_at = int(latest.rsplit('-', 1)[1])
  assert 0 < killed_at < TRAIN_STEPS

  # The same command again.
  log = _finish([_launch(launcher, model_dir, override)])[0]
  assert f'restored from checkpoint: {latest}' in log
  assert f'Resuming the training input at step {killed_at}.' in log
  resumed = _checkpoint(model_dir, TRAIN_STEPS)
  assert resumed['global_step/.ATTRIBUTES/VARIABLE_VALUE'] == TRAIN_STEPS
  assert resumed['optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE'] == TRAIN_STEPS

  uninterrupted.log()
  expected = _checkpoint(uninterrupted.model_dir, TRAIN_STEPS)
  assert sorted(resumed) == sorted(expected)
  for name, value in _model_values(expected).items():
    np.testing.assert_array_equal(resumed[name], value, err_msg=name)
  with open(os.path.join(model_dir, 'params.yaml')) as f:
    params = yaml.safe_load(f)
  with open(os.path.join(uninterrupted.model_dir, 'params.yaml')) as f:
    assert params == yaml.safe_load(f)


def _workers(launcher: forked_launcher.ForkedLauncher, model_dir: str,
             steps: int, tmp: str) -> List[str]:
  """Trains `steps` steps as 2 workers on loopback ports; returns the logs."""
  cluster = {'worker': [f'127.0.0.1:{p}' for p in loopback.free_ports(2)]}
  workers = []
  for index in range(2):
    # TMPDIR: where Model Garden puts the non-chief worker's checkpoints.
    env = dict(TMPDIR=tmp, TF_CONFIG=json.dumps({
        'cluster': cluster, 'task': {'type': 'worker', 'index': index}}))
    workers.append(_launch(
        launcher, model_dir, f'trainer.train_steps={steps},'
        'runtime.distribution_strategy=multi_worker_mirrored', env=env))
  logs = _finish(workers)
  for log in logs:
    assert 'MultiWorkerMirroredStrategy with cluster_spec' in log
    assert 'num_workers = 2' in log
  return logs


@pytest.mark.multiprocess
def test_two_workers_match_one_worker_and_resume_together(
    uninterrupted, launcher, tmp_path):
  model_dir = str(tmp_path / 'multi_worker')
  first, second = CHECKPOINT_INTERVAL, 2 * CHECKPOINT_INTERVAL
  _workers(launcher, model_dir, first, str(tmp_path))
  # Started again for more steps, both workers resume from the chief's
  # checkpoint (Model Garden alone would restart the other worker at 0).
  logs = _workers(launcher, model_dir, second, str(tmp_path))
  checkpoint = os.path.join(model_dir, f'ckpt-{first}')
  assert f'restored from checkpoint: {checkpoint}' in logs[0]
  assert f"Restoring the chief's checkpoint {checkpoint}." in logs[1]

  uninterrupted.log()
  for steps in (first, second):
    expected = _checkpoint(uninterrupted.model_dir, steps)
    got = _checkpoint(model_dir, steps)  # Written by the chief, worker 0.
    assert got['global_step/.ATTRIBUTES/VARIABLE_VALUE'] == steps
    for name, value in _model_values(expected).items():
      np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5,
                                 err_msg=f'{name} at step {steps}')
