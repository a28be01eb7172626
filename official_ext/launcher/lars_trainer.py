"""The launcher's Trainer: LARS exclusions resolved on the model, telemetry.

Once the trainer has built the model and the optimizer, a LARS among them
(possibly inside loss-scaling or EMA wrappers) learns which variables belong
to normalization layers (`normalization_layers.use_model`), and a training job logs
the exclusion report: every trainable variable with its shape and whether it
gets weight decay and layer adaptation, then a warning for every exclusion
setting that matched nothing.

With `LARSConfig.telemetry` on, each training loop ends by writing LARS's
per-variable scalars (`lars/<variable>/{trust_ratio,weight_norm,
gradient_norm,learning_rate}`, the last step's values) with `tf.summary`.
Orbit's Controller runs the loop inside its train summary writer
(`model_dir/train`) and records summaries only at multiples of
`trainer.summary_interval`, so they land next to Model Garden's train scalars
at that interval, without being printed with the loop's logs. They are read
from the optimizer after the loop: the training step's graph holds no
summary op.

Orbit's Controller logs each training loop's outputs, the dict that
`train_loop_end` returns, after `output:` with `pprint`; a dict of Model
Garden's accuracy, learning rate and training loss as numpy scalars is longer
than pprint's 80 characters, and would go to the following lines, leaving
`output:` empty. The returned `TrainLogs` says itself on one line, so every
loop logs one line with its metrics:
`train | step:    100 | steps/sec:   29.9 | output: accuracy: 0.7575,
learning_rate: 2.08336, training_loss: 0.800649` (on one line).
"""
from typing import Any

import numpy as np
import orbit
import tensorflow as tf

from official_ext.launcher import exclusion_report
from official_ext.launcher import resumable_trainer
from official_ext.modeling.optimization import normalization_layers


class Trainer(resumable_trainer.Trainer):
  """official_ext's Trainer, plus LARS's model-based exclusions and telemetry."""

  def __init__(self, config, task, model, optimizer, train=True, *args,
               **kwargs):
    super().__init__(config, task, model, optimizer, train, *args, **kwargs)
    self._lars = normalization_layers.use_model(self.optimizer, self.model)
    if self._lars is not None and train:
      exclusion_report.log_exclusion_report(self.model, self.optimizer)

  def train_loop_end(self) -> 'TrainLogs':
    """Model Garden's train logs, as `TrainLogs`; writes LARS telemetry."""
    logs = TrainLogs(super().train_loop_end())
    if (self._lars is not None and self._lars.telemetry and
        tf.summary.should_record_summaries()):
      for tag, value in self._lars.telemetry_scalars().items():
        tf.summary.scalar(tag, value)
    return logs


class TrainLogs(dict):
  """A training loop's outputs, whose repr is one line: `name: value, ...`.

  Names are sorted; scalar values (tensors, variables or numbers: with a
  constant learning rate, Model Garden logs the optimizer's learning-rate
  variable, a MirroredVariable under MirroredStrategy) print as `%.6g`, other
  values as their repr with its line breaks collapsed. Orbit's Controller
  keeps the type when it converts the values to numpy
  (`tf.nest.map_structure` rebuilds the mapping).
  """

  def __repr__(self) -> str:
    return ', '.join(f'{name}: {_scalar_text(value)}'
                     for name, value in sorted(self.items()))


def _scalar_text(value: Any) -> str:
  value = orbit.utils.get_value(value)
  if np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype,
                                           np.number):
    return f'{float(value):.6g}'
  return ' '.join(repr(value).split())
