"""The LARS update of one variable, in backend-agnostic `keras.ops`.

The same formulas as official_ext's `tf_keras` LARS
(`official_ext.modeling.optimization.lars`), which follows Model Garden: L2
weight decay added to the gradient before the norms, classic or popular
momentum, and the published trust-ratio variants; the weight decay and
trust-ratio formulas are `lars_math`'s, computed over `keras.ops`
(`KERAS_OPS`). Written with `keras.ops`
only, so one body runs on the TensorFlow, JAX and PyTorch backends, eagerly
or traced (`jit_compile`). Python booleans select what is traced: an option
that is off adds no op.
"""

import dataclasses
from typing import Any, Tuple

from keras import ops

from official_ext.modeling.optimization import lars_math
from official_ext.modeling.optimization import lars_options

# The trust-ratio formulas of `lars_math`, computed with `keras.ops`.
KERAS_OPS = lars_math.Ops(
    where=ops.where, minimum=ops.minimum, ones_like=ops.ones_like,
    cast_like=lambda x, y: ops.cast(x, ops.dtype(y)))

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
    trust_ratio: the trust-ratio variant (denominator, `ε`, LARC clipping,
      maximum ratio), as for the tf_keras class.
    decay_scaled_apart: under classic momentum with weight decay, whether
      the update scales `g` and `w` apart
      (`lars_math.scaled_weight_decayed_gradient`, which says why) rather
      than the `g + λw` whose norm the trust ratio takes: faster under XLA,
      two more full-size operations when run eagerly.
  """
  decay: bool
  adapt: bool
  classic_momentum: bool
  nesterov: bool
  trust_ratio: lars_math.TrustRatioOptions = lars_math.TrustRatioOptions()
  decay_scaled_apart: bool = True


def _norm_precision(x: Any) -> Any:
  """`x`, upcast to float32 if half precision, so that sums neither overflow
  nor lose precision over millions of elements."""
  return ops.cast(x, 'float32') if ops.dtype(x) in _HALF_DTYPES else x


def inner_product(x: Any, y: Any) -> Any:
  """`⟨x, y⟩` over all elements; float32 for half-precision input.

  Summed by rows of the last dimension, then the row sums by a dot with
  ones, as official_ext's tf_keras LARS computes its norms under XLA
  (`lars_update.xla_l2_norm`): XLA's CPU backend runs the row sums in
  parallel, and TensorFlow's XLA runs a whole-tensor `sum` slower; on JAX
  both forms take the same time. Each product is fused into
  its reduction: one pass over `x` and `y`. The rows are formed before the
  product, also as `xla_l2_norm` does: multiplied in their own shape, the
  products of some of ResNet-50's 4-D kernels were left by TensorFlow's XLA
  in kernels of their own, outside the reduction.

  Args:
    x: a tensor.
    y: a tensor of `x`'s shape and dtype.

  Returns:
    A scalar.
  """
  columns = max(x.shape[-1], 1) if len(x.shape) else 1
  x_rows = ops.reshape(_norm_precision(x), (-1, columns))
  y_rows = ops.reshape(_norm_precision(y), (-1, columns))
  row_sums = ops.sum(x_rows * y_rows, axis=1)
  return ops.dot(row_sums, ops.ones_like(row_sums))


def l2_norm(x: Any) -> Any:
  """`‖x‖₂` over all elements; float32 for half-precision `x`.

  Args:
    x: a tensor.

  Returns:
    A scalar.
  """
  return ops.sqrt(inner_product(x, x))


def _trust_scaled_learning_rate(rule: UpdateRule, param: Any, raw_grad: Any,
                                direction: Any, learning_rate: Any,
                                eeta: float, weight_decay_rate: float) -> Any:
  """The learning rate times the layer's trust ratio (`lars_math`).

  Args:
    rule: what applies to this variable (`rule.adapt` is true).
    param: `w`.
    raw_grad: `g`, before weight decay: the paper denominator's norm.
    direction: the other denominators' norm: `g + λw` (classic) or the
      momentum update (popular).
    learning_rate: the global learning rate, in `param`'s dtype.
    eeta: `η`.
    weight_decay_rate: `λ`.

  Returns:
    `learning_rate · t`.
  """
  paper = rule.trust_ratio.denominator == lars_options.PAPER_DENOMINATOR
  ratio = lars_math.layer_trust_ratio(
      l2_norm(param), l2_norm(raw_grad if paper else direction), eeta,
      learning_rate, rule.trust_ratio,
      weight_decay_rate if rule.decay else None, KERAS_OPS)
  return learning_rate * ops.cast(ratio, ops.dtype(param))


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
  decayed_grad = (
      lars_math.weight_decayed_gradient(grad, param, weight_decay_rate)
      if rule.decay else grad)
  if not rule.classic_momentum:
    next_velocity = momentum * velocity + decayed_grad
    direction = (momentum * next_velocity + decayed_grad
                 if rule.nesterov else next_velocity)
    local_learning_rate = (_trust_scaled_learning_rate(
        rule, param, grad, direction, learning_rate, eeta, weight_decay_rate)
                           if rule.adapt else learning_rate)
    return param - local_learning_rate * direction, next_velocity
  local_learning_rate = (_trust_scaled_learning_rate(
      rule, param, grad, decayed_grad, learning_rate, eeta, weight_decay_rate)
                         if rule.adapt else learning_rate)
  scaled_grad = (lars_math.scaled_weight_decayed_gradient(
      grad, param, weight_decay_rate, local_learning_rate)
                 if rule.decay and rule.decay_scaled_apart
                 else local_learning_rate * decayed_grad)
  next_velocity = momentum * velocity + scaled_grad
  step = (momentum * next_velocity + scaled_grad
          if rule.nesterov else next_velocity)
  return param - step, next_velocity
