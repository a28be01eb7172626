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

  assert rows['batch size'] == [arm.label for arm in protocol.ARMS]
  assert list(results['arms']) == [arm.name for arm in protocol.ARMS]
  assert results['config']['batch_sizes'] == ['64', 'full']
  assert results['config']['examples_per_batch'] == {'64': 64, 'full': 1437}
  row_labels = {'64': '64', 'full': 'full (1437)'}
  assert set(rows) == {'batch size', *row_labels.values()}
  for column, arm in enumerate(protocol.ARMS):
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


def test_whole_study_needs_an_output_dir(tmp_path):
  with pytest.raises(SystemExit, match='--output_dir is required'):
    study.main(['--epochs', '2'])
