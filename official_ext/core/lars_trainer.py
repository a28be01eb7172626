"""The launcher's Trainer: LARS exclusions resolved on the model, telemetry.

Once the trainer has built the model and the optimizer, a LARS among them
(possibly inside loss-scaling or EMA wrappers) learns which variables belong
to normalization layers (`lars_exclusion.use_model`), and a training job logs
the exclusion report: every trainable variable with its shape and whether it
gets weight decay and layer adaptation, then a warning for every exclusion
setting that matched nothing.

With `LARSConfig.telemetry` on, each training loop that ends on a multiple of
`trainer.summary_interval` adds LARS's per-variable scalars
(`lars/<variable>/{trust_ratio,weight_norm,gradient_norm,learning_rate}`, the
last step's values) to the logs that orbit's Controller writes as train
summaries (`model_dir/train`). They are read from the optimizer after the loop,
so the training step's graph is the same as without telemetry, apart from the
optimizer's own telemetry writes.
"""
from official_ext.core import lars_report_lib
from official_ext.core import trainer as trainer_lib
from official_ext.modeling.optimization import lars_exclusion


class Trainer(trainer_lib.Trainer):
  """official_ext's Trainer, plus LARS's model-based exclusions and telemetry."""

  def __init__(self, config, task, model, optimizer, train=True, *args,
               **kwargs):
    super().__init__(config, task, model, optimizer, train, *args, **kwargs)
    self._lars = lars_exclusion.use_model(self.optimizer, self.model)
    if self._lars is not None and train:
      lars_report_lib.log_exclusion_report(self.model, self.optimizer)

  def _summary_due(self) -> bool:
    """Whether this loop's end is a train-summary step."""
    interval = self.config.trainer.summary_interval
    if not interval:  # orbit then records summaries at every step
      return True
    return int(self.global_step.numpy()) % interval == 0

  def train_loop_end(self):
    """Model Garden's train logs, plus LARS telemetry when due."""
    logs = super().train_loop_end()
    if self._lars is not None and self._lars.telemetry and self._summary_due():
      logs.update(self._lars.telemetry_scalars())
    return logs
