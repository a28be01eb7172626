"""The whole LARS update of one variable, traced once as a `tf.function`.

`variable_update_function` composes the formulas of `lars_math` with the
variable's slots and TensorFlow's fused momentum kernel; `LARS` calls the
function it returns once per variable and step. Inside a step compiled with
XLA (`tf.function(jit_compile=True)`) the norms are computed as
`xla_l2_norm`, which XLA compiles better than `lars_math.l2_loss_norm`.
"""

import functools
from typing import Callable

import tensorflow as tf

from official_ext import internals
from official_ext.modeling.optimization import lars_math
from official_ext.modeling.optimization import lars_options

# What telemetry records per variable after each step, in this order.
TELEMETRY_FIELDS = ('trust_ratio', 'weight_norm', 'gradient_norm',
                    'learning_rate')


def xla_l2_norm(x: tf.Tensor) -> tf.Tensor:
  """`lars_math.l2_loss_norm` as XLA compiles best: sums of squares by rows.

  Here `x` is viewed as rows of its last dimension; the squares are summed
  row by row, which XLA runs in parallel, and the row sums are added by a dot
  with ones, because a second `reduce_sum` would be merged with the first
  into one slower whole-tensor reduction. docs/speed.md compares it with
  `l2_loss_norm`'s `L2Loss` under XLA (`python -m
  official_ext.benchmarks.optimizer_step --jit_compile`); it stays precise
  over millions of elements. Without XLA, `l2_loss_norm` is faster:
  TensorFlow would materialize `x²`.

  Args:
    x: a tensor of any rank, known or not.

  Returns:
    A scalar `‖x‖₂` (float32 for half-precision `x`, else `x.dtype`).
  """
  x = tf.cast(x, lars_math.norm_dtype(x.dtype))
  # A scalar or a last dimension of 0 gives rows of one element.
  columns = tf.maximum(tf.reduce_prod(tf.shape(x)[-1:]), 1)
  row_sums = tf.reduce_sum(tf.square(tf.reshape(x, [-1, columns])), axis=1)
  return tf.sqrt(tf.tensordot(row_sums, tf.ones_like(row_sums), 1))


def variable_update_function(
    dtype: tf.DType,
    decay: bool,
    adapt: bool,
    classic_momentum: bool,
    nesterov: bool,
    options: lars_math.TrustRatioOptions = lars_math.TrustRatioOptions(),
    telemetry: bool = False) -> Callable[..., tf.Tensor]:
  """The whole LARS update of one variable, as one traced-once function.

  Calling a `tf.function` from the optimizer's apply step adds one call op
  per variable to the caller's graph instead of the dozen ops the update is
  made of; the body is traced once per (dtype, options) for variables of
  every shape. The function is marked `_noinline`, and the runtime honours
  it: after graph optimization the step still holds one call per variable
  (`python -m official_ext.benchmarks.runtime_calls` shows it), each run by
  its own executor. That is deliberate: inlining the same body measured
  slower both per step and at the first call on 1000 variables (see
  docs/speed.md). The traced graph, and its tracing time, stay close to
  momentum SGD's for models with thousands of variables. Options that are
  off add no op. Under XLA the call is compiled with the rest of the step
  and its norms are `xla_l2_norm`.

  Args:
    dtype: the variable's dtype.
    decay: whether the variable gets weight decay.
    adapt: whether the variable gets layer-wise adaptation.
    classic_momentum: classic (learning rate inside momentum) or popular.
    nesterov: whether to use Nesterov momentum.
    options: the trust-ratio variant.
    telemetry: whether the update also writes `TELEMETRY_FIELDS` (float32)
      into a `[4]` variable passed as a last argument.

  Returns:
    `update(var, velocity, grad, learning_rate, momentum, weight_decay_rate,
    eeta[, telemetry_variable])` taking resource handles and scalars,
    returning the local learning rate it applied.
  """
  return _traced_update(dtype, decay, adapt, classic_momentum, nesterov,
                        options, telemetry, internals.in_xla_context())


@functools.lru_cache(maxsize=None)
def _traced_update(dtype: tf.DType, decay: bool, adapt: bool,
                   classic_momentum: bool, nesterov: bool,
                   options: lars_math.TrustRatioOptions, telemetry: bool,
                   xla: bool) -> Callable[..., tf.Tensor]:
  """`variable_update_function`, traced for XLA (`xla`) or not."""
  l2_norm = xla_l2_norm if xla else lars_math.l2_loss_norm
  scalar = tf.TensorSpec([], dtype)
  signature = [
      tf.TensorSpec([], tf.resource),  # variable
      tf.TensorSpec([], tf.resource),  # momentum slot
      tf.TensorSpec(None, dtype),  # dense gradient
      scalar,  # learning rate
      scalar,  # momentum
      scalar,  # weight decay rate
      tf.TensorSpec([], lars_math.norm_dtype(dtype)),  # eeta
  ]
  paper = options.denominator == lars_options.PAPER_DENOMINATOR

  def update(var, velocity, grad, learning_rate, momentum, weight_decay_rate,
             eeta, telemetry_variable=None):
    param = tf.raw_ops.ReadVariableOp(resource=var, dtype=dtype)
    raw_grad = grad
    if decay:
      grad = lars_math.weight_decayed_gradient(grad, param, weight_decay_rate)
    if classic_momentum:
      direction = grad
    else:
      next_velocity, direction = lars_math.popular_momentum(
          tf.raw_ops.ReadVariableOp(resource=velocity, dtype=dtype), grad,
          momentum, nesterov)
    param_norm = l2_norm(param) if adapt or telemetry else None
    direction_norm = l2_norm(direction) if adapt and not paper else None
    grad_norm = None
    if telemetry or (adapt and paper):
      # Without decay, classic momentum's direction is the raw gradient.
      reuse = direction_norm is not None and classic_momentum and not decay
      grad_norm = direction_norm if reuse else l2_norm(raw_grad)
    ratio = None
    if adapt:
      ratio = lars_math.layer_trust_ratio(
          param_norm, grad_norm if paper else direction_norm, eeta,
          learning_rate, options, weight_decay_rate if decay else None)
      learning_rate = lars_math.layer_adapted_learning_rate(learning_rate,
                                                            ratio)
    if classic_momentum:
      # With lr=1 and the pre-scaled gradient the fused kernel computes
      # v ← m·v + lr·t·g and w ← w − v (Nesterov: w ← w − lr·t·g − m·v).
      tf.raw_ops.ResourceApplyMomentum(
          var=var, accum=velocity, lr=tf.constant(1, dtype),
          grad=learning_rate * grad, momentum=momentum,
          use_nesterov=nesterov)
    else:
      tf.raw_ops.AssignVariableOp(resource=velocity, value=next_velocity)
      tf.raw_ops.ResourceApplyGradientDescent(var=var, alpha=learning_rate,
                                              delta=direction)
    if telemetry:
      ratio = tf.ones_like(param_norm) if ratio is None else ratio
      values = [ratio, param_norm, grad_norm, learning_rate]
      tf.raw_ops.AssignVariableOp(
          resource=telemetry_variable,
          value=tf.stack([tf.cast(v, tf.float32) for v in values]))
    return learning_rate

  if telemetry:
    signature.append(tf.TensorSpec([], tf.resource))
    python_function = update
  else:
    def python_function(var, velocity, grad, learning_rate, momentum,
                        weight_decay_rate, eeta):
      return update(var, velocity, grad, learning_rate, momentum,
                    weight_decay_rate, eeta)
  return tf.function(
      python_function, input_signature=signature, autograph=False,
      experimental_attributes={'_noinline': True}).get_concrete_function()
