"""Tests for official_ext/studies/large_batch/study.py (the command line)."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from official_ext.studies.large_batch import protocol
from official_ext.studies.large_batch import study

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


# Per problem: the smoke flags, its arms, its batch-size labels (results.json
# -> table row), and the examples the final runs train on.
_SMOKE_RUNS = {
    'digits': ([], protocol.ARMS[:3], {'64': '64', 'full': 'full (1437)'},
               1437),
    'fashion_mnist': (['--problem', 'fashion_mnist'], protocol.ARMS,
                      {'128': '128', '512': '512'}, 1200),
}


@pytest.mark.parametrize('problem', sorted(_SMOKE_RUNS))
def test_smoke_run_writes_a_table_matching_the_raw_results(tmp_path, problem):
  flags, arms, row_labels, train_examples = _SMOKE_RUNS[problem]
  options_before = tf.config.optimizer.get_experimental_options()

  study.main(flags + ['--smoke', '--output_dir', str(tmp_path)])

  assert tf.config.optimizer.get_experimental_options() == options_before
  with open(tmp_path / 'results.png', 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  with open(tmp_path / 'results.json', encoding='utf-8') as f:
    results = json.load(f)
  markdown = (tmp_path / 'results.md').read_text(encoding='utf-8')
  test_table, validation_table = markdown.split('Validation accuracy (%) of')
  rows = _table_rows(test_table)
  assert sorted(os.listdir(tmp_path)) == [
      'results.json', 'results.md', 'results.png']

  assert rows['batch size'] == [arm.label for arm in arms]
  assert list(results['arms']) == [arm.name for arm in arms]
  assert results['config']['problem'] == problem
  assert results['config']['batch_sizes'] == list(row_labels)
  assert results['config']['train_examples'] == train_examples
  assert set(rows) == {'batch size', *row_labels.values()}
  validation_rows = _table_rows(validation_table)
  for column, arm in enumerate(arms):
    for label, row_label in row_labels.items():
      cell = results['arms'][arm.name]['cells'][label]
      match = _CELL.match(rows[row_label][column])
      assert match, rows[row_label][column]
      mean, sd, learning_rate, diverged, seeds = match.groups()
      assert len(cell['test_accuracy']) == int(seeds) == 1
      assert float(mean) == pytest.approx(
          100 * np.mean(cell['test_accuracy']), abs=0.05)
      assert sd == 'n/a'
      assert float(learning_rate.rstrip('*')) == pytest.approx(
          cell['learning_rate'], rel=1e-3)
      assert int(diverged) == sum(cell['diverged'])
      assert float(validation_rows[row_label][column]) == pytest.approx(
          100 * np.mean(cell['validation_accuracy']), abs=0.05)
      for loss_finite, run_diverged in zip(cell['loss_finite'],
                                           cell['diverged']):
        assert loss_finite or run_diverged

  # Every run is recorded once, with its seed, rate and wall time; the cells'
  # accuracies are those runs'.
  runs = {(r['split'], r['optimizer'], r['learning_rate'], r['batch_size'],
           r['seed']): r for r in results['runs']}
  assert len(runs) == len(results['runs']) == results['training_runs']
  assert all(r['wall_time_seconds'] > 0 for r in results['runs'])
  for arm in arms:
    for label in row_labels:
      cell = results['arms'][arm.name]['cells'][label]
      key = (arm.optimizer_type, cell['learning_rate'], label, 0)
      assert runs[('final', *key)]['accuracy'] == cell['test_accuracy'][0]
      assert runs[('tuning', *key)]['accuracy'] == (
          cell['validation_accuracy'][0])

  cells = {name: arm['cells'] for name, arm in results['arms'].items()}
  smallest, largest = row_labels
  # At the smallest batch, arm (c)'s re-tuning is arm (a)'s tuning.
  assert cells['sgd_retuned'][smallest] == cells['sgd_linear'][smallest]
  tuned_sgd = cells['sgd_linear'][smallest]['learning_rate']
  examples = results['config']['examples_per_batch']
  assert cells['sgd_linear'][largest]['learning_rate'] == (
      tuned_sgd * examples[largest] / examples[smallest])
  assert (cells['lars_held'][largest]['learning_rate'] ==
          cells['lars_held'][smallest]['learning_rate'])
  validation = results['tuning_validation_accuracy']['sgd'][smallest]
  best = max(validation.values(), key=np.mean)
  assert np.mean(validation[repr(tuned_sgd)]) == np.mean(best)
  if 'lars_retuned' in cells:
    assert cells['lars_retuned'][smallest] == cells['lars_held'][smallest]
    lars_validation = results['tuning_validation_accuracy']['lars'][largest]
    tuned_lars = cells['lars_retuned'][largest]['learning_rate']
    assert np.mean(lars_validation[repr(tuned_lars)]) == max(
        np.mean(accuracies) for accuracies in lars_validation.values())


@pytest.mark.parametrize('flags, message', [
    (['--batch_sizes', '64,16'], '--batch_sizes'),
    (['--batch_sizes', 'full,64'], '--batch_sizes'),
    (['--batch_sizes', '16,x'], "'x'"),
    (['--batch_sizes', '16,2000'], r'\[2000\]'),
    (['--epochs', '1'], '--epochs must be at least 2, got 1'),
    (['--seeds', '0'], '--seeds must be at least 1, got 0'),
    (['--data_dir', '/tmp'], "--data_dir '/tmp': the digits problem"),
    (['--problem', 'fashion_mnist', '--data_dir', '/nonexistent'],
     'install the Debian package dataset-fashion-mnist'),
    (['--problem', 'fashion_mnist', '--smoke', '--batch_sizes', '128,2048'],
     r'\[2048\] exceed the 1000 images'),
])
def test_bad_flags_fail_before_training_and_write_nothing(
    tmp_path, flags, message):
  (tmp_path / 'results.md').write_text('previous results')

  with pytest.raises(SystemExit, match=message):
    study.main(flags + ['--output_dir', str(tmp_path)])

  assert os.listdir(tmp_path) == ['results.md']
  assert (tmp_path / 'results.md').read_text() == 'previous results'


def test_whole_study_needs_an_output_dir(tmp_path):
  with pytest.raises(SystemExit, match='--output_dir is required'):
    study.main(['--epochs', '2'])
