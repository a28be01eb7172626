"""Model Garden's optimizer factory, whose `lars` builds official_ext's LARS.

A drop-in for `official.modeling.optimization.optimizer_factory`: the same
public names, backed by Model Garden's own registries, so an optimizer that a
user registers with `register_optimizer_cls` (before or after importing this
module) builds here exactly as it does in Model Garden.

official_ext's LARS is registered in Model Garden's registries under
`LARS_REGISTRY_KEY`, with Model Garden's documented `register_optimizer_cls`.
`route_lars` turns a config whose optimizer type is `lars` into one that
selects that key, which any Model Garden `OptimizerFactory`, this module's
included, then builds as official_ext's LARS. Every other config is left as it
is, so every other type takes Model Garden's unchanged code path
(`build_optimizer` stays gin-configurable, clipping, EMA and postprocessor
handling are Model Garden's).

Typical use, as with Model Garden:

```
opt_factory = OptimizerFactory(optimization_config.OptimizationConfig({
    'optimizer': {'type': 'lars', 'lars': {'weight_decay_rate': 1e-4}},
    'learning_rate': {'type': 'constant', 'constant': {'learning_rate': 1.0}},
}))
optimizer = opt_factory.build_optimizer(opt_factory.build_learning_rate())
```
"""
import collections.abc
import dataclasses
from typing import Any, Iterator, Mapping

from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official.modeling.optimization.configs import optimization_config as mg_optimization_config

from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization.configs import optimizer_config as opt_cfg

# Model Garden's live registries and registration function, re-exported.
LR_CLS = mg_optimizer_factory.LR_CLS
WARMUP_CLS = mg_optimizer_factory.WARMUP_CLS
register_optimizer_cls = mg_optimizer_factory.register_optimizer_cls

# The optimizer type under which official_ext's LARS is registered in Model
# Garden's registries: what `optimizer.type: lars` builds here is whatever
# that key holds. `route_lars` selects it; the registry views read it.
LARS_REGISTRY_KEY = 'official_ext_lars'


class OptimizerClasses(collections.abc.Mapping):
  """A Model Garden optimizer-class registry as official_ext's factory reads it.

  A read-only live view of Model Garden's dict: what is registered there, at
  any time, is seen here, except that `lars` is what Model Garden's legacy
  registry holds under `LARS_REGISTRY_KEY`, the class `route_lars` makes the
  factory build. Register new types with `register_optimizer_cls`.
  """

  def __init__(self, model_garden_classes: Mapping[str, Any]):
    """Initializes the view.

    Args:
      model_garden_classes: one of Model Garden's registries, e.g. its
        optimizer_factory's `LEGACY_OPTIMIZERS_CLS`.
    """
    self._model_garden_classes = model_garden_classes

  def __getitem__(self, optimizer_type: str) -> Any:
    if optimizer_type == 'lars':
      return mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS[LARS_REGISTRY_KEY]
    return self._model_garden_classes[optimizer_type]

  def __iter__(self) -> Iterator[str]:
    return iter(self._model_garden_classes)

  def __len__(self) -> int:
    return len(self._model_garden_classes)


LEGACY_OPTIMIZERS_CLS = OptimizerClasses(
    mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS)
NEW_OPTIMIZERS_CLS = OptimizerClasses(mg_optimizer_factory.NEW_OPTIMIZERS_CLS)
SHARED_OPTIMIZERS = OptimizerClasses(mg_optimizer_factory.SHARED_OPTIMIZERS)


def _register_lars():
  """Registers official_ext's LARS for legacy and new optimizers, once."""
  for use_legacy, registry in (
      (True, mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS),
      (False, mg_optimizer_factory.NEW_OPTIMIZERS_CLS)):
    # A reload of this module finds its own registration.
    if registry.get(LARS_REGISTRY_KEY) is not lars.LARS:
      register_optimizer_cls(LARS_REGISTRY_KEY, lars.LARS,
                             use_legacy_optimizer=use_legacy)


_register_lars()


@dataclasses.dataclass
class RoutedOptimizerConfig(mg_optimization_config.OptimizerConfig):
  """Model Garden's optimizer one-of plus official_ext's LARS under its key.

  Only `route_lars` selects the extra type; configs that users write keep
  selecting `lars`.
  """
  official_ext_lars: opt_cfg.LARSConfig = dataclasses.field(
      default_factory=opt_cfg.LARSConfig)


def lars_config(
    optimizer_config: mg_optimization_config.OptimizerConfig
) -> opt_cfg.LARSConfig:
  """official_ext's LARSConfig with the values of the one-of's `lars`.

  Args:
    optimizer_config: an optimizer one-of; its `lars` may be official_ext's
      LARSConfig or Model Garden's, whose fields are a subset.

  Returns:
    A new, validated official_ext LARSConfig.

  Raises:
    ValueError: if `lars` has a field official_ext's LARSConfig lacks.
  """
  config = opt_cfg.LARSConfig()
  try:
    config.override(optimizer_config.lars.as_dict(), is_strict=True)
  except KeyError as e:
    raise ValueError(
        f'optimizer.lars has a field that LARSConfig lacks: {e}') from None
  config.validate()
  return config


def route_lars(
    config: mg_optimization_config.OptimizationConfig
) -> mg_optimization_config.OptimizationConfig:
  """Makes an OptimizationConfig build official_ext's LARS in Model Garden.

  Args:
    config: an OptimizationConfig, official_ext's, Model Garden's or a
      subclass; not modified.

  Returns:
    `config` itself unless its optimizer type is `lars`; otherwise an unlocked
    copy whose optimizer one-of selects `LARS_REGISTRY_KEY`, holding
    `lars_config(config.optimizer)`.

  Raises:
    ValueError: as `lars_config`.
  """
  if config.optimizer.type != 'lars':
    return config
  routed = config.replace()
  routed.optimizer = RoutedOptimizerConfig(
      type=LARS_REGISTRY_KEY,
      official_ext_lars=lars_config(config.optimizer))
  return routed


def _registered_types():
  return (set(mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS) |
          set(mg_optimizer_factory.NEW_OPTIMIZERS_CLS)) - {LARS_REGISTRY_KEY}


class OptimizerFactory(mg_optimizer_factory.OptimizerFactory):
  """Model Garden's `OptimizerFactory` whose `lars` is official_ext's LARS.

  Extends `official.modeling.optimization.optimizer_factory.OptimizerFactory`
  by routing its config through `route_lars`; `build_learning_rate` and the
  gin-configurable `build_optimizer` are Model Garden's, unchanged.
  """

  def __init__(self, config: mg_optimization_config.OptimizationConfig):
    """Initializes the factory.

    Args:
      config: an OptimizationConfig; official_ext's or Model Garden's.

    Raises:
      ValueError: if the optimizer type is registered in neither of Model
        Garden's optimizer registries, if the `lars` config has a field
        official_ext's LARSConfig lacks, or as Model Garden's factory (no
        optimizer or learning-rate type).
    """
    optimizer_type = config.optimizer.type
    if optimizer_type is not None and optimizer_type not in _registered_types():
      raise ValueError(
          f'Unknown optimizer type {optimizer_type!r} in optimizer.type; '
          f'registered types: {sorted(_registered_types())}.')
    super().__init__(route_lars(config))
