"""Tests for official_ext/benchmarks/optimizer_runs.py."""

import numpy as np
import pytest

from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import workloads

_SPECS = [
    workloads.VariableSpec('dense/kernel', (3, 2)),
    workloads.VariableSpec('dense/bias', (2,)),
]


def test_sgd_runner_applies_one_update_per_call():
  gradients = workloads.gradients(_SPECS)
  variables = workloads.make_variables(_SPECS)
  start = [v.numpy() for v in variables]
  runner = optimizer_runs.update_runner(
      optimizer_runs.contender('momentum_sgd').make(), variables, gradients,
      jit_compile=False)
  runner.first_call()
  runner.run_burst(3)

  for value, initial, grad in zip(variables, start, gradients):
    expected, velocity = initial.copy(), np.zeros_like(initial)
    for _ in range(4):
      velocity = optimizer_runs.MOMENTUM * velocity - (
          optimizer_runs.LEARNING_RATE * grad.numpy())
      expected += velocity
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5)
  size = runner.traced_graph_size()
  # One fused kernel per variable, plus captures and bookkeeping.
  assert size.traced_ops == size.expanded_ops > len(_SPECS)


def test_both_lars_contenders_are_configured_alike():
  gradients = workloads.gradients(_SPECS)
  results = []
  for key in ('official_ext_lars', 'model_garden_lars'):
    variables = workloads.make_variables(_SPECS)
    runner = optimizer_runs.update_runner(
        optimizer_runs.contender(key).make(), variables, gradients,
        jit_compile=False)
    runner.first_call()
    runner.run_burst(2)
    results.append([v.numpy() for v in variables])
  for ext_value, model_garden_value in zip(*results):
    np.testing.assert_allclose(ext_value, model_garden_value, rtol=1e-5)


def test_graph_size_needs_a_traced_step():
  runner = optimizer_runs.make_runner(
      optimizer_runs.contender('momentum_sgd'), _SPECS,
      workloads.gradients(_SPECS), jit_compile=False)
  with pytest.raises(RuntimeError, match='first_call'):
    runner.traced_graph_size()


def test_unknown_optimizer_is_named():
  with pytest.raises(ValueError, match="optimizer='adam'"):
    optimizer_runs.contender('adam')
