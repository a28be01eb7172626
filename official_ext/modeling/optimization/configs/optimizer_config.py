"""Dataclass for official_ext's LARS optimizer config.

Every other optimizer config is Model Garden's own
(`official.modeling.optimization.configs.optimizer_config`); only LARS, which
official_ext builds with its own class, has its config defined here.
"""
import dataclasses
from typing import List, Optional

from official.modeling.optimization.configs import optimizer_config as mg_optimizer_config


@dataclasses.dataclass
class LARSConfig(mg_optimizer_config.BaseOptimizerConfig):
  """Config of `official_ext.modeling.optimization.lars.LARS`.

  Its fields are the LARS constructor arguments, clipping (`clipnorm`,
  `clipvalue`, `global_clipnorm`, inherited) included, with the constructor's
  defaults and in its order: the options of `lars_options.OPTIONS`, which a
  test checks them against (Model Garden's hyperparameters, gin bindings and
  `override` need real dataclass fields). `learning_rate` is not a field: the
  optimizer factory passes the schedule built from
  `OptimizationConfig.learning_rate` and `warmup`. Neither is Keras'
  deprecated `decay`: decay belongs in the learning-rate schedule. Values are
  checked by the LARS constructor.

  Attributes:
    momentum: momentum coefficient, in [0, 1).
    weight_decay_rate: L2 weight decay rate `λ` (>= 0); `λ·w` is added to the
      gradient before the trust ratio is computed.
    eeta: LARS trust coefficient (> 0); `eeta / weight_decay_rate` bounds the
      layer-wise scaling.
    nesterov: whether to use Nesterov momentum.
    classic_momentum: apply the learning rate inside the momentum update
      (classic) rather than after it (popular).
    exclude_from_weight_decay: regexes; variables whose name matches any of
      them get no weight decay, e.g. ['batch_normalization', 'bias'].
    exclude_from_layer_adaptation: regexes; variables whose name matches any of
      them get no trust-ratio scaling. None means "same as
      exclude_from_weight_decay".
    name: name of the optimizer.
    trust_ratio_denominator: 'model_garden' (η‖w‖/‖g + λw‖, Model Garden and
      optax) or 'paper' (η‖w‖/(‖g‖ + λ‖w‖), You et al. 2017, MLPerf, Apex
      LARC, timm; classic momentum only).
    epsilon: ε added to the trust ratio's denominator (>= 0).
    trust_clip: LARC clipping (Apex `LARC(clip=True)`, timm `trust_clip`): the
      local learning rate is min(trust ratio, learning rate).
    max_trust_ratio: upper bound (> 0) on the factor that multiplies the
      learning rate; None for none.
    exclude_one_dimensional_from_weight_decay: no weight decay for variables of
      rank <= 1 (biases, normalization scales and offsets), whatever their
      names.
    exclude_one_dimensional_from_layer_adaptation: no trust-ratio scaling for
      variables of rank <= 1.
    exclude_normalization_from_weight_decay: no weight decay for the variables
      of the model's normalization layers (BatchNormalization,
      SyncBatchNormalization, LayerNormalization, GroupNormalization, Model
      Garden's RMSNorm and NoNorm, see `normalization_layers`), found by
      layer type.
    exclude_normalization_from_layer_adaptation: no trust-ratio scaling for
      the normalization layers' variables.
    exclude_variables_from_weight_decay: exact variable names (with or without
      ':0') that get no weight decay.
    exclude_variables_from_layer_adaptation: exact variable names that get no
      trust-ratio scaling.
    telemetry: write each variable's trust ratio, weight norm, gradient norm
      and local learning rate to the train summaries at the summary interval.
  """
  momentum: float = 0.9
  weight_decay_rate: float = 0.0
  eeta: float = 0.001
  nesterov: bool = False
  classic_momentum: bool = True
  exclude_from_weight_decay: Optional[List[str]] = None
  exclude_from_layer_adaptation: Optional[List[str]] = None
  name: str = 'LARS'
  trust_ratio_denominator: str = 'model_garden'
  epsilon: float = 0.0
  trust_clip: bool = False
  max_trust_ratio: Optional[float] = None
  exclude_one_dimensional_from_weight_decay: bool = False
  exclude_one_dimensional_from_layer_adaptation: bool = False
  exclude_normalization_from_weight_decay: bool = False
  exclude_normalization_from_layer_adaptation: bool = False
  exclude_variables_from_weight_decay: Optional[List[str]] = None
  exclude_variables_from_layer_adaptation: Optional[List[str]] = None
  telemetry: bool = False
