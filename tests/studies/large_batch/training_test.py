"""Tests for official_ext/studies/large_batch/training.py."""
import math

import numpy as np
import pytest
from sklearn import datasets
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


def _rows(images):
  """The images as a sorted list of bytes: a multiset, for comparisons."""
  return sorted(image.tobytes() for image in images)


def test_splits_are_stratified_nested_and_hold_every_digit_once():
  tuning, final = training.load_splits()

  assert final.train_images.shape == (1437, 64)
  assert final.eval_images.shape == (360, 64)
  assert tuning.train_images.shape == (1150, 64)
  assert tuning.eval_images.shape == (287, 64)
  # Tuning splits the final training images and never sees the test images.
  assert _rows(np.concatenate([tuning.train_images, tuning.eval_images])) == (
      _rows(final.train_images))
  digits = datasets.load_digits()
  everything = (digits.data / 16.0).astype(np.float32)
  assert _rows(np.concatenate([final.train_images, final.eval_images])) == (
      _rows(everything))
  # Stratified: each class's share of the test set is its share overall.
  np.testing.assert_allclose(
      np.bincount(final.eval_labels) / 360,
      np.bincount(digits.target) / len(digits.target), atol=1 / 360)
