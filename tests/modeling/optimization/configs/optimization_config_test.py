"""Tests for official_ext's OptimizationConfig."""
import dataclasses

from official.modeling import hyperparams
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official.modeling.optimization.configs import optimizer_config as mg_optimizer_config
from official_ext.modeling.optimization.configs import optimization_config
from official_ext.modeling.optimization.configs import optimizer_config


def _field_types(cls):
  return {f.name: f.type for f in dataclasses.fields(cls)}


def test_keeps_model_garden_schema():
  ours = optimization_config.OptimizationConfig()
  theirs = mg_optimization_config.OptimizationConfig()
  assert isinstance(ours, mg_optimization_config.OptimizationConfig)
  assert ours.as_dict() == theirs.as_dict()
  assert set(_field_types(type(ours))) == set(_field_types(type(theirs)))


def test_optimizer_one_of_offers_every_model_garden_type_and_our_lars():
  ours = _field_types(optimization_config.OptimizerConfig)
  theirs = _field_types(mg_optimization_config.OptimizerConfig)
  assert set(ours) == set(theirs)
  for name, field_type in theirs.items():
    expected = optimizer_config.LARSConfig if name == 'lars' else field_type
    assert ours[name] == expected, name
  assert mg_optimization_config.OptimizerConfig().lars.__class__ is (
      mg_optimizer_config.LARSConfig)


def test_lars_selection_gives_official_ext_config():
  config = optimization_config.OptimizationConfig(
      {'optimizer': {'type': 'lars', 'lars': {'eeta': 0.5}}})
  assert isinstance(config.optimizer.get(), optimizer_config.LARSConfig)
  assert config.optimizer.get().eeta == 0.5


def test_yaml_round_trip(tmp_path):
  config = optimization_config.OptimizationConfig({
      'optimizer': {'type': 'lars', 'lars': {
          'eeta': 0.002, 'exclude_from_weight_decay': ['bias'],
          'clipnorm': 1.5}},
      'learning_rate': {'type': 'cosine', 'cosine': {
          'initial_learning_rate': 2.0, 'decay_steps': 100}},
      'warmup': {'type': 'linear', 'linear': {'warmup_steps': 10}},
      'ema': {'average_decay': 0.9},
  })
  path = str(tmp_path / 'optimization.yaml')
  hyperparams.save_params_dict_to_yaml(config, path)
  loaded = optimization_config.OptimizationConfig()
  loaded = hyperparams.override_params_dict(loaded, path, is_strict=True)
  assert loaded.as_dict() == config.as_dict()
  assert isinstance(loaded.optimizer.lars, optimizer_config.LARSConfig)
