r"""Large-batch study: LARS against momentum SGD on scikit-learn's digits.

You et al. 2017 (arXiv 1708.03888) introduce LARS so that large-batch
training keeps its accuracy where momentum SGD with the linearly scaled
learning rate degrades; Nado et al. 2021 (arXiv 2102.06356) show that momentum
SGD whose learning rate is re-tuned at each batch size can match LARS. This
study trains a small MLP on the 8x8 digits that ship with scikit-learn, with
the same epoch budget at every batch size from 16 to the full training set, in
three arms:

  a) `sgd_linear`: momentum SGD, learning rate tuned at the smallest batch and
     scaled linearly with the batch size (Goyal et al. 2017);
  b) `lars_held`: official_ext's LARS, global learning rate tuned at the
     smallest batch and held;
  c) `sgd_retuned`: momentum SGD, learning rate re-tuned at each batch size
     (the fair control).

Optimizers and learning-rate schedules come from official_ext's
`OptimizerFactory`; every arm uses momentum 0.9, no weight decay, a linear
warmup over the first 10% of the steps and a cosine decay to zero. Learning
rates are tuned on a validation split held out of the training set; test
accuracy is reported. Writes `results.md`, `results.png` and `results.json`.

Run from the repository root, after `pip install -e .`:

  python experiments/large_batch_study/study.py           # the whole study
  python experiments/large_batch_study/study.py --smoke   # a quick check
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import matplotlib

matplotlib.use('Agg')  # Files only; no display.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top
from matplotlib import pyplot as plt
import numpy as np
from sklearn import datasets
from sklearn import model_selection
import tensorflow as tf
import tf_keras

from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config
# pylint: enable=g-import-not-at-top

STUDY_DIR = os.path.dirname(os.path.abspath(__file__))

NUM_CLASSES = 10
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

# Factor-2 learning-rate grids; each spans the best rates of every batch size
# it is used at with at least one grid point to spare on either side.
LEARNING_RATE_GRIDS = {
    'sgd': tuple(0.004 * 2**i for i in range(11)),  # 0.004 ... 4.096
    'lars': tuple(0.125 * 2**i for i in range(9)),  # 0.125 ... 32
}



@dataclasses.dataclass(frozen=True)
class Arm:
  """One way of choosing the optimizer and learning rate at each batch size.

  Attributes:
    name: key in results.json.
    label: column heading and plot legend.
    optimizer_type: `optimizer.type` of the OptimizationConfig.
    learning_rate_rule: `linear` (tuned at the smallest batch, scaled by
      batch / smallest batch), `held` (tuned at the smallest batch, kept) or
      `retuned` (tuned at every batch size).
  """
  name: str
  label: str
  optimizer_type: str
  learning_rate_rule: str


ARMS = (
    Arm('sgd_linear', 'a) momentum SGD, LR scaled linearly', 'sgd', 'linear'),
    Arm('lars_held', 'b) LARS, LR held', 'lars', 'held'),
    Arm('sgd_retuned', 'c) momentum SGD, LR re-tuned', 'sgd', 'retuned'),
)


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


@dataclasses.dataclass(frozen=True)
class StudyConfig:
  """What the study runs.

  Attributes:
    batch_sizes: ascending batch sizes; `FULL_BATCH` (last) is the whole
      training set of the split being trained on.
    epochs: epoch budget of every run.
    seeds: number of seeds (0, 1, ...) of the reported test runs.
    tuning_seeds: number of seeds the validation accuracy of each grid point
      is averaged over.
    learning_rate_grids: optimizer type (`sgd`, `lars`) -> ascending
      learning rates tuned over.
  """
  batch_sizes: Tuple[BatchSize, ...] = (16, 32, 64, 128, 256, 512, FULL_BATCH)
  epochs: int = 30
  seeds: int = 5
  tuning_seeds: int = 3
  learning_rate_grids: Mapping[str, Tuple[float, ...]] = dataclasses.field(
      default_factory=lambda: dict(LEARNING_RATE_GRIDS))


# Checks the pipeline, not the learning rates: every 4th grid point.
SMOKE_CONFIG = StudyConfig(
    batch_sizes=(64, FULL_BATCH), epochs=2, seeds=1, tuning_seeds=1,
    learning_rate_grids={
        optimizer_type: grid[::4]
        for optimizer_type, grid in LEARNING_RATE_GRIDS.items()
    })


def load_splits() -> Tuple[Split, Split]:
  """Splits the digits into the tuning and the final split.

  Both are stratified with a fixed seed. The final split trains on 1437
  images and scores on the 360 test images; the tuning split trains on 1150
  of the 1437 and scores on the other 287, so tuning never sees the test set.

  Returns:
    (tuning, final); images are float32 [N, 64] in [0, 1], labels int32 [N].
  """
  digits = datasets.load_digits()
  images = (digits.data / digits.data.max()).astype(np.float32)
  labels = digits.target.astype(np.int32)
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


def tune(cache: RunCache, optimizer_type: str, grid: Sequence[float],
         batch_size: BatchSize,
         tuning_seeds: int) -> Tuple[float, Dict[float, List[float]]]:
  """Picks the grid learning rate with the best mean validation accuracy.

  Args:
    cache: runs the tuning split.
    optimizer_type: `sgd` or `lars`.
    grid: ascending learning rates.
    batch_size: batch size tuned for.
    tuning_seeds: seeds 0 .. tuning_seeds-1 are averaged.

  Returns:
    (best learning rate, the smallest on ties; {grid learning rate: the
    validation accuracy of each seed}).
  """
  accuracies = {
      learning_rate: [
          cache.run('tuning', optimizer_type, learning_rate, batch_size,
                    seed).accuracy for seed in range(tuning_seeds)
      ] for learning_rate in grid
  }
  best = max(grid, key=lambda learning_rate: (  # Ties: first, i.e. smallest.
      np.mean(accuracies[learning_rate]), -learning_rate))
  return best, accuracies


def transferred_learning_rate(rule: str, tuned_learning_rate: float,
                              batch_size: int,
                              smallest_batch_size: int) -> float:
  """The learning rate an arm tuned at the smallest batch uses at another.

  Args:
    rule: `linear` scales by `batch_size / smallest_batch_size`; `held` keeps
      the tuned rate.
    tuned_learning_rate: the rate tuned at the smallest batch.
    batch_size: examples per batch of the run.
    smallest_batch_size: examples per batch the rate was tuned at.

  Returns:
    The learning rate.

  Raises:
    ValueError: for any other rule.
  """
  if rule == 'linear':
    return tuned_learning_rate * (batch_size / smallest_batch_size)
  if rule == 'held':
    return tuned_learning_rate
  raise ValueError(f'Unknown learning_rate_rule {rule!r}; transferred rules '
                   "are 'linear' and 'held'.")


def batch_label(batch_size: BatchSize) -> str:
  """Key of a batch size in results.json: `16`, ..., `full`."""
  return str(batch_size)


def mean_and_sd(values: Sequence[float]) -> Tuple[float, Optional[float]]:
  """Mean and sample standard deviation (None for a single value)."""
  sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
  return float(np.mean(values)), sd


@contextlib.contextmanager
def _graph_rewrites_disabled():
  """Turns Grappler off, restoring TensorFlow's previous options on exit.

  Its rewrites cost more than they save on graphs this small: without them a
  run is about three times faster.

  Yields:
    Nothing.
  """
  previous = tf.config.optimizer.get_experimental_options()
  tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
  try:
    yield
  finally:
    tf.config.optimizer.set_experimental_options(
        {'disable_meta_optimizer': False, **previous})


def run_study(config: StudyConfig,
              log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Tunes, trains and scores every arm at every batch size.

  Args:
    config: batch sizes, epochs and seeds.
    log: receives one line per training run.

  Returns:
    The JSON-serializable results: config, validation accuracies of every
    grid point, the chosen learning rates, and per arm and batch size the
    test accuracy and divergence of every seed.
  """
  with _graph_rewrites_disabled():
    return _run_study(config, log)


def _run_study(config: StudyConfig,
               log: Callable[[str], None]) -> Dict[str, Any]:
  """`run_study` without the Grappler switch."""
  start_time = time.time()
  load_at_start = os.getloadavg()
  tuning_split, final_split = load_splits()
  cache = RunCache({'tuning': tuning_split, 'final': final_split},
                   config.epochs, log)
  smallest = config.batch_sizes[0]

  grids = config.learning_rate_grids
  tuning = {optimizer_type: {} for optimizer_type in grids}
  tuned_at_smallest = {}
  for optimizer_type, grid in grids.items():
    tuned_at_smallest[optimizer_type], accuracies = tune(
        cache, optimizer_type, grid, smallest, config.tuning_seeds)
    tuning[optimizer_type][batch_label(smallest)] = accuracies
  retuned = {}
  for batch_size in config.batch_sizes:
    retuned[batch_size], accuracies = tune(cache, 'sgd', grids['sgd'],
                                           batch_size, config.tuning_seeds)
    tuning['sgd'][batch_label(batch_size)] = accuracies

  num_train = len(final_split.train_labels)
  arms = {}
  for arm in ARMS:
    cells = {}
    for batch_size in config.batch_sizes:
      if arm.learning_rate_rule == 'retuned':
        learning_rate = retuned[batch_size]
      else:
        learning_rate = transferred_learning_rate(
            arm.learning_rate_rule, tuned_at_smallest[arm.optimizer_type],
            resolve_batch_size(batch_size, num_train),
            resolve_batch_size(smallest, num_train))
      runs = [cache.run('final', arm.optimizer_type, learning_rate,
                        batch_size, seed) for seed in range(config.seeds)]
      cells[batch_label(batch_size)] = {
          'learning_rate': learning_rate,
          'test_accuracy': [run.accuracy for run in runs],
          'loss_finite': [run.loss_finite for run in runs],
          'diverged': [run.diverged for run in runs],
      }
    arms[arm.name] = {'label': arm.label, 'cells': cells}

  return {
      'config': {
          'batch_sizes': [batch_label(b) for b in config.batch_sizes],
          'examples_per_batch': {
              batch_label(b): resolve_batch_size(b, num_train)
              for b in config.batch_sizes
          },
          'epochs': config.epochs,
          'seeds': config.seeds,
          'tuning_seeds': config.tuning_seeds,
          'learning_rate_grids': {
              optimizer_type: list(grid)
              for optimizer_type, grid in grids.items()
          },
          'hidden_units': list(HIDDEN_UNITS),
          'momentum': MOMENTUM,
          'warmup_fraction': WARMUP_FRACTION,
          'train_examples': num_train,
          'tuning_train_examples': len(tuning_split.train_labels),
          'validation_examples': len(tuning_split.eval_labels),
          'test_examples': len(final_split.eval_labels),
      },
      'tuning_validation_accuracy': {
          optimizer_type: {
              label: {repr(lr): accs for lr, accs in grid.items()}
              for label, grid in by_batch.items()
          } for optimizer_type, by_batch in tuning.items()
      },
      'arms': arms,
      'training_runs': len(cache),
      'wall_time_seconds': time.time() - start_time,
      'cpu_count': os.cpu_count(),
      'load_average_1min': {'start': load_at_start[0],
                            'end': os.getloadavg()[0]},
  }


def format_cell(cell: Mapping[str, Any]) -> str:
  """A table cell: test accuracy in %, mean ± sd, with its LR and divergences.

  Args:
    cell: one arm at one batch size, as in results.json.

  Returns:
    E.g. `97.2 ± 0.4 (lr 0.064; 0/5 diverged)`; the sd is `n/a` for one seed.
  """
  mean, sd = mean_and_sd(cell['test_accuracy'])
  sd_text = 'n/a' if sd is None else f'{100 * sd:.1f}'
  return (f'{100 * mean:.1f} ± {sd_text} (lr {cell["learning_rate"]:.4g}; '
          f'{sum(cell["diverged"])}/{len(cell["diverged"])} diverged)')


def format_batch_size(label: str, examples_per_batch: int) -> str:
  """Row heading: `16`, ..., `full (1437)`."""
  if label == FULL_BATCH:
    return f'{FULL_BATCH} ({examples_per_batch})'
  return label


def results_table(results: Mapping[str, Any]) -> str:
  """The markdown report: protocol, the table of arms × batch sizes, timing.

  Args:
    results: as returned by `run_study`.

  Returns:
    Markdown text.
  """
  config = results['config']
  arms = results['arms']
  smallest = config['batch_sizes'][0]
  tuned = {name: arms[name]['cells'][smallest]['learning_rate']
           for name in ('sgd_linear', 'lars_held')}
  lines = [
      '# Large-batch study: LARS vs momentum SGD on scikit-learn digits',
      '',
      f'Test accuracy (%) of an MLP {tuple(config["hidden_units"])} on the '
      f'{config["test_examples"]} test digits after training on '
      f'{config["train_examples"]}, mean ± sd over {config["seeds"]} '
      f'seed(s); every run has the same budget of {config["epochs"]} epochs, '
      f'momentum {config["momentum"]}, linear warmup over the first '
      f'{100 * config["warmup_fraction"]:.0f}% of its steps and cosine decay '
      'to 0.',
      '',
      'Tuning: learning rates are picked by mean validation accuracy over '
      f'{config["tuning_seeds"]} seed(s), training on '
      f'{config["tuning_train_examples"]} of the training digits and '
      f'validating on the other {config["validation_examples"]} (never the '
      'test digits); ties go to the smaller rate. SGD grid: '
      f'{_format_grid(config["learning_rate_grids"]["sgd"])}; LARS grid: '
      f'{_format_grid(config["learning_rate_grids"]["lars"])}. Arms (a) and '
      f'(b) are tuned at batch {smallest} (SGD: lr '
      f'{tuned["sgd_linear"]:.4g}, LARS: lr {tuned["lars_held"]:.4g}); (a) '
      f'then scales its rate by batch / {smallest}, (b) holds it; (c) is '
      f're-tuned at every batch size, so at batch {smallest} it is arm (a).',
      '',
      f'Mean validation accuracy (%) at batch {smallest}, per learning rate '
      '(chosen in bold):',
      '',
      *(f'- {name}: ' + _format_tuning(
          results['tuning_validation_accuracy'][optimizer_type][smallest],
          tuned[arm_name])
        for name, optimizer_type, arm_name in (
            ('SGD', 'sgd', 'sgd_linear'), ('LARS', 'lars', 'lars_held'))),
      '',
      'Diverged: the training loss became non-finite (the run then scores '
      f'chance, {100 * CHANCE_ACCURACY:.0f}%) or test accuracy <= '
      f'{100 * DIVERGED_ACCURACY:.0f}%.',
      '',
      '| batch size | ' + ' | '.join(arm['label'] for arm in arms.values())
      + ' |',
      '|---:|' + '---|' * len(arms),
  ]
  for label in config['batch_sizes']:
    examples = config['examples_per_batch'][label]
    lines.append(f'| {format_batch_size(label, examples)} | ' + ' | '.join(
        format_cell(arm['cells'][label]) for arm in arms.values()) + ' |')
  lines += [
      '',
      f'{results["training_runs"]} training runs in '
      f'{results["wall_time_seconds"] / 60:.1f} min on {results["cpu_count"]} '
      'CPU cores (1-minute load average '
      f'{results["load_average_1min"]["start"]:.1f} at the start, '
      f'{results["load_average_1min"]["end"]:.1f} at the end).',
      '',
  ]
  return '\n'.join(lines)


def _format_grid(learning_rates: Sequence[float]) -> str:
  return ', '.join(f'{lr:.4g}' for lr in learning_rates)


def _format_tuning(accuracies: Mapping[str, Sequence[float]],
                   chosen: float) -> str:
  """`lr → accuracy` pairs of one grid, the chosen rate in bold."""
  pairs = []
  for learning_rate, seeds in accuracies.items():
    pair = f'{float(learning_rate):.4g} → {100 * np.mean(seeds):.1f}'
    pairs.append(f'**{pair}**' if float(learning_rate) == chosen else pair)
  return ', '.join(pairs)


def plot_results(results: Mapping[str, Any], path: str):
  """Saves test accuracy vs batch size, one line per arm, as a PNG.

  The left panel shows every cell, diverged ones included; the right one
  zooms in on the accuracies of the cells without divergences.

  Args:
    results: as returned by `run_study`.
    path: PNG file to write.
  """
  config = results['config']
  labels = config['batch_sizes']
  examples = [config['examples_per_batch'][label] for label in labels]
  figure, (full_axes, zoom_axes) = plt.subplots(1, 2, figsize=(11, 4.8),
                                                sharex=True)
  arms = list(results['arms'].values())
  healthy_means = []
  for i, arm in enumerate(arms):
    cells = [arm['cells'][label] for label in labels]
    means, sds = zip(*(mean_and_sd(cell['test_accuracy']) for cell in cells))
    means = [100 * mean for mean in means]
    sds = [100 * (sd or 0.0) for sd in sds]
    # Nudged sideways so that arms with equal results stay visible.
    dodged = [x * 2**(0.06 * (i - (len(arms) - 1) / 2)) for x in examples]
    for axes in (full_axes, zoom_axes):
      line = axes.errorbar(dodged, means, yerr=sds, marker='o', capsize=3,
                           color=f'C{i}', label=arm['label'])
    for x, mean, cell in zip(dodged, means, cells):
      if any(cell['diverged']):
        full_axes.annotate(
            f'{sum(cell["diverged"])}/{len(cell["diverged"])} div.', (x, mean),
            textcoords='offset points', xytext=(-6, -12 - 9 * i), ha='right',
            fontsize=7, color=line[0].get_color())
      else:
        healthy_means.append(mean)
  full_axes.axhline(100 * CHANCE_ACCURACY, color='grey', linestyle=':',
                    linewidth=1, label='chance')
  full_axes.set_ylim(0, 100)
  full_axes.set_title('all cells')
  zoom_bottom = math.floor(min(healthy_means, default=90.0) - 1)
  zoom_axes.set_ylim(zoom_bottom, 100)
  zoom_axes.set_title('zoom on the cells without divergences')
  full_axes.set_ylabel(
      f'test accuracy (%), mean ± sd of {config["seeds"]} seed(s)')
  for axes in (full_axes, zoom_axes):
    axes.set_xscale('log', base=2)
    axes.set_xticks(examples)
    axes.set_xticklabels([format_batch_size(label, n) for label, n in
                          zip(labels, examples)])
    axes.set_xlabel('batch size (examples)')
    axes.grid(True, alpha=0.3)
  figure.suptitle(f'Digits MLP, {config["epochs"]} epochs at every batch size')
  figure.legend(*full_axes.get_legend_handles_labels(), loc='lower center',
                ncol=4, fontsize=8)
  figure.tight_layout(rect=(0, 0.07, 1, 1))
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write_results(results: Mapping[str, Any], output_dir: str):
  """Writes results.json, results.md and results.png into `output_dir`.

  Each file is written next to its destination and renamed into place, so an
  interrupted write leaves the previous file intact.

  Args:
    results: as returned by `run_study`.
    output_dir: an existing directory.
  """
  writers = {
      'results.json':
          lambda path: _write_text(path, json.dumps(results, indent=1) + '\n'),
      'results.md': lambda path: _write_text(path, results_table(results)),
      'results.png': lambda path: plot_results(results, path),
  }
  for name, write in writers.items():
    destination = os.path.join(output_dir, name)
    temporary = destination + '.partial' + os.path.splitext(name)[1]
    write(temporary)
    os.replace(temporary, destination)


def _write_text(path: str, text: str):
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)


def parse_batch_sizes(text: str) -> Tuple[BatchSize, ...]:
  """Parses `--batch_sizes`, e.g. `16,64,256,full`.

  Args:
    text: comma-separated positive integers, ascending, optionally ending
      with `full`.

  Returns:
    The batch sizes; `FULL_BATCH` stays a string.

  Raises:
    ValueError: naming `--batch_sizes` and the bad value.
  """
  sizes = []
  for item in text.split(','):
    item = item.strip()
    if item == FULL_BATCH:
      sizes.append(FULL_BATCH)
      continue
    try:
      size = int(item)
    except ValueError:
      size = 0
    if size < 1:
      raise ValueError(f'--batch_sizes: {item!r} in {text!r} is neither a '
                       f'positive integer nor {FULL_BATCH!r}.')
    sizes.append(size)
  numbers = [size for size in sizes if size != FULL_BATCH]
  if FULL_BATCH in sizes[:-1] or numbers != sorted(set(numbers)):
    raise ValueError(f'--batch_sizes: {text!r} must be strictly ascending '
                     f'integers, optionally followed by {FULL_BATCH!r}.')
  return tuple(sizes)


def study_config_from_args(args: argparse.Namespace) -> StudyConfig:
  """Resolves the flags, `--smoke` defaults included, and checks them.

  Args:
    args: parsed flags; explicit values win over `--smoke`'s.

  Returns:
    The StudyConfig.

  Raises:
    ValueError: naming the flag and its bad value.
  """
  flags = {
      'batch_sizes': (None if args.batch_sizes is None else
                      parse_batch_sizes(args.batch_sizes)),
      'epochs': args.epochs,
      'seeds': args.seeds,
      'tuning_seeds': args.tuning_seeds,
  }
  config = dataclasses.replace(
      SMOKE_CONFIG if args.smoke else StudyConfig(),
      **{name: value for name, value in flags.items() if value is not None})
  # Warmup and decay need two steps, which a full-batch epoch does not give.
  if config.epochs < 2:
    raise ValueError(f'--epochs must be at least 2, got {config.epochs}.')
  for flag in ('seeds', 'tuning_seeds'):
    if getattr(config, flag) < 1:
      raise ValueError(f'--{flag} must be at least 1, got '
                       f'{getattr(config, flag)}.')
  tuning_train_examples = len(load_splits()[0].train_labels)
  too_large = [b for b in config.batch_sizes
               if b != FULL_BATCH and b > tuning_train_examples]
  if too_large:
    raise ValueError(
        f'--batch_sizes: {too_large} exceed the {tuning_train_examples} '
        f'images tuning trains on; use {FULL_BATCH!r} for the full batch.')
  return config


def output_dir_from_args(args: argparse.Namespace) -> str:
  """The output directory, created if missing, checked writable.

  `--smoke` without `--output_dir` writes into a new temporary directory, so
  that a quick check never overwrites the study's committed results.

  Args:
    args: parsed flags.

  Returns:
    The directory's path.

  Raises:
    ValueError: if `--output_dir` is not a writable directory.
  """
  if args.output_dir is None:
    if args.smoke:
      return tempfile.mkdtemp(prefix='large_batch_study_smoke_')
    return STUDY_DIR
  if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
    raise ValueError(f'--output_dir {args.output_dir!r} exists and is not a '
                     'directory.')
  os.makedirs(args.output_dir, exist_ok=True)
  if not os.access(args.output_dir, os.W_OK):
    raise ValueError(f'--output_dir {args.output_dir!r} is not writable.')
  return args.output_dir


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  """Parses the command line (without the program name)."""
  default, smoke = StudyConfig(), SMOKE_CONFIG
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      '--smoke', action='store_true',
      help=f'quick check: {smoke.seeds} seed, batch sizes '
      f'{",".join(map(str, smoke.batch_sizes))}, {smoke.epochs} epochs, every '
      '4th grid learning rate, into a temporary directory unless '
      '--output_dir is given')
  parser.add_argument(
      '--output_dir', default=None,
      help=f'where results.{{md,png,json}} go (default: {STUDY_DIR})')
  parser.add_argument(
      '--batch_sizes', default=None,
      help='comma-separated, ascending, optionally ending with "full" '
      f'(default: {",".join(map(str, default.batch_sizes))})')
  parser.add_argument('--epochs', type=int, default=None,
                      help=f'epoch budget of every run (default: '
                      f'{default.epochs})')
  parser.add_argument('--seeds', type=int, default=None,
                      help=f'seeds of the test runs (default: {default.seeds})')
  parser.add_argument('--tuning_seeds', type=int, default=None,
                      help='seeds each grid point is averaged over (default: '
                      f'{default.tuning_seeds})')
  return parser.parse_args(argv)


def main(argv: Sequence[str]) -> str:
  """Runs the study from the command line.

  Args:
    argv: the flags, without the program name.

  Returns:
    The directory the results were written to.
  """
  args = parse_args(argv)
  try:
    config = study_config_from_args(args)
    output_dir = output_dir_from_args(args)
  except ValueError as e:
    sys.exit(f'large_batch_study: {e}')
  tf.get_logger().setLevel('ERROR')  # One tf.function per run is intended.
  results = run_study(config, log=lambda line: print(line, flush=True))
  write_results(results, output_dir)
  print(results_table(results))
  print(f'Wrote results.md, results.png and results.json to {output_dir}.')
  return output_dir


if __name__ == '__main__':
  main(sys.argv[1:])
