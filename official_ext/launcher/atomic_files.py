"""Writes the launcher's files in model_dir atomically.

Each file is written to a temporary name and renamed over the target, so a
launch killed at any moment leaves the previous file or the new one, never a
truncated one. (TensorFlow's CheckpointManager writes checkpoints and their
`checkpoint` index the same way.)
"""
import os
from typing import Callable

from absl import logging
import gin
import tensorflow as tf

from official.core import config_definitions
from official.modeling import hyperparams

PARAMS_FILENAME = 'params.yaml'


def write_atomically(path: str, write: Callable[[str], None]):
  """Calls `write(temporary_path)`, then renames the file to `path`.

  Args:
    path: the file to create or replace.
    write: writes the whole file to the path it is given.
  """
  temporary = f'{path}.tmp-{os.getpid()}'
  try:
    write(temporary)
    tf.io.gfile.rename(temporary, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.remove(temporary)


def write_text(path: str, text: str):
  """Writes `text` to `path` atomically."""

  def write(temporary: str):
    with tf.io.gfile.GFile(temporary, 'w') as f:
      f.write(text)

  write_atomically(path, write)


def save_params(params: config_definitions.ExperimentConfig, model_dir: str):
  """Model Garden's `serialize_config`: `model_dir/params.yaml`, atomically."""
  path = os.path.join(model_dir, PARAMS_FILENAME)
  logging.info('Saving experiment configuration to %s', path)
  tf.io.gfile.makedirs(model_dir)
  write_atomically(
      path, lambda temporary: hyperparams.save_params_dict_to_yaml(
          params, temporary))


def save_gin_config(mode: str, model_dir: str):
  """Model Garden's `save_gin_config`: the operative config, atomically."""
  path = os.path.join(model_dir, f'operative_config.{mode}.gin')
  logging.info('Saving gin configurations to %s', path)
  tf.io.gfile.makedirs(model_dir)
  write_text(path, gin.operative_config_str())
