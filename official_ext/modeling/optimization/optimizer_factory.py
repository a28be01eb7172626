"""Optimizer factory: Model Garden's OptimizerFactory over an explicit registry.

Every optimizer type is registered once, with its config dataclass and the
classes it builds. `lars` builds `official_ext.modeling.optimization.lars.LARS`;
every other type builds exactly the class Model Garden's factory builds. Model
Garden's own registries are only read, never modified.

Typical use, as with Model Garden:

```
opt_factory = OptimizerFactory(optimization_config.OptimizationConfig({
    'optimizer': {'type': 'lars', 'lars': {'weight_decay_rate': 1e-4}},
    'learning_rate': {'type': 'constant', 'constant': {'learning_rate': 1.0}},
}))
optimizer = opt_factory.build_optimizer(opt_factory.build_learning_rate())
```
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Tuple, Type, Union

import tensorflow as tf
import tf_keras

from official.modeling.optimization import adafactor_optimizer
from official.modeling.optimization import ema_optimizer
from official.modeling.optimization import lamb
from official.modeling.optimization import legacy_adamw
from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official.modeling.optimization import slide_optimizer
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.modeling.optimization.configs import optimizer_config as mg_opt_cfg

from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization.configs import optimizer_config as opt_cfg

GradientsAndVariables = List[Tuple[tf.Tensor, tf.Variable]]
LearningRate = Union[tf_keras.optimizers.schedules.LearningRateSchedule, float]
_CLIP_FIELDS = ('clipnorm', 'clipvalue', 'global_clipnorm')


@dataclasses.dataclass(frozen=True)
class RegisteredOptimizer:
  """An optimizer type: its config dataclass and the classes it builds.

  Attributes:
    config_cls: dataclass whose fields are the constructor's keyword arguments
      (the learning rate excepted).
    legacy_cls: class built with `use_legacy_optimizer=True`.
    new_cls: class built with `use_legacy_optimizer=False`.
  """
  config_cls: Type[mg_opt_cfg.BaseOptimizerConfig]
  legacy_cls: type
  new_cls: type


_REGISTRY: Dict[str, RegisteredOptimizer] = {}


def register_optimizer(key: str,
                       config_cls: Type[mg_opt_cfg.BaseOptimizerConfig],
                       optimizer_cls: type,
                       new_optimizer_cls: Optional[type] = None):
  """Registers an optimizer type.

  The optimizer one-of of the OptimizationConfig passed to `OptimizerFactory`
  must have a field named `key` holding a `config_cls`.

  Args:
    key: the `optimizer.type` value that selects this optimizer.
    config_cls: its config dataclass.
    optimizer_cls: the class built with `use_legacy_optimizer=True`, and also
      with `use_legacy_optimizer=False` unless `new_optimizer_cls` is given.
    new_optimizer_cls: the class built with `use_legacy_optimizer=False`, for
      types that have both a legacy and a new Keras optimizer.

  Raises:
    ValueError: if `key` is already registered.
  """
  if key in _REGISTRY:
    raise ValueError(f'Optimizer type {key!r} is already registered.')
  _REGISTRY[key] = RegisteredOptimizer(config_cls, optimizer_cls,
                                       new_optimizer_cls or optimizer_cls)


def registered_optimizers() -> Dict[str, RegisteredOptimizer]:
  """Returns a copy of the registry: optimizer type -> RegisteredOptimizer."""
  return dict(_REGISTRY)


_legacy = tf_keras.optimizers.legacy
_new = tf_keras.optimizers.experimental
register_optimizer('sgd', mg_opt_cfg.SGDConfig, _legacy.SGD, _new.SGD)
register_optimizer('sgd_experimental', mg_opt_cfg.SGDExperimentalConfig, _new.SGD)
register_optimizer('adam', mg_opt_cfg.AdamConfig, _legacy.Adam, _new.Adam)
register_optimizer('adam_experimental', mg_opt_cfg.AdamExperimentalConfig, _new.Adam)
register_optimizer('adamw', mg_opt_cfg.AdamWeightDecayConfig, legacy_adamw.AdamWeightDecay)
register_optimizer('adamw_experimental', mg_opt_cfg.AdamWeightDecayExperimentalConfig, _new.AdamW)
register_optimizer('lamb', mg_opt_cfg.LAMBConfig, lamb.LAMB)
register_optimizer('rmsprop', mg_opt_cfg.RMSPropConfig, _legacy.RMSprop, _new.RMSprop)
register_optimizer('lars', opt_cfg.LARSConfig, lars.LARS)
register_optimizer('adagrad', mg_opt_cfg.AdagradConfig, _legacy.Adagrad, _new.Adagrad)
# Open-source Model Garden's SLIDE and Adafactor are placeholder strings:
# building them fails here exactly as in Model Garden.
register_optimizer('slide', mg_opt_cfg.SLIDEConfig, slide_optimizer.SLIDE)
register_optimizer('adafactor', mg_opt_cfg.AdafactorConfig, adafactor_optimizer.Adafactor)
register_optimizer('adafactor_keras', mg_opt_cfg.AdafactorKerasConfig, tf_keras.optimizers.Adafactor)


class OptimizerFactory(mg_optimizer_factory.OptimizerFactory):
  """Builds the learning rate and optimizer of an OptimizationConfig.

  Same methods and semantics as Model Garden's `OptimizerFactory` (which it
  subclasses): `build_learning_rate()` is Model Garden's; `build_optimizer()`
  looks the optimizer class up in this module's registry, drops unset clipping
  arguments, and wraps the optimizer in Model Garden's EMA optimizer when
  `config.ema` is set. Unlike Model Garden's, `build_optimizer` is not a gin
  configurable: official_ext's launcher applies gin bindings to the config.
  """

  def __init__(self, config: mg_optimization_config.OptimizationConfig):
    """Initializes the factory.

    Args:
      config: an OptimizationConfig; official_ext's or Model Garden's.

    Raises:
      ValueError: if the optimizer type is not registered, or the optimizer
        config has a field its registered config dataclass lacks or a value
        the dataclass rejects.
    """
    optimizer_type = config.optimizer.type
    if optimizer_type is not None and optimizer_type not in _REGISTRY:
      raise ValueError(
          f'Unknown optimizer type {optimizer_type!r} in '
          f'optimizer.type; registered types: {sorted(_REGISTRY)}.')
    super().__init__(config)
    self._registered = _REGISTRY[optimizer_type]
    self._optimizer_config = self._as_registered_config(self._optimizer_config)

  def _as_registered_config(self, optimizer_config):
    """Copies `optimizer_config` into the registered config dataclass."""
    typed_config = self._registered.config_cls()
    try:
      typed_config.override(optimizer_config.as_dict(), is_strict=True)
    except KeyError as e:
      raise ValueError(
          f'optimizer.{self._optimizer_type} has a field that '
          f'{self._registered.config_cls.__name__} lacks: {e}') from None
    typed_config.validate()
    return typed_config

  def build_optimizer(
      self,
      lr: LearningRate,
      gradient_aggregator: Optional[
          Callable[[GradientsAndVariables], GradientsAndVariables]] = None,
      gradient_transformers: Optional[
          List[Callable[[GradientsAndVariables], GradientsAndVariables]]] = None,
      postprocessor: Optional[Callable[[tf_keras.optimizers.Optimizer],
                                       tf_keras.optimizers.Optimizer]] = None,
      use_legacy_optimizer: bool = True):
    """Builds the optimizer of the config.

    Args:
      lr: a float, or a LearningRateSchedule (typically from
        `build_learning_rate()`).
      gradient_aggregator: optional function replacing gradient aggregation.
      gradient_transformers: optional list of functions applied to the
        (gradient, variable) pairs after aggregation; clipping fields must then
        be unset.
      postprocessor: optional function applied to the built optimizer.
      use_legacy_optimizer: build the legacy (True) or new Keras optimizer class
        of the registered type.

    Returns:
      A `tf_keras.optimizers.legacy.Optimizer` or
      `tf_keras.optimizers.experimental.Optimizer` instance.

    Raises:
      ValueError: for `decay` or EMA with the new Keras optimizers.
      TypeError: if `postprocessor` returns something that is no optimizer.
    """
    kwargs = {
        key: value
        for key, value in self._optimizer_config.as_dict().items()
        if not (key in _CLIP_FIELDS and value is None)
    }
    kwargs['learning_rate'] = lr
    if gradient_aggregator is not None:
      kwargs['gradient_aggregator'] = gradient_aggregator
    if gradient_transformers is not None:
      kwargs['gradient_transformers'] = gradient_transformers

    if use_legacy_optimizer:
      optimizer = self._registered.legacy_cls(**kwargs)
    else:
      if 'decay' in kwargs:
        raise ValueError(
            '`decay` is deprecated in new Keras optimizer, please reflect the '
            'decay logic in `lr` or set `use_legacy_optimizer=True` to use the '
            'legacy optimizer.')
      optimizer = self._registered.new_cls(**kwargs)

    if self._use_ema:
      if not use_legacy_optimizer:
        raise ValueError(
            'EMA can only work with the legacy optimizer, please set '
            '`use_legacy_optimizer=True`.')
      optimizer = ema_optimizer.ExponentialMovingAverage(
          optimizer, **self._ema_config.as_dict())
    if postprocessor:
      optimizer = postprocessor(optimizer)
    if not isinstance(optimizer, (tf_keras.optimizers.Optimizer,
                                  tf_keras.optimizers.experimental.Optimizer,
                                  tf_keras.optimizers.legacy.Optimizer)):
      raise TypeError('OptimizerFactory.build_optimizer returning a '
                      f'non-optimizer object: {optimizer}')
    return optimizer
