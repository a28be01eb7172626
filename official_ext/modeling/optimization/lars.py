"""Layer-wise Adaptive Rate Scaling (LARS) optimizer.

A drop-in replacement for Model Garden's `official.modeling.optimization.lars.
LARS`: same constructor, defaults and update rule, with its defects fixed (see
the README's table of differences) and a faster update.

The math lives in the small pure functions below, which tests call on plain
tensors; `LARS` is a thin stateful shell that wires them to slots and to
TensorFlow's fused momentum kernel.
"""

import functools
import math
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import tensorflow as tf
import tf_keras

from official_ext.modeling.optimization import lr_serialization

_HALF_DTYPES = (tf.float16, tf.bfloat16)


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


def l2_norm(x: tf.Tensor) -> tf.Tensor:
  """Euclidean norm over all elements, in float32 for half-precision input.

  Computed as `sqrt(x·x)` with one matrix-vector product over the flattened
  tensor: a single read of `x`, no materialized `x²`, and supported by XLA
  (unlike `EuclideanNorm`). float16 and bfloat16 values are upcast so that
  sums over millions of elements neither overflow nor lose precision.

  Args:
    x: a tensor of any rank, known or not.

  Returns:
    A scalar `‖x‖₂` (float32 for half-precision `x`, else `x.dtype`).
  """
  if x.dtype in _HALF_DTYPES:
    x = tf.cast(x, tf.float32)
  flat = tf.reshape(x, [1, -1])
  return tf.sqrt(tf.squeeze(tf.matmul(flat, flat, transpose_b=True)))


def norm_dtype(dtype: tf.DType) -> tf.DType:
  """The dtype `l2_norm` returns for tensors of `dtype`."""
  return tf.float32 if dtype in _HALF_DTYPES else dtype


def trust_ratio(param_norm: tf.Tensor, update_norm: tf.Tensor,
                eeta: tf.Tensor) -> tf.Tensor:
  """The layer-wise trust ratio `η·‖w‖/‖u‖`, or 1 where either norm is 0.

  You et al. 2017, eq. (6) without the weight-decay term in the denominator
  (the update `u` already holds it), exactly as Model Garden's `lars.py`,
  including its guard: a zero weight or zero update norm gives ratio 1.

  Args:
    param_norm: `‖w‖`.
    update_norm: `‖u‖`, the norm of the (decayed) gradient for classic
      momentum or of the momentum update for popular momentum.
    eeta: the LARS coefficient `η`.

  Returns:
    The trust ratio, a scalar.
  """
  both_positive = tf.minimum(param_norm, update_norm) > 0
  return tf.where(both_positive, eeta * param_norm / update_norm,
                  tf.ones_like(param_norm))


def layer_adapted_learning_rate(learning_rate: tf.Tensor, param: tf.Tensor,
                                update: tf.Tensor,
                                eeta: float) -> tf.Tensor:
  """The local learning rate `lr · trust_ratio(‖w‖, ‖u‖)`.

  Args:
    learning_rate: the global learning rate, in the variable's dtype.
    param: variable value `w`.
    update: the direction the trust ratio normalizes (see `trust_ratio`).
    eeta: the LARS coefficient `η`.

  Returns:
    The local learning rate, in `learning_rate`'s dtype.
  """
  ratio = trust_ratio(l2_norm(param), l2_norm(update), eeta)
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


@functools.lru_cache(maxsize=None)
def variable_update_function(dtype: tf.DType, decay: bool, adapt: bool,
                             classic_momentum: bool,
                             nesterov: bool) -> Callable[..., tf.Tensor]:
  """The whole LARS update of one variable, as one traced-once function.

  Calling a `tf.function` from the optimizer's apply step adds one call op
  per variable to the caller's graph instead of the dozen ops the update is
  made of; the body is traced once per (dtype, options) for variables of
  every shape, and the runtime inlines it before execution. This keeps the
  traced graph, and its tracing time, close to momentum SGD's for models with
  thousands of variables.

  Args:
    dtype: the variable's dtype.
    decay: whether the variable gets weight decay.
    adapt: whether the variable gets layer-wise adaptation.
    classic_momentum: classic (learning rate inside momentum) or popular.
    nesterov: whether to use Nesterov momentum.

  Returns:
    `update(var, velocity, grad, learning_rate, momentum, weight_decay_rate,
    eeta)` taking resource handles and scalars, returning the local learning
    rate it applied.
  """
  scalar = tf.TensorSpec([], dtype)
  signature = [
      tf.TensorSpec([], tf.resource),  # variable
      tf.TensorSpec([], tf.resource),  # momentum slot
      tf.TensorSpec(None, dtype),  # dense gradient
      scalar,  # learning rate
      scalar,  # momentum
      scalar,  # weight decay rate
      tf.TensorSpec([], norm_dtype(dtype)),  # eeta
  ]

  @tf.function(input_signature=signature, autograph=False,
               experimental_attributes={'_noinline': True})
  def update(var, velocity, grad, learning_rate, momentum, weight_decay_rate,
             eeta):
    param = tf.raw_ops.ReadVariableOp(resource=var, dtype=dtype)
    if decay:
      grad = weight_decayed_gradient(grad, param, weight_decay_rate)
    if classic_momentum:
      if adapt:
        learning_rate = layer_adapted_learning_rate(learning_rate, param, grad,
                                                    eeta)
      # With lr=1 and the pre-scaled gradient the fused kernel computes
      # v ← m·v + lr·t·g and w ← w − v (Nesterov: w ← w − lr·t·g − m·v).
      tf.raw_ops.ResourceApplyMomentum(
          var=var, accum=velocity, lr=tf.constant(1, dtype),
          grad=learning_rate * grad, momentum=momentum,
          use_nesterov=nesterov)
      return learning_rate
    next_velocity, update_direction = popular_momentum(
        tf.raw_ops.ReadVariableOp(resource=velocity, dtype=dtype), grad,
        momentum, nesterov)
    if adapt:
      learning_rate = layer_adapted_learning_rate(learning_rate, param,
                                                  update_direction, eeta)
    tf.raw_ops.AssignVariableOp(resource=velocity, value=next_velocity)
    tf.raw_ops.ResourceApplyGradientDescent(var=var, alpha=learning_rate,
                                            delta=update_direction)
    return learning_rate

  return update.get_concrete_function()


def _number(field: str, value: Any) -> float:
  """Returns `value` as a float, or raises TypeError naming `field`."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise TypeError(f'LARS: {field} must be a number, got {value!r} '
                    f'({type(value).__name__}).')
  value = float(value)
  if not math.isfinite(value):
    raise ValueError(f'LARS: {field} must be finite, got {value!r}.')
  return value


def _check_range(field: str, value: Any, low: float, high: float,
                 low_inclusive: bool, high_inclusive: bool = False) -> float:
  """Returns `value` as a float after checking it lies in the given range."""
  value = _number(field, value)
  above_low = value >= low if low_inclusive else value > low
  below_high = value <= high if high_inclusive else value < high
  if not (above_low and below_high):
    interval = (('[' if low_inclusive else '(') + f'{low}, {high}' +
                (']' if high_inclusive else ')'))
    raise ValueError(f'LARS: {field} must be in {interval}, got {value!r}.')
  return value


def _check_learning_rate(value: Any) -> Any:
  """Accepts a non-negative number, a schedule, a callable or a tensor."""
  if (isinstance(value, tf_keras.optimizers.schedules.LearningRateSchedule)
      or callable(value) or tf.is_tensor(value) or
      isinstance(value, tf.Variable)):
    return value
  return _check_range('learning_rate', value, 0.0, math.inf,
                      low_inclusive=True)


def _check_bool(field: str, value: Any) -> bool:
  if not isinstance(value, bool):
    raise TypeError(f'LARS: {field} must be True or False, got {value!r}.')
  return value


def _check_patterns(field: str,
                    patterns: Optional[Sequence[Text]]) -> Optional[List[Text]]:
  """Validates an exclusion list: None, or a list of valid regex strings."""
  if patterns is None:
    return None
  if isinstance(patterns, (str, bytes)):
    raise TypeError(
        f'LARS: {field} must be a list of regex strings, got the bare string '
        f'{patterns!r} (which would be read character by character); '
        f'did you mean [{patterns!r}]?')
  if not isinstance(patterns, (list, tuple)):
    raise TypeError(f'LARS: {field} must be a list of regex strings, got '
                    f'{patterns!r} ({type(patterns).__name__}).')
  for pattern in patterns:
    if not isinstance(pattern, str):
      raise TypeError(f'LARS: {field} must hold only strings, got {pattern!r} '
                      f'({type(pattern).__name__}) in {list(patterns)!r}.')
    try:
      re.compile(pattern)
    except re.error as e:
      raise ValueError(f'LARS: {field} holds an invalid regex {pattern!r}: '
                       f'{e}.') from e
  return list(patterns)


def _any_match(patterns: Optional[List[Text]], name: str) -> bool:
  return any(re.search(pattern, name) for pattern in patterns or ())


def variable_name(var: tf.Variable) -> str:
  """The name exclusion patterns see: the same on every replica.

  Under a distribution strategy the optimizer updates per-replica components
  named like `dense/kernel/replica_1:0`; their distributed container carries
  the single-device name `dense/kernel:0`.

  Args:
    var: a variable, possibly a per-replica component.

  Returns:
    The variable's single-device name.
  """
  # pylint: disable=protected-access
  for owner in (var, getattr(var, 'handle', None)):
    container = getattr(owner, '_distributed_container', None)
    if container is not None and container() is not None:
      return container().name
  # pylint: enable=protected-access
  return var.name


@tf_keras.saving.register_keras_serializable(package='official_ext')
class LARS(tf_keras.optimizers.legacy.Optimizer):
  """Layer-wise Adaptive Rate Scaling for large batch training.

  Introduced by "Large Batch Training of Convolutional Networks" by Y. You,
  I. Gitman, and B. Ginsburg. (https://arxiv.org/abs/1708.03888)

  The update, per variable `w` with gradient `g`, slot `v` and global learning
  rate `lr` (Model Garden's formulation):

  * weight decay (unless excluded): `g ← g + λ·w`;
  * classic momentum: `v ← m·v + lr·t·g`, `w ← w − v` (Nesterov:
    `w ← w − (m·v + lr·t·g)`), with `t = η‖w‖/‖g‖`;
  * popular momentum: `v ← m·v + g`, `u = v` (Nesterov: `m·v + g`),
    `w ← w − lr·t·u` with `t = η‖w‖/‖u‖`;
  * `t = 1` for variables excluded from layer adaptation, or when a norm is 0.
  """

  def __init__(self,
               learning_rate: Any = 0.01,
               momentum: float = 0.9,
               weight_decay_rate: float = 0.0,
               eeta: float = 0.001,
               nesterov: bool = False,
               classic_momentum: bool = True,
               exclude_from_weight_decay: Optional[List[Text]] = None,
               exclude_from_layer_adaptation: Optional[List[Text]] = None,
               name: Text = 'LARS',
               **kwargs):
    """Constructs a LARS optimizer; every argument is validated here.

    Args:
      learning_rate: a non-negative float, a `LearningRateSchedule`, a callable
        or a tensor. Defaults to 0.01.
      momentum: float in [0, 1). Defaults to 0.9.
      weight_decay_rate: non-negative float, the L2 weight decay `λ`.
      eeta: positive float, the LARS coefficient `η` of the paper.
      nesterov: whether to use Nesterov momentum.
      classic_momentum: whether the learning rate is applied inside the
        momentum update (classic) or after it (popular).
      exclude_from_weight_decay: list of regexes; a variable whose name any of
        them matches (`re.search`) gets no weight decay.
      exclude_from_layer_adaptation: list of regexes for variables that get
        the global learning rate unscaled. `None` means the same list as
        `exclude_from_weight_decay`; `[]` means adapt every variable.
      name: name for the operations created when applying gradients.
      **kwargs: `clipnorm`, `clipvalue`, `global_clipnorm`, `decay` (inverse
        time decay of the learning rate), as for every Keras optimizer.

    Raises:
      TypeError: an argument has the wrong type (e.g. a bare string where a
        list of regexes is expected).
      ValueError: an argument is out of range or a regex does not compile.
    """
    if not isinstance(name, str):
      raise TypeError(f'LARS: name must be a string, got {name!r}.')
    learning_rate = _check_learning_rate(learning_rate)
    momentum = _check_range('momentum', momentum, 0.0, 1.0, low_inclusive=True)
    weight_decay_rate = _check_range('weight_decay_rate', weight_decay_rate,
                                     0.0, math.inf, low_inclusive=True)
    eeta = _check_range('eeta', eeta, 0.0, math.inf, low_inclusive=False)
    for clip in ('clipnorm', 'clipvalue', 'global_clipnorm', 'decay'):
      if kwargs.get(clip) is not None:
        _check_range(clip, kwargs[clip], 0.0, math.inf, low_inclusive=True)
    super().__init__(name, **kwargs)
    self._set_hyper('learning_rate', learning_rate)
    self._set_hyper('decay', self._initial_decay)
    self.momentum = momentum
    self.weight_decay_rate = weight_decay_rate
    self.eeta = eeta
    self.nesterov = _check_bool('nesterov', nesterov)
    self.classic_momentum = _check_bool('classic_momentum', classic_momentum)
    self.exclude_from_weight_decay = _check_patterns(
        'exclude_from_weight_decay', exclude_from_weight_decay)
    self._layer_adaptation_argument = _check_patterns(
        'exclude_from_layer_adaptation', exclude_from_layer_adaptation)
    if self._layer_adaptation_argument is None:
      self.exclude_from_layer_adaptation = self.exclude_from_weight_decay
    else:
      self.exclude_from_layer_adaptation = self._layer_adaptation_argument

  def _create_slots(self, var_list):
    for var in var_list:
      self.add_slot(var, 'momentum')

  def _prepare_local(self, var_device, var_dtype, apply_state):
    super()._prepare_local(var_device, var_dtype, apply_state)
    apply_state[(var_device, var_dtype)].update(
        momentum=tf.constant(self.momentum, var_dtype),
        weight_decay_rate=tf.constant(self.weight_decay_rate, var_dtype),
        eeta=tf.constant(self.eeta, norm_dtype(var_dtype)))

  def _use_weight_decay(self, param_name: str) -> bool:
    """Whether to use L2 weight decay for `param_name`."""
    return bool(self.weight_decay_rate) and not _any_match(
        self.exclude_from_weight_decay, param_name)

  def _do_layer_adaptation(self, param_name: str) -> bool:
    """Whether to do layer-wise learning rate adaptation for `param_name`."""
    return not _any_match(self.exclude_from_layer_adaptation, param_name)

  def _resource_apply_dense(self, grad, handle, apply_state=None):
    var_device, var_dtype = handle.device, handle.dtype.base_dtype
    coefficients = ((apply_state or {}).get((var_device, var_dtype)) or
                    self._fallback_apply_state(var_device, var_dtype))
    name = variable_name(handle)
    update = variable_update_function(var_dtype, self._use_weight_decay(name),
                                      self._do_layer_adaptation(name),
                                      self.classic_momentum, self.nesterov)
    return update(handle.handle,
                  self.get_slot(handle, 'momentum').handle, grad,
                  coefficients['lr_t'], coefficients['momentum'],
                  coefficients['weight_decay_rate'], coefficients['eeta'])

  def _resource_apply_sparse_duplicate_indices(self, grad, handle, indices,
                                               **kwargs):
    # LARS is layer-wise: the trust ratio needs the norm of the whole
    # gradient, and weight decay and momentum touch every row anyway, so a
    # sparse gradient is summed into its dense equivalent.
    dense_grad = tf.math.unsorted_segment_sum(
        grad, indices, num_segments=tf.shape(handle, out_type=indices.dtype)[0])
    return self._resource_apply_dense(dense_grad, handle, **kwargs)

  def _resource_apply_sparse(self, grad, handle, indices, apply_state=None):
    return self._resource_apply_sparse_duplicate_indices(
        grad, handle, indices, apply_state=apply_state)

  def get_config(self) -> Dict[str, Any]:
    """Returns every constructor argument; `from_config` loses nothing."""
    config = super().get_config()
    learning_rate = self._hyper['learning_rate']
    if isinstance(learning_rate,
                  tf_keras.optimizers.schedules.LearningRateSchedule):
      learning_rate = lr_serialization.serialize_learning_rate(learning_rate)
    else:
      learning_rate = self._serialize_hyperparameter('learning_rate')
    config.update({
        'learning_rate': learning_rate,
        'decay': self._initial_decay,
        'momentum': self.momentum,
        'weight_decay_rate': self.weight_decay_rate,
        'eeta': self.eeta,
        'nesterov': self.nesterov,
        'classic_momentum': self.classic_momentum,
        'exclude_from_weight_decay': self.exclude_from_weight_decay,
        'exclude_from_layer_adaptation': self._layer_adaptation_argument,
    })
    return config

  @classmethod
  def from_config(cls,
                  config: Mapping[str, Any],
                  custom_objects: Optional[Mapping[str, Any]] = None) -> 'LARS':
    """Creates a LARS from `get_config()` output.

    Args:
      config: the output of `get_config`, possibly with `lr` instead of
        `learning_rate` (Keras' legacy spelling).
      custom_objects: optional mapping from class name to class for learning
        rate schedules that are neither Keras built-ins, registered Keras
        objects nor Model Garden schedules.

    Returns:
      A LARS optimizer configured as `config` says, without any state.
    """
    config = dict(config)
    if 'lr' in config:
      config['learning_rate'] = config.pop('lr')
    if 'learning_rate' in config:
      config['learning_rate'] = lr_serialization.deserialize_learning_rate(
          config['learning_rate'], custom_objects)
    return cls(**config)
