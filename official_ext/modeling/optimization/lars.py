"""Layer-wise Adaptive Rate Scaling (LARS) optimizer.

A drop-in replacement for Model Garden's `official.modeling.optimization.lars.
LARS`: same constructor, defaults and update rule, with its defects fixed (see
docs/differences.md) and a faster update.

The math lives in `lars_math`, the traced per-variable update in
`lars_update`; `LARS` is a thin stateful shell that wires them to slots.

Beyond Model Garden, and off by default: the trust-ratio variants of the
published implementations (`lars_math.TrustRatioOptions`), exclusion
selectors that do not depend on how a framework names variables (rank ≤ 1,
normalization layers, exact names), and per-variable telemetry (trust ratio,
‖w‖, ‖g‖, local learning rate) for TensorBoard.
"""

from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Text

import tensorflow as tf
import tf_keras

from official_ext import internals
from official_ext.modeling.optimization import lars_exclusion
from official_ext.modeling.optimization import lars_math
from official_ext.modeling.optimization import lars_options
from official_ext.modeling.optimization import lars_telemetry
from official_ext.modeling.optimization import lars_update
from official_ext.modeling.optimization import lr_serialization
from official_ext.modeling.optimization import variable_names

# What telemetry records per variable, for readers of `telemetry_scalars`.
TELEMETRY_FIELDS = lars_telemetry.TELEMETRY_FIELDS


def _check_learning_rate(value: Any) -> Any:
  """Accepts a non-negative number, a schedule, a callable or a tensor."""
  if (isinstance(value, tf_keras.optimizers.schedules.LearningRateSchedule)
      or callable(value) or tf.is_tensor(value) or
      isinstance(value, tf.Variable)):
    return value
  return lars_options.check_non_negative('learning_rate', value)


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

  The keyword-only arguments select the published variants of `t` (see
  `lars_math.TrustRatioOptions`), exclusion selectors besides regexes
  (`lars_exclusion.ExclusionRules`), and telemetry (`lars_telemetry`);
  their defaults leave Model Garden's math unchanged.
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
               *,
               trust_ratio_denominator: str = 'model_garden',
               epsilon: float = 0.0,
               trust_clip: bool = False,
               max_trust_ratio: Optional[float] = None,
               exclude_one_dimensional_from_weight_decay: bool = False,
               exclude_one_dimensional_from_layer_adaptation: bool = False,
               exclude_normalization_from_weight_decay: bool = False,
               exclude_normalization_from_layer_adaptation: bool = False,
               exclude_variables_from_weight_decay: Optional[List[Text]] = None,
               exclude_variables_from_layer_adaptation: Optional[
                   List[Text]] = None,
               telemetry: bool = False,
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
      trust_ratio_denominator: `'model_garden'`: `t = η‖w‖/‖g + λw‖`;
        `'paper'`: `t = η‖w‖/(‖g‖ + λ‖w‖)` (classic momentum only).
      epsilon: non-negative `ε` added to the trust ratio's denominator.
      trust_clip: LARC clipping: the local rate is `min(t, lr)`.
      max_trust_ratio: None, or a positive upper bound on the factor that
        multiplies the learning rate.
      exclude_one_dimensional_from_weight_decay: no weight decay for variables
        of rank ≤ 1 (biases, normalization scales and offsets).
      exclude_one_dimensional_from_layer_adaptation: no layer adaptation for
        variables of rank ≤ 1.
      exclude_normalization_from_weight_decay: no weight decay for the
        variables of the model's normalization layers; needs
        `set_normalization_variables` before the first step (official_ext's
        launcher calls it, see `normalization_layers.use_model`).
      exclude_normalization_from_layer_adaptation: likewise, no layer
        adaptation.
      exclude_variables_from_weight_decay: exact variable names (with or
        without the `:0` suffix) that get no weight decay.
      exclude_variables_from_layer_adaptation: exact variable names that get no
        layer adaptation.
      telemetry: record each variable's trust ratio, ‖w‖, ‖g‖ and local
        learning rate at every step (see `telemetry_scalars`).
      **kwargs: `clipnorm`, `clipvalue`, `global_clipnorm`, `decay` (inverse
        time decay of the learning rate), as for every Keras optimizer.

    Raises:
      TypeError: an argument has the wrong type (e.g. a bare string where a
        list of regexes is expected).
      ValueError: an argument is out of range or a regex does not compile.
    """
    # Every parameter besides learning_rate and kwargs is an option of
    # lars_options.OPTIONS; a test checks the signature against it.
    arguments = locals()
    options = lars_options.check_options(
        {name: arguments[name] for name in lars_options.OPTION_NAMES})
    learning_rate = _check_learning_rate(learning_rate)
    for keras_argument in ('clipnorm', 'clipvalue', 'global_clipnorm',
                           'decay'):
      if kwargs.get(keras_argument) is not None:
        lars_options.check_non_negative(keras_argument, kwargs[keras_argument])
    super().__init__(options['name'], **kwargs)
    self._set_hyper('learning_rate', learning_rate)
    self._set_hyper('decay', self._initial_decay)
    self._options = options
    # Model Garden's LARS exposes its options as attributes.
    for option_name, value in options.items():
      if option_name != 'name':
        setattr(self, option_name, value)
    if self.exclude_from_layer_adaptation is None:
      self.exclude_from_layer_adaptation = self.exclude_from_weight_decay
    self.trust_ratio_options = lars_math.TrustRatioOptions(
        denominator=self.trust_ratio_denominator, epsilon=self.epsilon,
        trust_clip=self.trust_clip, max_trust_ratio=self.max_trust_ratio)
    self.exclusion_rules: Dict[str, lars_exclusion.ExclusionRules] = {
        purpose: lars_exclusion.ExclusionRules.from_options(options, purpose)
        for purpose in lars_exclusion.PURPOSES
    }
    # Set by `set_normalization_variables`; None until then.
    self._normalization_names: Optional[FrozenSet[str]] = None
    # Not tracked: telemetry never enters checkpoints or get_weights().
    self._telemetry = lars_telemetry.TelemetryVariables(
        self._distribution_strategy_scope)

  def set_normalization_variables(self, variables: Iterable[tf.Variable]):
    """Names the variables that `exclude_normalization_from_*` select.

    Call it before the first step, with the trainable variables of the model's
    normalization layers (`normalization_layers.use_model` finds them).

    Args:
      variables: the normalization layers' variables.
    """
    self._normalization_names = frozenset(
        variable_names.variable_name(var) for var in variables)

  @property
  def normalization_variable_names(self) -> Optional[FrozenSet[str]]:
    """What `set_normalization_variables` was given; None if not called."""
    return self._normalization_names

  def _exclusion(self, var: tf.Variable, purpose: str) -> Optional[str]:
    """Why `var` gets no `purpose`, or None; see `ExclusionRules.reason`."""
    return self.exclusion_rules[purpose].reason(
        variable_names.variable_name(var), var.shape.rank,
        self._normalization_names)

  def weight_decay_exclusion(self, var: tf.Variable) -> Optional[str]:
    """Why `var` gets no weight decay, or None if it gets weight decay.

    Args:
      var: a variable, possibly a per-replica component.

    Returns:
      None, or the setting that excludes it, e.g.
      `"exclude_from_weight_decay 'bias'"` or `'weight_decay_rate = 0'`.

    Raises:
      ValueError: if `exclude_normalization_from_weight_decay` is on and
        `set_normalization_variables` was never called.
    """
    return self._exclusion(var, lars_exclusion.WEIGHT_DECAY)

  def layer_adaptation_exclusion(self, var: tf.Variable) -> Optional[str]:
    """Why `var` gets no layer adaptation, or None if it gets it.

    Args:
      var: a variable, possibly a per-replica component.

    Returns:
      None, or the setting that excludes it.

    Raises:
      ValueError: if `exclude_normalization_from_layer_adaptation` is on and
        `set_normalization_variables` was never called.
    """
    return self._exclusion(var, lars_exclusion.LAYER_ADAPTATION)

  def _create_slots(self, var_list):
    for var in var_list:
      self.add_slot(var, 'momentum')
    if self.telemetry:
      for var in var_list:
        key = internals.optimizer_variable_key(var)
        self._telemetry.create(key, var)

  def telemetry_scalars(self) -> Dict[str, float]:
    """The last step's telemetry, as TensorBoard scalars.

    Returns:
      `{'lars/<variable>/<field>': value}` for every variable the optimizer
      has updated and every field of `TELEMETRY_FIELDS` (`<variable>` without
      its `:0`); empty if telemetry is off or no step ran yet.
    """
    return self._telemetry.scalars()

  def _prepare_local(self, var_device, var_dtype, apply_state):
    super()._prepare_local(var_device, var_dtype, apply_state)
    apply_state[(var_device, var_dtype)].update(
        momentum=tf.constant(self.momentum, var_dtype),
        weight_decay_rate=tf.constant(self.weight_decay_rate, var_dtype),
        eeta=tf.constant(self.eeta, lars_math.norm_dtype(var_dtype)))

  def _resource_apply_dense(self, grad, handle, apply_state=None):
    var_device, var_dtype = handle.device, handle.dtype.base_dtype
    coefficients = ((apply_state or {}).get((var_device, var_dtype)) or
                    self._fallback_apply_state(var_device, var_dtype))
    update = lars_update.variable_update_function(
        var_dtype, self.weight_decay_exclusion(handle) is None,
        self.layer_adaptation_exclusion(handle) is None,
        self.classic_momentum, self.nesterov, self.trust_ratio_options,
        self.telemetry)
    arguments = [handle.handle, self.get_slot(handle, 'momentum').handle, grad,
                 coefficients['lr_t'], coefficients['momentum'],
                 coefficients['weight_decay_rate'], coefficients['eeta']]
    if self.telemetry:
      key = internals.optimizer_variable_key(handle)
      arguments.append(self._telemetry.handle(key))
    return update(*arguments)

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
    config.update(learning_rate=learning_rate, decay=self._initial_decay,
                  **self._options)
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
