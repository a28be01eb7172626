"""The large-batch study's protocol: arms, tuning, and the whole run.

Arms choose the optimizer and learning rate at each batch size (see `ARMS`);
learning rates are tuned on a validation split held out of a problem's
training set, and each arm's chosen rate is then trained with several seeds
on the whole training set and scored on the test set.
"""
import contextlib
import dataclasses
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from official_ext.benchmarks import optimizer_step
from official_ext.studies.large_batch import training

# The digits study's factor-2 learning-rate grids; each spans the best rates
# of every batch size it is used at with at least one grid point to spare on
# either side.
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
    Arm('lars_retuned', 'd) LARS, LR re-tuned', 'lars', 'retuned'),
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
    arms: the arms run, in the table's column order.
  """
  batch_sizes: Tuple[training.BatchSize, ...] = (
      16, 32, 64, 128, 256, 512, training.FULL_BATCH)
  epochs: int = 30
  seeds: int = 5
  tuning_seeds: int = 3
  learning_rate_grids: Mapping[str, Tuple[float, ...]] = dataclasses.field(
      default_factory=lambda: dict(LEARNING_RATE_GRIDS))
  arms: Tuple[Arm, ...] = ARMS[:3]


def smoke_config(config: StudyConfig,
                 batch_sizes: Tuple[training.BatchSize, ...]) -> StudyConfig:
  """Checks the pipeline, not the learning rates: 1 seed, 2 epochs, every 8th
  grid point of `config`'s grids, at `batch_sizes`."""
  return dataclasses.replace(
      config, batch_sizes=batch_sizes, epochs=2, seeds=1, tuning_seeds=1,
      learning_rate_grids={
          optimizer_type: grid[::8]
          for optimizer_type, grid in config.learning_rate_grids.items()
      })


@dataclasses.dataclass(frozen=True)
class Problem:
  """A data set, a model, and the study configs run on them.

  Attributes:
    name: `--problem` value.
    title: the report's heading, e.g. `LARS vs momentum SGD on ...`.
    load_splits: -> (tuning split: training minus validation images, scored
      on the validation images; final split: the whole training set, scored
      on the test set).
    model: the model and its LARS exclusions.
    config: the whole study.
    smoke_config: the quick pipeline check.
  """
  name: str
  title: str
  load_splits: Callable[[], Tuple[training.Split, training.Split]]
  model: training.ModelRecipe
  config: StudyConfig
  smoke_config: StudyConfig


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


def run_study(problem: Problem, config: StudyConfig,
              log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Tunes, trains and scores every arm at every batch size.

  Args:
    problem: data set and model.
    config: batch sizes, epochs, seeds, grids and arms.
    log: receives one progress line per training run.

  Returns:
    The JSON-serializable results: config, validation accuracies of every
    grid point, per arm and batch size the learning rate, its validation
    accuracy and the test accuracy and divergence of every seed, and every
    training run with its wall time.
  """
  with _graph_rewrites_disabled():
    return _run_study(problem, config, log)


def _tuning_keys(config: StudyConfig,
                 retuned_types: Sequence[str]) -> List[training.RunKey]:
  """The tuning runs: every grid point at the smallest batch, and at every
  batch size for the optimizers of re-tuned arms."""
  keys = []
  for optimizer_type, grid in config.learning_rate_grids.items():
    batch_sizes = (config.batch_sizes if optimizer_type in retuned_types else
                   config.batch_sizes[:1])
    keys += [('tuning', optimizer_type, learning_rate, batch_size, seed)
             for batch_size in batch_sizes for learning_rate in grid
             for seed in range(config.tuning_seeds)]
  return keys


def _run_study(problem: Problem, config: StudyConfig,
               log: Callable[[str], None]) -> Dict[str, Any]:
  """`run_study` without the Grappler switch."""
  start_time = time.time()
  load_at_start = os.getloadavg()
  tuning_split, final_split = problem.load_splits()
  cache = training.RunCache({'tuning': tuning_split, 'final': final_split},
                            problem.model, config.epochs, log)
  smallest = config.batch_sizes[0]
  grids = {arm.optimizer_type: config.learning_rate_grids[arm.optimizer_type]
           for arm in config.arms}
  retuned_types = {arm.optimizer_type for arm in config.arms
                   if arm.learning_rate_rule == 'retuned'}
  tuning_keys = _tuning_keys(
      dataclasses.replace(config, learning_rate_grids=grids), retuned_types)
  # Until the rates are tuned, the later runs are counted at their most.
  cache.total = cache.new_runs(tuning_keys) + len(config.arms) * len(
      config.batch_sizes) * (config.seeds + config.tuning_seeds)

  tuning = {optimizer_type: {} for optimizer_type in grids}
  tuned = {}  # (optimizer type, batch size) -> best learning rate.
  for optimizer_type, grid in grids.items():
    for batch_size in config.batch_sizes:
      if batch_size == smallest or optimizer_type in retuned_types:
        tuned[optimizer_type, batch_size], accuracies = tune(
            cache, optimizer_type, grid, batch_size, config.tuning_seeds)
        tuning[optimizer_type][batch_label(batch_size)] = accuracies

  num_train = len(final_split.train_labels)
  learning_rates = {}  # (arm name, batch size) -> learning rate.
  for arm in config.arms:
    for batch_size in config.batch_sizes:
      if arm.learning_rate_rule == 'retuned':
        learning_rate = tuned[arm.optimizer_type, batch_size]
      else:
        learning_rate = transferred_learning_rate(
            arm.learning_rate_rule, tuned[arm.optimizer_type, smallest],
            training.resolve_batch_size(batch_size, num_train),
            training.resolve_batch_size(smallest, num_train))
      learning_rates[arm.name, batch_size] = learning_rate
  cache.total = len(cache) + cache.new_runs([
      (split_name, arm.optimizer_type, learning_rates[arm.name, batch_size],
       batch_size, seed)
      for arm in config.arms for batch_size in config.batch_sizes
      for split_name, seeds in (('tuning', config.tuning_seeds),
                                ('final', config.seeds))
      for seed in range(seeds)])

  arms = {}
  for arm in config.arms:
    cells = {}
    for batch_size in config.batch_sizes:
      learning_rate = learning_rates[arm.name, batch_size]
      validation = [cache.run('tuning', arm.optimizer_type, learning_rate,
                              batch_size, seed)
                    for seed in range(config.tuning_seeds)]
      runs = [cache.run('final', arm.optimizer_type, learning_rate,
                        batch_size, seed) for seed in range(config.seeds)]
      cells[batch_label(batch_size)] = {
          'learning_rate': learning_rate,
          'validation_accuracy': [run.accuracy for run in validation],
          'test_accuracy': [run.accuracy for run in runs],
          'loss_finite': [run.loss_finite for run in runs],
          'diverged': [run.diverged for run in runs],
      }
    arms[arm.name] = {'label': arm.label,
                      'optimizer_type': arm.optimizer_type,
                      'learning_rate_rule': arm.learning_rate_rule,
                      'cells': cells}

  return {
      'config': {
          'problem': problem.name,
          'title': problem.title,
          'model': problem.model.description,
          'lars_exclusions': list(problem.model.lars_exclusions),
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
      'runs': cache.records(),
      'training_runs': len(cache),
      'wall_time_seconds': time.time() - start_time,
      'cpu_count': os.cpu_count(),
      'cpu_model': optimizer_step.cpu_model(),
      'load_average_1min': {'start': load_at_start[0],
                            'end': os.getloadavg()[0]},
  }

