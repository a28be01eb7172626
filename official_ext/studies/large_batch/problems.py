"""The data sets and models the large-batch study runs on.

`digits`: scikit-learn's 1,797 8x8 digits and a plain MLP, the first study.
`fashion_mnist`: Zalando's 70,000 28x28 Fashion-MNIST images and an MLP with
batch normalization, where a batch of thousands is still a small part of an
epoch. Each problem holds its data split, its model (with the LARS exclusions
a Model Garden user would set) and its study configs.
"""
from typing import Mapping, Optional, Tuple

from sklearn import model_selection
import tf_keras

from official_ext.experiments import digits_data
from official_ext.experiments import fashion_mnist_data
from official_ext.experiments import lars_optimization
from official_ext.studies.large_batch import protocol
from official_ext.studies.large_batch import training

SPLIT_SEED = 0

DIGITS_TEST_EXAMPLES = 360  # 1797 digits -> 1437 training + 360 test images.
DIGITS_VALIDATION_EXAMPLES = 287  # Held out of the 1437 for tuning: 20%.
DIGITS_HIDDEN_UNITS = (128, 128)

# A sixth of the training set (10,000 of 60,000 images) validates the tuning.
FASHION_MNIST_VALIDATION_FRACTION = 1 / 6
FASHION_MNIST_HIDDEN_UNITS = (128, 128)
# Batch normalization's moving averages must settle within the 30 steps the
# largest batch gets; Keras' default 0.99 would keep half the initial value.
BATCH_NORM_MOMENTUM = 0.9
# Factor-2 grids of equal width (9 rates, a 256x span) for both optimizers, so
# that re-tuned SGD and re-tuned LARS get the same tuning budget. With batch
# normalization SGD trains at rates up to 1.6 at batch 128 and 3.2 at 512, so
# its grid reaches 12.8 for the largest batches.
FASHION_MNIST_LEARNING_RATE_GRIDS = {
    'sgd': tuple(0.05 * 2**i for i in range(9)),  # 0.05 ... 12.8
    'lars': tuple(0.25 * 2**i for i in range(9)),  # 0.25 ... 64
}
# Stand-in data of the smoke run: small, learnable, written as IDX files.
SMOKE_FASHION_MNIST_EXAMPLES = {'train': 1200, 'test': 200}


def _digits_splits() -> Tuple[training.Split, training.Split]:
  """Splits the digits into the tuning and the final split.

  Both are stratified with a fixed seed. The final split trains on 1437
  images and scores on the 360 test images; the tuning split trains on 1150
  of the 1437 and scores on the other 287, so tuning never sees the test set.

  Returns:
    (tuning, final); images are float32 [N, 64] in [0, 1].
  """
  images, labels = digits_data.load_digits()
  images = images.reshape(len(images), -1)
  train_images, test_images, train_labels, test_labels = (
      model_selection.train_test_split(
          images, labels, test_size=DIGITS_TEST_EXAMPLES, stratify=labels,
          random_state=SPLIT_SEED))
  fit_images, val_images, fit_labels, val_labels = (
      model_selection.train_test_split(
          train_images, train_labels, test_size=DIGITS_VALIDATION_EXAMPLES,
          stratify=train_labels, random_state=SPLIT_SEED))
  return (training.Split(fit_images, fit_labels, val_images, val_labels),
          training.Split(train_images, train_labels, test_images,
                         test_labels))


def _digits_mlp(num_features: int) -> tf_keras.Model:
  """ReLU MLP with `DIGITS_HIDDEN_UNITS`, returning logits."""
  layers = [tf_keras.Input(shape=(num_features,))]
  layers += [tf_keras.layers.Dense(units, activation='relu')
             for units in DIGITS_HIDDEN_UNITS]
  layers.append(tf_keras.layers.Dense(training.NUM_CLASSES))
  return tf_keras.Sequential(layers, name='digits_mlp')


def digits() -> protocol.Problem:
  """The digits study: 7 batch sizes up to the full batch, arms (a)-(c)."""
  config = protocol.StudyConfig()
  return protocol.Problem(
      name='digits',
      title='LARS vs momentum SGD on scikit-learn digits',
      load_splits=_digits_splits,
      model=training.ModelRecipe(
          description='MLP 64-128-128-10 (ReLU)', build=_digits_mlp),
      config=config,
      smoke_config=protocol.smoke_config(config, (64, training.FULL_BATCH)))


def _batch_normalized_mlp(num_features: int) -> tf_keras.Model:
  """Dense -> BatchNorm -> ReLU per hidden layer, then a Dense of logits.

  The hidden Dense layers have no bias: the batch normalization's offset
  that follows takes its place.
  """
  layers = [tf_keras.Input(shape=(num_features,))]
  for units in FASHION_MNIST_HIDDEN_UNITS:
    layers += [
        tf_keras.layers.Dense(units, use_bias=False),
        tf_keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM),
        tf_keras.layers.ReLU(),
    ]
  layers.append(tf_keras.layers.Dense(training.NUM_CLASSES))
  return tf_keras.Sequential(layers, name='fashion_mnist_mlp')


def fashion_mnist(
    data_dir: Optional[str] = None,
    examples: Mapping[str, int] = fashion_mnist_data.EXAMPLES
) -> protocol.Problem:
  """The Fashion-MNIST study: batch 128 to 16,384, arms (a)-(d).

  Args:
    data_dir: the directory of the four IDX files; None for the installed
      `dataset-fashion-mnist` package's.
    examples: the number of training and test images the files must hold.

  Returns:
    The problem; its data is read when the study starts.
  """
  data_dir = data_dir or fashion_mnist_data.DEFAULT_DATA_DIR

  def load_splits() -> Tuple[training.Split, training.Split]:
    data = fashion_mnist_data.load_fashion_mnist(data_dir, examples)
    (train_images, train_labels), (test_images, test_labels) = (
        (images.reshape(len(images), -1), labels)
        for images, labels in (data['train'], data['test']))
    (fit_images, fit_labels), (val_images, val_labels) = (
        fashion_mnist_data.train_validation_split(
            train_images, train_labels,
            round(FASHION_MNIST_VALIDATION_FRACTION * len(train_labels)),
            SPLIT_SEED))
    return (training.Split(fit_images, fit_labels, val_images, val_labels),
            training.Split(train_images, train_labels, test_images,
                           test_labels))

  config = protocol.StudyConfig(
      batch_sizes=(128, 512, 2048, 8192, 16384), epochs=10, seeds=3,
      tuning_seeds=1,
      learning_rate_grids=dict(FASHION_MNIST_LEARNING_RATE_GRIDS),
      arms=protocol.ARMS)
  hidden = '-'.join(f'{units}-BN' for units in FASHION_MNIST_HIDDEN_UNITS)
  return protocol.Problem(
      name='fashion_mnist',
      title='LARS vs momentum SGD on Fashion-MNIST',
      load_splits=load_splits,
      model=training.ModelRecipe(
          description=f'MLP 784-{hidden}-10 (ReLU, batch normalization)',
          build=_batch_normalized_mlp,
          lars_exclusions=lars_optimization.BATCH_NORM_AND_BIAS),
      config=config,
      smoke_config=protocol.smoke_config(config, (128, 512)))
