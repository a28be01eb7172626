"""Tests for the LARS warmup + polynomial decay config."""
import numpy as np

from official_ext.experiments import lars_optimization
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import optimizer_factory


def test_schedule_and_lars_settings():
  config = lars_optimization.lars_with_warmup_and_polynomial_decay(
      base_learning_rate=2.0, warmup_steps=10, decay_steps=30,
      weight_decay_rate=1e-3, end_learning_rate=0.5, power=1.5,
      momentum=0.8, eeta=0.01)
  factory = optimizer_factory.OptimizerFactory(config)
  schedule = factory.build_learning_rate()
  steps = np.arange(0, 50)
  progress = np.clip((steps - 10) / 30, 0, 1)
  expected = np.where(steps < 10, 2.0 * steps / 10,
                      (2.0 - 0.5) * (1 - progress)**1.5 + 0.5)
  np.testing.assert_allclose([float(schedule(s)) for s in steps], expected,
                             rtol=1e-5)
  optimizer = factory.build_optimizer(schedule)
  assert type(optimizer) is lars.LARS
  assert (optimizer.momentum, optimizer.eeta, optimizer.weight_decay_rate) == (
      0.8, 0.01, 1e-3)
  assert optimizer.exclude_from_weight_decay == ['batch_normalization', 'bias']
  assert optimizer.exclude_from_layer_adaptation == [
      'batch_normalization', 'bias']
  assert optimizer.telemetry
