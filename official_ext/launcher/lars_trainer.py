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

Every training loop also ends with one log line of its train outputs,
`train | step: 100 | accuracy: 0.99, learning_rate: 2.1, training_loss: 0.04`:
Orbit's Controller logs them after `output:` with `pprint`, which moves them to
the following lines once they are longer than 80 characters (Model Garden's
accuracy, learning rate and training loss as numpy scalars already are), so
the Controller's own line ends with an empty `output:`.
"""
from typing import Any, Mapping

from absl import logging
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

  def train_loop_end(self):
    """Model Garden's train logs, also logged on one line; LARS telemetry."""
    logs = super().train_loop_end()
    logging.info('%s', one_line_train_logs(int(self.global_step.numpy()), logs))
    if (self._lars is not None and self._lars.telemetry and
        tf.summary.should_record_summaries()):
      for tag, value in self._lars.telemetry_scalars().items():
        tf.summary.scalar(tag, value)
    return logs


def one_line_train_logs(step: int, logs: Mapping[str, Any]) -> str:
  """`train | step: <step> | name: value, ...`, names sorted, values as %.6g.

  Args:
    step: the global step at the end of the loop.
    logs: the loop's scalar train outputs (tensors, variables or numbers:
      with a constant learning rate, Model Garden logs the optimizer's
      learning-rate variable, a MirroredVariable under MirroredStrategy).

  Returns:
    The log line.
  """
  outputs = ', '.join(f'{name}: {float(orbit.utils.get_value(value)):.6g}'
                      for name, value in sorted(logs.items()))
  return f'train | step: {step:6d} | {outputs}'
