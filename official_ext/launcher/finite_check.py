"""Stops a training run that blows up with one clear error, before it saves.

Without loss scaling nothing skips a step whose gradients are not finite: the
optimizer applies them and the weights become inf or NaN. Two checks notice,
after every training loop and before the loop's checkpoint is saved:

- Model Garden's blow-up check (`trainer.recovery_max_trials`,
  `trainer.loss_upper_bound`) looks at the loop's averaged training loss; once
  its recovery trials are used up it raises a bare `RuntimeError`.
  `report_recovery_limits` makes it raise `NonFiniteTrainingError` instead.
- `FiniteVariablesCheck` reads every model and optimizer variable (once per
  loop, outside the optimizer's step): a NaN gradient in a loop's last steps
  leaves the averaged loss finite, yet reaches the weights.

Either way training stops with `NonFiniteTrainingError`, whose one-line
message names the step, the latest checkpoint (on disk, finite: nothing of the
failed loop was saved) and the settings most likely responsible: the learning
rate at that step, LARS's eeta and the weight decay.
"""
from typing import Any, Callable, List, Mapping, Optional, Sequence

import numpy as np
import orbit
import tensorflow as tf

from official.core import actions

from official_ext.modeling.optimization import optimizer_wrappers

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


def learning_rate_at(optimizer: Any, step: int) -> Optional[float]:
  """The learning rate of the update that made global step `step`.

  Args:
    optimizer: a Keras optimizer, possibly wrapped.
    step: the global step after the update (>= 1).

  Returns:
    The rate, or None if the optimizer has no `learning_rate`.
  """
  rate = getattr(optimizer_wrappers.unwrap(optimizer)[-1], 'learning_rate',
                 None)
  if rate is None:
    return None
  if callable(rate) and not isinstance(rate, tf.Variable):
    # The update to global step s runs with optimizer.iterations == s - 1.
    rate = rate(max(step - 1, 0))
  return float(tf.convert_to_tensor(rate))


def likely_causes(optimizer: Any, step: int) -> str:
  """The optimizer settings that most often blow a run up, with values.

  Args:
    optimizer: the training optimizer, possibly wrapped.
    step: the step at which training stopped.

  Returns:
    E.g. 'learning rate 2.96 at step 40, eeta 1000.0, weight decay 0.0001'.
  """
  inner = optimizer_wrappers.unwrap(optimizer)[-1]
  causes = []
  rate = learning_rate_at(optimizer, step)
  if rate is not None:
    causes.append(f'learning rate {rate:.6g} at step {step}')
  if getattr(inner, 'eeta', None) is not None:
    causes.append(f'eeta {inner.eeta}')
  for attribute in ('weight_decay_rate', 'weight_decay'):
    if getattr(inner, attribute, None) is not None:
      causes.append(f'weight decay {getattr(inner, attribute)}')
      break
  return ', '.join(causes) or 'unknown'


class StopReport:
  """Raises the one-line NonFiniteTrainingError of a run that blew up."""

  def __init__(self, optimizer: Any, global_step: tf.Variable,
               checkpoint_manager: Optional[tf.train.CheckpointManager]):
    """Initializes the report.

    Args:
      optimizer: the training optimizer, for the likely causes.
      global_step: the training step.
      checkpoint_manager: where checkpoints go, to name the latest.
    """
    self._optimizer = optimizer
    self._global_step = global_step
    self._checkpoint_manager = checkpoint_manager

  def stop(self, what: str):
    """Raises NonFiniteTrainingError saying `what` went wrong.

    Args:
      what: e.g. 'inf or NaN in dense/kernel:0 (training loss 2.3)'.

    Raises:
      NonFiniteTrainingError: always.
    """
    step = int(self._global_step.numpy())
    latest = None
    if self._checkpoint_manager is not None:
      # With async checkpointing (the launcher's default) the last save may
      # still be writing, and the manager names the one before it until it
      # is done: the checkpoint named must be the one a run resumes from.
      self._checkpoint_manager.sync()
      latest = self._checkpoint_manager.latest_checkpoint
    raise NonFiniteTrainingError(
        f'Training stopped at step {step}: {what}. Nothing of this training '
        f'loop was saved; the latest checkpoint is {latest or "none"} and '
        'running again resumes from it. Likely responsible: '
        f'{likely_causes(self._optimizer, step)}. Lower the learning rate or '
        'eeta, clip gradients (e.g. LARS.clipnorm) or, with float16, keep '
        'dynamic loss scaling.')


def _training_loss(train_output: Mapping[str, Any]) -> str:
  loss = train_output.get('training_loss')
  return 'unknown' if loss is None else str(float(orbit.utils.get_value(loss)))


class FiniteVariablesCheck:
  """Orbit train action: every variable must be finite after a loop."""

  def __init__(self, variables: Callable[[], Sequence[tf.Variable]],
               report: StopReport):
    """Initializes the check.

    Args:
      variables: returns the variables to check, e.g. `trainer_variables`
        bound to a trainer's model and optimizer (which creates its slots at
        the first step, hence a function).
      report: raises the error.
    """
    self._variables = variables
    self._report = report

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
    self._report.stop(f'inf or NaN in {shown} (training loss '
                      f'{_training_loss(train_output)})')


class RecoveryLimitCheck:
  """Model Garden's blow-up check, ending in NonFiniteTrainingError."""

  def __init__(self, condition: actions.RecoveryCondition,
               report: StopReport):
    """Wraps Model Garden's check.

    Args:
      condition: Model Garden's RecoveryCondition.
      report: raises the error instead of the check's RuntimeError.
    """
    self._condition = condition
    self._report = report

  def __call__(self, train_output: Mapping[str, Any]) -> bool:
    """Model Garden's decision: True to restore the latest checkpoint.

    Args:
      train_output: the training loop's output.

    Returns:
      Whether Model Garden restores the latest checkpoint and trains on.

    Raises:
      NonFiniteTrainingError: where Model Garden raises RuntimeError (its
        recovery trials are used up).
    """
    try:
      return self._condition(train_output)
    except RuntimeError as e:
      message = ' '.join(str(e).split()).rstrip('.')
      self._report.stop(f"Model Garden's blow-up check: {message}")


def report_recovery_limits(train_actions: Sequence[Any],
                           report: StopReport) -> None:
  """Makes Model Garden's blow-up checks among `train_actions` use `report`.

  Model Garden wraps its RecoveryCondition in an orbit ConditionalAction; the
  condition of that action instance is replaced, nothing else changes.

  Args:
    train_actions: an orbit Controller's train actions.
    report: raises the error.
  """
  for action in train_actions:
    if (isinstance(action, orbit.actions.ConditionalAction) and
        isinstance(action.condition, actions.RecoveryCondition)):
      action.condition = RecoveryLimitCheck(action.condition, report)
