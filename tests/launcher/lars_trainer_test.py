"""Tests for the launcher's LARS report and telemetry, through the experiment runner."""
import glob
import logging
import os
import pprint
import re

import gin
import numpy as np
import orbit
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

from official.core import train_utils as mg_train_utils
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import experiment_runner
from official_ext.launcher import config_parsing
from official_ext.launcher import lars_trainer
from official_ext.modeling.optimization import lars

LARS = 'trainer.optimizer_config.optimizer.lars'


def _variable_tag(scalars, pattern):
  """The `lars/<variable>` prefix of the first tag whose variable matches
  (Keras numbers layer names per process: conv2d, conv2d_1, ...)."""
  return next(tag.rsplit('/', 1)[0] for tag in sorted(scalars)
              if re.fullmatch(f'lars/{pattern}/trust_ratio', tag))


def _digits_params(telemetry):
  """lars_digits, 4 steps in loops of 2, train summaries every 4 steps."""
  gin.clear_config()
  return config_parsing.parse_configuration(
      mg_train_utils.ParseConfigOptions(
          experiment='lars_digits', config_file=[],
          params_override=','.join([
              'trainer.train_steps=4', 'trainer.steps_per_loop=2',
              'trainer.summary_interval=4', 'trainer.checkpoint_interval=4',
              'task.train_data.global_batch_size=32',
              f'{LARS}.telemetry={str(telemetry).lower()}',
              f'{LARS}.exclude_from_weight_decay=[bias, BatchNorm]',
              f'{LARS}.exclude_normalization_from_weight_decay=true',
          ])),
      print_return=False)


def _train_scalars(model_dir):
  """tag -> {step: value} of the scalars in model_dir/train, as TensorBoard
  reads them."""
  [events] = glob.glob(os.path.join(model_dir, 'train', 'events.out.*'))
  accumulator = event_accumulator.EventAccumulator(
      events, size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  return {tag: {e.step: float(tf.make_ndarray(e.tensor_proto))
                for e in accumulator.Tensors(tag)}
          for tag in accumulator.Tags()[event_accumulator.TENSORS]}


class _Records(logging.Handler):
  """Keeps the log records it is given."""

  def __init__(self):
    super().__init__(logging.INFO)
    self.records = []

  def emit(self, record):
    self.records.append(record)


@pytest.fixture(scope='module')
def telemetry_run(tmp_path_factory):
  """One telemetry run's train scalars and absl log records."""
  model_dir = str(tmp_path_factory.mktemp('telemetry'))
  absl_logger, handler = logging.getLogger('absl'), _Records()
  level = absl_logger.level
  absl_logger.setLevel(logging.INFO)
  absl_logger.addHandler(handler)
  try:
    experiment_runner.run_experiment(_digits_params(telemetry=True), 'train',
                             model_dir)
  finally:
    absl_logger.removeHandler(handler)
    absl_logger.setLevel(level)
  return _train_scalars(model_dir), handler.records


def test_telemetry_reaches_the_train_summaries_at_the_summary_interval(
    telemetry_run):
  scalars, _ = telemetry_run
  kernel = _variable_tag(scalars, r'conv2d(_\d+)?/kernel')
  lars_tags = sorted(tag for tag in scalars if tag.startswith('lars/'))
  # 8 trainable variables of the digits convnet, 4 fields each.
  assert len(lars_tags) == 8 * 4
  for field in lars.TELEMETRY_FIELDS:
    assert f'{kernel}/{field}' in lars_tags
  # Model Garden writes its train logs after every loop (steps 2 and 4);
  # telemetry only when the step is a multiple of summary_interval.
  assert sorted(scalars['training_loss']) == [2, 4]
  assert all(sorted(scalars[tag]) == [4] for tag in lars_tags)


def test_telemetry_values_are_consistent(telemetry_run):
  scalars, _ = telemetry_run
  kernel = _variable_tag(scalars, r'conv2d(_\d+)?/kernel')
  scale = _variable_tag(scalars, r'batch_normalization(_\d+)?/gamma')
  value = {tag: steps[4] for tag, steps in scalars.items() if 4 in steps}
  assert 0 < value[f'{kernel}/trust_ratio'] < 1
  assert value[f'{kernel}/weight_norm'] > 0
  assert value[f'{kernel}/gradient_norm'] > 0
  # lars_digits excludes batch norm from layer adaptation: ratio 1.
  assert value[f'{scale}/trust_ratio'] == 1.0
  # Every variable's local rate is its ratio times the same global rate.
  global_rates = [
      value[f'{tag}/learning_rate'] / value[f'{tag}/trust_ratio']
      for tag in {t.rsplit('/', 1)[0] for t in value if t.startswith('lars/')}
  ]
  np.testing.assert_allclose(global_rates, global_rates[0], rtol=1e-5)
  assert global_rates[0] == pytest.approx(value[f'{scale}/learning_rate'])


def test_training_start_logs_the_exclusion_report(telemetry_run):
  _, records = telemetry_run
  messages = [(r.levelno, r.getMessage()) for r in records]
  [table] = [m for level, m in messages
             if m.startswith('LARS exclusion report:')]
  rows = table.splitlines()
  assert rows[1].split() == ['variable', 'shape', 'weight', 'decay', 'layer',
                             'adaptation']
  assert any(re.match(r'batch_normalization(_\d+)?/gamma:0 ', row) and
             'no (exclude_normalization_from_weight_decay)' in row
             for row in rows)
  assert (logging.WARNING,
          "LARS exclude_from_weight_decay pattern 'BatchNorm' matches no "
          'trainable variable.') in messages


def test_telemetry_off_writes_no_lars_scalars(tmp_path):
  model_dir = str(tmp_path)
  experiment_runner.run_experiment(_digits_params(telemetry=False), 'train',
                           model_dir)
  scalars = _train_scalars(model_dir)
  assert 'training_loss' in scalars
  assert not [tag for tag in scalars if tag.startswith('lars/')]


def test_telemetry_stays_out_of_the_printed_train_logs(telemetry_run):
  _, records = telemetry_run
  loop_logs = [r.getMessage() for r in records
               if 'train | step:' in r.getMessage()]
  assert loop_logs and not any('lars/' in message for message in loop_logs)


def test_orbit_logs_each_loop_once_with_its_metrics(telemetry_run):
  scalars, records = telemetry_run
  loop_lines = [r.getMessage() for r in records
                if r.getMessage().startswith('train | step:') and
                'training until' not in r.getMessage()]
  assert len(loop_lines) == 2, loop_lines
  number = r'(-?[\d.]+(?:e[-+]\d+)?)'
  for step, line in zip((2, 4), loop_lines):
    match = re.fullmatch(
        rf'train \| step: +{step} \| steps/sec: +[\d.]+ \| output: '
        rf'accuracy: {number}, learning_rate: {number}, '
        rf'training_loss: {number}', line)
    assert match, line
    # The printed values are the ones Orbit writes to the train summaries.
    for name, text in zip(('accuracy', 'learning_rate', 'training_loss'),
                          match.groups()):
      assert float(text) == pytest.approx(scalars[name][step], rel=1e-5)


def test_train_logs_repr_is_one_line_of_sorted_scalars():
  # With a constant learning rate, Model Garden's train logs hold the
  # optimizer's learning-rate variable itself.
  with tf.distribute.MirroredStrategy(['/cpu:0']).scope():
    learning_rate = tf.Variable(0.25)
  logs = lars_trainer.TrainLogs(
      training_loss=tf.constant(1.5), learning_rate=learning_rate,
      accuracy=np.float32(0.123456789), confusion=np.eye(2, dtype=int))
  assert pprint.pformat(logs) == (
      'accuracy: 0.123457, confusion: array([[1, 0], [0, 1]]), '
      'learning_rate: 0.25, training_loss: 1.5')
  # Orbit converts the values to numpy before logging: the type stays.
  converted = tf.nest.map_structure(orbit.utils.get_value, logs)
  assert isinstance(converted, lars_trainer.TrainLogs)
  assert repr(converted) == repr(logs)
