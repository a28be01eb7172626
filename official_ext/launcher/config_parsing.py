"""Builds an experiment's config from flags and gin, with official_ext's LARS.

Precedence, lowest to highest: the registered experiment's defaults,
`--config_file` (in order), `--params_override`, then `LARS.<field>` gin
bindings. The checks of the config's own fields (types, the optimizer, gin)
run here; `launch_checks` runs the rest, all before the launcher writes
anything.
"""
import inspect
import pprint
from typing import Any, Dict, List, Optional, Tuple, Type

from absl import logging
import tensorflow as tf

from official.core import config_definitions
from official.core import task_factory
from official.core import train_utils as mg_train_utils
from official.modeling.hyperparams import base_config
from official.modeling.hyperparams import params_dict
from official.modeling.optimization.configs import optimization_config as mg_optimization_config

from official_ext.launcher import field_types
from official_ext.launcher import gin_bindings
from official_ext.launcher import task_optimizer
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config

_LARS_PATH = ('trainer', 'optimizer_config', 'optimizer', 'lars')


def _fields(config: base_config.Config) -> Dict[str, Any]:
  """A config's fields as they are set, deleted ones left out."""
  return {name: value for name, value in vars(config).items()
          if name not in config.RESERVED_ATTR}


def with_official_ext_optimization_config(
    params: config_definitions.ExperimentConfig
) -> config_definitions.ExperimentConfig:
  """Swaps the experiment's optimization config for official_ext's.

  Only an experiment using Model Garden's plain OptimizationConfig is swapped,
  values unchanged; one with its own OptimizationConfig subclass keeps it.
  The sub-configs are copied as they are, not through `as_dict()`, so that a
  field the experiment deleted stays deleted (Model Garden's idiom for the new
  Keras optimizers deletes `decay`).

  Args:
    params: an unlocked experiment config.

  Returns:
    `params`, whose `trainer.optimizer_config` is official_ext's
    OptimizationConfig.
  """
  current = params.trainer.optimizer_config
  if type(current) is not mg_optimization_config.OptimizationConfig:  # pylint: disable=unidiomatic-typecheck
    return params
  swapped = optimization_config.OptimizationConfig()
  for name, value in _fields(current).items():
    if name != 'optimizer':
      setattr(swapped, name, value)
  for name, value in _fields(current.optimizer).items():
    if name == 'lars':
      swapped.optimizer.lars.override(value.as_dict(), is_strict=True)
    else:
      setattr(swapped.optimizer, name, value)
  params.trainer.optimizer_config = swapped
  return params


def _registered_task_class(
    task_config: config_definitions.TaskConfig) -> Optional[Type[Any]]:
  """The Task class `task_factory.get_task` will build, if known up front."""
  builder = task_config.BUILDER
  if builder is None:
    return task_factory.get_task_cls(type(task_config))
  return builder if inspect.isclass(builder) else None


def _nested_get(tree: Dict[str, Any], path: Tuple[str, ...]) -> Any:
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return None
    tree = tree[key]
  return tree


def config_sources(flags_obj) -> List[Tuple[str, str]]:
  """(flag, value) of each `--config_file`, then of `--params_override`."""
  sources = [(f'--config_file={path}', path)
             for path in flags_obj.config_file or []]
  if flags_obj.params_override:
    sources.append(('--params_override', flags_obj.params_override))
  return sources


def source_fields(source: str) -> Dict[str, Any]:
  """The fields a `--config_file` or `--params_override` value sets.

  Args:
    source: a YAML file, or a YAML/JSON/`a.b=c,...` string.

  Returns:
    A nested dict, field -> value.
  """
  # Parsing into an empty ParamsDict, exactly as Model Garden parses the
  # flag, yields just the keys that this source sets.
  return params_dict.override_params_dict(
      params_dict.ParamsDict(), source, is_strict=False).as_dict()


class ExperimentParser(mg_train_utils.ExperimentParser):
  """Model Garden's ExperimentParser, plus official_ext's LARS and gin.

  Gin must be parsed (`gin.parse_config_files_and_bindings`) before `parse()`.
  """

  def parse(self) -> config_definitions.ExperimentConfig:
    """Builds the experiment config: MG's flags, then gin, then checks.

    Raises:
      ValueError: a field holds a value of the wrong type, or the optimizer
        config is invalid.
    """
    params = super().parse()
    params = self.parse_gin_bindings(params)
    field_types.check_field_types(params)
    self.check_optimizer(params)
    return params

  def base_experiment(self) -> config_definitions.ExperimentConfig:
    """The registered experiment, with official_ext's OptimizationConfig."""
    return with_official_ext_optimization_config(super().base_experiment())

  def flag_settings(self) -> Dict[str, Tuple[str, Any]]:
    """LARS fields that `--config_file`/`--params_override` set explicitly.

    Returns:
      field -> (flag, value) of the last flag that set it.
    """
    settings = {}
    for flag, source in config_sources(self._flags_obj):
      overrides = source_fields(source)
      for field, value in (_nested_get(overrides, _LARS_PATH) or {}).items():
        settings[field] = (flag, value)
    return settings

  def parse_gin_bindings(
      self, params: config_definitions.ExperimentConfig
  ) -> config_definitions.ExperimentConfig:
    """Applies `LARS.<field>` gin bindings to the experiment's LARSConfig."""
    bindings = gin_bindings.lars_bindings()
    if not bindings:
      return params
    flag_settings = self.flag_settings()
    for field, value in sorted(bindings.items()):
      if field in flag_settings:
        flag, flag_value = flag_settings[field]
        logging.warning(
            'Gin binding %s.%s = %r overrides %s = %r set by %s.',
            gin_bindings.LARS_GIN_NAME, field, value, field, flag_value, flag)
    params.override(
        {'trainer': {'optimizer_config': {'optimizer': {'lars': bindings}}}},
        is_strict=True)
    return params

  def check_optimizer(self, params: config_definitions.ExperimentConfig):
    """Fails early if official_ext cannot build the configured LARS.

    Builds the learning rate and optimizer once, outside any training, so that
    a bad value fails with the constructor's message naming the field.

    Args:
      params: the experiment config.

    Raises:
      ValueError: if the task builds its own optimizer, or the optimization
        config is invalid.
    """
    optimizer_config = params.trainer.optimizer_config
    if optimizer_config.optimizer.type != 'lars':
      return
    task_cls = _registered_task_class(params.task)
    if task_cls is not None and not task_optimizer.routable(task_cls):
      raise task_optimizer.unroutable_error(task_cls)
    try:
      # In a throwaway graph: eager tensors would start TensorFlow's runtime,
      # after which MultiWorkerMirroredStrategy can no longer configure it.
      with tf.Graph().as_default():
        factory = optimizer_factory.OptimizerFactory(optimizer_config)
        factory.build_optimizer(factory.build_learning_rate())
    except (TypeError, ValueError) as e:
      raise ValueError(f'Invalid trainer.optimizer_config: {e}') from e


def parse_configuration(flags_obj,
                        lock_return: bool = True,
                        print_return: bool = True,
                        parser_cls: Type[ExperimentParser] = ExperimentParser
                       ) -> config_definitions.ExperimentConfig:
  """Model Garden's `train_utils.parse_configuration` with a parser class.

  Model Garden's function always builds its own `ExperimentParser`; this one
  builds `parser_cls` and does the rest as Model Garden does (validate, lock,
  log the final parameters).

  Args:
    flags_obj: the absl FLAGS (or a `ParseConfigOptions`).
    lock_return: lock the returned config.
    print_return: log the returned config.
    parser_cls: the parser, ExperimentParser or a subclass adding checks.

  Returns:
    The experiment config.
  """
  params = parser_cls(flags_obj).parse()
  params.validate()
  if lock_return:
    params.lock()
  if print_return:
    logging.info('Final experiment parameters:\n%s',
                 pprint.pformat(params.as_dict()))
  return params

