"""Tests for official_ext/studies/large_batch/report.py."""
import re

import numpy as np
import pytest

from official_ext.studies.large_batch import report

_CELL = re.compile(r'^(\d+\.\d) ± (n/a|\d+\.\d) '
                   r'\(lr ([^;]+); (\d+)/(\d+) diverged\)$')


def test_cell_shows_sample_sd_learning_rate_and_divergences():
  accuracies = [0.9, 0.95, 0.1]
  text = report.format_cell({'test_accuracy': accuracies,
                            'learning_rate': 5.748,
                            'diverged': [False, False, True]})
  mean, sd, learning_rate, diverged, seeds = _CELL.match(text).groups()
  assert float(mean) == pytest.approx(100 * np.mean(accuracies), abs=0.05)
  assert float(sd) == pytest.approx(100 * np.std(accuracies, ddof=1),
                                    abs=0.05)
  assert (learning_rate, diverged, seeds) == ('5.748', '1', '3')


def test_cell_marks_a_learning_rate_at_the_end_of_its_grid():
  cell = {'test_accuracy': [0.9], 'learning_rate': 12.8, 'diverged': [False]}

  assert report.format_cell(cell, at_grid_end=True) == (
      '90.0 ± n/a (lr 12.8*; 0/1 diverged)')
  assert report.format_cell(cell) == '90.0 ± n/a (lr 12.8; 0/1 diverged)'
