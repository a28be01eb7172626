"""One training run of the large-batch study, and the cache of runs.

The optimization config every arm trains with (built by official_ext's
`OptimizerFactory`) and the training loop of one run, on any data set's
`Split` and any `ModelRecipe` (see `problems` for the data sets and models).
"""
import dataclasses
import time
from typing import Callable, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
import tf_keras

from official_ext import internals
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config

NUM_CLASSES = 10  # Of every data set the study runs on.
CHANCE_ACCURACY = 1.0 / NUM_CLASSES
# A run diverged if its training loss became non-finite or its accuracy
# ended no better than this: twice chance, i.e. the model learned nothing.
DIVERGED_ACCURACY = 2 * CHANCE_ACCURACY

MOMENTUM = 0.9
WARMUP_FRACTION = 0.1
FULL_BATCH = 'full'
BatchSize = Union[int, str]


@dataclasses.dataclass(frozen=True)
class Split:
  """Images a run trains on and the held-out images it is scored on.

  Images are float32 [N, features], labels int32 [N].
  """
  train_images: np.ndarray
  train_labels: np.ndarray
  eval_images: np.ndarray
  eval_labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class ModelRecipe:
  """The model every run trains, and how LARS treats its variables.

  Attributes:
    description: what the model is, for the report, e.g. `MLP 64-128-10`.
    build: number of input features -> a fresh model returning
      `NUM_CLASSES` logits.
    lars_exclusions: regexes of variable names LARS gives neither weight
      decay nor layer adaptation (its `exclude_from_weight_decay` and
      `exclude_from_layer_adaptation`); empty for LARS's defaults, which
      adapt every variable.
  """
  description: str
  build: Callable[[int], tf_keras.Model]
  lars_exclusions: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RunResult:
  """Outcome of one training run.

  Attributes:
    accuracy: accuracy on the split's held-out images; chance level
      (`CHANCE_ACCURACY`) when the loss became non-finite, since the weights
      are then meaningless.
    loss_finite: whether every training loss was finite.
    diverged: loss not finite, or accuracy <= `DIVERGED_ACCURACY`.
    wall_time_seconds: time the run took, model building and scoring
      included.
  """
  accuracy: float
  loss_finite: bool
  diverged: bool
  wall_time_seconds: float


def resolve_batch_size(batch_size: BatchSize, num_examples: int) -> int:
  """The number of examples per batch: `num_examples` for `FULL_BATCH`."""
  return num_examples if batch_size == FULL_BATCH else batch_size


def warmup_steps(total_steps: int) -> int:
  """Linear-warmup steps: `WARMUP_FRACTION` of the run, at least one."""
  return max(1, round(WARMUP_FRACTION * total_steps))


def build_optimization_config(
    optimizer_type: str, learning_rate: float, total_steps: int,
    lars_exclusions: Sequence[str] = ()
) -> optimization_config.OptimizationConfig:
  """The config every arm trains with, but for the optimizer and peak LR.

  Args:
    optimizer_type: `sgd` or `lars`; both with momentum `MOMENTUM` and no
      weight decay, LARS with its other defaults (eeta 0.001).
    learning_rate: the peak learning rate, reached at the end of the warmup.
    total_steps: training steps of the run, at least 2 (warmup, then decay).
    lars_exclusions: regexes of the variables LARS neither decays nor adapts,
      set as a Model Garden user sets them; empty: every variable adapted.

  Returns:
    An OptimizationConfig: linear warmup from 0 over `warmup_steps`, then
    cosine decay to 0 at `total_steps`.
  """
  warmup = warmup_steps(total_steps)
  optimizer = {'momentum': MOMENTUM}
  if optimizer_type == 'lars' and lars_exclusions:
    optimizer['exclude_from_weight_decay'] = list(lars_exclusions)
    optimizer['exclude_from_layer_adaptation'] = list(lars_exclusions)
  return optimization_config.OptimizationConfig({
      'optimizer': {
          'type': optimizer_type,
          optimizer_type: optimizer,
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
  internals.create_optimizer_weights(optimizer, model.trainable_variables)

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


def train_and_evaluate(split: Split, model: ModelRecipe, optimizer_type: str,
                       learning_rate: float, batch_size: BatchSize,
                       epochs: int, seed: int) -> RunResult:
  """Trains a fresh model with the factory's optimizer and scores it.

  Args:
    split: training and held-out images.
    model: the model and LARS's exclusions.
    optimizer_type: `sgd` or `lars`.
    learning_rate: peak learning rate.
    batch_size: examples per batch, or `FULL_BATCH`.
    epochs: epoch budget.
    seed: seeds the initial weights and the batch order.

  Returns:
    The run's held-out accuracy, divergence and wall time.
  """
  start_time = time.time()
  num_examples = len(split.train_labels)
  examples_per_batch = resolve_batch_size(batch_size, num_examples)
  batches = batch_indices(num_examples, examples_per_batch, epochs, seed)
  factory = optimizer_factory.OptimizerFactory(
      build_optimization_config(optimizer_type, learning_rate, len(batches),
                                model.lars_exclusions))
  optimizer = factory.build_optimizer(factory.build_learning_rate())
  tf_keras.utils.set_random_seed(seed)
  network = model.build(split.train_images.shape[1])
  loss_finite = _fit(network, optimizer, split.train_images,
                     split.train_labels, batches)
  if loss_finite:
    predictions = np.argmax(network(split.eval_images).numpy(), axis=1)
    accuracy = float(np.mean(predictions == split.eval_labels))
  else:
    accuracy = CHANCE_ACCURACY
  tf_keras.backend.clear_session()
  return RunResult(accuracy, loss_finite,
                   not loss_finite or accuracy <= DIVERGED_ACCURACY,
                   time.time() - start_time)


RunKey = Tuple[str, str, float, BatchSize, int]


class RunCache:
  """Runs each (split, optimizer, LR, batch size, seed) once and remembers it.

  Arms share runs: at the smallest batch, an arm tuned there and the arm
  re-tuned at every batch size tune over the same grid. Each new run logs a
  progress line: runs done of `total` (the runs planned so far, set by the
  caller) and the time left at the mean pace of the runs so far.
  """

  def __init__(self, splits: Mapping[str, Split], model: ModelRecipe,
               epochs: int, log: Callable[[str], None]):
    self._splits = splits
    self._model = model
    self._epochs = epochs
    self._log = log
    self._results: Dict[RunKey, RunResult] = {}
    self.total = 0

  def __len__(self) -> int:
    return len(self._results)

  def new_runs(self, keys: Sequence[RunKey]) -> int:
    """How many of `keys` (duplicates counted once) have not run yet."""
    return len(set(keys) - set(self._results))

  def run(self, split_name: str, optimizer_type: str, learning_rate: float,
          batch_size: BatchSize, seed: int) -> RunResult:
    key = (split_name, optimizer_type, learning_rate, batch_size, seed)
    if key not in self._results:
      result = train_and_evaluate(
          self._splits[split_name], self._model, optimizer_type,
          learning_rate, batch_size, self._epochs, seed)
      self._results[key] = result
      done = len(self._results)
      elapsed = sum(r.wall_time_seconds for r in self._results.values())
      left_minutes = elapsed / done * max(self.total - done, 0) / 60
      self._log(f'[{done}/{max(self.total, done)}, ~{left_minutes:.0f} min '
                f'left] {split_name:6s} {optimizer_type:4s} '
                f'lr={learning_rate:<8.4g} batch={batch_size!s:5s} '
                f'seed={seed} -> accuracy {result.accuracy:.4f}'
                f'{" DIVERGED" if result.diverged else ""} '
                f'({result.wall_time_seconds:.1f} s)')
    return self._results[key]

  def records(self) -> List[Dict[str, object]]:
    """Every run, in the order they ran, as JSON-serializable dicts."""
    return [{
        'split': split_name,
        'optimizer': optimizer_type,
        'learning_rate': learning_rate,
        'batch_size': str(batch_size),
        'seed': seed,
        **dataclasses.asdict(result),
    } for (split_name, optimizer_type, learning_rate, batch_size, seed),
          result in self._results.items()]
