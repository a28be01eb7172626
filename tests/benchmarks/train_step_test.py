"""Tests for official_ext/benchmarks/train_step.py."""

import numpy as np

from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import train_step


def test_quick_step_trains_the_model_with_the_optimizer():
  runner = train_step.make_runner(
      optimizer_runs.contender('official_ext_lars'), quick=True,
      jit_compile=False)
  before = [v.numpy().copy() for v in runner.variables]
  runner.first_call()
  runner.run_burst(2)
  assert int(runner.optimizer.iterations.numpy()) == 3
  assert all(not np.array_equal(b, v.numpy())
             for b, v in zip(before, runner.variables))
  # Convolution kernel and bias, batch-normalization scale and offset,
  # dense kernel and bias.
  assert (runner.num_variables, runner.num_parameters) == (6, 170)


def test_every_contender_starts_from_the_same_model_and_batch():
  first = train_step.make_runner(optimizer_runs.contender('momentum_sgd'),
                                 quick=True, jit_compile=False)
  second = train_step.make_runner(
      optimizer_runs.contender('model_garden_lars'), quick=True,
      jit_compile=False)
  for a, b in zip(first.variables, second.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  images, labels = train_step.batch(quick=True)
  assert images.shape == (train_step.BATCH_SIZE, train_step.QUICK_IMAGE_SIZE,
                          train_step.QUICK_IMAGE_SIZE, 3)
  assert labels.shape == (train_step.BATCH_SIZE,)
