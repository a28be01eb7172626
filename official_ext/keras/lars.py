"""LARS as a Keras 3 optimizer, on every Keras backend.

`official_ext.keras.LARS` is a `keras.optimizers.Optimizer` with the
constructor, defaults and update rule of official_ext's `tf_keras` LARS
(`official_ext.modeling.optimization.lars.LARS`, itself a drop-in for Model
Garden's): what that one computes for `tf_keras`, this one computes with
`keras.ops` for `keras` 3 (`import keras`, or `tf.keras` since TF 2.16) on
TensorFlow, JAX or PyTorch.

Deliberate differences from the `tf_keras` class: exclusion regexes and
exact names see Keras 3 variable paths (`'dense/kernel'`); normalization
layers are found on a Keras 3 model (`use_model`); Keras' own decoupled
`weight_decay`, its `exclude_from_weight_decay()` method and the legacy
`decay` argument are refused (LARS's weight decay is `weight_decay_rate`,
added to the gradient); options are read from `options`, not attributes;
telemetry is `tf_keras`-only.
"""

import types
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional

import keras

from official_ext.keras import lars_update
from official_ext.keras import options as keras_options
from official_ext.modeling.optimization import lars_exclusion
from official_ext.modeling.optimization import lars_math
from official_ext.modeling.optimization import lars_options

DEFAULT_LEARNING_RATE = 0.01

# Keras' own name for an optimizer's slots, kept so that `variables` reads
# like SGD's (`<optimizer>/<variable path>_momentum`).
_SLOT_NAME = 'momentum'


@keras.saving.register_keras_serializable(package='official_ext')
class LARS(keras.optimizers.Optimizer):
  """Layer-wise Adaptive Rate Scaling for large batch training, Keras 3.

  Introduced by "Large Batch Training of Convolutional Networks" by Y. You,
  I. Gitman, and B. Ginsburg (https://arxiv.org/abs/1708.03888). Per variable
  `w` with gradient `g`, slot `v`, global learning rate `lr`:

  * weight decay (unless excluded): `g ← g + λ·w`;
  * classic momentum: `v ← m·v + lr·t·g`, `w ← w − v` (Nesterov:
    `w ← w − (m·v + lr·t·g)`), with `t = η‖w‖/‖g‖`;
  * popular momentum: `v ← m·v + g`, `u = v` (Nesterov: `m·v + g`),
    `w ← w − lr·t·u` with `t = η‖w‖/‖u‖`;
  * `t = 1` for variables excluded from layer adaptation, or when a norm is 0.

  Constructor: `learning_rate`, then the options of official_ext's `tf_keras`
  LARS with their defaults and checks (declared once in
  `official_ext.modeling.optimization.lars_options`; Model Garden's by
  position or name, official_ext's by name only), then Keras 3's optimizer
  arguments by name.
  """

  def __init__(self,
               learning_rate: Any = DEFAULT_LEARNING_RATE,
               momentum: float = 0.9,
               weight_decay_rate: float = 0.0,
               eeta: float = 0.001,
               nesterov: bool = False,
               classic_momentum: bool = True,
               exclude_from_weight_decay: Optional[List[str]] = None,
               exclude_from_layer_adaptation: Optional[List[str]] = None,
               name: str = 'LARS',
               *,
               trust_ratio_denominator: str = 'model_garden',
               epsilon: float = 0.0,
               trust_clip: bool = False,
               max_trust_ratio: Optional[float] = None,
               exclude_one_dimensional_from_weight_decay: bool = False,
               exclude_one_dimensional_from_layer_adaptation: bool = False,
               exclude_normalization_from_weight_decay: bool = False,
               exclude_normalization_from_layer_adaptation: bool = False,
               exclude_variables_from_weight_decay: Optional[List[str]] = None,
               exclude_variables_from_layer_adaptation: Optional[
                   List[str]] = None,
               telemetry: bool = False,
               clipnorm: Optional[float] = None,
               clipvalue: Optional[float] = None,
               global_clipnorm: Optional[float] = None,
               use_ema: bool = False,
               ema_momentum: float = 0.99,
               ema_overwrite_frequency: Optional[int] = None,
               loss_scale_factor: Optional[float] = None,
               gradient_accumulation_steps: Optional[int] = None,
               **kwargs):
    """Constructs a LARS optimizer; every argument is validated here.

    Args:
      learning_rate: a non-negative number, a
        `keras.optimizers.schedules.LearningRateSchedule` or a callable.
      momentum: `m`, in [0, 1). This and the other LARS options are the
        `tf_keras` class's, checked as `lars_options.OPTIONS` declares.
      weight_decay_rate: `λ`, added to the gradient as `λ·w`.
      eeta: `η`.
      nesterov: Nesterov momentum.
      classic_momentum: classic or popular momentum.
      exclude_from_weight_decay: regexes of variable paths.
      exclude_from_layer_adaptation: regexes of variable paths; None means
        `exclude_from_weight_decay`.
      name: the optimizer's name.
      trust_ratio_denominator: `'model_garden'` or `'paper'`.
      epsilon: `ε` added to the trust ratio's denominator.
      trust_clip: LARC clipping.
      max_trust_ratio: None or an upper bound on the trust ratio.
      exclude_one_dimensional_from_weight_decay: no decay for rank ≤ 1.
      exclude_one_dimensional_from_layer_adaptation: no adaptation for
        rank ≤ 1.
      exclude_normalization_from_weight_decay: no decay for normalization
        layers (`official_ext.keras.use_model` finds them).
      exclude_normalization_from_layer_adaptation: likewise, no adaptation.
      exclude_variables_from_weight_decay: exact variable paths.
      exclude_variables_from_layer_adaptation: exact variable paths.
      telemetry: refused unless False: it is `tf_keras`-only.
      clipnorm: as Keras 3's optimizers.
      clipvalue: as Keras 3's optimizers.
      global_clipnorm: as Keras 3's optimizers.
      use_ema: as Keras 3's optimizers.
      ema_momentum: as Keras 3's optimizers.
      ema_overwrite_frequency: as Keras 3's optimizers.
      loss_scale_factor: as Keras 3's optimizers.
      gradient_accumulation_steps: as Keras 3's optimizers.
      **kwargs: Keras' `weight_decay` and `decay`, refused unless None.

    Raises:
      TypeError: an argument has the wrong type or is unknown.
      ValueError: an argument is out of range.
    """
    arguments = locals()
    learning_rate, options, keras_kwargs = keras_options.check_arguments(
        learning_rate,
        {key: arguments[key] for key in lars_options.OPTION_NAMES},
        {key: arguments[key] for key in keras_options.KERAS_ARGUMENTS},
        kwargs)
    super().__init__(learning_rate=learning_rate, **keras_kwargs)
    # Read-only mappings: Keras would track a plain dict as optimizer state.
    self._options = types.MappingProxyType(options)
    self.exclusion_rules: Mapping[str, lars_exclusion.ExclusionRules] = (
        types.MappingProxyType({
            purpose: lars_exclusion.ExclusionRules.from_options(options, purpose)
            for purpose in lars_exclusion.PURPOSES}))
    self._normalization_paths: Optional[FrozenSet[str]] = None
    self._momentums = []

  @property
  def options(self) -> Dict[str, Any]:
    """Every LARS option, validated, defaults filled in."""
    return dict(self._options)

  def exclude_from_weight_decay(self, var_list=None, var_names=None):
    """Refused: it configures Keras' decoupled weight decay, unused here.

    Raises:
      ValueError: always, naming the constructor arguments to use.
    """
    raise ValueError(
        f'LARS: exclude_from_weight_decay(var_list={var_list!r}, '
        f"var_names={var_names!r}) configures Keras' decoupled weight decay, "
        f'which LARS does not use: pass exclude_from_weight_decay=[regexes] '
        f'or exclude_variables_from_weight_decay=[paths] to the constructor.')

  def set_normalization_variables(self, variables: Iterable[Any]):
    """Names the variables that `exclude_normalization_from_*` select.

    Args:
      variables: the trainable variables of the model's normalization layers
        (`official_ext.keras.use_model` finds them).
    """
    self._normalization_paths = frozenset(v.path for v in variables)

  @property
  def normalization_variable_paths(self) -> Optional[FrozenSet[str]]:
    """What `set_normalization_variables` was given; None if not called."""
    return self._normalization_paths

  def weight_decay_exclusion(self, variable: Any) -> Optional[str]:
    """The setting that keeps `variable` from weight decay, or None.

    Args:
      variable: a model variable (its `path` and rank are used).

    Returns:
      e.g. `"exclude_from_weight_decay 'bias'"`, `'weight_decay_rate = 0'`.

    Raises:
      ValueError: a normalization exclusion without
        `set_normalization_variables`.
    """
    return self._exclusion(lars_exclusion.WEIGHT_DECAY, variable)

  def layer_adaptation_exclusion(self, variable: Any) -> Optional[str]:
    """The setting that keeps `variable` from layer adaptation, or None.

    Args:
      variable: a model variable.

    Returns:
      e.g. `'exclude_one_dimensional_from_layer_adaptation'`.

    Raises:
      ValueError: a normalization exclusion without
        `set_normalization_variables`.
    """
    return self._exclusion(lars_exclusion.LAYER_ADAPTATION, variable)

  def _exclusion(self, purpose: str, variable: Any) -> Optional[str]:
    # `lars_exclusion.ExclusionRules`, shared with the tf_keras class, sees
    # the Keras 3 path where the tf_keras class passes the variable name.
    return self.exclusion_rules[purpose].reason(
        variable.path, len(variable.shape), self._normalization_paths)

  def build(self, variables):
    """Creates one momentum slot per variable."""
    if self.built:
      return
    super().build(variables)
    self._momentums = self.add_optimizer_variables(variables, _SLOT_NAME)

  def _update_rule(self, variable) -> lars_update.UpdateRule:
    options = self._options
    return lars_update.UpdateRule(
        decay=self.weight_decay_exclusion(variable) is None,
        adapt=self.layer_adaptation_exclusion(variable) is None,
        classic_momentum=options['classic_momentum'],
        nesterov=options['nesterov'],
        trust_ratio=lars_math.TrustRatioOptions(
            denominator=options['trust_ratio_denominator'],
            epsilon=options['epsilon'],
            trust_clip=options['trust_clip'],
            max_trust_ratio=options['max_trust_ratio']),
        # Keras compiles the step with XLA on JAX and TensorFlow, and runs
        # it eagerly on PyTorch (docs/keras.md, "Speed").
        decay_scaled_apart=keras.backend.backend() != 'torch')

  def update_step(self, gradient, variable, learning_rate):
    """Applies one LARS step to `variable` (see `lars_update.lars_update`)."""
    dtype = variable.dtype
    index = self._get_variable_index(variable)
    # The TensorFlow backend passes the backing tf.Variable, which has no
    # Keras path; the Keras variable the optimizer was built with has.
    model_variable = self._trainable_variables[index]
    if hasattr(gradient, 'indices'):
      # LARS is layer-wise, its norms are over the whole variable: a sparse
      # gradient (an Embedding's, on TensorFlow) is summed into a dense one,
      # duplicate indices added, as the tf_keras class does.
      gradient = keras.ops.add(keras.ops.zeros_like(variable), gradient)
    next_param, next_velocity = lars_update.lars_update(
        self._update_rule(model_variable), variable, self._momentums[index],
        keras.ops.cast(gradient, dtype), keras.ops.cast(learning_rate, dtype),
        momentum=self._options['momentum'],
        weight_decay_rate=self._options['weight_decay_rate'],
        eeta=self._options['eeta'])
    self.assign(self._momentums[index], next_velocity)
    self.assign(variable, next_param)

  def get_config(self) -> Dict[str, Any]:
    """Keras 3's optimizer config plus every LARS option."""
    config = super().get_config()
    config.update(self._options)
    return config

  @classmethod
  def from_config(cls, config: Mapping[str, Any],
                  custom_objects: Optional[Mapping[str, Any]] = None
                 ) -> 'LARS':
    """Creates a LARS from `get_config()` output, without state.

    Args:
      config: the output of `get_config`; not modified (Keras' base class
        deserializes the learning-rate schedule in place).
      custom_objects: classes of schedules Keras does not know by name.

    Returns:
      A new, unbuilt LARS.
    """
    return super().from_config(dict(config), custom_objects=custom_objects)
