"""Tests for official_ext's LARSConfig."""
import inspect

from official.modeling.optimization.configs import optimizer_config as mg_optimizer_config
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization.configs import optimizer_config

CLIPPING_ARGUMENTS = {'clipnorm', 'clipvalue', 'global_clipnorm'}


def _lars_named_arguments():
  """LARS constructor arguments the config must carry, with defaults."""
  parameters = inspect.signature(lars.LARS.__init__).parameters
  return {
      name: p.default
      for name, p in parameters.items()
      if name not in ('self', 'learning_rate') and p.kind != p.VAR_KEYWORD
  }


def test_is_a_model_garden_base_optimizer_config():
  assert issubclass(optimizer_config.LARSConfig,
                    mg_optimizer_config.BaseOptimizerConfig)


def test_fields_are_the_lars_arguments_and_clipping():
  fields = set(optimizer_config.LARSConfig().as_dict())
  assert fields == set(_lars_named_arguments()) | CLIPPING_ARGUMENTS


def test_defaults_are_the_lars_constructor_defaults():
  config = optimizer_config.LARSConfig()
  for name, default in _lars_named_arguments().items():
    assert getattr(config, name) == default, name
  for name in CLIPPING_ARGUMENTS:
    assert getattr(config, name) is None


def test_constructs_lars_with_every_field():
  settings = {
      'momentum': 0.8, 'eeta': 0.01, 'weight_decay_rate': 1e-3,
      'nesterov': True, 'classic_momentum': False,
      'exclude_from_weight_decay': ['bias'],
      'exclude_from_layer_adaptation': ['batch_normalization'],
      'clipnorm': 2.0}
  config = optimizer_config.LARSConfig(**settings)
  optimizer = lars.LARS(learning_rate=0.1, **{
      k: v for k, v in config.as_dict().items() if v is not None})
  optimizer_settings = optimizer.get_config()
  for name, value in settings.items():
    assert optimizer_settings[name] == value, name


def test_reexports_every_other_model_garden_config():
  model_garden_configs = {
      name: value for name, value in vars(mg_optimizer_config).items()
      if isinstance(value, type) and
      issubclass(value, mg_optimizer_config.BaseOptimizerConfig)}
  assert 'SGDConfig' in model_garden_configs
  for name, config_cls in model_garden_configs.items():
    if name != 'LARSConfig':
      assert getattr(optimizer_config, name) is config_cls, name
  assert optimizer_config.LARSConfig is not mg_optimizer_config.LARSConfig
