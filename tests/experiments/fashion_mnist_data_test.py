"""Tests for official_ext/experiments/fashion_mnist_data.py."""
import gzip
import os

import numpy as np
import pytest

from official_ext.experiments import fashion_mnist_data
from tests import required_or_skipped

_SMALL = {'train': 12, 'test': 5}


def _subsets(examples=None, image_size=28):
  """Random uint8 subsets; every class occurs in the training labels."""
  rng = np.random.RandomState(0)
  subsets = {}
  for subset, count in (examples or _SMALL).items():
    images = rng.randint(0, 256, (count, image_size, image_size), np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    subsets[subset] = (images, labels)
  return subsets


def _write_raw(path, data):
  with gzip.open(path, 'wb') as f:
    f.write(data)


def test_reads_back_what_it_wrote_scaled_to_unit_range(tmp_path):
  subsets = _subsets()
  fashion_mnist_data.write_fashion_mnist(str(tmp_path), subsets)

  loaded = fashion_mnist_data.load_fashion_mnist(str(tmp_path), _SMALL)

  assert sorted(os.listdir(tmp_path)) == sorted(
      name for files in fashion_mnist_data.FILES.values() for name in files)
  for subset, (images, labels) in subsets.items():
    loaded_images, loaded_labels = loaded[subset]
    assert loaded_images.dtype == np.float32
    assert loaded_labels.dtype == np.int32
    np.testing.assert_array_equal(loaded_labels, labels)
    np.testing.assert_allclose(loaded_images, images / 255.0, rtol=1e-6)


def test_header_is_big_endian_idx(tmp_path):
  path = str(tmp_path / 'labels.gz')
  fashion_mnist_data.write_idx(path, np.array([3, 1, 4], np.uint8))

  with gzip.open(path, 'rb') as f:
    assert f.read() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def test_missing_file_names_the_apt_package(tmp_path):
  subsets = _subsets()
  fashion_mnist_data.write_fashion_mnist(str(tmp_path), subsets)
  os.remove(tmp_path / 't10k-labels-idx1-ubyte.gz')

  with pytest.raises(FileNotFoundError,
                     match='t10k-labels-idx1-ubyte.gz not found.*'
                     'apt-get install dataset-fashion-mnist'):
    fashion_mnist_data.load_fashion_mnist(str(tmp_path), _SMALL)


@pytest.mark.parametrize('data, message', [
    (bytes([0, 0, 8, 1, 0, 0, 0, 1, 7]),
     'IDX magic number 0x00000801, expected 0x00000803'),
    (bytes([0, 0, 9, 3]), 'IDX magic number 0x00000903'),
    (b'', 'IDX magic number none'),
    (bytes([0, 0, 8, 3, 0, 0, 0, 1]), 'IDX header truncated at 8 bytes'),
    (bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3]),
     r'3 data bytes, but the header declares shape \(1, 2, 2\)'),
])
def test_bad_headers_name_the_file_and_field(tmp_path, data, message):
  path = str(tmp_path / 'images.gz')
  _write_raw(path, data)

  with pytest.raises(ValueError, match='images.gz: ' + message):
    fashion_mnist_data.read_idx(path, num_dimensions=3)


def test_wrong_image_size_is_rejected(tmp_path):
  fashion_mnist_data.write_fashion_mnist(str(tmp_path),
                                         _subsets(image_size=27))

  with pytest.raises(ValueError, match='images are 27x27 pixels, expected '
                     '28x28'):
    fashion_mnist_data.load_fashion_mnist(str(tmp_path), _SMALL)


def test_counts_must_match_the_expected_ones_in_both_files(tmp_path):
  subsets = _subsets()
  fashion_mnist_data.write_fashion_mnist(str(tmp_path), subsets)

  with pytest.raises(ValueError, match='train-images-idx3-ubyte.gz: 12 '
                     'examples, expected 60000 for the train subset'):
    fashion_mnist_data.load_fashion_mnist(str(tmp_path))
  images, labels = subsets['test']
  subsets['test'] = (images, labels[:-1])
  fashion_mnist_data.write_fashion_mnist(str(tmp_path), subsets)
  with pytest.raises(ValueError, match='t10k-labels-idx1-ubyte.gz: 4 '
                     'examples, expected 5 for the test subset'):
    fashion_mnist_data.load_fashion_mnist(str(tmp_path), _SMALL)


def test_labels_outside_the_ten_classes_are_rejected(tmp_path):
  subsets = _subsets()
  images, labels = subsets['train']
  subsets['train'] = (images, np.where(labels == 9, 10, labels))
  fashion_mnist_data.write_fashion_mnist(str(tmp_path), subsets)

  with pytest.raises(ValueError, match='label 10 is not a class in 0..9'):
    fashion_mnist_data.load_fashion_mnist(str(tmp_path), _SMALL)


def test_validation_split_is_stratified_and_disjoint():
  labels = np.repeat(np.arange(10), 30).astype(np.int32)
  images = np.arange(300, dtype=np.float32).reshape(300, 1)

  (fit_images, fit_labels), (val_images, val_labels) = (
      fashion_mnist_data.train_validation_split(images, labels, 50, seed=0))

  assert len(val_labels) == 50 and len(fit_labels) == 250
  assert sorted(np.concatenate([fit_images, val_images]).ravel()) == (
      list(range(300)))
  # Labels travel with their images.
  np.testing.assert_array_equal(labels[fit_images.ravel().astype(int)],
                                fit_labels)
  np.testing.assert_array_equal(np.bincount(val_labels, minlength=10),
                                [5] * 10)


def test_stand_in_data_is_readable_and_learnable_by_class_means(tmp_path):
  examples = {'train': 500, 'test': 200}
  fashion_mnist_data.write_fashion_mnist(
      str(tmp_path), fashion_mnist_data.stand_in_subsets(examples))

  data = fashion_mnist_data.load_fashion_mnist(str(tmp_path), examples)

  (train_images, train_labels), (test_images, test_labels) = (
      data['train'], data['test'])
  # A nearest-class-mean classifier fitted on the training images beats
  # chance by far on the test images, but is not perfect.
  means = np.stack([train_images[train_labels == c].mean(axis=0)
                    for c in range(10)])
  distances = ((test_images[:, None] - means[None]) ** 2).sum(axis=(2, 3))
  accuracy = np.mean(np.argmin(distances, axis=1) == test_labels)
  assert 0.5 < accuracy < 1.0


def test_installed_data_set_has_the_published_counts_and_balance():
  if not os.path.isdir(fashion_mnist_data.DEFAULT_DATA_DIR):
    required_or_skipped.skip_or_fail(
        f'{fashion_mnist_data.DEFAULT_DATA_DIR} is missing (apt-get install '
        f'dataset-fashion-mnist)', 'OFFICIAL_EXT_REQUIRE_STUDY_DATA')
  data = fashion_mnist_data.load_fashion_mnist()

  for subset, count in fashion_mnist_data.EXAMPLES.items():
    images, labels = data[subset]
    assert images.shape == (count, 28, 28)
    # Fashion-MNIST is balanced: a tenth of each subset per class.
    np.testing.assert_array_equal(np.bincount(labels), [count // 10] * 10)
    assert images.min() == 0.0 and images.max() == 1.0
