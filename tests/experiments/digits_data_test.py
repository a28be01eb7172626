"""Tests for official_ext/experiments/digits_data.py."""
import numpy as np
from sklearn import datasets

from official_ext.experiments import digits_data


def test_digits_are_scikit_learns_scaled_to_unit_range():
  images, labels = digits_data.load_digits()

  digits = datasets.load_digits()
  assert images.shape == (1797, 8, 8) and images.dtype == np.float32
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(labels, digits.target)
  # scikit-learn's pixels are integers 0..16, and 16 does occur.
  assert digits.data.max() == 16
  np.testing.assert_allclose(images.reshape(1797, 64), digits.data / 16,
                             rtol=1e-7)
  assert images.min() == 0.0 and images.max() == 1.0
