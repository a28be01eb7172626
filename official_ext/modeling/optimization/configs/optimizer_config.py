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
  defaults. `learning_rate` is not a field: the optimizer factory passes the
  schedule built from `OptimizationConfig.learning_rate` and `warmup`. Neither
  is Keras' deprecated `decay`: decay belongs in the learning-rate schedule.
  Values are checked by the LARS constructor.

  Attributes:
    name: name of the optimizer.
    momentum: momentum coefficient, in [0, 1).
    eeta: LARS trust coefficient (> 0); `eeta / weight_decay_rate` bounds the
      layer-wise scaling.
    weight_decay_rate: L2 weight decay rate `λ` (>= 0); `λ·w` is added to the
      gradient before the trust ratio is computed.
    nesterov: whether to use Nesterov momentum.
    classic_momentum: apply the learning rate inside the momentum update
      (classic) rather than after it (popular).
    exclude_from_weight_decay: regexes; variables whose name matches any of
      them get no weight decay, e.g. ['batch_normalization', 'bias'].
    exclude_from_layer_adaptation: regexes; variables whose name matches any of
      them get no trust-ratio scaling. None means "same as
      exclude_from_weight_decay".
  """
  name: str = 'LARS'
  momentum: float = 0.9
  eeta: float = 0.001
  weight_decay_rate: float = 0.0
  nesterov: bool = False
  classic_momentum: bool = True
  exclude_from_weight_decay: Optional[List[str]] = None
  exclude_from_layer_adaptation: Optional[List[str]] = None
