"""End-to-end tests: `python -m official_ext.train` as a subprocess."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARS = 'official_ext.modeling.optimization.lars.LARS'
LARS_PATH = 'trainer.optimizer_config.optimizer.lars'

pytestmark = pytest.mark.e2e


def _launch(*flags):
  """Runs the launcher; returns the completed process (stderr holds logs)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run(
      [sys.executable, '-m', 'official_ext.train', *flags],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
      check=False)


def _succeeds(*flags):
  process = _launch(*flags)
  assert process.returncode == 0, process.stderr[-5000:]
  return process.stderr


def _load_yaml(path):
  with open(path) as f:
    return yaml.load(f, Loader=yaml.FullLoader)


def _optimizer_line(log):
  return re.search(r'Training with optimizer (\S+)', log).group(1)


@pytest.fixture(scope='module')
def imagenet_like_records(tmp_path_factory):
  """Tiny ImageNet-format TFRecords: JPEG `image/encoded`, int64 label."""
  directory = tmp_path_factory.mktemp('records')
  rng = np.random.RandomState(0)
  for split in ('train', 'valid'):
    path = str(directory / f'{split}-00000-of-00001')
    with tf.io.TFRecordWriter(path) as writer:
      for i in range(8):
        image = rng.randint(0, 256, size=(40, 40, 3), dtype=np.uint8)
        feature = {
            'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[tf.io.encode_jpeg(image).numpy()])),
            'image/class/label': tf.train.Feature(
                int64_list=tf.train.Int64List(value=[i % 5])),
        }
        writer.write(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
  return str(directory)


def _small_resnet_override(records, *extra):
  """A 2-step run of a shrunken ResNet on the generated records."""
  return ','.join([
      'task.model.backbone.resnet.model_id=10',
      'task.model.backbone.resnet.depth_multiplier=0.25',
      'task.model.input_size=[32,32,3]',
      'task.model.num_classes=5',
      f'task.train_data.input_path={records}/train*',
      f'task.validation_data.input_path={records}/valid*',
      'task.train_data.global_batch_size=4',
      'task.validation_data.global_batch_size=4',
      'trainer.train_steps=2',
      'trainer.steps_per_loop=1',
      'trainer.summary_interval=1',
      'trainer.checkpoint_interval=2',
      'trainer.validation_steps=1',
      'trainer.validation_interval=2',
      'runtime.enable_xla=false',
      *extra,
  ])


def test_model_garden_resnet_trains_with_official_ext_lars(
    imagenet_like_records, tmp_path):
  model_dir = str(tmp_path / 'resnet')
  log = _succeeds(
      '--experiment=resnet_imagenet', '--mode=train',
      f'--model_dir={model_dir}',
      '--params_override=' + _small_resnet_override(
          imagenet_like_records,
          'trainer.optimizer_config.optimizer.type=lars',
          'runtime.mixed_precision_dtype=float16',
          f'{LARS_PATH}.eeta=0.005'),
      '--gin_params=LARS.eeta = 0.002',
      '--gin_params=LARS.weight_decay_rate = 1e-4')
  assert _optimizer_line(log) == (
      'tf_keras.src.mixed_precision.loss_scale_optimizer.LossScaleOptimizer'
      f'({LARS})')
  assert re.search(r'LARS\.eeta = 0\.002 overrides eeta = 0\.005 set by '
                   r'--params_override', log)
  # Two mistakes that train nonetheless, one warning line each, before
  # training: resnet_imagenet's SGD momentum is ignored under type lars, and
  # its 5-epoch warmup (1560 steps) is longer than these 2 steps.
  ignored = re.search(
      r'^W.*\] (trainer\.optimizer_config\.optimizer\.sgd sets momentum=0\.9, '
      r'which training ignores: .*)$', log, re.MULTILINE)
  warmup = re.search(
      r'^W.*\] (trainer\.optimizer_config\.warmup\.linear\.warmup_steps=1560 '
      r'is longer than trainer\.train_steps=2: .*)$', log, re.MULTILINE)
  assert ignored and warmup, log[-5000:]
  assert max(ignored.end(), warmup.end()) < log.index('Training with optimizer')
  params = _load_yaml(os.path.join(model_dir, 'params.yaml'))
  optimizer = params['trainer']['optimizer_config']['optimizer']
  assert optimizer['type'] == 'lars'
  assert optimizer['lars']['eeta'] == 0.002
  assert optimizer['lars']['weight_decay_rate'] == 1e-4
  assert params['runtime']['mixed_precision_dtype'] == 'float16'
  with open(os.path.join(model_dir, 'operative_config.train.gin')) as f:
    operative = f.read()
  assert 'LARS.eeta = 0.002' in operative
  assert 'LARS.weight_decay_rate = 0.0001' in operative
  assert tf.train.latest_checkpoint(model_dir).endswith('ckpt-2')

  # The written params.yaml reproduces the run through --config_file.
  rerun_dir = str(tmp_path / 'rerun')
  _succeeds('--experiment=resnet_imagenet', '--mode=train',
            f'--model_dir={rerun_dir}',
            f'--config_file={os.path.join(model_dir, "params.yaml")}')
  assert _load_yaml(os.path.join(rerun_dir, 'params.yaml')) == params


def test_resnet50_lars_recipe_with_ema_and_privacy(imagenet_like_records,
                                                   tmp_path):
  model_dir = str(tmp_path / 'recipe')
  log = _succeeds(
      '--experiment=resnet50_imagenet_lars', '--mode=train_and_eval',
      f'--model_dir={model_dir}',
      '--params_override=' + _small_resnet_override(
          imagenet_like_records,
          'trainer.optimizer_config.ema.average_decay=0.9',
          'task.differential_privacy_config.clipping_norm=1.0',
          'task.differential_privacy_config.noise_multiplier=0.1'),
      f'--gin_file={os.path.join(REPO, "experiments", "lars.gin")}')
  assert _optimizer_line(log) == (
      'official.modeling.optimization.ema_optimizer.ExponentialMovingAverage'
      f'({LARS})')
  assert 'Adding differential privacy transform' in log
  params = _load_yaml(os.path.join(model_dir, 'params.yaml'))
  lars = params['trainer']['optimizer_config']['optimizer']['lars']
  assert lars['eeta'] == 0.002  # From experiments/lars.gin.
  assert params['task']['losses']['label_smoothing'] == 0.1
  with open(os.path.join(model_dir, 'eval_metrics.json')) as f:
    metrics = json.load(f)
  assert metrics['step'] == 2
  assert 0.0 <= metrics['accuracy'] <= 1.0


def test_lars_digits_main_job_reaches_95_percent(tmp_path):
  model_dir = str(tmp_path / 'digits')
  log = _succeeds('--experiment=lars_digits', '--mode=train_and_eval',
                  f'--model_dir={model_dir}')
  assert _optimizer_line(log) == LARS
  # Orbit's line of each of the 4 loops carries the loop's metrics.
  loop_steps = re.findall(
      r'train \| step: +(\d+) \| steps/sec: +[\d.]+ \| output: '
      r'accuracy: [\d.]+, learning_rate: [\d.e-]+, training_loss: [\d.e-]+$',
      log, re.MULTILINE)
  assert loop_steps == ['100', '200', '300', '400'], log[-5000:]
  assert not re.search(r'train \| step: .*output: *$', log, re.MULTILINE)
  with open(os.path.join(model_dir, 'eval_metrics.json')) as f:
    metrics = json.load(f)
  assert metrics['step'] == 400
  assert metrics['accuracy'] >= 0.95, metrics


@pytest.mark.parametrize('binding,message', [
    ('LRAS.eeta = 0.1', 'LRAS'),  # Gin rejects the unknown name.
    ('LARS.momentum = 1.5', 'momentum'),  # LARS rejects the value.
])
def test_bad_gin_fails_before_writing(tmp_path, binding, message):
  model_dir = tmp_path / 'existing'
  model_dir.mkdir()
  (model_dir / 'params.yaml').write_text('earlier run\n')
  process = _launch('--experiment=lars_digits', '--mode=train',
                    f'--model_dir={model_dir}', f'--gin_params={binding}')
  assert process.returncode != 0
  [error] = [line for line in process.stderr.splitlines()
             if line.startswith('official_ext.train: error: ')]
  assert message in error
  assert not re.search(r'<[^>]* at 0x[0-9a-f]+>', error)
  assert os.listdir(model_dir) == ['params.yaml']
  assert (model_dir / 'params.yaml').read_text() == 'earlier run\n'
