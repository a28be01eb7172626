"""Tests for the launcher's atomic writes to model_dir."""
import os

import gin
import pytest
import yaml

from official.core import exp_factory
from official_ext.launcher import atomic_files
from official_ext.experiments import lars_digits  # pylint: disable=unused-import


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
  path = str(tmp_path / 'file.txt')
  atomic_files.write_text(path, 'first\n')
  atomic_files.write_text(path, 'second\n')
  assert (tmp_path / 'file.txt').read_text() == 'second\n'
  assert os.listdir(tmp_path) == ['file.txt']


def test_a_failed_write_keeps_the_old_file(tmp_path):
  path = str(tmp_path / 'params.yaml')
  atomic_files.write_text(path, 'earlier run\n')

  def fail_halfway(temporary):
    with open(temporary, 'w') as f:
      f.write('trunc')
    raise OSError('disk full')

  with pytest.raises(OSError):
    atomic_files.write_atomically(path, fail_halfway)
  assert (tmp_path / 'params.yaml').read_text() == 'earlier run\n'
  assert os.listdir(tmp_path) == ['params.yaml']


def test_save_params_and_gin_config(tmp_path):
  params = exp_factory.get_exp_config('lars_digits')
  model_dir = str(tmp_path / 'new' / 'model_dir')
  atomic_files.save_params(params, model_dir)
  with open(os.path.join(model_dir, atomic_files.PARAMS_FILENAME)) as f:
    assert yaml.safe_load(f) == params.as_dict()
  gin.clear_config()
  atomic_files.save_gin_config('train', model_dir)
  assert sorted(os.listdir(model_dir)) == ['operative_config.train.gin',
                                           'params.yaml']


def test_a_failed_model_garden_write_leaves_model_dir_as_it_was(tmp_path):
  model_dir = tmp_path / 'model_dir'
  model_dir.mkdir()
  (model_dir / 'params.yaml').write_text('earlier run\n')
  # Model Garden's writer fails on a config it cannot serialize.
  with pytest.raises(AttributeError):
    atomic_files.save_params(object(), str(model_dir))
  assert (model_dir / 'params.yaml').read_text() == 'earlier run\n'
  assert os.listdir(model_dir) == ['params.yaml']


@pytest.mark.parametrize('mode,files', [
    ('train', ['operative_config.train.gin', 'params.yaml']),
    ('eval', ['operative_config.eval.gin']),
])
def test_run_files_are_saved_at_the_first_action_only(tmp_path, mode, files):
  params = exp_factory.get_exp_config('lars_digits')
  model_dir = str(tmp_path / 'model_dir')
  run_files = atomic_files.RunFiles(params, mode, model_dir)
  assert not os.path.exists(model_dir)
  gin.clear_config()
  run_files({'training_loss': 1.0})
  assert sorted(os.listdir(model_dir)) == files
  for name in files:
    os.remove(os.path.join(model_dir, name))
  run_files({'training_loss': 1.0})
  assert not os.listdir(model_dir)
  run_files.save()
  assert sorted(os.listdir(model_dir)) == files
