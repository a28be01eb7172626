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

  python -m official_ext.studies.large_batch.study \
      --output_dir=docs/large_batch_study          # the whole study
  python -m official_ext.studies.large_batch.study --smoke   # a quick check
"""
import argparse
import dataclasses
import os
import sys
import tempfile
from typing import Sequence, Tuple

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top
import tensorflow as tf

from official_ext.studies.large_batch import protocol
from official_ext.studies.large_batch import report
from official_ext.studies.large_batch import training
# pylint: enable=g-import-not-at-top

# Where the repository keeps the results its documentation shows.
COMMITTED_RESULTS_DIR = 'docs/large_batch_study'


def parse_batch_sizes(text: str) -> Tuple[training.BatchSize, ...]:
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
    if item == training.FULL_BATCH:
      sizes.append(training.FULL_BATCH)
      continue
    try:
      size = int(item)
    except ValueError:
      size = 0
    if size < 1:
      raise ValueError(f'--batch_sizes: {item!r} in {text!r} is neither a '
                       f'positive integer nor {training.FULL_BATCH!r}.')
    sizes.append(size)
  numbers = [size for size in sizes if size != training.FULL_BATCH]
  if training.FULL_BATCH in sizes[:-1] or numbers != sorted(set(numbers)):
    raise ValueError(f'--batch_sizes: {text!r} must be strictly ascending '
                     'integers, optionally followed by '
                     f'{training.FULL_BATCH!r}.')
  return tuple(sizes)


def study_config_from_args(args: argparse.Namespace) -> protocol.StudyConfig:
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
      protocol.SMOKE_CONFIG if args.smoke else protocol.StudyConfig(),
      **{name: value for name, value in flags.items() if value is not None})
  # Warmup and decay need two steps, which a full-batch epoch does not give.
  if config.epochs < 2:
    raise ValueError(f'--epochs must be at least 2, got {config.epochs}.')
  for flag in ('seeds', 'tuning_seeds'):
    if getattr(config, flag) < 1:
      raise ValueError(f'--{flag} must be at least 1, got '
                       f'{getattr(config, flag)}.')
  tuning_train_examples = len(training.load_splits()[0].train_labels)
  too_large = [b for b in config.batch_sizes
               if b != training.FULL_BATCH and b > tuning_train_examples]
  if too_large:
    raise ValueError(
        f'--batch_sizes: {too_large} exceed the {tuning_train_examples} '
        f'images tuning trains on; use {training.FULL_BATCH!r} for the full '
        'batch.')
  return config


def output_dir_from_args(args: argparse.Namespace) -> str:
  """The output directory, created if missing, checked writable.

  `--smoke` without `--output_dir` writes into a new temporary directory, so
  that a quick check never overwrites the study's committed results; the
  whole study needs `--output_dir`.

  Args:
    args: parsed flags.

  Returns:
    The directory's path.

  Raises:
    ValueError: if `--output_dir` is missing (without `--smoke`) or not a
      writable directory.
  """
  if args.output_dir is None:
    if args.smoke:
      return tempfile.mkdtemp(prefix='large_batch_study_smoke_')
    raise ValueError('--output_dir is required without --smoke (the '
                     f'committed results are in {COMMITTED_RESULTS_DIR}).')
  if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
    raise ValueError(f'--output_dir {args.output_dir!r} exists and is not a '
                     'directory.')
  os.makedirs(args.output_dir, exist_ok=True)
  if not os.access(args.output_dir, os.W_OK):
    raise ValueError(f'--output_dir {args.output_dir!r} is not writable.')
  return args.output_dir


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  """Parses the command line (without the program name)."""
  default, smoke = protocol.StudyConfig(), protocol.SMOKE_CONFIG
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
      help='where results.{md,png,json} go; required without --smoke '
      f'(the committed results: {COMMITTED_RESULTS_DIR})')
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
  results = protocol.run_study(config,
                               log=lambda line: print(line, flush=True))
  report.write_results(results, output_dir)
  print(report.results_table(results))
  print(f'Wrote results.md, results.png and results.json to {output_dir}.')
  return output_dir


if __name__ == '__main__':
  main(sys.argv[1:])
