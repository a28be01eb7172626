"""Tests for experiments/large_batch_study/study.py."""
import json
import math
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from experiments.large_batch_study import study
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import optimizer_factory

_CELL = re.compile(r'^(\d+\.\d) ± (n/a|\d+\.\d) '
                   r'\(lr ([^;]+); (\d+)/(\d+) diverged\)$')


def _table_rows(markdown):
  """{first column: [other columns]} of the markdown table, header included."""
  rows = {}
  for line in markdown.splitlines():
    if line.startswith('| '):
      columns = [column.strip() for column in line.strip('|').split('|')]
      rows[columns[0]] = columns[1:]
  return rows


def test_smoke_run_writes_a_table_matching_the_raw_results(tmp_path):
  options_before = tf.config.optimizer.get_experimental_options()

  study.main(['--smoke', '--output_dir', str(tmp_path)])

  assert tf.config.optimizer.get_experimental_options() == options_before
  with open(tmp_path / 'results.png', 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  with open(tmp_path / 'results.json', encoding='utf-8') as f:
    results = json.load(f)
  rows = _table_rows((tmp_path / 'results.md').read_text(encoding='utf-8'))
  assert sorted(os.listdir(tmp_path)) == [
      'results.json', 'results.md', 'results.png']

  assert rows['batch size'] == [arm.label for arm in study.ARMS]
  assert list(results['arms']) == [arm.name for arm in study.ARMS]
  assert results['config']['batch_sizes'] == ['64', 'full']
  assert results['config']['examples_per_batch'] == {'64': 64, 'full': 1437}
  row_labels = {'64': '64', 'full': 'full (1437)'}
  assert set(rows) == {'batch size', *row_labels.values()}
  for column, arm in enumerate(study.ARMS):
    for label, row_label in row_labels.items():
      cell = results['arms'][arm.name]['cells'][label]
      match = _CELL.match(rows[row_label][column])
      assert match, rows[row_label][column]
      mean, sd, learning_rate, diverged, seeds = match.groups()
      assert len(cell['test_accuracy']) == int(seeds) == 1
      assert float(mean) == pytest.approx(
          100 * np.mean(cell['test_accuracy']), abs=0.05)
      assert sd == 'n/a'
      assert float(learning_rate) == pytest.approx(cell['learning_rate'],
                                                   rel=1e-3)
      assert int(diverged) == sum(cell['diverged'])
      for loss_finite, run_diverged in zip(cell['loss_finite'],
                                           cell['diverged']):
        assert loss_finite or run_diverged

  cells = {name: arm['cells'] for name, arm in results['arms'].items()}
  # At the smallest batch, arm (c)'s re-tuning is arm (a)'s tuning.
  assert cells['sgd_retuned']['64'] == cells['sgd_linear']['64']
  tuned_sgd = cells['sgd_linear']['64']['learning_rate']
  assert cells['sgd_linear']['full']['learning_rate'] == tuned_sgd * 1437 / 64
  assert (cells['lars_held']['full']['learning_rate'] ==
          cells['lars_held']['64']['learning_rate'])
  validation = results['tuning_validation_accuracy']['sgd']['64']
  best = max(validation.values(), key=np.mean)
  assert np.mean(validation[repr(tuned_sgd)]) == np.mean(best)


def test_linear_rule_scales_the_tuned_rate_and_held_rule_keeps_it():
  tuned = 0.064
  for batch_size in (16, 64, 256, 1437):
    assert study.transferred_learning_rate(
        'linear', tuned, batch_size, 16) == tuned * (batch_size / 16)
    assert study.transferred_learning_rate('held', tuned, batch_size,
                                           16) == tuned
  assert study.transferred_learning_rate('linear', tuned, 1437, 16) == (
      pytest.approx(5.748))
  with pytest.raises(ValueError, match="'retuned'"):
    study.transferred_learning_rate('retuned', tuned, 64, 16)


@pytest.mark.parametrize('optimizer_type, optimizer_cls', [
    ('sgd', tf_keras.optimizers.legacy.SGD),
    ('lars', lars.LARS),
])
def test_config_builds_the_optimizer_with_warmup_then_cosine_decay(
    optimizer_type, optimizer_cls):
  total_steps, peak = 50, 0.3
  factory = optimizer_factory.OptimizerFactory(
      study.build_optimization_config(optimizer_type, peak, total_steps))
  schedule = factory.build_learning_rate()
  optimizer = factory.build_optimizer(schedule)

  # Exactly the class, not a subclass that could change the update.
  assert type(optimizer) is optimizer_cls  # pylint: disable=unidiomatic-typecheck
  assert optimizer.get_config()['momentum'] == study.MOMENTUM
  warmup = study.warmup_steps(total_steps)
  assert warmup == 5
  for step in range(total_steps + 1):
    if step < warmup:
      expected = peak * step / warmup
    else:
      progress = (step - warmup) / (total_steps - warmup)
      expected = peak * 0.5 * (1 + math.cos(math.pi * progress))
    assert float(schedule(step)) == pytest.approx(expected, abs=1e-6)


def test_batch_indices_draw_each_epoch_without_replacement():
  batches = study.batch_indices(num_examples=10, batch_size=3, epochs=4,
                                seed=1)
  assert batches.shape == (4 * 3, 3)
  for epoch in np.split(batches, 4):
    assert len(set(epoch.ravel())) == 9
    assert set(epoch.ravel()) <= set(range(10))
  assert not np.array_equal(batches[:3], batches[3:6])


def test_cell_shows_sample_sd_learning_rate_and_divergences():
  accuracies = [0.9, 0.95, 0.1]
  text = study.format_cell({'test_accuracy': accuracies,
                            'learning_rate': 5.748,
                            'diverged': [False, False, True]})
  mean, sd, learning_rate, diverged, seeds = _CELL.match(text).groups()
  assert float(mean) == pytest.approx(100 * np.mean(accuracies), abs=0.05)
  assert float(sd) == pytest.approx(100 * np.std(accuracies, ddof=1),
                                    abs=0.05)
  assert (learning_rate, diverged, seeds) == ('5.748', '1', '3')


@pytest.mark.parametrize('flags, message', [
    (['--batch_sizes', '64,16'], '--batch_sizes'),
    (['--batch_sizes', 'full,64'], '--batch_sizes'),
    (['--batch_sizes', '16,x'], "'x'"),
    (['--batch_sizes', '16,2000'], r'\[2000\]'),
    (['--epochs', '1'], '--epochs must be at least 2, got 1'),
    (['--seeds', '0'], '--seeds must be at least 1, got 0'),
])
def test_bad_flags_fail_before_training_and_write_nothing(
    tmp_path, flags, message):
  (tmp_path / 'results.md').write_text('previous results')

  with pytest.raises(SystemExit, match=message):
    study.main(flags + ['--output_dir', str(tmp_path)])

  assert os.listdir(tmp_path) == ['results.md']
  assert (tmp_path / 'results.md').read_text() == 'previous results'
