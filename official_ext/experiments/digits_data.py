"""scikit-learn's 8x8 handwritten digits, the data of official_ext's demos.

The 1797 images ship inside scikit-learn, so nothing is downloaded. The
`lars_digits` experiment and the large-batch study
(`official_ext.studies.large_batch`) both load them here and split them their
own way.
"""
from typing import Tuple

import numpy as np
from sklearn import datasets

NUM_CLASSES = 10
IMAGE_SIZE = 8
# scikit-learn's pixel values are integers in [0, 16].
_MAX_PIXEL_VALUE = 16.0


def load_digits() -> Tuple[np.ndarray, np.ndarray]:
  """Returns every digit, in scikit-learn's order.

  Returns:
    (images, labels): float32 images [1797, 8, 8] scaled to [0, 1], int32
    labels [1797] in 0..9.
  """
  digits = datasets.load_digits()
  images = (digits.images / _MAX_PIXEL_VALUE).astype(np.float32)
  return images, digits.target.astype(np.int32)
