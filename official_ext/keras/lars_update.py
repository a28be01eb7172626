"""The LARS update of one variable, in backend-agnostic `keras.ops`.

The same formulas as official_ext's `tf_keras` LARS
(`official_ext.modeling.optimization.lars`), which follows Model Garden: L2
weight decay added to the gradient before the norms, classic or popular
momentum, and the published trust-ratio variants. Written with `keras.ops`
only, so one body runs on the TensorFlow, JAX and PyTorch backends, eagerly
or traced (`jit_compile`). Python booleans select what is traced: an option
that is off adds no op.
"""

import dataclasses
from typing import Any, Optional, Tuple

from keras import ops

# `trust_ratio_denominator` values, as the tf_keras LARS spells them.
MODEL_GARDEN_DENOMINATOR = 'model_garden'
PAPER_DENOMINATOR = 'paper'

_HALF_DTYPES = ('float16', 'bfloat16')


@dataclasses.dataclass(frozen=True)
class UpdateRule:
  """Everything that decides the shape of one variable's update.

  Attributes:
    decay: whether the variable gets weight decay.
    adapt: whether the variable gets layer-wise adaptation.
    classic_momentum: learning rate inside the momentum (classic) or after it
      (popular).
    nesterov: Nesterov momentum.
    denominator: `MODEL_GARDEN_DENOMINATOR` (`η‖w‖/‖u‖`, `u` the decayed
      gradient or momentum update) or `PAPER_DENOMINATOR`
      (`η‖w‖/(‖g‖ + λ‖w‖)`, `g` the raw gradient).
    epsilon: `ε` added to the trust ratio's denominator.
    trust_clip: LARC clipping, `min(t/lr, 1)`.
    max_trust_ratio: upper bound on the trust ratio, or None.
  """
  decay: bool
  adapt: bool
  classic_momentum: bool
  nesterov: bool
  denominator: str = MODEL_GARDEN_DENOMINATOR
  epsilon: float = 0.0
  trust_clip: bool = False
  max_trust_ratio: Optional[float] = None


def l2_norm(x: Any) -> Any:
  """`‖x‖₂` over all elements; float32 for half-precision `x`.

  Args:
    x: a tensor.

  Returns:
    A scalar.
  """
  if ops.dtype(x) in _HALF_DTYPES:
    x = ops.cast(x, 'float32')
  return ops.sqrt(ops.sum(ops.square(x)))


def guarded_ratio(param_norm: Any, other_norm: Any, numerator: Any,
                  denominator: Any) -> Any:
  """`numerator / denominator`, or 1 if `‖w‖` or the other norm is 0.

  Model Garden's guard: a zero weight (fresh bias) or a zero gradient gets
  the global learning rate unscaled.

  Args:
    param_norm: `‖w‖`.
    other_norm: the norm in the denominator (`‖u‖` or `‖g‖`).
    numerator: `η‖w‖`.
    denominator: the trust ratio's denominator.

  Returns:
    The guarded ratio, a scalar.
  """
  both_positive = ops.greater(ops.minimum(param_norm, other_norm), 0)
  # The divisor is made 1 where it is not used, so no inf or nan is traced.
  safe_denominator = ops.where(both_positive, denominator,
                               ops.ones_like(denominator))
  return ops.where(both_positive, numerator / safe_denominator,
                   ops.ones_like(numerator))


def layer_trust_ratio(rule: UpdateRule, param_norm: Any, update_norm: Any,
                      grad_norm: Any, eeta: float, weight_decay_rate: float,
                      learning_rate: Any) -> Any:
  """The factor that multiplies the global learning rate of an adapted layer.

  Args:
    rule: the variant (`denominator`, `epsilon`, `trust_clip`,
      `max_trust_ratio`) and whether the variable gets weight decay.
    param_norm: `‖w‖`.
    update_norm: `‖u‖`, for the Model Garden denominator.
    grad_norm: `‖g‖` of the raw gradient, for the paper's denominator.
    eeta: `η`.
    weight_decay_rate: `λ`.
    learning_rate: the global learning rate, for LARC clipping.

  Returns:
    A scalar in `param_norm`'s dtype.
  """
  numerator = eeta * param_norm
  if rule.denominator == PAPER_DENOMINATOR:
    other_norm = grad_norm
    denominator = grad_norm
    if rule.decay:
      denominator = denominator + weight_decay_rate * param_norm
  else:
    other_norm = denominator = update_norm
  if rule.epsilon:
    denominator = denominator + rule.epsilon
  ratio = guarded_ratio(param_norm, other_norm, numerator, denominator)
  if rule.trust_clip:
    learning_rate = ops.cast(learning_rate, ops.dtype(ratio))
    positive = ops.greater(learning_rate, 0)
    safe_learning_rate = ops.where(positive, learning_rate,
                                   ops.ones_like(learning_rate))
    ratio = ops.where(positive,
                      ops.minimum(ratio / safe_learning_rate, 1.0),
                      ops.ones_like(ratio))
  if rule.max_trust_ratio is not None:
    ratio = ops.minimum(ratio, rule.max_trust_ratio)
  return ratio


def lars_update(rule: UpdateRule, param: Any, velocity: Any, grad: Any,
                learning_rate: Any, momentum: float, weight_decay_rate: float,
                eeta: float) -> Tuple[Any, Any]:
  """One LARS step of one variable.

  With `g ← g + λw` (if `rule.decay`) and `t` the trust ratio (1 unless
  `rule.adapt`):
  * classic: `v' = m·v + lr·t·g`, `w' = w − v'` (Nesterov:
    `w' = w − (m·v' + lr·t·g)`), `t = η‖w‖/‖g‖`;
  * popular: `v' = m·v + g`, `u = v'` (Nesterov: `m·v' + g`),
    `w' = w − lr·t·u`, `t = η‖w‖/‖u‖`.

  Args:
    rule: what applies to this variable.
    param: `w`.
    velocity: the momentum slot `v`.
    grad: the gradient, in `param`'s dtype.
    learning_rate: the global learning rate, in `param`'s dtype.
    momentum: `m`.
    weight_decay_rate: `λ`.
    eeta: `η`.

  Returns:
    `(w', v')`.
  """
  raw_grad = grad
  if rule.decay:
    grad = grad + weight_decay_rate * param
  if rule.classic_momentum:
    direction = grad
  else:
    next_velocity = momentum * velocity + grad
    direction = (momentum * next_velocity + grad
                 if rule.nesterov else next_velocity)
  local_learning_rate = learning_rate
  if rule.adapt:
    paper = rule.denominator == PAPER_DENOMINATOR
    ratio = layer_trust_ratio(
        rule, l2_norm(param),
        update_norm=None if paper else l2_norm(direction),
        grad_norm=l2_norm(raw_grad) if paper else None, eeta=eeta,
        weight_decay_rate=weight_decay_rate, learning_rate=learning_rate)
    local_learning_rate = learning_rate * ops.cast(ratio, ops.dtype(param))
  if not rule.classic_momentum:
    return param - local_learning_rate * direction, next_velocity
  scaled_grad = local_learning_rate * grad
  next_velocity = momentum * velocity + scaled_grad
  step = (momentum * next_velocity + scaled_grad
          if rule.nesterov else next_velocity)
  return param - step, next_velocity
