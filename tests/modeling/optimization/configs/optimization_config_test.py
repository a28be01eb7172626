"""Tests for official_ext's OptimizationConfig."""
import dataclasses

import yaml

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


def test_reexports_model_garden_schedule_one_ofs():
  assert optimization_config.LrConfig is mg_optimization_config.LrConfig
  assert optimization_config.WarmupConfig is (
      mg_optimization_config.WarmupConfig)


def test_yaml_round_trip(tmp_path):
  lars_settings = {
      'eeta': 0.002, 'exclude_from_weight_decay': ['bias'], 'clipnorm': 1.5,
      'exclude_normalization_from_layer_adaptation': True}
  config = optimization_config.OptimizationConfig({
      'optimizer': {'type': 'lars', 'lars': lars_settings},
      'learning_rate': {'type': 'cosine', 'cosine': {
          'initial_learning_rate': 2.0, 'decay_steps': 100}},
      'warmup': {'type': 'linear', 'linear': {'warmup_steps': 10}},
      'ema': {'average_decay': 0.9},
  })
  path = tmp_path / 'optimization.yaml'
  hyperparams.save_params_dict_to_yaml(config, str(path))
  written = yaml.safe_load(path.read_text())
  written_lars = written['optimizer']['lars']
  assert set(written_lars) == {
      f.name for f in dataclasses.fields(optimizer_config.LARSConfig)
      if f.name not in ('default_params', 'restrictions')}
  for name, value in lars_settings.items():
    assert written_lars[name] == value, name
  assert written['optimizer']['type'] == 'lars'
  assert written['learning_rate']['cosine']['initial_learning_rate'] == 2.0
  assert written['learning_rate']['cosine']['decay_steps'] == 100
  assert written['warmup']['linear']['warmup_steps'] == 10
  assert written['ema']['average_decay'] == 0.9

  loaded = hyperparams.override_params_dict(
      optimization_config.OptimizationConfig(), str(path), is_strict=True)
  assert isinstance(loaded.optimizer.lars, optimizer_config.LARSConfig)
  assert loaded.optimizer.type == 'lars'
  for name, value in lars_settings.items():
    assert getattr(loaded.optimizer.lars, name) == value, name
  assert loaded.learning_rate.cosine.initial_learning_rate == 2.0
  assert loaded.learning_rate.cosine.decay_steps == 100
  assert loaded.warmup.linear.warmup_steps == 10
  assert loaded.ema.average_decay == 0.9
