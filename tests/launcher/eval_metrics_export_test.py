"""Tests for the launcher's eval-metrics exporter."""
import json

import numpy as np
import tensorflow as tf

from official_ext.launcher import eval_metrics_export


def test_writes_scalars_and_step(tmp_path):
  exporter = eval_metrics_export.EvalMetricsExporter(str(tmp_path))
  step = tf.Variable(7, dtype=tf.int64)
  tf.summary.experimental.set_step(step)
  try:
    exporter({'accuracy': np.float32(0.75), 'loss': tf.constant(1.5),
              'image': np.zeros([2, 2])})
    step.assign(9)
    exporter({'accuracy': np.float32(0.875)})
  finally:
    tf.summary.experimental.set_step(None)
  with open(tmp_path / eval_metrics_export.EVAL_METRICS_FILENAME) as f:
    assert json.load(f) == {'step': 9, 'accuracy': 0.875}


def test_first_record_keeps_only_scalars(tmp_path):
  exporter = eval_metrics_export.EvalMetricsExporter(str(tmp_path))
  exporter({'accuracy': np.float32(0.5), 'loss': tf.constant(1.5),
            'image': np.zeros([2, 2]), 'name': 'not a number'})
  with open(tmp_path / eval_metrics_export.EVAL_METRICS_FILENAME) as f:
    assert json.load(f) == {'step': None, 'accuracy': 0.5, 'loss': 1.5}
