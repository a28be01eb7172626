"""Tests for official_ext's OptimizerFactory, against Model Garden's."""
import dataclasses
import importlib

import numpy as np
import pytest
import tf_keras

from official.modeling.optimization import ema_optimizer
from official.modeling.optimization import lars as mg_lars
from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config

CONSTANT_LR = {'type': 'constant', 'constant': {'learning_rate': 0.5}}
ONE_OF_TYPES = sorted(
    f.name for f in dataclasses.fields(optimization_config.OptimizerConfig)
    if f.name != 'type')
# Model Garden refuses `decay` (in these configs) with new Keras optimizers.
TYPES_WITH_DECAY = sorted(
    key for key, entry in optimizer_factory.registered_optimizers().items()
    if 'decay' in entry.config_cls().as_dict())
# Model Garden's open-source SLIDE and Adafactor are placeholder strings.
PLACEHOLDER_TYPES = sorted(
    key for key, cls in mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS.items()
    if not callable(cls))
BUILDABLE_TYPES = [t for t in ONE_OF_TYPES if t not in PLACEHOLDER_TYPES]


def _config(optimizer_type, settings=None, config_cls=None, **extra):
  config_cls = config_cls or optimization_config.OptimizationConfig
  return config_cls({
      'optimizer': {'type': optimizer_type, optimizer_type: settings or {}},
      'learning_rate': CONSTANT_LR,
      **extra,
  })


def test_registry_has_exactly_the_one_of_types():
  assert sorted(optimizer_factory.registered_optimizers()) == ONE_OF_TYPES


def test_registered_config_classes_are_the_one_of_fields():
  one_of = optimization_config.OptimizerConfig()
  for key, entry in optimizer_factory.registered_optimizers().items():
    assert type(getattr(one_of, key)) is entry.config_cls, key


@pytest.mark.parametrize(
    'optimizer_type,use_legacy',
    [(t, True) for t in BUILDABLE_TYPES] +
    [(t, False) for t in BUILDABLE_TYPES if t not in TYPES_WITH_DECAY])
def test_builds_model_garden_class_except_lars(optimizer_type, use_legacy):
  mg_classes = (mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS if use_legacy
                else mg_optimizer_factory.NEW_OPTIMIZERS_CLS)
  expected = lars.LARS if optimizer_type == 'lars' else mg_classes[
      optimizer_type]
  factory = optimizer_factory.OptimizerFactory(_config(optimizer_type))
  optimizer = factory.build_optimizer(
      factory.build_learning_rate(), use_legacy_optimizer=use_legacy)
  assert type(optimizer) is expected


@pytest.mark.parametrize('optimizer_type', PLACEHOLDER_TYPES)
def test_placeholder_types_fail_as_in_model_garden(optimizer_type):
  config = _config(optimizer_type)
  for factory_cls in (optimizer_factory.OptimizerFactory,
                      mg_optimizer_factory.OptimizerFactory):
    with pytest.raises(TypeError, match='not callable'):
      factory_cls(config).build_optimizer(0.1)


@pytest.mark.parametrize('optimizer_type', TYPES_WITH_DECAY)
def test_decay_with_new_optimizers_fails_as_in_model_garden(optimizer_type):
  config = _config(optimizer_type)
  for factory_cls in (optimizer_factory.OptimizerFactory,
                      mg_optimizer_factory.OptimizerFactory):
    with pytest.raises(ValueError, match='decay'):
      factory_cls(config).build_optimizer(0.1, use_legacy_optimizer=False)


def test_lars_gets_every_config_value():
  settings = {
      'momentum': 0.8, 'eeta': 0.01, 'weight_decay_rate': 1e-3,
      'nesterov': True, 'classic_momentum': False,
      'exclude_from_weight_decay': ['bias'],
      'exclude_from_layer_adaptation': ['batch_normalization'],
      'clipnorm': 2.0, 'name': 'MyLARS',
  }
  factory = optimizer_factory.OptimizerFactory(_config('lars', settings))
  optimizer = factory.build_optimizer(factory.build_learning_rate())
  assert type(optimizer) is lars.LARS
  optimizer_config = optimizer.get_config()
  for name, value in settings.items():
    assert optimizer_config[name] == value, name
  assert optimizer_config['learning_rate'] == 0.5
  assert optimizer_config.get('clipvalue') is None
  assert optimizer_config.get('global_clipnorm') is None


def test_model_garden_config_builds_official_ext_lars_with_same_values():
  config = _config('lars', {'eeta': 0.02},
                   config_cls=mg_optimization_config.OptimizationConfig)
  ours = optimizer_factory.OptimizerFactory(config)
  theirs = mg_optimizer_factory.OptimizerFactory(config)
  our_optimizer = ours.build_optimizer(ours.build_learning_rate())
  their_optimizer = theirs.build_optimizer(theirs.build_learning_rate())
  assert type(our_optimizer) is lars.LARS
  assert type(their_optimizer) is mg_lars.LARS
  assert our_optimizer.eeta == their_optimizer.eeta == 0.02


@pytest.mark.parametrize('optimizer_type', ['sgd', 'adam', 'lamb', 'lars'])
def test_build_optimizer_matches_model_garden_for_clipping(optimizer_type):
  settings = {'clipnorm': 1.0, 'global_clipnorm': None}
  ours = optimizer_factory.OptimizerFactory(
      _config(optimizer_type, settings)).build_optimizer(0.1)
  # Model Garden's factory passes every config field to its class, so it gets
  # its own schema (official_ext's LARSConfig has options MG's LARS lacks).
  theirs = mg_optimizer_factory.OptimizerFactory(_config(
      optimizer_type, settings,
      config_cls=mg_optimization_config.OptimizationConfig)).build_optimizer(
          0.1)
  assert ours.clipnorm == theirs.clipnorm == 1.0
  assert ours.global_clipnorm is theirs.global_clipnorm is None
  ours_config, theirs_config = ours.get_config(), theirs.get_config()
  shared = set(ours_config) & set(theirs_config)
  assert {k: ours_config[k] for k in shared} == {
      k: theirs_config[k] for k in shared}


def test_learning_rate_matches_model_garden():
  config = optimization_config.OptimizationConfig({
      'optimizer': {'type': 'lars'},
      'learning_rate': {'type': 'polynomial', 'polynomial': {
          'initial_learning_rate': 4.0, 'decay_steps': 90, 'power': 2.0,
          'offset': 10}},
      'warmup': {'type': 'linear', 'linear': {'warmup_steps': 10}},
  })
  ours = optimizer_factory.OptimizerFactory(config).build_learning_rate()
  theirs = mg_optimizer_factory.OptimizerFactory(config).build_learning_rate()
  steps = np.arange(0, 120, 7)
  np.testing.assert_allclose([float(ours(s)) for s in steps],
                             [float(theirs(s)) for s in steps])


def test_ema_wraps_official_ext_lars():
  factory = optimizer_factory.OptimizerFactory(
      _config('lars', ema={'average_decay': 0.9}))
  optimizer = factory.build_optimizer(factory.build_learning_rate())
  assert isinstance(optimizer, ema_optimizer.ExponentialMovingAverage)
  assert type(optimizer._optimizer) is lars.LARS  # pylint: disable=protected-access
  with pytest.raises(ValueError, match='EMA can only work'):
    factory.build_optimizer(0.1, use_legacy_optimizer=False)


def test_postprocessor_and_gradient_transformers_are_applied():
  transformers = [lambda grads_and_vars: grads_and_vars]
  factory = optimizer_factory.OptimizerFactory(_config('lars'))
  seen = []

  def postprocessor(optimizer):
    seen.append(optimizer)
    return optimizer

  optimizer = factory.build_optimizer(
      0.1, gradient_transformers=transformers, postprocessor=postprocessor)
  assert seen == [optimizer]
  assert optimizer.gradient_transformers == transformers
  with pytest.raises(TypeError, match='non-optimizer'):
    factory.build_optimizer(0.1, postprocessor=lambda _: 'not an optimizer')


def test_unknown_type_lists_registered_types():
  config = _config('lars')
  config.optimizer.type = 'larss'
  with pytest.raises(ValueError, match='larss') as error:
    optimizer_factory.OptimizerFactory(config)
  for key in ONE_OF_TYPES:
    assert repr(key) in str(error.value)


def test_missing_type_fails_as_in_model_garden():
  with pytest.raises(ValueError, match='Optimizer type must be specified'):
    optimizer_factory.OptimizerFactory(
        optimization_config.OptimizationConfig({'learning_rate': CONSTANT_LR}))


def test_bad_lars_value_names_field():
  factory = optimizer_factory.OptimizerFactory(
      _config('lars', {'momentum': 1.5}))
  with pytest.raises(ValueError, match='momentum.*1.5'):
    factory.build_optimizer(0.1)


def test_register_twice_fails():
  with pytest.raises(ValueError, match='already registered'):
    optimizer_factory.register_optimizer(
        'lars', optimization_config.OptimizerConfig, lars.LARS)


def test_reimport_is_harmless_and_model_garden_untouched():
  mg_legacy = dict(mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS)
  mg_new = dict(mg_optimizer_factory.NEW_OPTIMIZERS_CLS)
  module = importlib.reload(optimizer_factory)
  assert sorted(module.registered_optimizers()) == ONE_OF_TYPES
  assert mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS == mg_legacy
  assert mg_optimizer_factory.NEW_OPTIMIZERS_CLS == mg_new
  assert mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS['lars'] is mg_lars.LARS
  built = module.OptimizerFactory(_config('lars')).build_optimizer(0.1)
  assert type(built) is lars.LARS


def test_is_a_model_garden_factory():
  factory = optimizer_factory.OptimizerFactory(_config('sgd'))
  assert isinstance(factory, mg_optimizer_factory.OptimizerFactory)
  assert isinstance(factory.build_optimizer(0.1),
                    tf_keras.optimizers.legacy.SGD)
