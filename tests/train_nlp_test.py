"""End-to-end: a Model Garden NLP experiment through official_ext.train.

A 1-layer BERT `bert/sentence_prediction` trains with `optimizer.type: lars`
on a few random token sequences written as TFRecords in the format of Model
Garden's sentence-prediction data loader. BERT's word embedding gets sparse
(IndexedSlices) gradients, which official_ext's LARS handles and Model
Garden's LARS refuses.
"""
import copy
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

pytestmark = pytest.mark.e2e

_SEQ_LENGTH = 8
_VOCAB_SIZE = 32
_TINY_BERT = {
    'task': {
        'init_checkpoint': '',
        'model': {
            'num_classes': 2,
            'encoder': {'type': 'bert', 'bert': {
                'vocab_size': _VOCAB_SIZE, 'hidden_size': 16, 'num_layers': 1,
                'num_attention_heads': 2, 'intermediate_size': 32,
                'max_position_embeddings': _SEQ_LENGTH}},
        },
    },
    'trainer': {
        'train_steps': 4, 'steps_per_loop': 2, 'summary_interval': 2,
        'checkpoint_interval': 4, 'validation_interval': 4,
        'validation_steps': 2,
        'optimizer_config': {
            'optimizer': {'type': 'lars', 'lars': {
                'weight_decay_rate': 1e-4,
                'exclude_one_dimensional_from_weight_decay': True}},
            'learning_rate': {'type': 'constant',
                              'constant': {'learning_rate': 0.1}},
            'warmup': {'type': None},
        },
    },
}


def _write_records(path, num_examples, seed):
  """Sentence-prediction TFRecords: random token ids, binary labels."""
  rng = np.random.RandomState(seed)

  def int64s(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

  with tf.io.TFRecordWriter(str(path)) as writer:
    for _ in range(num_examples):
      features = {
          'input_ids': int64s(rng.randint(1, _VOCAB_SIZE, _SEQ_LENGTH)),
          'input_mask': int64s([1] * _SEQ_LENGTH),
          'segment_ids': int64s([0] * _SEQ_LENGTH),
          'label_ids': int64s([rng.randint(2)]),
      }
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=features)).SerializeToString())
  return str(path)


def test_bert_sentence_prediction_trains_with_official_ext_lars(tmp_path):
  config = copy.deepcopy(_TINY_BERT)
  for split, is_training, seed in (('train', True, 0),
                                   ('validation', False, 1)):
    config['task'][f'{split}_data'] = {
        'input_path': _write_records(tmp_path / f'{split}.tfrecord', 16, seed),
        'seq_length': _SEQ_LENGTH, 'global_batch_size': 4,
        'is_training': is_training}
  config_file = tmp_path / 'tiny_bert.yaml'
  config_file.write_text(yaml.safe_dump(config))
  model_dir = tmp_path / 'model'
  process = subprocess.run(
      [sys.executable, '-m', 'official_ext.train',
       '--experiment=bert/sentence_prediction', '--mode=train_and_eval',
       f'--model_dir={model_dir}', f'--config_file={config_file}'],
      cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
      capture_output=True, text=True, timeout=600, check=False)
  assert process.returncode == 0, process.stderr[-5000:]
  optimizer = re.search(r'Training with optimizer (\S+)', process.stderr)
  assert optimizer.group(1) == 'official_ext.modeling.optimization.lars.LARS'
  metrics = json.loads((model_dir / 'eval_metrics.json').read_text())
  assert metrics['step'] == 4
  assert set(metrics) >= {'cls_accuracy', 'validation_loss'}
  assert 0.0 <= metrics['cls_accuracy'] <= 1.0
  params = yaml.safe_load((model_dir / 'params.yaml').read_text())
  lars = params['trainer']['optimizer_config']['optimizer']['lars']
  assert lars['exclude_one_dimensional_from_weight_decay'] is True
