"""Writes the launcher's files in model_dir atomically, once training runs.

Each file is written to a temporary name and renamed over the target, so a
launch killed at any moment leaves the previous file or the new one, never a
truncated one. (TensorFlow's CheckpointManager writes checkpoints and their
`checkpoint` index the same way.) `RunFiles` writes `params.yaml` and the
operative gin config only once the first training loop (or evaluation) has
run, before Orbit saves the loop's checkpoint: a launch that fails while
setting up, e.g. on a checkpoint in model_dir that does not fit the model,
leaves model_dir as it was.
"""
import os
from typing import Any, Callable

import tensorflow as tf

from official.core import config_definitions
from official.core import train_utils as mg_train_utils

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


def _staged(model_dir: str, filename: str,
            write_into: Callable[[str], None]):
  """Has `write_into(directory)` write `filename` there, then moves it.

  The directory is a fresh one inside `model_dir` (so the rename stays on
  one file system and is atomic); it is removed afterwards.

  Args:
    model_dir: where `filename` must end up.
    filename: the file `write_into` writes.
    write_into: a Model Garden writer, given the staging directory.
  """
  staging = os.path.join(model_dir, f'.staging-{os.getpid()}')
  try:
    write_into(staging)
    tf.io.gfile.rename(os.path.join(staging, filename),
                       os.path.join(model_dir, filename), overwrite=True)
  finally:
    if tf.io.gfile.exists(staging):
      tf.io.gfile.rmtree(staging)


def save_params(params: config_definitions.ExperimentConfig, model_dir: str):
  """Model Garden's `train_utils.serialize_config`, made atomic.

  Model Garden's function writes `params.yaml` into a staging directory in
  `model_dir` (its log line names that directory), then the file is renamed
  over `model_dir/params.yaml`.

  Args:
    params: the experiment config.
    model_dir: the model directory, created if needed.
  """
  tf.io.gfile.makedirs(model_dir)
  _staged(model_dir, PARAMS_FILENAME,
          lambda staging: mg_train_utils.serialize_config(params, staging))


def save_gin_config(mode: str, model_dir: str):
  """Model Garden's `train_utils.save_gin_config`, made atomic.

  As `save_params`: written into a staging directory, then renamed.

  Args:
    mode: the --mode, the file's suffix (`operative_config.<mode>.gin`).
    model_dir: the model directory, created if needed.
  """
  tf.io.gfile.makedirs(model_dir)
  _staged(model_dir, f'operative_config.{mode}.gin',
          lambda staging: mg_train_utils.save_gin_config(mode, staging))


class RunFiles:
  """`params.yaml` and the operative gin config of a launch.

  Used as an Orbit train and eval action: the first call (after the first
  training loop or evaluation) saves them. `save()` saves them again, e.g. at
  the end, when configurables first called during training have joined the
  operative config.
  """

  def __init__(self, params: config_definitions.ExperimentConfig, mode: str,
               model_dir: str):
    """Initializes the files.

    Args:
      params: the experiment config.
      mode: the --mode. As in Model Garden, only training modes write
        `params.yaml`, so that an eval job cannot race a training job's.
      model_dir: where they go.
    """
    self._params = params
    self._mode = mode
    self._model_dir = model_dir
    self.saved = False

  def __call__(self, unused_output: Any = None):
    """Orbit action: saves the files unless they were saved already."""
    if not self.saved:
      self.save()

  def save(self):
    """Saves `params.yaml` (training modes) and the operative gin config."""
    if 'train' in self._mode:
      save_params(self._params, self._model_dir)
    save_gin_config(self._mode, self._model_dir)
    self.saved = True
