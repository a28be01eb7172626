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
