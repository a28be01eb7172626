"""The LARS formulas, as pure functions of tensors.

Each function is one line of the update of You, Gitman & Ginsburg 2017
(arXiv 1708.03888) or of a published implementation's variant, named in its
docstring; `lars_update` composes them into the per-variable update, and
tests call them on plain tensors.

The trust-ratio functions take an `Ops` namespace, `TF_OPS` by default, so
that the Keras 3 class (`official_ext.keras.lars_update`, with `keras.ops`)
computes the same formulas; this module itself never imports Keras.
"""

import dataclasses
from typing import Any, Callable, Optional, Tuple

import tensorflow as tf

from official_ext.modeling.optimization import lars_options

_HALF_DTYPES = (tf.float16, tf.bfloat16)


@dataclasses.dataclass(frozen=True)
class Ops:
  """The few tensor operations the trust-ratio formulas need.

  Attributes:
    where: `where(condition, x, y)`, elementwise.
    minimum: `minimum(x, y)`, elementwise.
    ones_like: `ones_like(x)`.
    cast_like: `cast_like(x, y)`: `x` in `y`'s dtype.
  """
  where: Callable[[Any, Any, Any], Any]
  minimum: Callable[[Any, Any], Any]
  ones_like: Callable[[Any], Any]
  cast_like: Callable[[Any, Any], Any]


TF_OPS = Ops(where=tf.where, minimum=tf.minimum, ones_like=tf.ones_like,
             cast_like=lambda x, y: tf.cast(x, y.dtype))


def weight_decayed_gradient(grad: tf.Tensor, param: tf.Tensor,
                            weight_decay_rate: tf.Tensor) -> tf.Tensor:
  """Adds L2 weight decay to a gradient: `g + λ·w`.

  You, Gitman & Ginsburg 2017 (arXiv 1708.03888), Algorithm 1; Model Garden's
  `lars.py` adds it before the norms, so the trust ratio sees the decayed
  gradient.

  Args:
    grad: gradient `g`.
    param: variable value `w`.
    weight_decay_rate: `λ`.

  Returns:
    `g + λ·w`.
  """
  return grad + weight_decay_rate * param


def scaled_weight_decayed_gradient(grad: tf.Tensor, param: tf.Tensor,
                                   weight_decay_rate: tf.Tensor,
                                   scale: tf.Tensor) -> tf.Tensor:
  """The update's scaled, weight-decayed gradient `s·(g + λ·w)`.

  Algorithm 1 of You, Gitman & Ginsburg 2017 (arXiv 1708.03888) scales
  `g + λw` by the local learning rate; computed as `s·g + (s·λ)·w`, which
  equals `s·(g + λw)` to float32 rounding. Written so, the update does not
  share `g + λw` with the trust ratio's `‖g + λw‖`: a compiler then forms
  `g + λw` inside that norm's reduction, reading `w` and `g` there, instead
  of writing it to memory for both (XLA on CPU does, and the step is slower).

  Args:
    grad: gradient `g`, before weight decay.
    param: variable value `w`.
    weight_decay_rate: `λ`.
    scale: `s`, the local learning rate.

  Returns:
    `s·g + (s·λ)·w`.
  """
  return scale * grad + (scale * weight_decay_rate) * param


def l2_loss_norm(x: tf.Tensor) -> tf.Tensor:
  """Euclidean norm over all elements, in float32 for half-precision input.

  Computed as `sqrt(2·L2Loss(x))`: one read of `x`, no materialized `x²`, a
  tree reduction whose float32 error stays near rounding on tensors of tens of
  millions of elements (a matrix-vector product `x·x` accumulates sequentially
  and was off by 1e-3 relative on BERT's 23.4M-element word embeddings), and an
  XLA kernel (unlike `EuclideanNorm`). float16 and bfloat16 values are upcast
  so that sums over millions of elements neither overflow nor lose precision.

  Args:
    x: a tensor of any rank, known or not.

  Returns:
    A scalar `‖x‖₂` (float32 for half-precision `x`, else `x.dtype`).
  """
  if x.dtype in _HALF_DTYPES:
    x = tf.cast(x, tf.float32)
  return tf.sqrt(2 * tf.nn.l2_loss(x))


def norm_dtype(dtype: tf.DType) -> tf.DType:
  """The dtype `l2_loss_norm` returns for tensors of `dtype`."""
  return tf.float32 if dtype in _HALF_DTYPES else dtype


def trust_ratio(param_norm: tf.Tensor, update_norm: tf.Tensor,
                eeta: tf.Tensor, epsilon: float = 0.0,
                ops: Ops = TF_OPS) -> tf.Tensor:
  """The layer-wise trust ratio `η·‖w‖/(‖u‖ + ε)`, or 1 where a norm is 0.

  You et al. 2017, eq. (6) without the weight-decay term in the denominator
  (the update `u` already holds it), exactly as Model Garden's `lars.py`,
  including its guard: a zero weight or zero update norm gives ratio 1. With
  `ε > 0` it is optax's `scale_by_trust_ratio(trust_coefficient=η, eps=ε)`
  (same guard), which `optax.lars` applies to `g + λw`.

  Args:
    param_norm: `‖w‖`.
    update_norm: `‖u‖`, the norm of the (decayed) gradient for classic
      momentum or of the momentum update for popular momentum.
    eeta: the LARS coefficient `η`.
    epsilon: `ε`, added to the denominator; 0 adds nothing.
    ops: the tensor operations.

  Returns:
    The trust ratio, a scalar.
  """
  both_positive = ops.minimum(param_norm, update_norm) > 0
  denominator = update_norm + epsilon if epsilon else update_norm
  return ops.where(both_positive, eeta * param_norm / denominator,
                   ops.ones_like(param_norm))


def paper_trust_ratio(param_norm: tf.Tensor, grad_norm: tf.Tensor,
                      eeta: tf.Tensor,
                      weight_decay_rate: Optional[tf.Tensor],
                      epsilon: float = 0.0, ops: Ops = TF_OPS) -> tf.Tensor:
  """The trust ratio `η·‖w‖/(‖g‖ + λ‖w‖ + ε)`, or 1 where a norm is 0.

  You et al. 2017, eq. (6), with the raw gradient `g`. The same formula and
  guard (ratio 1 if `‖w‖ = 0` or `‖g‖ = 0`) as the MLPerf reference
  (mlcommons/training `image_classification/tensorflow2/lars_optimizer.py`,
  `compute_lr`) and timm's `Lars`; Apex's `LARC` computes the same ratio.

  Args:
    param_norm: `‖w‖`.
    grad_norm: `‖g‖`, the norm of the gradient before weight decay.
    eeta: the LARS coefficient `η`.
    weight_decay_rate: `λ`, or None for a variable without weight decay.
    epsilon: `ε`, added to the denominator; 0 adds nothing.
    ops: the tensor operations.

  Returns:
    The trust ratio, a scalar.
  """
  both_positive = ops.minimum(param_norm, grad_norm) > 0
  denominator = grad_norm
  if weight_decay_rate is not None:
    denominator += ops.cast_like(weight_decay_rate, param_norm) * param_norm
  if epsilon:
    denominator += epsilon
  return ops.where(both_positive, eeta * param_norm / denominator,
                   ops.ones_like(param_norm))


def larc_clipped_trust_ratio(ratio: tf.Tensor, learning_rate: tf.Tensor,
                             ops: Ops = TF_OPS) -> tf.Tensor:
  """LARC clipping: `min(ratio / lr, 1)`, so the local rate is `min(ratio, lr)`.

  NVIDIA Apex `LARC(clip=True)` and timm `Lars(trust_clip=True)`: the trust
  ratio is read as a learning rate of its own and the local rate never exceeds
  the global one. With `lr = 0` the factor is 1 (the local rate is 0 anyway).

  Args:
    ratio: the trust ratio.
    learning_rate: the global learning rate.
    ops: the tensor operations.

  Returns:
    The factor that multiplies the global learning rate, in `ratio`'s dtype.
  """
  learning_rate = ops.cast_like(learning_rate, ratio)
  return ops.where(learning_rate > 0,
                   ops.minimum(ratio / learning_rate, ops.ones_like(ratio)),
                   ops.ones_like(ratio))


@dataclasses.dataclass(frozen=True)
class TrustRatioOptions:
  """How the trust ratio is computed; the defaults are Model Garden's.

  Hashable: a key of `variable_update_function`, so each combination is
  traced once and the defaults trace exactly Model Garden's math.

  Attributes:
    denominator: `'model_garden'` for `η‖w‖/‖g + λw‖` (`trust_ratio`) or
      `'paper'` for `η‖w‖/(‖g‖ + λ‖w‖)` (`paper_trust_ratio`).
    epsilon: `ε` added to the denominator.
    trust_clip: LARC clipping (`larc_clipped_trust_ratio`).
    max_trust_ratio: upper bound on the factor that multiplies the learning
      rate, applied last; None for no bound.
  """
  denominator: str = lars_options.MODEL_GARDEN_DENOMINATOR
  epsilon: float = 0.0
  trust_clip: bool = False
  max_trust_ratio: Optional[float] = None


def layer_trust_ratio(param_norm: tf.Tensor, denominator_norm: tf.Tensor,
                      eeta: tf.Tensor, learning_rate: tf.Tensor,
                      options: TrustRatioOptions,
                      weight_decay_rate: Optional[tf.Tensor] = None,
                      ops: Ops = TF_OPS) -> tf.Tensor:
  """The factor that multiplies the global learning rate of an adapted layer.

  Args:
    param_norm: `‖w‖`.
    denominator_norm: `‖u‖` for the Model Garden denominator (see
      `trust_ratio`), `‖g‖` for the paper's (see `paper_trust_ratio`).
    eeta: the LARS coefficient `η`.
    learning_rate: the global learning rate (used by LARC clipping).
    options: the variant.
    weight_decay_rate: `λ` for the paper's denominator, None when the
      variable gets no weight decay; unused by Model Garden's.
    ops: the tensor operations.

  Returns:
    The trust ratio, clipped and bounded as `options` says.
  """
  if options.denominator == lars_options.PAPER_DENOMINATOR:
    ratio = paper_trust_ratio(param_norm, denominator_norm, eeta,
                              weight_decay_rate, options.epsilon, ops)
  else:
    ratio = trust_ratio(param_norm, denominator_norm, eeta, options.epsilon,
                        ops)
  if options.trust_clip:
    ratio = larc_clipped_trust_ratio(ratio, learning_rate, ops)
  if options.max_trust_ratio is not None:
    ratio = ops.minimum(ratio, options.max_trust_ratio)
  return ratio


def layer_adapted_learning_rate(learning_rate: tf.Tensor,
                                ratio: tf.Tensor) -> tf.Tensor:
  """The local learning rate `lr · ratio`, in `learning_rate`'s dtype.

  Args:
    learning_rate: the global learning rate, in the variable's dtype.
    ratio: the trust ratio (float32 for half-precision variables).

  Returns:
    The local learning rate.
  """
  return learning_rate * tf.cast(ratio, learning_rate.dtype)


def popular_momentum(velocity: tf.Tensor, grad: tf.Tensor,
                     momentum: tf.Tensor,
                     nesterov: bool) -> Tuple[tf.Tensor, tf.Tensor]:
  """Momentum applied before the learning rate ("popular" momentum).

  `v' = m·v + g`; the update is `v'`, or `m·v' + g` with Nesterov
  (Sutskever et al. 2013), as in Model Garden's `lars.py` with
  `classic_momentum=False`.

  Args:
    velocity: the momentum slot `v`.
    grad: the (decayed) gradient `g`.
    momentum: `m`.
    nesterov: whether to use Nesterov momentum.

  Returns:
    `(v', update)`; the variable then moves by `-local_lr · update`.
  """
  next_velocity = momentum * velocity + grad
  if nesterov:
    return next_velocity, momentum * next_velocity + grad
  return next_velocity, next_velocity

