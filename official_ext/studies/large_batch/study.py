r"""Large-batch study: LARS against momentum SGD as the batch grows.

You et al. 2017 (arXiv 1708.03888) introduce LARS so that large-batch
training keeps its accuracy where momentum SGD with the linearly scaled
learning rate degrades; Nado et al. 2021 (arXiv 2102.06356) show that momentum
SGD whose learning rate is re-tuned at each batch size can match LARS. The
study trains a model with the same epoch budget at every batch size, in up to
four arms:

  a) `sgd_linear`: momentum SGD, learning rate tuned at the smallest batch and
     scaled linearly with the batch size (Goyal et al. 2017);
  b) `lars_held`: official_ext's LARS, global learning rate tuned at the
     smallest batch and held;
  c) `sgd_retuned`: momentum SGD, learning rate re-tuned at each batch size
     (the fair control);
  d) `lars_retuned`: LARS, learning rate re-tuned at each batch size over a
     grid as wide as (c)'s (the symmetric control; Fashion-MNIST only).

Problems (`--problem`): `digits`, scikit-learn's 8x8 digits, an MLP, batch 16
to the full training set, arms (a)-(c); `fashion_mnist`, Fashion-MNIST from
the `dataset-fashion-mnist` package, an MLP with batch normalization, batch
128 to 16,384, arms (a)-(d).

Optimizers and learning-rate schedules come from official_ext's
`OptimizerFactory`; every arm uses momentum 0.9, no weight decay, a linear
warmup over the first 10% of the steps and a cosine decay to zero. Learning
rates are tuned on a validation split held out of the training set; test
accuracy is reported. Writes `results.md`, `results.png` and `results.json`.

  python -m official_ext.studies.large_batch.study \
      --output_dir=docs/large_batch_study          # the digits study
  python -m official_ext.studies.large_batch.study --problem=fashion_mnist \
      --output_dir=docs/fashion_mnist_study        # the Fashion-MNIST study
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

from official_ext.experiments import fashion_mnist_data
from official_ext.studies.large_batch import problems
from official_ext.studies.large_batch import protocol
from official_ext.studies.large_batch import report
from official_ext.studies.large_batch import training
# pylint: enable=g-import-not-at-top

# Where the repository keeps the results its documentation shows.
COMMITTED_RESULTS_DIRS = {
    'digits': 'docs/large_batch_study',
    'fashion_mnist': 'docs/fashion_mnist_study',
}


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


def problem_from_args(args: argparse.Namespace) -> protocol.Problem:
  """The problem `--problem` names, reading its data from `--data_dir`.

  `--smoke` on `fashion_mnist` without `--data_dir` writes generated stand-in
  IDX files into a new temporary directory and reads those.

  Args:
    args: parsed flags.

  Returns:
    The problem.

  Raises:
    ValueError: `--data_dir` given for `digits`, which ships with
      scikit-learn.
  """
  if args.problem == 'digits':
    if args.data_dir is not None:
      raise ValueError(f'--data_dir {args.data_dir!r}: the digits problem '
                       'reads scikit-learn\'s digits, not a directory.')
    return problems.digits()
  if args.smoke and args.data_dir is None:
    data_dir = tempfile.mkdtemp(prefix='fashion_mnist_stand_in_')
    examples = problems.SMOKE_FASHION_MNIST_EXAMPLES
    fashion_mnist_data.write_fashion_mnist(
        data_dir, fashion_mnist_data.stand_in_subsets(examples))
    return problems.fashion_mnist(data_dir, examples)
  return problems.fashion_mnist(args.data_dir)


def study_config_from_args(args: argparse.Namespace,
                           problem: protocol.Problem) -> protocol.StudyConfig:
  """Resolves the flags, `--smoke` defaults included, and checks them.

  Args:
    args: parsed flags; explicit values win over `--smoke`'s.
    problem: supplies the defaults and the data the batch sizes must fit.

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
      problem.smoke_config if args.smoke else problem.config,
      **{name: value for name, value in flags.items() if value is not None})
  # Warmup and decay need two steps, which a full-batch epoch does not give.
  if config.epochs < 2:
    raise ValueError(f'--epochs must be at least 2, got {config.epochs}.')
  for flag in ('seeds', 'tuning_seeds'):
    if getattr(config, flag) < 1:
      raise ValueError(f'--{flag} must be at least 1, got '
                       f'{getattr(config, flag)}.')
  tuning_train_examples = len(problem.load_splits()[0].train_labels)
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
                     'committed results are in '
                     f'{COMMITTED_RESULTS_DIRS[args.problem]}).')
  if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
    raise ValueError(f'--output_dir {args.output_dir!r} exists and is not a '
                     'directory.')
  os.makedirs(args.output_dir, exist_ok=True)
  if not os.access(args.output_dir, os.W_OK):
    raise ValueError(f'--output_dir {args.output_dir!r} is not writable.')
  return args.output_dir


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  """Parses the command line (without the program name)."""
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      '--problem', choices=sorted(COMMITTED_RESULTS_DIRS), default='digits',
      help='data set and model (default: digits)')
  parser.add_argument(
      '--data_dir', default=None,
      help='fashion_mnist only: the directory of the four IDX files '
      f'(default: {fashion_mnist_data.DEFAULT_DATA_DIR}; with --smoke: '
      'generated stand-in files)')
  parser.add_argument(
      '--smoke', action='store_true',
      help='quick check: 1 seed, the two smallest batch sizes (digits: 64 '
      'and full), 2 epochs, every 8th grid learning rate, into a temporary '
      'directory unless --output_dir is given')
  parser.add_argument(
      '--output_dir', default=None,
      help='where results.{md,png,json} go; required without --smoke '
      f'(the committed results: {", ".join(COMMITTED_RESULTS_DIRS.values())})')
  parser.add_argument(
      '--batch_sizes', default=None,
      help='comma-separated, ascending, optionally ending with "full" '
      '(default: the problem\'s)')
  parser.add_argument('--epochs', type=int, default=None,
                      help='epoch budget of every run (default: the '
                      'problem\'s)')
  parser.add_argument('--seeds', type=int, default=None,
                      help='seeds of the test runs (default: the problem\'s)')
  parser.add_argument('--tuning_seeds', type=int, default=None,
                      help='seeds each grid point is averaged over (default: '
                      'the problem\'s)')
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
    problem = problem_from_args(args)
    config = study_config_from_args(args, problem)
    output_dir = output_dir_from_args(args)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f'large_batch_study: {e}')
  tf.get_logger().setLevel('ERROR')  # One tf.function per run is intended.
  results = protocol.run_study(problem, config,
                               log=lambda line: print(line, flush=True))
  report.write_results(results, output_dir)
  print(report.results_table(results))
  print(f'Wrote results.md, results.png and results.json to {output_dir}.')
  return output_dir


if __name__ == '__main__':
  main(sys.argv[1:])
