"""Tests for official_ext/studies/large_batch/training.py."""
import math

import numpy as np
import pytest
import tf_keras

from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import optimizer_factory
from official_ext.studies.large_batch import training


@pytest.mark.parametrize('optimizer_type, optimizer_cls', [
    ('sgd', tf_keras.optimizers.legacy.SGD),
    ('lars', lars.LARS),
])
def test_config_builds_the_optimizer_with_warmup_then_cosine_decay(
    optimizer_type, optimizer_cls):
  total_steps, peak = 50, 0.3
  factory = optimizer_factory.OptimizerFactory(
      training.build_optimization_config(optimizer_type, peak, total_steps))
  schedule = factory.build_learning_rate()
  optimizer = factory.build_optimizer(schedule)

  # Exactly the class, not a subclass that could change the update.
  assert type(optimizer) is optimizer_cls  # pylint: disable=unidiomatic-typecheck
  assert optimizer.get_config()['momentum'] == training.MOMENTUM
  warmup = training.warmup_steps(total_steps)
  assert warmup == 5
  for step in range(total_steps + 1):
    if step < warmup:
      expected = peak * step / warmup
    else:
      progress = (step - warmup) / (total_steps - warmup)
      expected = peak * 0.5 * (1 + math.cos(math.pi * progress))
    assert float(schedule(step)) == pytest.approx(expected, abs=1e-6)


def test_batch_indices_draw_each_epoch_without_replacement():
  batches = training.batch_indices(num_examples=10, batch_size=3, epochs=4,
                                seed=1)
  assert batches.shape == (4 * 3, 3)
  for epoch in np.split(batches, 4):
    assert len(set(epoch.ravel())) == 9
    assert set(epoch.ravel()) <= set(range(10))
  assert not np.array_equal(batches[:3], batches[3:6])


def test_lars_exclusions_go_to_both_purposes_and_not_to_sgd():
  exclusions = ('batch_normalization', 'bias')
  lars_config = training.build_optimization_config('lars', 1.0, 10,
                                                   exclusions).optimizer.lars
  sgd_config = training.build_optimization_config('sgd', 1.0, 10,
                                                  exclusions).optimizer.sgd

  assert lars_config.exclude_from_weight_decay == list(exclusions)
  assert lars_config.exclude_from_layer_adaptation == list(exclusions)
  assert lars_config.weight_decay_rate == 0.0
  assert not hasattr(sgd_config, 'exclude_from_layer_adaptation')
  # Without exclusions LARS keeps its defaults: every variable adapted.
  default = training.build_optimization_config('lars', 1.0, 10).optimizer.lars
  assert default.exclude_from_weight_decay is None
  assert default.exclude_from_layer_adaptation is None


def test_run_cache_runs_each_key_once_and_records_it():
  rng = np.random.RandomState(0)
  images = rng.rand(64, 4).astype(np.float32)
  labels = (images[:, 0] > 0.5).astype(np.int32)
  split = training.Split(images, labels, images, labels)
  model = training.ModelRecipe(
      'linear', lambda n: tf_keras.Sequential(
          [tf_keras.Input(shape=(n,)), tf_keras.layers.Dense(10)]))
  lines = []
  cache = training.RunCache({'tuning': split}, model, epochs=2,
                            log=lines.append)
  cache.total = 2

  first = cache.run('tuning', 'sgd', 0.1, 16, 0)
  again = cache.run('tuning', 'sgd', 0.1, 16, 0)
  cache.run('tuning', 'lars', 1.0, 16, 0)

  assert again is first and len(cache) == 2 and len(lines) == 2
  assert lines[0].startswith('[1/2, ~') and lines[1].startswith('[2/2, ~0 min')
  assert cache.new_runs([('tuning', 'sgd', 0.1, 16, 0),
                         ('tuning', 'sgd', 0.2, 16, 0),
                         ('tuning', 'sgd', 0.2, 16, 0)]) == 1
  records = cache.records()
  assert [r['optimizer'] for r in records] == ['sgd', 'lars']
  assert records[0]['accuracy'] == first.accuracy
  assert records[0]['wall_time_seconds'] == first.wall_time_seconds > 0
