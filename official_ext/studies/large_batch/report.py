"""The large-batch study's report: markdown tables, plot and raw results."""
import json
import math
import os
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # Files only; no display.

# pylint: disable=g-import-not-at-top
from matplotlib import pyplot as plt
import numpy as np

from official_ext.launcher import atomic_files
from official_ext.studies.large_batch import training
# pylint: enable=g-import-not-at-top

def mean_and_sd(values: Sequence[float]) -> Tuple[float, Optional[float]]:
  """Mean and sample standard deviation (None for a single value)."""
  sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
  return float(np.mean(values)), sd



def format_cell(cell: Mapping[str, Any], at_grid_end: bool = False) -> str:
  """A table cell: test accuracy in %, mean ± sd, with its LR and divergences.

  Args:
    cell: one arm at one batch size, as in results.json.
    at_grid_end: marks the learning rate with `*`.

  Returns:
    E.g. `97.2 ± 0.4 (lr 0.064; 0/5 diverged)`; the sd is `n/a` for one seed.
  """
  mean, sd = mean_and_sd(cell['test_accuracy'])
  sd_text = 'n/a' if sd is None else f'{100 * sd:.1f}'
  mark = '*' if at_grid_end else ''
  return (f'{100 * mean:.1f} ± {sd_text} (lr {cell["learning_rate"]:.4g}'
          f'{mark}; {sum(cell["diverged"])}/{len(cell["diverged"])} '
          'diverged)')


def format_batch_size(label: str, examples_per_batch: int) -> str:
  """Row heading: `16`, ..., `full (1437)`."""
  if label == training.FULL_BATCH:
    return f'{training.FULL_BATCH} ({examples_per_batch})'
  return label


_RULES = {
    'linear': 'tuned at batch {smallest} (lr {tuned:.4g}), then scaled by '
              'batch / {smallest}',
    'held': 'tuned at batch {smallest} (lr {tuned:.4g}), then held',
    'retuned': 're-tuned at every batch size over the same grid',
}


def results_table(results: Mapping[str, Any]) -> str:
  """The markdown report: protocol, the tables of arms × batch sizes, timing.

  Args:
    results: as returned by `protocol.run_study`.

  Returns:
    Markdown text.
  """
  config = results['config']
  arms = results['arms']
  smallest = config['batch_sizes'][0]
  grids = config['learning_rate_grids']
  tuning = results['tuning_validation_accuracy']
  exclusions = config['lars_exclusions']
  lines = [
      f'# Large-batch study: {config["title"]}',
      '',
      f'Test accuracy (%) of an {config["model"]} on the '
      f'{config["test_examples"]} test images after training on '
      f'{config["train_examples"]}, mean ± sd over {config["seeds"]} '
      f'seed(s); every run has the same budget of {config["epochs"]} epochs, '
      f'momentum {config["momentum"]}, no weight decay, linear warmup over '
      f'the first {100 * config["warmup_fraction"]:.0f}% of its steps and '
      'cosine decay to 0. LARS: eeta 0.001; ' + (
          'variables matching ' + ', '.join(f'`{e}`' for e in exclusions) +
          ' get no layer adaptation (nor weight decay).' if exclusions else
          'every variable adapted.'),
      '',
      'Tuning: learning rates are picked by mean validation accuracy over '
      f'{config["tuning_seeds"]} seed(s), training on '
      f'{config["tuning_train_examples"]} of the training images and '
      f'validating on the other {config["validation_examples"]} (never the '
      'test images); ties go to the smaller rate. Grids: ' + '; '.join(
          f'{optimizer_type.upper()} {_format_grid(grid)}'
          for optimizer_type, grid in grids.items()) + '.',
      '',
      'Arms:',
      '',
      *(f'- {arm["label"]}: ' + _RULES[arm['learning_rate_rule']].format(
          smallest=smallest, tuned=arm['cells'][smallest]['learning_rate'])
        for arm in arms.values()),
      '',
      f'Mean validation accuracy (%) at batch {smallest}, per learning rate '
      '(chosen in bold):',
      '',
      *(f'- {optimizer_type.upper()}: ' + _format_tuning(
          by_batch[smallest], _best(by_batch[smallest]))
        for optimizer_type, by_batch in tuning.items()),
      '',
      'Diverged: the training loss became non-finite (the run then scores '
      f'chance, {100 * training.CHANCE_ACCURACY:.0f}%) or test accuracy <= '
      f'{100 * training.DIVERGED_ACCURACY:.0f}%. Learning rates marked * are '
      'at an end of their grid.',
      '',
      *_table(config, arms, lambda arm, label: format_cell(
          arm['cells'][label],
          at_grid_end=_at_grid_end(arm, label, grids))),
      '',
      'Validation accuracy (%) of each cell\'s learning rate, mean over the '
      'tuning seed(s):',
      '',
      *_table(config, arms, lambda arm, label: _format_percent(
          arm['cells'][label]['validation_accuracy'])),
      '',
      f'{results["training_runs"]} training runs in '
      f'{results["wall_time_seconds"] / 60:.1f} min on {results["cpu_count"]} '
      f'CPU cores ({results.get("cpu_model", "CPU model not recorded")}; '
      '1-minute load average '
      f'{results["load_average_1min"]["start"]:.1f} at the start, '
      f'{results["load_average_1min"]["end"]:.1f} at the end).',
      '',
  ]
  return '\n'.join(lines)


def _table(config: Mapping[str, Any], arms: Mapping[str, Any],
           cell_text: Callable[[Mapping[str, Any], str], str]) -> List[str]:
  """Markdown rows of a batch size × arm table."""
  lines = [
      '| batch size | ' + ' | '.join(arm['label'] for arm in arms.values())
      + ' |',
      '|---:|' + '---|' * len(arms),
  ]
  for label in config['batch_sizes']:
    examples = config['examples_per_batch'][label]
    lines.append(f'| {format_batch_size(label, examples)} | ' + ' | '.join(
        cell_text(arm, label) for arm in arms.values()) + ' |')
  return lines


def _best(accuracies: Mapping[str, Sequence[float]]) -> float:
  """The tuned rate: best mean accuracy, the smallest on ties."""
  return max((float(lr) for lr in accuracies),
             key=lambda lr: (np.mean(accuracies[repr(lr)]), -lr))


def _at_grid_end(arm: Mapping[str, Any], label: str,
                 grids: Mapping[str, Sequence[float]]) -> bool:
  """Whether a re-tuned cell's rate is its grid's smallest or largest."""
  grid = grids[arm['optimizer_type']]
  return (arm['learning_rate_rule'] == 'retuned' and
          arm['cells'][label]['learning_rate'] in (grid[0], grid[-1]))


def _format_percent(accuracies: Sequence[float]) -> str:
  return f'{100 * np.mean(accuracies):.1f}'


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
    results: as returned by `protocol.run_study`.
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
  full_axes.axhline(100 * training.CHANCE_ACCURACY, color='grey', linestyle=':',
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
  figure.suptitle(f'{config["title"]}: {config["model"]}, '
                  f'{config["epochs"]} epochs at every batch size', fontsize=10)
  figure.legend(*full_axes.get_legend_handles_labels(), loc='lower center',
                ncol=4, fontsize=8)
  figure.tight_layout(rect=(0, 0.07, 1, 1))
  # PNG whatever the file's extension: it is written under a temporary name.
  figure.savefig(path, dpi=120, format='png')
  plt.close(figure)


def write_results(results: Mapping[str, Any], output_dir: str):
  """Writes results.json, results.md and results.png into `output_dir`.

  Each file is written next to its destination and renamed into place, so an
  interrupted write leaves the previous file intact.

  Args:
    results: as returned by `protocol.run_study`.
    output_dir: an existing directory.
  """
  atomic_files.write_text(os.path.join(output_dir, 'results.json'),
                          json.dumps(results, indent=1) + '\n')
  atomic_files.write_text(os.path.join(output_dir, 'results.md'),
                          results_table(results))
  atomic_files.write_atomically(
      os.path.join(output_dir, 'results.png'),
      lambda path: plot_results(results, path))
