"""One training run of the large-batch study, and the cache of runs.

The data (scikit-learn's digits, split for tuning and for the final test),
the MLP, the optimization config every arm trains with (built by
official_ext's `OptimizerFactory`), and the training loop of one run.
"""
import dataclasses
from typing import Callable, Dict, Mapping, Tuple, Union

import numpy as np
from sklearn import model_selection
import tensorflow as tf
import tf_keras

from official_ext.experiments import digits_data
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config

NUM_CLASSES = digits_data.NUM_CLASSES
CHANCE_ACCURACY = 1.0 / NUM_CLASSES
# A run diverged if its training loss became non-finite or its accuracy
# ended no better than this: twice chance, i.e. the model learned nothing.
DIVERGED_ACCURACY = 2 * CHANCE_ACCURACY

TEST_EXAMPLES = 360  # 1797 digits -> 1437 training + 360 test images.
VALIDATION_EXAMPLES = 287  # Held out of the 1437 for tuning: 20%.
SPLIT_SEED = 0
HIDDEN_UNITS = (128, 128)

MOMENTUM = 0.9
WARMUP_FRACTION = 0.1
FULL_BATCH = 'full'
BatchSize = Union[int, str]

@dataclasses.dataclass(frozen=True)
class Split:
  """Images a run trains on and the held-out images it is scored on."""
  train_images: np.ndarray
  train_labels: np.ndarray
  eval_images: np.ndarray
  eval_labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class RunResult:
  """Outcome of one training run.

  Attributes:
    accuracy: accuracy on the split's held-out images; chance level
      (`CHANCE_ACCURACY`) when the loss became non-finite, since the weights
      are then meaningless.
    loss_finite: whether every training loss was finite.
    diverged: loss not finite, or accuracy <= `DIVERGED_ACCURACY`.
  """
  accuracy: float
  loss_finite: bool
  diverged: bool


def load_splits() -> Tuple[Split, Split]:
  """Splits the digits into the tuning and the final split.

  Both are stratified with a fixed seed. The final split trains on 1437
  images and scores on the 360 test images; the tuning split trains on 1150
  of the 1437 and scores on the other 287, so tuning never sees the test set.

  Returns:
    (tuning, final); images are float32 [N, 64] in [0, 1], labels int32 [N].
  """
  images, labels = digits_data.load_digits()
  images = images.reshape(len(images), -1)
  train_images, test_images, train_labels, test_labels = (
      model_selection.train_test_split(
          images, labels, test_size=TEST_EXAMPLES, stratify=labels,
          random_state=SPLIT_SEED))
  fit_images, val_images, fit_labels, val_labels = (
      model_selection.train_test_split(
          train_images, train_labels, test_size=VALIDATION_EXAMPLES,
          stratify=train_labels, random_state=SPLIT_SEED))
  return (Split(fit_images, fit_labels, val_images, val_labels),
          Split(train_images, train_labels, test_images, test_labels))


def build_model(num_features: int) -> tf_keras.Model:
  """The classifier: ReLU MLP with `HIDDEN_UNITS`, returning logits."""
  layers = [tf_keras.Input(shape=(num_features,))]
  layers += [tf_keras.layers.Dense(units, activation='relu')
             for units in HIDDEN_UNITS]
  layers.append(tf_keras.layers.Dense(NUM_CLASSES))
  return tf_keras.Sequential(layers, name='digits_mlp')


def resolve_batch_size(batch_size: BatchSize, num_examples: int) -> int:
  """The number of examples per batch: `num_examples` for `FULL_BATCH`."""
  return num_examples if batch_size == FULL_BATCH else batch_size


def warmup_steps(total_steps: int) -> int:
  """Linear-warmup steps: `WARMUP_FRACTION` of the run, at least one."""
  return max(1, round(WARMUP_FRACTION * total_steps))


def build_optimization_config(
    optimizer_type: str, learning_rate: float,
    total_steps: int) -> optimization_config.OptimizationConfig:
  """The config every arm trains with, but for the optimizer and peak LR.

  Args:
    optimizer_type: `sgd` or `lars`; both with momentum `MOMENTUM`, LARS with
      its other defaults (eeta 0.001, no weight decay, every variable
      adapted).
    learning_rate: the peak learning rate, reached at the end of the warmup.
    total_steps: training steps of the run, at least 2 (warmup, then decay).

  Returns:
    An OptimizationConfig: linear warmup from 0 over `warmup_steps`, then
    cosine decay to 0 at `total_steps`.
  """
  warmup = warmup_steps(total_steps)
  return optimization_config.OptimizationConfig({
      'optimizer': {
          'type': optimizer_type,
          optimizer_type: {'momentum': MOMENTUM},
      },
      'learning_rate': {
          'type': 'cosine',
          'cosine': {
              'initial_learning_rate': learning_rate,
              'decay_steps': total_steps - warmup,
              'offset': warmup,
          },
      },
      'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': warmup, 'warmup_learning_rate': 0.0},
      },
  })


def batch_indices(num_examples: int, batch_size: int, epochs: int,
                  seed: int) -> np.ndarray:
  """Indices of every batch of a run: a fresh permutation per epoch.

  The `num_examples % batch_size` examples left over by an epoch's
  permutation are dropped, so every step sees `batch_size` examples.

  Args:
    num_examples: training set size.
    batch_size: examples per batch, at most `num_examples`.
    epochs: number of epochs.
    seed: seeds the permutations.

  Returns:
    int32 array [epochs * (num_examples // batch_size), batch_size].
  """
  rng = np.random.RandomState(seed)
  steps_per_epoch = num_examples // batch_size
  epoch_batches = [
      rng.permutation(num_examples)[:steps_per_epoch * batch_size]
      for _ in range(epochs)
  ]
  return np.concatenate(epoch_batches).reshape(-1, batch_size).astype(np.int32)


def _fit(model: tf_keras.Model, optimizer: tf_keras.optimizers.Optimizer,
         images: np.ndarray, labels: np.ndarray,
         batches: np.ndarray) -> bool:
  """Trains on `batches` in one graph; stops at the first non-finite loss.

  Returns:
    Whether every loss was finite.
  """
  loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  # Variables created while tracing make tf.function trace twice; the slots
  # created here, eagerly, halve the tracing time that dominates short runs.
  # pylint: disable-next=protected-access
  optimizer._create_all_weights(model.trainable_variables)

  @tf.function
  def train(images, labels, batches):
    all_finite = tf.constant(True)
    for step in tf.range(tf.shape(batches)[0]):
      with tf.GradientTape() as tape:
        loss = loss_fn(tf.gather(labels, batches[step]),
                       model(tf.gather(images, batches[step]), training=True))
      gradients = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(gradients, model.trainable_variables))
      all_finite = tf.math.is_finite(loss)
      if not all_finite:
        break
    return all_finite

  return bool(train(images, labels, batches))


def train_and_evaluate(split: Split, optimizer_type: str, learning_rate: float,
                       batch_size: BatchSize, epochs: int,
                       seed: int) -> RunResult:
  """Trains a fresh model with the factory's optimizer and scores it.

  Args:
    split: training and held-out images.
    optimizer_type: `sgd` or `lars`.
    learning_rate: peak learning rate.
    batch_size: examples per batch, or `FULL_BATCH`.
    epochs: epoch budget.
    seed: seeds the initial weights and the batch order.

  Returns:
    The run's held-out accuracy and divergence.
  """
  num_examples = len(split.train_labels)
  examples_per_batch = resolve_batch_size(batch_size, num_examples)
  batches = batch_indices(num_examples, examples_per_batch, epochs, seed)
  factory = optimizer_factory.OptimizerFactory(
      build_optimization_config(optimizer_type, learning_rate, len(batches)))
  optimizer = factory.build_optimizer(factory.build_learning_rate())
  tf_keras.utils.set_random_seed(seed)
  model = build_model(split.train_images.shape[1])
  loss_finite = _fit(model, optimizer, split.train_images, split.train_labels,
                     batches)
  if loss_finite:
    predictions = np.argmax(model(split.eval_images).numpy(), axis=1)
    accuracy = float(np.mean(predictions == split.eval_labels))
  else:
    accuracy = CHANCE_ACCURACY
  tf_keras.backend.clear_session()
  return RunResult(accuracy, loss_finite,
                   not loss_finite or accuracy <= DIVERGED_ACCURACY)


class RunCache:
  """Runs each (split, optimizer, LR, batch size, seed) once and remembers it.

  Arms share runs: at the smallest batch, arm (a) and arm (c) tune over the
  same SGD grid and may pick the same learning rate.
  """

  def __init__(self, splits: Mapping[str, Split], epochs: int,
               log: Callable[[str], None]):
    self._splits = splits
    self._epochs = epochs
    self._log = log
    self._results: Dict[Tuple[str, str, float, BatchSize, int], RunResult] = {}

  def __len__(self) -> int:
    return len(self._results)

  def run(self, split_name: str, optimizer_type: str, learning_rate: float,
          batch_size: BatchSize, seed: int) -> RunResult:
    key = (split_name, optimizer_type, learning_rate, batch_size, seed)
    if key not in self._results:
      self._results[key] = train_and_evaluate(
          self._splits[split_name], optimizer_type, learning_rate, batch_size,
          self._epochs, seed)
      self._log(f'{split_name:6s} {optimizer_type:4s} lr={learning_rate:<8.4g} '
                f'batch={batch_size!s:4s} seed={seed} -> '
                f'{self._results[key]}')
    return self._results[key]
