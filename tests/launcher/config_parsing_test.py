"""Tests for official_ext's experiment parsing: LARS configs, flags and gin."""
import logging
import os

import gin
import pytest
import tf_keras
import yaml

from official.core import exp_factory
from official.core import train_utils as mg_train_utils
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.vision import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import config_parsing
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config
from official_ext.modeling.optimization.configs import optimizer_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LARS_OVERRIDE = 'trainer.optimizer_config.optimizer.lars'


@pytest.fixture
def bind_gin():
  """Parses gin files and bindings as the launcher does; cleans up after."""

  def parse(*bindings, files=None):
    gin.clear_config()
    gin.parse_config_files_and_bindings(files, list(bindings))

  gin.clear_config()
  yield parse
  gin.clear_config()


def _parse(experiment, config_file=None, params_override='', **kwargs):
  options = mg_train_utils.ParseConfigOptions(
      experiment=experiment, config_file=config_file or [],
      params_override=params_override)
  return config_parsing.parse_configuration(options, print_return=False, **kwargs)


def _lars(params):
  return params.trainer.optimizer_config.optimizer.lars


def _write_yaml(path, tree):
  with open(path, 'w') as f:
    yaml.safe_dump(tree, f)
  return str(path)


def _lars_yaml(path, **fields):
  return _write_yaml(path, {'trainer': {'optimizer_config': {'optimizer': {
      'lars': fields}}}})


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records
          if r.levelno == logging.WARNING]


def _default_as_parsed(experiment):
  """The registered defaults, with the runtime.tpu that parsing sets."""
  params = exp_factory.get_exp_config(experiment)
  params.override({'runtime': {'tpu': ''}})
  return params.as_dict()


def test_model_garden_experiment_gets_official_ext_optimization_config(
    bind_gin):
  bind_gin()
  params = _parse('resnet_imagenet')
  default = exp_factory.get_exp_config('resnet_imagenet')
  assert type(default.trainer.optimizer_config) is (
      mg_optimization_config.OptimizationConfig)
  assert type(params.trainer.optimizer_config) is (
      optimization_config.OptimizationConfig)
  assert isinstance(_lars(params), optimizer_config.LARSConfig)
  assert params.as_dict() == _default_as_parsed('resnet_imagenet')


def test_precedence_defaults_config_file_params_override_gin(
    bind_gin, tmp_path, caplog):
  first = _lars_yaml(tmp_path / 'a.yaml', eeta=0.003, momentum=0.8,
                     weight_decay_rate=2e-4, nesterov=True)
  second = _lars_yaml(tmp_path / 'b.yaml', weight_decay_rate=3e-4)
  bind_gin('LARS.eeta = 0.005', 'LARS.nesterov = False')
  with caplog.at_level(logging.WARNING):
    params = _parse('lars_digits', config_file=[first, second],
                    params_override=f'{LARS_OVERRIDE}.eeta=0.004,'
                    f'{LARS_OVERRIDE}.momentum=0.85')
  lars = _lars(params)
  assert lars.eeta == 0.005  # gin beats --params_override.
  assert lars.momentum == 0.85  # --params_override beats --config_file.
  assert lars.weight_decay_rate == 3e-4  # later --config_file wins.
  assert lars.nesterov is False  # gin beats --config_file.
  assert lars.classic_momentum is True  # experiment default.
  warnings = _warnings(caplog)
  assert any('LARS.eeta = 0.005' in w and '0.004' in w and
             '--params_override' in w for w in warnings), warnings
  assert any('LARS.nesterov = False' in w and 'True' in w and first in w
             for w in warnings), warnings
  assert not any('momentum' in w for w in warnings), warnings


def test_no_warning_without_flag_conflict(bind_gin, caplog):
  bind_gin('LARS.eeta = 0.005')
  with caplog.at_level(logging.WARNING):
    params = _parse('lars_digits')
  assert _lars(params).eeta == 0.005
  assert not _warnings(caplog)


def test_gin_file_sets_every_binding(bind_gin):
  bind_gin(files=[os.path.join(REPO, 'experiments', 'lars.gin')])
  lars = _lars(_parse('lars_digits'))
  assert lars.eeta == 0.002
  assert lars.weight_decay_rate == 1e-4
  assert lars.exclude_from_weight_decay == ['batch_normalization', 'bias']


@pytest.mark.parametrize('field,value', [
    ('momentum', 0.5), ('eeta', 0.02), ('weight_decay_rate', 0.01),
    ('nesterov', True), ('classic_momentum', False),
    ('exclude_from_weight_decay', ['bias']),
    ('exclude_from_layer_adaptation', ['batch_normalization']),
    ('clipnorm', 1.0), ('clipvalue', 2.0), ('global_clipnorm', 3.0),
    ('name', 'TunedLARS'), ('trust_ratio_denominator', 'paper'),
    ('epsilon', 1e-9), ('trust_clip', True), ('max_trust_ratio', 10.0),
    ('exclude_one_dimensional_from_weight_decay', True),
    ('exclude_one_dimensional_from_layer_adaptation', True),
    ('exclude_normalization_from_weight_decay', True),
    ('exclude_normalization_from_layer_adaptation', True),
    ('exclude_variables_from_weight_decay', ['dense/kernel']),
    ('exclude_variables_from_layer_adaptation', ['dense/bias:0']),
    ('telemetry', True),
])
def test_every_lars_field_is_bindable(bind_gin, field, value):
  bind_gin(f'LARS.{field} = {value!r}')
  assert getattr(_lars(_parse('lars_digits')), field) == value


def test_bindable_field_list_covers_every_lars_field():
  fields = {args[0] for args in next(
      mark.args[1] for mark in test_every_lars_field_is_bindable.pytestmark
      if mark.name == 'parametrize')}
  assert fields == set(optimizer_config.LARSConfig().as_dict())


@pytest.mark.parametrize('binding,message', [
    ('LARS.eta = 0.1', 'LARS.eta'),
    ('LARS.learning_rate = 0.1', 'learning_rate'),
])
def test_unknown_lars_field_fails(bind_gin, binding, message):
  bind_gin(binding)
  with pytest.raises(ValueError, match=message):
    _parse('lars_digits')


@pytest.mark.parametrize('binding,message', [
    ('LARS.momentum = 1.5', 'momentum.*1.5'),
    ('LARS.eeta = -1.0', 'eeta.*-1.0'),
    ("LARS.exclude_from_weight_decay = 'bias'", 'exclude_from_weight_decay'),
    ("LARS.trust_ratio_denominator = 'papers'",
     "trust_ratio_denominator.*'papers'"),
    ('LARS.max_trust_ratio = 0.0', 'max_trust_ratio.*0.0'),
    ('LARS.telemetry = 1', 'telemetry.*1'),
])
def test_bad_lars_value_fails_naming_field(bind_gin, binding, message):
  bind_gin(binding)
  with pytest.raises(ValueError, match=message):
    _parse('lars_digits')


def test_bad_lars_value_from_params_override_fails(bind_gin):
  bind_gin()
  with pytest.raises(ValueError, match='weight_decay_rate.*-0.5'):
    _parse('lars_digits',
           params_override=f'{LARS_OVERRIDE}.weight_decay_rate=-0.5')


@pytest.mark.parametrize('experiment', [
    'resnet_imagenet', 'image_classification', 'retinanet_resnetfpn_coco',
    'maskrcnn_resnetfpn_coco', 'seg_deeplabv3_pascal'])
def test_model_garden_experiments_accept_lars(bind_gin, experiment):
  bind_gin('LARS.eeta = 0.004')
  # Model Garden's `image_classification` leaves the learning rate unset.
  params = _parse(experiment, params_override=(
      'trainer.optimizer_config.optimizer.type=lars,'
      'trainer.optimizer_config.learning_rate.type=constant'))
  assert isinstance(params.trainer.optimizer_config.optimizer.get(),
                    optimizer_config.LARSConfig)
  assert _lars(params).eeta == 0.004


def test_unset_learning_rate_fails_before_training(bind_gin):
  bind_gin()
  with pytest.raises(ValueError, match='Learning rate type must be specified'):
    _parse('image_classification',
           params_override='trainer.optimizer_config.optimizer.type=lars')


@pytest.mark.parametrize('experiment,override', [
    ('lars_digits', ''),
    ('resnet50_imagenet_lars', ''),
    ('resnet_imagenet', 'trainer.optimizer_config.optimizer.type=lars,'
     f'{LARS_OVERRIDE}.exclude_from_weight_decay=[bias],'
     'trainer.optimizer_config.ema.average_decay=0.9'),
    ('lars_digits', ','.join(f'{LARS_OVERRIDE}.{setting}' for setting in (
        'trust_ratio_denominator=paper', 'epsilon=0.0001', 'trust_clip=true',
        'max_trust_ratio=2.5',
        'exclude_one_dimensional_from_weight_decay=true',
        'exclude_one_dimensional_from_layer_adaptation=true',
        'exclude_normalization_from_weight_decay=true',
        'exclude_normalization_from_layer_adaptation=true',
        'exclude_variables_from_weight_decay=[dense/kernel]',
        'exclude_variables_from_layer_adaptation=[dense/bias:0]',
        'telemetry=true'))),
])
def test_params_yaml_loads_back_unchanged(bind_gin, tmp_path, experiment,
                                          override):
  bind_gin('LARS.eeta = 0.003')
  params = _parse(experiment, params_override=override)
  mg_train_utils.serialize_config(params, str(tmp_path))
  bind_gin()
  loaded = _parse(experiment,
                  config_file=[str(tmp_path / 'params.yaml')])
  assert loaded.as_dict() == params.as_dict()
  assert _lars(loaded).eeta == 0.003


@pytest.mark.parametrize('experiment', ['lars_digits',
                                        'resnet50_imagenet_lars'])
def test_experiment_yaml_spells_out_the_defaults(bind_gin, experiment):
  bind_gin()
  from_yaml = _parse(experiment, config_file=[
      os.path.join(REPO, 'experiments', f'{experiment}.yaml')])
  assert from_yaml.as_dict() == _parse(experiment).as_dict()


def test_swap_keeps_a_field_the_experiment_deleted(bind_gin):
  # Model Garden's idiom for the new Keras SGD: delete `decay`, then build
  # with `build_optimizer.use_legacy_optimizer = False`.
  params = exp_factory.get_exp_config('resnet_imagenet')
  params.override({'trainer': {'optimizer_config': {'optimizer': {
      'type': 'sgd', 'sgd': {'momentum': 0.8}}}}})
  delattr(params.trainer.optimizer_config.optimizer.sgd, 'decay')
  swapped = config_parsing.with_official_ext_optimization_config(
      params).trainer.optimizer_config
  assert type(swapped) is optimization_config.OptimizationConfig
  assert swapped.optimizer.sgd.as_dict() == {
      'clipnorm': None, 'clipvalue': None, 'global_clipnorm': None,
      'name': 'SGD', 'nesterov': False, 'momentum': 0.8}
  bind_gin('build_optimizer.use_legacy_optimizer = False')
  optimizer = optimizer_factory.OptimizerFactory(swapped).build_optimizer(0.1)
  assert type(optimizer) is tf_keras.optimizers.experimental.SGD
