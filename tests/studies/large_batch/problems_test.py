"""Tests for official_ext/studies/large_batch/problems.py."""
import numpy as np
from sklearn import datasets
import tf_keras

from official_ext.experiments import fashion_mnist_data
from official_ext.modeling.optimization import optimizer_factory
from official_ext.studies.large_batch import problems
from official_ext.studies.large_batch import training


def _rows(images):
  """The images as a sorted list of bytes: a multiset, for comparisons."""
  return sorted(image.tobytes() for image in images)


def _assert_nested(tuning, final, train, validation, test, features):
  """Checks the split sizes, and that tuning splits the final training set
  (so it never sees the test images)."""
  assert final.train_images.shape == (train, features)
  assert final.eval_images.shape == (test, features)
  assert tuning.train_images.shape == (train - validation, features)
  assert tuning.eval_images.shape == (validation, features)
  assert _rows(np.concatenate([tuning.train_images, tuning.eval_images])) == (
      _rows(final.train_images))


def test_digits_splits_are_stratified_nested_and_hold_every_digit_once():
  tuning, final = problems.digits().load_splits()

  _assert_nested(tuning, final, train=1437, validation=287, test=360,
                 features=64)
  digits = datasets.load_digits()
  everything = (digits.data / 16.0).astype(np.float32)
  assert _rows(np.concatenate([final.train_images, final.eval_images])) == (
      _rows(everything))
  # Stratified: each class's share of the test set is its share overall.
  np.testing.assert_allclose(
      np.bincount(final.eval_labels) / 360,
      np.bincount(digits.target) / len(digits.target), atol=1 / 360)


def test_fashion_mnist_tunes_on_a_sixth_of_the_training_set_only(tmp_path):
  examples = {'train': 600, 'test': 100}
  subsets = fashion_mnist_data.stand_in_subsets(examples)
  fashion_mnist_data.write_fashion_mnist(str(tmp_path), subsets)

  tuning, final = problems.fashion_mnist(str(tmp_path), examples).load_splits()

  _assert_nested(tuning, final, train=600, validation=100, test=100,
                 features=784)
  test_images, test_labels = subsets['test']
  np.testing.assert_allclose(final.eval_images,
                             test_images.reshape(100, 784) / 255.0, rtol=1e-6)
  np.testing.assert_array_equal(final.eval_labels, test_labels)


def test_fashion_mnist_study_runs_the_four_arms_at_batch_128_to_16384():
  config = problems.fashion_mnist().config

  assert config.batch_sizes == (128, 512, 2048, 8192, 16384)
  assert [arm.name for arm in config.arms] == [
      'sgd_linear', 'lars_held', 'sgd_retuned', 'lars_retuned']
  assert config.seeds >= 3
  # Re-tuned SGD and re-tuned LARS get grids of the same width and spacing.
  sgd, lars = (config.learning_rate_grids[t] for t in ('sgd', 'lars'))
  assert len(sgd) == len(lars)
  np.testing.assert_allclose(np.diff(np.log2(sgd)), 1.0)
  np.testing.assert_allclose(np.diff(np.log2(lars)), 1.0)


def test_lars_adapts_only_the_fashion_mnist_models_weight_matrices():
  recipe = problems.fashion_mnist().model
  model = recipe.build(784)
  factory = optimizer_factory.OptimizerFactory(
      training.build_optimization_config('lars', 1.0, 10,
                                         recipe.lars_exclusions))
  optimizer = factory.build_optimizer(factory.build_learning_rate())

  adapted = [v.name for v in model.trainable_variables
             if optimizer.layer_adaptation_exclusion(v) is None]
  excluded = [v.name for v in model.trainable_variables
              if optimizer.layer_adaptation_exclusion(v) is not None]

  assert [name.split('/')[-1] for name in adapted] == ['kernel:0'] * 3
  # Batch normalization's scale and offset (two layers) and the output bias.
  assert sorted(name.split('/')[-1] for name in excluded) == (
      ['beta:0'] * 2 + ['bias:0'] + ['gamma:0'] * 2)
  assert sum(isinstance(layer, tf_keras.layers.BatchNormalization)
             for layer in model.layers) == 2
