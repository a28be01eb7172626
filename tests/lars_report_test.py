"""End-to-end test of `python -m official_ext.lars_report`."""
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.e2e


def _report(*flags):
  return subprocess.run(
      [sys.executable, '-m', 'official_ext.lars_report', *flags],
      cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
      capture_output=True, text=True, timeout=300, check=False)


def test_command_prints_the_report_and_writes_nothing(tmp_path):
  model_dir = tmp_path / 'never_written'
  process = _report(
      '--experiment=lars_digits', f'--model_dir={model_dir}',
      '--gin_params=LARS.exclude_one_dimensional_from_weight_decay = True',
      '--gin_params=LARS.exclude_from_weight_decay = ["bias", "bn/"]')
  assert process.returncode == 0, process.stderr[-3000:]
  lines = process.stdout.splitlines()
  assert lines[0].split() == ['variable', 'shape', 'weight', 'decay', 'layer',
                              'adaptation']
  rows = {line.split()[0]: line for line in lines[2:10]}
  assert 'yes' in rows['conv2d/kernel:0'].split()[-2:]
  assert 'no (exclude_one_dimensional_from_weight_decay)' in rows[
      'batch_normalization/gamma:0']
  assert "no (exclude_from_weight_decay 'bias')" in rows['dense/bias:0']
  assert lines[10] == ('8 trainable variables: 3 get weight decay, '
                       '3 get layer adaptation.')
  assert lines[11:] == [
      "WARNING: LARS exclude_from_weight_decay pattern 'bn/' matches no "
      'trainable variable.']
  assert not model_dir.exists()


def test_bad_input_is_a_one_line_error():
  process = _report('--experiment=lars_digits',
                    '--gin_params=LARS.trust_ratio_denominator = "papers"')
  assert process.returncode == 1
  last = process.stderr.strip().splitlines()[-1]
  assert last.startswith('official_ext.lars_report: error: ')
  assert "trust_ratio_denominator" in last and "'papers'" in last
  # Gin's call context is said in words, without an object repr.
  assert "Raised in gin's call to configurable" in last
  assert not re.search(r'<[^>]* at 0x[0-9a-f]+>', last)


@pytest.mark.parametrize('flag,named', [
    # The launcher's gin syntax check, not gin's traceback.
    ('--gin_params=LARS.momentum = (', 'gin: syntax error'),
    # The launcher's check of --params_override fields against the config.
    ('--params_override=trainer.optimizer_config.optimizer.lars.momentun=0.9',
     'momentun'),
])
def test_launcher_checks_run_before_the_model_is_built(flag, named):
  process = _report('--experiment=lars_digits', flag)
  assert process.returncode == 1
  last = process.stderr.strip().splitlines()[-1]
  assert last.startswith('official_ext.lars_report: error: ')
  assert named in last
  assert 'Traceback' not in process.stderr
