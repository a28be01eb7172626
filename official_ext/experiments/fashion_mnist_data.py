"""Fashion-MNIST from its four gzip-compressed IDX files, read offline.

Zalando Research's 70,000 grey-scale 28x28 images of 10 kinds of clothing
(60,000 training, 10,000 test) are installed by the Debian package
`dataset-fashion-mnist` under `/usr/share/datasets/fashion-mnist/`; nothing
is downloaded. The reader checks each file's IDX header (magic number,
dimensions) and example count before returning a single pixel, and the
writer produces the same format, for tests and for generated stand-in data.
"""
import gzip
import os
from typing import Dict, Mapping, Tuple

import numpy as np
from sklearn import model_selection

DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist'
APT_PACKAGE = 'dataset-fashion-mnist'
NUM_CLASSES = 10
IMAGE_SIZE = 28
# Subset name -> (images file, labels file), as Zalando Research names them.
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
EXAMPLES = {'train': 60000, 'test': 10000}

# IDX magic number: two zero bytes, the element type (0x08: unsigned byte),
# the number of dimensions.
_UNSIGNED_BYTE = 0x08
_MAX_PIXEL_VALUE = 255.0

Subset = Tuple[np.ndarray, np.ndarray]


def read_idx(path: str, num_dimensions: int) -> np.ndarray:
  """Reads one gzip-compressed IDX file of unsigned bytes.

  Args:
    path: the `.gz` file.
    num_dimensions: dimensions the file must declare (3 for images, 1 for
      labels).

  Returns:
    uint8 array of the shape the header declares.

  Raises:
    FileNotFoundError: naming the file and the apt package that installs it.
    ValueError: naming the file and the bad header field or length.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Fashion-MNIST file {path} not found: install the Debian package '
        f'{APT_PACKAGE} (apt-get install {APT_PACKAGE}) or pass the directory '
        'that holds the four IDX files.')
  with gzip.open(path, 'rb') as f:
    data = f.read()
  expected_magic = (_UNSIGNED_BYTE << 8) | num_dimensions
  magic = int.from_bytes(data[:4], 'big') if len(data) >= 4 else None
  if magic != expected_magic:
    found = 'none' if magic is None else f'0x{magic:08x}'
    raise ValueError(
        f'{path}: IDX magic number {found}, expected 0x{expected_magic:08x} '
        f'(unsigned bytes, {num_dimensions} dimension(s)).')
  header_length = 4 + 4 * num_dimensions
  if len(data) < header_length:
    raise ValueError(f'{path}: IDX header truncated at {len(data)} bytes, '
                     f'expected {header_length}.')
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
                for i in range(num_dimensions))
  payload_length = len(data) - header_length
  if payload_length != int(np.prod(shape)):
    raise ValueError(f'{path}: {payload_length} data bytes, but the header '
                     f'declares shape {shape} ({int(np.prod(shape))} bytes).')
  return np.frombuffer(data, np.uint8, offset=header_length).reshape(shape)


def write_idx(path: str, array: np.ndarray):
  """Writes a uint8 array as a gzip-compressed IDX file.

  Args:
    path: the `.gz` file to write.
    array: uint8 array of any rank from 1 to 255.
  """
  header = bytes([0, 0, _UNSIGNED_BYTE, array.ndim]) + b''.join(
      int(n).to_bytes(4, 'big') for n in array.shape)
  with gzip.open(path, 'wb', compresslevel=1) as f:
    f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def _load_subset(data_dir: str, subset: str, num_examples: int) -> Subset:
  """One subset's images and labels, checked against each other."""
  images_file, labels_file = (os.path.join(data_dir, name)
                              for name in FILES[subset])
  images = read_idx(images_file, num_dimensions=3)
  labels = read_idx(labels_file, num_dimensions=1)
  if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
    raise ValueError(f'{images_file}: images are {images.shape[1]}x'
                     f'{images.shape[2]} pixels, expected {IMAGE_SIZE}x'
                     f'{IMAGE_SIZE}.')
  for path, count in ((images_file, len(images)), (labels_file, len(labels))):
    if count != num_examples:
      raise ValueError(f'{path}: {count} examples, expected {num_examples} '
                       f'for the {subset} subset.')
  if labels.max(initial=0) >= NUM_CLASSES:
    raise ValueError(f'{labels_file}: label {labels.max()} is not a class in '
                     f'0..{NUM_CLASSES - 1}.')
  return ((images / _MAX_PIXEL_VALUE).astype(np.float32),
          labels.astype(np.int32))


def load_fashion_mnist(
    data_dir: str = DEFAULT_DATA_DIR,
    examples: Mapping[str, int] = EXAMPLES) -> Dict[str, Subset]:
  """Reads and checks the training and test subsets.

  Args:
    data_dir: directory holding the four files of `FILES`.
    examples: subset name -> the number of examples its files must hold
      (Fashion-MNIST's own counts unless, e.g., a test writes small files).

  Returns:
    {'train': (images, labels), 'test': (images, labels)}: float32 images
    [N, 28, 28] scaled to [0, 1] and int32 labels [N] in 0..9, in file order.

  Raises:
    FileNotFoundError: a file is missing (the message names the apt package).
    ValueError: a header, a count or a label is wrong (the message names the
      file and the value).
  """
  return {subset: _load_subset(data_dir, subset, examples[subset])
          for subset in FILES}


def write_fashion_mnist(data_dir: str, subsets: Mapping[str, Subset]):
  """Writes the four IDX files, e.g. of generated stand-in data.

  Args:
    data_dir: an existing directory.
    subsets: {'train': (images, labels), 'test': (images, labels)}: uint8
      images [N, 28, 28] and labels [N].
  """
  for subset, (images_file, labels_file) in FILES.items():
    images, labels = subsets[subset]
    write_idx(os.path.join(data_dir, images_file), images)
    write_idx(os.path.join(data_dir, labels_file), labels)


def train_validation_split(images: np.ndarray, labels: np.ndarray,
                           validation_examples: int,
                           seed: int) -> Tuple[Subset, Subset]:
  """Holds a stratified validation set out of the training subset.

  Args:
    images: training images.
    labels: their labels.
    validation_examples: size of the validation set.
    seed: seeds the split.

  Returns:
    ((fit images, fit labels), (validation images, validation labels)).
  """
  fit_images, val_images, fit_labels, val_labels = (
      model_selection.train_test_split(
          images, labels, test_size=validation_examples, stratify=labels,
          random_state=seed))
  return (fit_images, fit_labels), (val_images, val_labels)


def stand_in_subsets(examples: Mapping[str, int],
                     seed: int = 0) -> Dict[str, Subset]:
  """Generated data in Fashion-MNIST's format, for quick pipeline checks.

  Each class has a random 28x28 template; an image is its class's template
  plus uniform noise of seven times its amplitude, so that a model can learn
  the classes, but not perfectly.

  Args:
    examples: subset name -> number of images.
    seed: seeds the templates, the noise and the labels.

  Returns:
    {subset: (uint8 images [N, 28, 28], uint8 labels [N])}, ready for
    `write_fashion_mnist`.
  """
  rng = np.random.RandomState(seed)
  templates = rng.randint(0, 32, (NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE))
  subsets = {}
  for subset, count in examples.items():
    labels = rng.randint(0, NUM_CLASSES, count)
    noise = rng.randint(0, 224, (count, IMAGE_SIZE, IMAGE_SIZE))
    subsets[subset] = ((templates[labels] + noise).astype(np.uint8),
                       labels.astype(np.uint8))
  return subsets
