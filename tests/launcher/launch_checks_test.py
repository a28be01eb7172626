"""Tests that the launch checks refuse exactly what Orbit and Model Garden do.

Each trainer-config check is compared, over a grid of values, with the
component that would otherwise fail once training starts: orbit's Controller,
StandardTrainer and StandardEvaluator, TensorFlow's CheckpointManager and
Model Garden's BestCheckpointExporter. Launch checks as a whole are exercised
row by row in tests/bad_input_test.py.
"""
import itertools
import os

import gin
import orbit
import pytest
import tensorflow as tf

from official.common import registry_imports  # pylint: disable=unused-import
from official.core import config_definitions
from official.core import exp_factory
from official.core import train_utils as mg_train_utils
from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official_ext.launcher import launch_checks


def _trainer(**fields) -> config_definitions.TrainerConfig:
  return config_definitions.TrainerConfig(
      {'train_steps': 10, 'steps_per_loop': 2, 'summary_interval': 2,
       'checkpoint_interval': 2, **fields})


def _refuses(check, *args) -> bool:
  try:
    check(*args)
  except launch_checks.LaunchError:
    return True
  return False


def _fails(build) -> bool:
  try:
    build()
  except ValueError:
    return True
  return False


class _Trainer(orbit.StandardTrainer):

  def train_step(self, iterator):
    next(iterator)


class _Evaluator(orbit.StandardEvaluator):

  def eval_step(self, iterator):
    next(iterator)


def _dataset():
  return tf.data.Dataset.range(4)


@pytest.mark.parametrize('steps_per_loop,summary_interval', list(
    itertools.product([1, 2, 7], [None, -2, 0, 2, 7, 14, 100])))
def test_interval_check_matches_orbit_controller(steps_per_loop,
                                                 summary_interval):
  trainer = _trainer(steps_per_loop=steps_per_loop,
                     summary_interval=summary_interval)
  orbit_fails = _fails(lambda: orbit.Controller(
      trainer=_Trainer(_dataset()), global_step=tf.Variable(0, dtype=tf.int64),
      steps_per_loop=steps_per_loop, summary_interval=summary_interval))
  assert _refuses(launch_checks.check_training_loop, trainer) == orbit_fails


@pytest.mark.parametrize('max_to_keep', [-1, 0, 1, 5])
def test_max_to_keep_check_matches_checkpoint_manager(max_to_keep, tmp_path):
  manager_fails = _fails(lambda: tf.train.CheckpointManager(
      tf.train.Checkpoint(), str(tmp_path), max_to_keep=max_to_keep))
  assert _refuses(launch_checks.check_training_loop,
                  _trainer(max_to_keep=max_to_keep)) == manager_fails


@pytest.mark.parametrize('tf_function,while_loop', list(
    itertools.product([False, True], repeat=2)))
def test_loop_option_checks_match_orbit_runners(tf_function, while_loop):
  trainer_fails = _fails(lambda: _Trainer(
      _dataset(), orbit.StandardTrainerOptions(
          use_tf_function=tf_function, use_tf_while_loop=while_loop)))
  assert _refuses(launch_checks.check_training_loop, _trainer(
      train_tf_function=tf_function,
      train_tf_while_loop=while_loop)) == trainer_fails
  evaluator_fails = _fails(lambda: _Evaluator(
      _dataset(), orbit.StandardEvaluatorOptions(
          use_tf_function=tf_function, use_tf_while_loop=while_loop)))
  assert _refuses(launch_checks.check_evaluation_loop, _trainer(
      validation_steps=2, eval_tf_function=tf_function,
      eval_tf_while_loop=while_loop)) == evaluator_fails


@pytest.mark.parametrize('validation_steps,while_loop', list(
    itertools.product([-2, -1, 0, 3], [False, True])))
def test_validation_steps_check_matches_orbit_evaluation(validation_steps,
                                                         while_loop):
  controller = orbit.Controller(
      evaluator=_Evaluator(_dataset(), orbit.StandardEvaluatorOptions(
          use_tf_while_loop=while_loop)),
      global_step=tf.Variable(0, dtype=tf.int64))
  orbit_fails = _fails(lambda: controller.evaluate(steps=validation_steps))
  assert _refuses(launch_checks.check_evaluation_loop, _trainer(
      validation_steps=validation_steps,
      eval_tf_while_loop=while_loop)) == orbit_fails


@pytest.mark.parametrize('comp', ['higher', 'lower', 'bigger', ''])
def test_best_checkpoint_check_matches_model_garden_exporter(comp, tmp_path):
  exporter_fails = _fails(lambda: mg_train_utils.BestCheckpointExporter(
      str(tmp_path), 'accuracy', comp))
  trainer = _trainer(best_checkpoint_export_subdir='best',
                     best_checkpoint_eval_metric='accuracy',
                     best_checkpoint_metric_comp=comp)
  assert _refuses(launch_checks.check_best_checkpoint_export,
                  trainer) == exporter_fails


@pytest.mark.parametrize('optimizer_type', [None, 'sgd'])
def test_optimizer_type_check_matches_model_garden_factory(optimizer_type):
  config = mg_optimization_config.OptimizationConfig({
      'optimizer': {'type': optimizer_type},
      'learning_rate': {'type': 'constant'}})
  factory_fails = _fails(
      lambda: mg_optimizer_factory.OptimizerFactory(config))
  assert _refuses(launch_checks.check_optimizer_type, config) == factory_fails


def test_a_directory_or_unreadable_file_is_refused_by_flag(tmp_path):
  with pytest.raises(launch_checks.LaunchError,
                     match=f"--config_file='{tmp_path}' is a directory"):
    launch_checks.check_files('--config_file', [str(tmp_path)])
  unreadable = tmp_path / 'x.gin'
  unreadable.write_text('LARS.eeta = 0.1\n')
  launch_checks.check_files('--gin_file', [str(unreadable)])
  unreadable.chmod(0)
  if os.access(unreadable, os.R_OK):
    pytest.skip('running as a user who reads any file')
  with pytest.raises(launch_checks.LaunchError,
                     match=f"--gin_file='{unreadable}' is not readable"):
    launch_checks.check_files('--gin_file', [str(unreadable)])


def test_a_gin_syntax_error_names_the_binding_and_the_position():
  gin.clear_config()
  try:
    with pytest.raises(launch_checks.LaunchError) as excinfo:
      launch_checks.parse_gin(None, ['LARS.eeta = 0.002)'])
  finally:
    gin.clear_config()
  assert str(excinfo.value) == (
      "gin: syntax error in --gin_params, line 1 'LARS.eeta = 0.002)', "
      'column 17: Expected newline. A binding is '
      '`Configurable.parameter = value`.')


def test_an_unclosed_bracket_in_gin_is_a_one_line_error():
  gin.clear_config()
  try:
    with pytest.raises(launch_checks.LaunchError,
                       match=r'^gin: syntax error .*EOF in multi-line '
                       r'statement \(an unclosed bracket'):
      launch_checks.parse_gin(None, ['LARS.momentum = ('])
  finally:
    gin.clear_config()


def test_model_garden_dummy_input_is_accepted_and_a_missing_file_is_not():
  params = exp_factory.get_exp_config('bert/sentence_prediction')
  params.task.train_data.global_batch_size = 2
  params.task.validation_data.global_batch_size = 2
  params.task.train_data.input_path = 'dummy'
  params.task.validation_data.input_path = 'dummy'
  launch_checks.check_inputs(params, 'train_and_eval')
  params.task.validation_data.input_path = 'dummmy'
  with pytest.raises(launch_checks.LaunchError,
                     match="validation_data.input_path: no file matches"):
    launch_checks.check_inputs(params, 'train_and_eval')
