"""Tests for official_ext's OptimizerFactory, against Model Garden's."""
import dataclasses
import importlib

import gin
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import ema_optimizer
from official.modeling.optimization import lars as mg_lars
from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.modeling.optimization.configs import optimizer_config as mg_optimizer_config
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config

CONSTANT_LR = {'type': 'constant', 'constant': {'learning_rate': 0.5}}
ONE_OF_TYPES = sorted(
    f.name for f in dataclasses.fields(optimization_config.OptimizerConfig)
    if f.name != 'type')
# Model Garden refuses `decay` (in these configs) with new Keras optimizers.
TYPES_WITH_DECAY = sorted(
    t for t in ONE_OF_TYPES
    if 'decay' in getattr(optimization_config.OptimizerConfig(), t).as_dict())
# Model Garden's open-source SLIDE and Adafactor are placeholder strings.
PLACEHOLDER_TYPES = ['adafactor', 'slide']
BUILDABLE_TYPES = [t for t in ONE_OF_TYPES if t not in PLACEHOLDER_TYPES]


def _config(optimizer_type, settings=None, config_cls=None, **extra):
  config_cls = config_cls or optimization_config.OptimizationConfig
  return config_cls({
      'optimizer': {'type': optimizer_type, optimizer_type: settings or {}},
      'learning_rate': CONSTANT_LR,
      **extra,
  })


class _MyAdam(tf_keras.optimizers.legacy.Adam):
  """An optimizer a user registers with Model Garden, as DETR does."""


def _optimization_config_with(field_name, field_cls, configs_module):
  """An OptimizationConfig subclass whose optimizer one-of sets a field.

  What a user who adds an optimizer type writes, e.g. Model Garden's DETR.

  Args:
    field_name: the one-of field to add or replace.
    field_cls: its config class.
    configs_module: the optimization_config module to subclass from.

  Returns:
    The OptimizationConfig subclass.
  """
  one_of = dataclasses.make_dataclass(
      'OptimizerConfig',
      [(field_name, field_cls, dataclasses.field(default_factory=field_cls))],
      bases=(configs_module.OptimizerConfig,))
  return dataclasses.make_dataclass(
      'OptimizationConfig',
      [('optimizer', one_of, dataclasses.field(default_factory=one_of))],
      bases=(configs_module.OptimizationConfig,))


_MyAdamOptimization = _optimization_config_with(
    'my_adam', mg_optimizer_config.AdamConfig, optimization_config)


@pytest.fixture(name='register')
def fixture_register():
  """Registers with Model Garden's registry; unregisters afterwards."""
  registered = []

  def register(key, optimizer_cls):
    mg_optimizer_factory.register_optimizer_cls(key, optimizer_cls)
    registered.append(key)

  yield register
  for key in registered:
    del mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS[key]


def test_reexports_model_garden_registries_and_registration():
  assert optimizer_factory.LR_CLS is mg_optimizer_factory.LR_CLS
  assert optimizer_factory.WARMUP_CLS is mg_optimizer_factory.WARMUP_CLS
  assert optimizer_factory.register_optimizer_cls is (
      mg_optimizer_factory.register_optimizer_cls)


@pytest.mark.parametrize('name', ['LEGACY_OPTIMIZERS_CLS', 'NEW_OPTIMIZERS_CLS',
                                  'SHARED_OPTIMIZERS'])
def test_optimizer_classes_are_model_garden_s_but_lars(name):
  ours = getattr(optimizer_factory, name)
  theirs = getattr(mg_optimizer_factory, name)
  assert list(ours) == list(theirs)
  assert ours['lars'] is lars.LARS
  assert theirs['lars'] is mg_lars.LARS
  assert {k: ours[k] for k in ours if k != 'lars'} == {
      k: v for k, v in theirs.items() if k != 'lars'}


def test_official_ext_lars_is_registered_with_model_garden():
  for registry in (mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS,
                   mg_optimizer_factory.NEW_OPTIMIZERS_CLS):
    assert registry[optimizer_factory.LARS_REGISTRY_KEY] is lars.LARS


def test_user_registration_after_import_builds_as_in_model_garden(register):
  register('my_adam', _MyAdam)
  assert optimizer_factory.LEGACY_OPTIMIZERS_CLS['my_adam'] is _MyAdam
  config = _config('my_adam', {'beta_1': 0.8}, _MyAdamOptimization)
  for factory_cls in (optimizer_factory.OptimizerFactory,
                      mg_optimizer_factory.OptimizerFactory):
    optimizer = factory_cls(config).build_optimizer(0.1)
    assert type(optimizer) is _MyAdam
    assert optimizer.get_config()['beta_1'] == pytest.approx(0.8)


def test_user_registration_before_import_is_seen(register):
  register('my_adam', _MyAdam)
  module = importlib.reload(optimizer_factory)
  optimizer = module.OptimizerFactory(
      _config('my_adam', config_cls=_MyAdamOptimization)).build_optimizer(0.1)
  assert type(optimizer) is _MyAdam


def test_reload_keeps_model_garden_lars_for_model_garden():
  module = importlib.reload(optimizer_factory)
  assert mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS['lars'] is mg_lars.LARS
  built = module.OptimizerFactory(_config('lars')).build_optimizer(0.1)
  assert type(built) is lars.LARS


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


@pytest.fixture(name='gin_bindings')
def fixture_gin_bindings():
  yield gin.bind_parameter
  gin.clear_config()


def test_build_optimizer_is_gin_configurable(gin_bindings):
  # Model Garden's idiom for the new Keras SGD, which has no `decay`.
  config = _config('sgd', {'momentum': 0.7})
  delattr(config.optimizer.sgd, 'decay')
  gin_bindings('build_optimizer.use_legacy_optimizer', False)
  optimizer = optimizer_factory.OptimizerFactory(config).build_optimizer(0.1)
  assert type(optimizer) is tf_keras.optimizers.experimental.SGD
  assert optimizer.momentum == pytest.approx(0.7)


@pytest.mark.parametrize('optimizer_type', ['lars', 'sgd'])
def test_gradient_aggregator_replaces_aggregation(optimizer_type):
  factory = optimizer_factory.OptimizerFactory(_config(optimizer_type))
  zero_gradients = lambda pairs: [(tf.zeros_like(g), v) for g, v in pairs]
  optimizer = factory.build_optimizer(1.0, gradient_aggregator=zero_gradients)
  variable = tf.Variable([1.0, 2.0])
  optimizer.apply_gradients([(tf.constant([3.0, -4.0]), variable)])
  np.testing.assert_allclose(variable.numpy(), [1.0, 2.0])


def test_lars_gets_every_config_value():
  settings = {
      'momentum': 0.8, 'eeta': 0.01, 'weight_decay_rate': 1e-3,
      'nesterov': True, 'classic_momentum': False,
      'exclude_from_weight_decay': ['bias'],
      'exclude_from_layer_adaptation': ['batch_normalization'],
      'trust_ratio_denominator': 'model_garden', 'epsilon': 1e-9,
      'max_trust_ratio': 10.0,
      'exclude_one_dimensional_from_weight_decay': True,
      'exclude_variables_from_layer_adaptation': ['dense/kernel'],
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


def test_route_lars_leaves_other_configs_and_its_input_alone():
  sgd = _config('sgd')
  assert optimizer_factory.route_lars(sgd) is sgd
  config = _config('lars', {'eeta': 0.02})
  config.lock()
  routed = optimizer_factory.route_lars(config)
  assert routed.optimizer.type == optimizer_factory.LARS_REGISTRY_KEY
  assert routed.optimizer.get().eeta == 0.02
  assert routed.learning_rate.constant.learning_rate == 0.5
  assert config.optimizer.type == 'lars'
  optimizer = mg_optimizer_factory.OptimizerFactory(routed).build_optimizer(0.1)
  assert type(optimizer) is lars.LARS


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
  assert optimizer_factory.LARS_REGISTRY_KEY not in str(error.value)


@dataclasses.dataclass
class _LarsWithExtraField(mg_optimizer_config.LARSConfig):
  unknown_option: int = 3


_ExtraFieldOptimization = _optimization_config_with(
    'lars', _LarsWithExtraField, mg_optimization_config)


def test_unknown_lars_field_is_a_value_error_naming_it():
  with pytest.raises(ValueError, match='optimizer.lars.*unknown_option'):
    optimizer_factory.OptimizerFactory(
        _config('lars', config_cls=_ExtraFieldOptimization))


def test_missing_type_fails_as_in_model_garden():
  with pytest.raises(ValueError, match='Optimizer type must be specified'):
    optimizer_factory.OptimizerFactory(
        optimization_config.OptimizationConfig({'learning_rate': CONSTANT_LR}))


def test_bad_lars_value_names_field():
  factory = optimizer_factory.OptimizerFactory(
      _config('lars', {'momentum': 1.5}))
  with pytest.raises(ValueError, match='momentum.*1.5'):
    factory.build_optimizer(0.1)


def test_is_a_model_garden_factory():
  factory = optimizer_factory.OptimizerFactory(_config('sgd'))
  assert isinstance(factory, mg_optimizer_factory.OptimizerFactory)
  assert isinstance(factory.build_optimizer(0.1),
                    tf_keras.optimizers.legacy.SGD)
