"""Stops training before a checkpoint could hold inf or NaN values.

Without loss scaling nothing skips a step whose gradients are not finite: the
optimizer applies them and the weights become inf or NaN. Model Garden's
blow-up check (`trainer.recovery_max_trials`, `loss_upper_bound`) looks only at
the training loss averaged over a loop, so a non-finite gradient in a loop's
last steps reaches the next checkpoint unnoticed. `FiniteVariablesCheck` runs
after every training loop, before the loop's checkpoint is saved, and stops
training with `NonFiniteTrainingError` if any model or optimizer variable is
not finite: the checkpoints on disk never hold inf or NaN. It reads each
variable once per loop (`trainer.steps_per_loop` steps), outside the
optimizer's step.
"""
from typing import Any, Callable, List, Mapping, Optional, Sequence

import numpy as np
import orbit
import tensorflow as tf

# Variables named in the error message; the rest are counted.
_NAMES_SHOWN = 5


class NonFiniteTrainingError(RuntimeError):
  """Training produced inf or NaN weights or optimizer state."""


def trainer_variables(model: tf.Module, optimizer: Any) -> List[tf.Variable]:
  """The floating-point variables of a model and its optimizer.

  Args:
    model: the model.
    optimizer: a Keras optimizer (legacy or not), possibly wrapped.

  Returns:
    Model weights, then optimizer slots and other optimizer variables.
  """
  optimizer_variables = optimizer.variables
  if callable(optimizer_variables):  # Legacy Keras optimizers.
    optimizer_variables = optimizer_variables()
  return [v for v in list(model.variables) + list(optimizer_variables)
          if v.dtype.is_floating]


def non_finite_names(variables: Sequence[tf.Variable]) -> List[str]:
  """Names of the variables holding inf or NaN."""
  return [v.name for v in variables
          if not np.all(np.isfinite(np.asarray(v.numpy(), np.float64)))]


class FiniteVariablesCheck:
  """Orbit train action: every variable must be finite after a loop."""

  def __init__(self, variables: Callable[[], Sequence[tf.Variable]],
               global_step: tf.Variable,
               checkpoint_manager: Optional[tf.train.CheckpointManager]):
    """Initializes the check.

    Args:
      variables: returns the variables to check, e.g. `trainer_variables`
        bound to a trainer's model and optimizer (which creates its slots at
        the first step, hence a function).
      global_step: the training step, for the message.
      checkpoint_manager: where checkpoints go, to name the latest in the
        message.
    """
    self._variables = variables
    self._global_step = global_step
    self._checkpoint_manager = checkpoint_manager

  def __call__(self, train_output: Mapping[str, Any]):
    """Raises NonFiniteTrainingError if a variable is inf or NaN.

    Args:
      train_output: the training loop's output (its `training_loss` goes into
        the message).
    """
    variables = self._variables()
    if all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in variables):
      return
    names = non_finite_names(variables)
    shown = ', '.join(names[:_NAMES_SHOWN])
    if len(names) > _NAMES_SHOWN:
      shown += f' and {len(names) - _NAMES_SHOWN} more'
    loss = train_output.get('training_loss')
    loss = 'unknown' if loss is None else float(orbit.utils.get_value(loss))
    latest = (self._checkpoint_manager and
              self._checkpoint_manager.latest_checkpoint)
    raise NonFiniteTrainingError(
        f'Training stopped at step {int(self._global_step.numpy())}: inf or '
        f'NaN in {shown} (training loss {loss}). Nothing of this training '
        f'loop was saved; the latest checkpoint is {latest or "none"}. Lower '
        'the learning rate, clip gradients (e.g. LARS.clipnorm) or, with '
        'float16, keep dynamic loss scaling.')
