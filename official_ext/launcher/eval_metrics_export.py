"""Orbit actions the launcher adds to Model Garden's."""
import json
import os
from typing import Any, Dict, Mapping

from absl import logging
import numpy as np
import orbit
import tensorflow as tf

from official_ext.launcher import atomic_files

EVAL_METRICS_FILENAME = 'eval_metrics.json'


def _scalars(logs: Mapping[str, Any]) -> Dict[str, float]:
  """The scalar entries of an eval-output dict, as floats."""
  scalars = {}
  for name, value in logs.items():
    value = np.asarray(orbit.utils.get_value(value))
    if value.ndim == 0 and np.issubdtype(value.dtype, np.number):
      scalars[name] = float(value)
  return scalars


class EvalMetricsExporter:
  """Writes the latest evaluation's scalar metrics to a JSON file.

  `model_dir/eval_metrics.json` holds `{"step": N, "<metric>": value, ...}`
  of the last evaluation, so a script can read a run's result without parsing
  TensorBoard event files.
  """

  def __init__(self, model_dir: str):
    """Initializes the exporter.

    Args:
      model_dir: the directory to write `eval_metrics.json` into.
    """
    self._path = os.path.join(model_dir, EVAL_METRICS_FILENAME)

  def __call__(self, eval_output: Mapping[str, Any]):
    """Writes `eval_output`'s scalars, with the training step, as JSON."""
    # orbit.Controller makes the global step the default summary step.
    step = tf.summary.experimental.get_step()
    record = {'step': None if step is None else int(orbit.utils.get_value(step))}
    record.update(_scalars(eval_output))
    logging.info('Eval metrics: %s', json.dumps(record))
    atomic_files.write_text(self._path, json.dumps(record, indent=2) + '\n')
