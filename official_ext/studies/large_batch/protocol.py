"""The large-batch study's protocol: arms, tuning, and the whole run.

Three arms choose the optimizer and learning rate at each batch size (see
`ARMS`); learning rates are tuned on a validation split held out of the
training digits, and each arm's chosen rate is then trained with several
seeds and scored on the test digits.
"""
import contextlib
import dataclasses
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from official_ext.studies.large_batch import training

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
  batch_sizes: Tuple[training.BatchSize, ...] = (
      16, 32, 64, 128, 256, 512, training.FULL_BATCH)
  epochs: int = 30
  seeds: int = 5
  tuning_seeds: int = 3
  learning_rate_grids: Mapping[str, Tuple[float, ...]] = dataclasses.field(
      default_factory=lambda: dict(LEARNING_RATE_GRIDS))


# Checks the pipeline, not the learning rates: every 4th grid point.
SMOKE_CONFIG = StudyConfig(
    batch_sizes=(64, training.FULL_BATCH), epochs=2, seeds=1, tuning_seeds=1,
    learning_rate_grids={
        optimizer_type: grid[::4]
        for optimizer_type, grid in LEARNING_RATE_GRIDS.items()
    })


def tune(cache: training.RunCache, optimizer_type: str, grid: Sequence[float],
         batch_size: training.BatchSize,
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


def batch_label(batch_size: training.BatchSize) -> str:
  """Key of a batch size in results.json: `16`, ..., `full`."""
  return str(batch_size)


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
  tuning_split, final_split = training.load_splits()
  cache = training.RunCache({'tuning': tuning_split, 'final': final_split},
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
            training.resolve_batch_size(batch_size, num_train),
            training.resolve_batch_size(smallest, num_train))
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
              batch_label(b): training.resolve_batch_size(b, num_train)
              for b in config.batch_sizes
          },
          'epochs': config.epochs,
          'seeds': config.seeds,
          'tuning_seeds': config.tuning_seeds,
          'learning_rate_grids': {
              optimizer_type: list(grid)
              for optimizer_type, grid in grids.items()
          },
          'hidden_units': list(training.HIDDEN_UNITS),
          'momentum': training.MOMENTUM,
          'warmup_fraction': training.WARMUP_FRACTION,
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
