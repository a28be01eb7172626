"""Checks every launcher input before anything is written to model_dir.

`checked_configuration` is what `python -m official_ext.train` runs before it
writes a file: it checks the flags and the files they name, parses gin and the
experiment config (`config_parsing.parse_configuration`, with the learning
rate schedules checked by `schedule_checks` before the optimizer is built),
and checks the result against what Model Garden, Orbit and TensorFlow reject
once training starts (trainer intervals and loop options, checkpoint
settings, inputs), then warns about settings that training would ignore
(`config_warnings`). Every bad input raises `LaunchError`, whose message is one
line naming the flag or config field, the bad value and what is accepted; the
launcher prints it and exits non-zero.
"""
import contextlib
import os
import tokenize
from typing import Any, Dict, Iterator, Optional, Sequence

import gin
import tensorflow as tf
import yaml

from official.core import config_definitions
from official.core import exp_factory
from official.modeling.hyperparams import base_config
from official.modeling.hyperparams import oneof
from official.modeling.hyperparams import params_dict

from official_ext.launcher import config_parsing
from official_ext.launcher import config_warnings
from official_ext.launcher import error_messages
from official_ext.launcher import schedule_checks

# The modes Model Garden's OrbitExperimentRunner runs (its --mode flag also
# accepts names it then refuses after writing params.yaml).
MODES = ('train', 'eval', 'train_and_eval', 'train_and_post_eval',
         'continuous_eval')
# runtime.distribution_strategy values that official.common.distribute_utils
# knows, lower case.
DISTRIBUTION_STRATEGIES = ('off', 'one_device', 'mirrored',
                           'multi_worker_mirrored', 'parameter_server', 'tpu')
MIXED_PRECISION_DTYPES = (None, '', 'float32', 'float16', 'bfloat16')
# The input_path for which Model Garden's NLP tasks build synthetic data.
DUMMY_INPUT_PATH = 'dummy'
BEST_CHECKPOINT_METRIC_COMPS = ('higher', 'lower')
# Parsing errors of Model Garden, YAML, gin and TensorFlow's file system.
_INPUT_ERRORS = (LookupError, ValueError, TypeError, OSError, yaml.YAMLError,
                 tf.errors.OpError)


class LaunchError(ValueError):
  """A bad launcher input; the message is one line naming field and value."""


def one_line(error: BaseException) -> str:
  """An error's message on one line (KeyError's without its quotes), in words.

  Gin's call context and object reprs are said in words
  (`error_messages.in_words`).
  """
  message = (error.args[0] if isinstance(error, KeyError) and error.args
             else str(error))
  return error_messages.in_words(' '.join(str(message).split()))


@contextlib.contextmanager
def reported_as_launch_errors(source: str = '') -> Iterator[None]:
  """Turns input errors inside the block into one-line LaunchErrors.

  Args:
    source: prefixed to the message, e.g. 'gin'.

  Yields:
    Nothing.
  """
  try:
    yield
  except LaunchError:
    raise
  except _INPUT_ERRORS as e:
    prefix = f'{source}: ' if source else ''
    raise LaunchError(prefix + one_line(e)) from e


# ---------------------------------------------------------------- flags


def check_model_dir(model_dir: Optional[str]):
  """Fails unless `model_dir` is, or can be created as, a writable directory.

  Remote file systems (`gs://...`) are left to TensorFlow.

  Args:
    model_dir: the --model_dir flag.

  Raises:
    LaunchError: it is unset, an existing file, or cannot be created or
      written.
  """
  if not model_dir:
    raise LaunchError('--model_dir must be set.')
  if '://' in model_dir:
    return
  path = os.path.abspath(model_dir)
  if os.path.exists(path) and not os.path.isdir(path):
    raise LaunchError(f'--model_dir={model_dir!r} is an existing file, not a '
                      'directory.')
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise LaunchError(f'--model_dir={model_dir!r} cannot be created: '
                      f'{existing!r} is a file.')
  if not os.access(existing, os.W_OK | os.X_OK):
    raise LaunchError(f'--model_dir={model_dir!r} is not writable: no write '
                      f'permission on {existing!r}.')


def check_experiment_flag(experiment: Optional[str]):
  """Fails unless --experiment names a registered experiment.

  Args:
    experiment: the --experiment flag.

  Raises:
    LaunchError: it is not registered.
  """
  try:
    exp_factory.get_exp_config(experiment)
  except LookupError as e:
    raise LaunchError(f'--experiment={experiment!r} is not a '
                      'registered experiment.') from e


def check_flags(flags_obj):
  """Checks --experiment, --mode and --model_dir.

  Args:
    flags_obj: the absl FLAGS or an object with the same attributes.

  Raises:
    LaunchError: on the first bad flag.
  """
  check_experiment_flag(flags_obj.experiment)
  if flags_obj.mode not in MODES:
    raise LaunchError(f'--mode={flags_obj.mode!r} is not supported; use one '
                      f'of {", ".join(MODES)}.')
  check_model_dir(flags_obj.model_dir)


# ------------------------------------------------------- config sources


def check_files(flag: str, paths: Optional[Sequence[str]]):
  """Fails if a local path given to `flag` is a directory or unreadable.

  A missing file is left to the parser, whose message says what it tried.
  Remote file systems (`gs://...`) are left to TensorFlow.

  Args:
    flag: e.g. '--config_file', for messages.
    paths: the flag's values.

  Raises:
    LaunchError: naming the flag and the path.
  """
  for path in paths or []:
    if '://' in path or not os.path.exists(path):
      continue
    if os.path.isdir(path):
      raise LaunchError(f'{flag}={path!r} is a directory; give a file.')
    if not os.access(path, os.R_OK):
      raise LaunchError(f'{flag}={path!r} is not readable: no read '
                        'permission.')


def parse_source(flag: str, source: str) -> Dict[str, Any]:
  """Parses a --config_file or --params_override value as Model Garden does.

  Args:
    flag: the flag, for messages.
    source: a YAML file, or a YAML/JSON/`a.b=c,...` string.

  Returns:
    The nested dict of the fields it sets.

  Raises:
    LaunchError: the file is missing or the text is not valid YAML.
  """
  try:
    return config_parsing.source_fields(source)
  except tf.errors.NotFoundError as e:
    raise LaunchError(
        f'{flag}: {source!r} is neither `field=value` overrides, YAML, nor an '
        'existing file.') from e
  except yaml.YAMLError as e:
    raise LaunchError(f'{flag}: invalid YAML: {one_line(e)}') from e


def _fields(config: base_config.Config) -> Sequence[str]:
  reserved = params_dict.ParamsDict.RESERVED_ATTR
  return [k for k in vars(config) if k not in reserved]


def check_source_fields(flag: str, overrides: Dict[str, Any],
                        config: base_config.Config, path: str = ''):
  """Fails if `overrides` names a field `config` lacks, or a bad oneof type.

  Args:
    flag: the flag the overrides come from, for messages.
    overrides: nested dict of field -> value.
    config: the config the overrides apply to.
    path: dotted path of `config` in the experiment config.

  Raises:
    LaunchError: naming the unknown field (or oneof type) and its value.
  """
  for key, value in overrides.items():
    field = f'{path}{key}'
    if key not in _fields(config):
      raise LaunchError(f'{flag}: unknown field {field} (set to {value!r}).')
    if (isinstance(config, oneof.OneOfConfig) and key == 'type' and
        value is not None and value not in _fields(config)):
      choices = sorted(set(_fields(config)) - {'type'})
      raise LaunchError(f'{flag}: {field}={value!r} is not one of '
                        f'{", ".join(choices)}.')
    child = getattr(config, key)
    if isinstance(value, dict) and isinstance(child, base_config.Config):
      check_source_fields(flag, value, child, f'{field}.')


# ----------------------------------------------------- experiment values


def _check(condition: bool, field: str, value: Any, requirement: str):
  if not condition:
    raise LaunchError(f'{field} must be {requirement}, got {value!r}.')


def _check_positive(field: str, value: Any):
  _check(value is not None and value > 0, field, value, 'a positive int')


def _data_configs(params: config_definitions.ExperimentConfig,
                  mode: str) -> Dict[str, Any]:
  """The task's data configs that `mode` reads, by dotted field name."""
  used = {}
  if 'train' in mode:
    used['task.train_data'] = getattr(params.task, 'train_data', None)
  if 'eval' in mode:
    used['task.validation_data'] = getattr(params.task, 'validation_data',
                                           None)
  return {name: data for name, data in used.items()
          if isinstance(data, config_definitions.DataConfig)}


def _input_patterns(input_path: Any) -> Sequence[str]:
  """The file patterns of a DataConfig.input_path (comma-separated/list)."""
  if isinstance(input_path, str):
    paths = [input_path]
  elif isinstance(input_path, (list, tuple)):
    paths = [p for p in input_path if isinstance(p, str)]
  else:  # E.g. a dict of weighted sources: left to the task.
    paths = []
  return [p for path in paths for p in path.split(',') if p]


def check_inputs(params: config_definitions.ExperimentConfig, mode: str):
  """Fails if a data config that `mode` reads has no global batch or files.

  Args:
    params: the experiment config.
    mode: the --mode.

  Raises:
    LaunchError: naming the field and value.
  """
  for name, data in _data_configs(params, mode).items():
    _check_positive(f'{name}.global_batch_size', data.global_batch_size)
    # Model Garden's NLP tasks generate synthetic batches for the input path
    # 'dummy' (e.g. official/nlp/tasks/sentence_prediction.py).
    if data.tfds_name or data.input_path == DUMMY_INPUT_PATH:
      continue
    for pattern in _input_patterns(data.input_path):
      if not tf.io.gfile.glob(pattern):
        raise LaunchError(f'{name}.input_path: no file matches {pattern!r}.')


def _check_loop_options(trainer: config_definitions.TrainerConfig,
                        loop: str):
  """Orbit's runners refuse a while loop outside a tf.function."""
  _check(getattr(trainer, f'{loop}_tf_function') or
         not getattr(trainer, f'{loop}_tf_while_loop'),
         f'trainer.{loop}_tf_while_loop', True,
         f'False when trainer.{loop}_tf_function is False')


def check_training_loop(trainer: config_definitions.TrainerConfig):
  """Checks the step counts and intervals Orbit's Controller trains with.

  Args:
    trainer: the experiment's trainer config.

  Raises:
    LaunchError: naming the first bad field and its value.
  """
  for field in ('train_steps', 'steps_per_loop', 'checkpoint_interval'):
    _check_positive(f'trainer.{field}', getattr(trainer, field))
  summary_interval = trainer.summary_interval
  # Orbit writes summaries at the end of a loop only.
  _check(summary_interval is None or summary_interval > 0 and
         summary_interval % trainer.steps_per_loop == 0,
         'trainer.summary_interval', summary_interval,
         'a positive multiple of trainer.steps_per_loop '
         f'({trainer.steps_per_loop})')
  _check(trainer.max_to_keep is None or trainer.max_to_keep > 0,
         'trainer.max_to_keep', trainer.max_to_keep, 'a positive int')
  _check_loop_options(trainer, 'train')


def check_evaluation_loop(trainer: config_definitions.TrainerConfig):
  """Checks the step count and loop options Orbit evaluates with.

  Args:
    trainer: the experiment's trainer config.

  Raises:
    LaunchError: naming the first bad field and its value.
  """
  steps = trainer.validation_steps
  _check(steps == -1 or steps is not None and steps > 0,
         'trainer.validation_steps', steps,
         '-1 (the whole validation set) or a positive int')
  _check_loop_options(trainer, 'eval')
  # Orbit cannot run a tf.while_loop until the dataset is exhausted.
  _check(steps != -1 or not trainer.eval_tf_while_loop,
         'trainer.validation_steps', steps,
         'a positive int when trainer.eval_tf_while_loop is True')


def check_best_checkpoint_export(trainer: config_definitions.TrainerConfig):
  """Checks the comparison of Model Garden's best-checkpoint exporter.

  Model Garden builds the exporter (in every mode) when both
  `best_checkpoint_export_subdir` and `best_checkpoint_eval_metric` are set.

  Args:
    trainer: the experiment's trainer config.

  Raises:
    LaunchError: naming the field and its value.
  """
  if (trainer.best_checkpoint_export_subdir and
      trainer.best_checkpoint_eval_metric):
    _check(trainer.best_checkpoint_metric_comp in BEST_CHECKPOINT_METRIC_COMPS,
           'trainer.best_checkpoint_metric_comp',
           trainer.best_checkpoint_metric_comp,
           ' or '.join(BEST_CHECKPOINT_METRIC_COMPS))


def check_optimizer_type(optimization_config: Any):
  """Model Garden's OptimizerFactory needs an optimizer type (any mode).

  Args:
    optimization_config: the experiment's `trainer.optimizer_config`.

  Raises:
    LaunchError: the type is unset.
  """
  chosen = optimization_config.optimizer
  choices = sorted(set(_fields(chosen)) - {'type'})
  _check(chosen.type is not None, 'trainer.optimizer_config.optimizer.type',
         chosen.type, f'one of {", ".join(choices)}')


def check_experiment(params: config_definitions.ExperimentConfig, mode: str):
  """Checks the values Model Garden would only trip over after writing.

  Args:
    params: the parsed experiment config.
    mode: the --mode; '' checks only what every mode uses.

  Raises:
    LaunchError: naming the first bad field and its value.
  """
  runtime = params.runtime
  strategy = runtime.distribution_strategy
  _check(isinstance(strategy, str) and
         strategy.lower() in DISTRIBUTION_STRATEGIES,
         'runtime.distribution_strategy', strategy,
         f'one of {", ".join(DISTRIBUTION_STRATEGIES)}')
  _check(runtime.mixed_precision_dtype in MIXED_PRECISION_DTYPES,
         'runtime.mixed_precision_dtype', runtime.mixed_precision_dtype,
         'float32, float16 or bfloat16')
  loss_scale = runtime.loss_scale
  _check(loss_scale in (None, 'dynamic') or
         (isinstance(loss_scale, (int, float)) and loss_scale > 0),
         'runtime.loss_scale', loss_scale, "'dynamic' or a positive number")
  _check(runtime.num_gpus is not None and runtime.num_gpus >= 0,
         'runtime.num_gpus', runtime.num_gpus, '>= 0')
  trainer = params.trainer
  check_optimizer_type(trainer.optimizer_config)
  if 'train' in mode:
    check_training_loop(trainer)
  if mode == 'train_and_eval':
    _check_positive('trainer.validation_interval', trainer.validation_interval)
  if 'eval' in mode:
    check_evaluation_loop(trainer)
  check_best_checkpoint_export(trainer)
  check_inputs(params, mode)


# ------------------------------------------------------------ everything


def parse_gin(gin_files: Optional[Sequence[str]],
              gin_params: Optional[Sequence[str]]):
  """Parses --gin_file and --gin_params into gin's global config.

  Args:
    gin_files: the --gin_file values.
    gin_params: the --gin_params values.

  Raises:
    LaunchError: a file cannot be read, a binding names an unknown
      configurable, or the text is not gin syntax.
  """
  with reported_as_launch_errors('gin'):
    try:
      gin.parse_config_files_and_bindings(gin_files, gin_params)
    except SyntaxError as e:
      raise LaunchError(
          f'gin: syntax error in {e.filename or "--gin_params"}, line '
          f'{e.lineno} {e.text!r}, column {e.offset}: {e.msg} A binding is '
          '`Configurable.parameter = value`.') from e
    except tokenize.TokenError as e:
      # Gin's tokenizer reads on past the end of an unclosed bracket or
      # string, so the file or binding is not known.
      raise LaunchError(
          f'gin: syntax error in --gin_file or --gin_params: {e.args[0]} '
          '(an unclosed bracket or string?). A binding is '
          '`Configurable.parameter = value`.') from e


class ScheduleCheckingParser(config_parsing.ExperimentParser):
  """The launcher's parser: schedules are checked before LARS is built."""

  def check_optimizer(self, params: config_definitions.ExperimentConfig):
    """Checks the learning rate schedules, then official_ext's optimizer.

    Args:
      params: the experiment config.

    Raises:
      ValueError: naming the first bad field and its value.
    """
    schedule_checks.check_schedules(params.trainer.optimizer_config,
                                    params.trainer.train_steps)
    super().check_optimizer(params)



def checked_configuration(flags_obj,
                          for_run: bool = True
                         ) -> config_definitions.ExperimentConfig:
  """Checks the flags, parses gin and the experiment config, checks it.

  Nothing is written anywhere. Settings that training would not follow are
  logged as warnings (`config_warnings`). Gin's global config holds the
  parsed bindings afterwards, as the launcher needs.

  Args:
    flags_obj: the absl FLAGS, or an object with their attributes
      (`experiment`, `mode`, `model_dir`, `config_file`, `params_override`,
      `gin_file`, `gin_params`, `tpu`; `in` must work on it).
    for_run: also check --mode, --model_dir and what a run in --mode reads
      (loops, inputs); off for a tool that builds the model without training
      or writing, such as `official_ext.lars_report`.

  Returns:
    The locked experiment config.

  Raises:
    LaunchError: on the first bad input, with a one-line message naming the
      flag or field and the value.
  """
  if for_run:
    check_flags(flags_obj)
  else:
    check_experiment_flag(flags_obj.experiment)
  check_files('--gin_file', flags_obj.gin_file)
  check_files('--config_file', flags_obj.config_file)
  parse_gin(flags_obj.gin_file, flags_obj.gin_params)
  base = config_parsing.ExperimentParser(flags_obj).base_experiment()
  for flag, source in config_parsing.config_sources(flags_obj):
    check_source_fields(flag, parse_source(flag, source), base)
  # Messages of these checks name the field and value themselves.
  with reported_as_launch_errors():
    params = config_parsing.parse_configuration(
        flags_obj, parser_cls=ScheduleCheckingParser)
  mode = flags_obj.mode if for_run else ''
  check_experiment(params, mode)
  config_warnings.warn_about_ignored_settings(params, mode)
  return params
