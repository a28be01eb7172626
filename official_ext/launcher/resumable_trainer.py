"""Model Garden's Trainer, whose resumed runs continue the data order.

Model Garden checkpoints the model, the optimizer and the global step, but not
the position in the training input: a run restored at step `s` starts its
input over, so it trains on other batches than an uninterrupted run would.
(TensorFlow cannot checkpoint distributed dataset iterators.) A task whose
training input is a deterministic sequence of batches, cheap to skip, declares
it with the class attribute `resumable_train_input = True`; for it, the first
training loop after a restore at step `s` rebuilds the input without the
batches of the first `s` steps, so the resumed run ends with the same weights
as an uninterrupted one.
"""
from typing import Any, Callable, Optional

from absl import logging
import tensorflow as tf

from official.core import base_trainer

RESUMABLE_TRAIN_INPUT = 'resumable_train_input'


def batches_per_step(input_context: Optional[tf.distribute.InputContext]
                    ) -> int:
  """How many per-replica batches one input pipeline yields per step."""
  if input_context is None:
    return 1
  return (input_context.num_replicas_in_sync //
          input_context.num_input_pipelines)


def skipping_steps(build_inputs: Callable[..., tf.data.Dataset],
                   steps: int) -> Callable[..., tf.data.Dataset]:
  """Wraps a task's `build_inputs` to skip the batches of `steps` steps.

  Args:
    build_inputs: `Task.build_inputs(params, input_context=None)`.
    steps: training steps already taken.

  Returns:
    A dataset function for `Trainer.distribute_dataset`.
  """

  def build(params: Any,
            input_context: Optional[tf.distribute.InputContext] = None
           ) -> tf.data.Dataset:
    return build_inputs(params, input_context).skip(
        steps * batches_per_step(input_context))

  return build


class Trainer(base_trainer.Trainer):
  """Model Garden's Trainer; a resumable training input resumes in place."""

  def __init__(self, config, task, *args, **kwargs):
    super().__init__(config, task, *args, **kwargs)
    # Checked at the first training loop: the controller restores the
    # checkpoint after the trainer is built.
    self._input_positioned = not getattr(task, RESUMABLE_TRAIN_INPUT, False)

  def train_loop_begin(self):
    """Resets metrics; after a restore, repositions a resumable input."""
    super().train_loop_begin()
    if self._input_positioned:
      return
    self._input_positioned = True
    step = int(self.global_step.numpy())
    if step:
      logging.info('Resuming the training input at step %d.', step)
      # Replaces the not yet iterated dataset; orbit makes a new iterator.
      self.train_dataset = self.distribute_dataset(
          skipping_steps(self.task.build_inputs, step),
          self.config.task.train_data)
