"""Tests for official_ext/studies/large_batch/protocol.py."""
import pytest

from official_ext.studies.large_batch import protocol


def test_linear_rule_scales_the_tuned_rate_and_held_rule_keeps_it():
  tuned = 0.064
  for batch_size in (16, 64, 256, 1437):
    assert protocol.transferred_learning_rate(
        'linear', tuned, batch_size, 16) == tuned * (batch_size / 16)
    assert protocol.transferred_learning_rate('held', tuned, batch_size,
                                           16) == tuned
  assert protocol.transferred_learning_rate('linear', tuned, 1437, 16) == (
      pytest.approx(5.748))
  with pytest.raises(ValueError, match="'retuned'"):
    protocol.transferred_learning_rate('retuned', tuned, 64, 16)
