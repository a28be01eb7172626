"""The bad-input table: every row is refused clearly, before training.

Each row is one test id, `test_bad_input_is_refused[<row>]`, matching a row of
the table in docs/robustness.md. A row names where the input goes in (the LARS
constructor, or the launcher's flags: `--config_file`, `--params_override`,
gin, other flags), the input, and the strings the error must contain: the
field, the value and what is accepted. Launcher rows run
`launch_checks.checked_configuration`, the function `official_ext.train` runs
before writing anything; the rows marked `launcher` run
`python -m official_ext.train` itself (all at once, each launch a fork of one
process that has imported what the launcher imports:
tests/forked_launcher.py) and also check the exit code, the single line on
stderr and that the model_dir of an earlier real run is unchanged, file by
file (SHA-256 of the whole tree). The
`setup` row's launch passes the checks but cannot start training: the same
single line, model_dir unchanged. The `training` row's launch starts
training, which blows up: it must end in the same single line, with only
finite checkpoints on disk.
"""
import dataclasses
import hashlib
import os
import re
import shutil
from typing import Dict, List, Optional, Tuple

import gin
import numpy as np
import pytest
import tensorflow as tf

from official.core import train_utils as mg_train_utils
from official.vision import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import launch_checks
from official_ext.modeling.optimization import lars
from tests import forked_launcher

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARS_FIELD = 'trainer.optimizer_config.optimizer.lars'
LR_FIELD = 'trainer.optimizer_config.learning_rate'
ERROR_PREFIX = 'official_ext.train: error: '
DOCS_TABLE = os.path.join(REPO, 'docs', 'robustness.md')
# A run short enough for a test: checkpoints at steps 2 and 4.
SHORT_RUN = ('task.train_data.global_batch_size=16,trainer.steps_per_loop=2,'
             'trainer.summary_interval=2,trainer.checkpoint_interval=2')
EARLIER_RUN_STEPS = 4
TIMEOUT = 600


@dataclasses.dataclass
class Flags(mg_train_utils.ParseConfigOptions):
  """The launcher's flags, as `launch_checks.checked_configuration` reads them."""
  mode: str = 'train'
  model_dir: str = ''
  gin_file: Optional[List[str]] = None
  gin_params: Optional[List[str]] = None


@dataclasses.dataclass(frozen=True)
class Row:
  """One bad input.

  Attributes:
    name: the test id.
    via: 'constructor' (LARS(**kwargs)), 'in_process'
      (`checked_configuration`), 'launcher' (`python -m official_ext.train`)
      'setup' (the launcher, which passes the checks but fails before the
      first training step) or 'training' (the launcher, whose training blows
      up).
    args: constructor kwargs, or flag name -> value. `{tmp}` in a value is the
      test's scratch directory, `{model_dir}` the model_dir's path.
    named: strings the one-line error must contain: the field and the value.
  """
  name: str
  via: str
  args: Tuple[Tuple[str, object], ...]
  named: Tuple[str, ...]


SUBPROCESS_VIAS = ('launcher', 'setup', 'training')


def row(name, via, named, **args):
  marks = [pytest.mark.e2e] if via in SUBPROCESS_VIAS else []
  return pytest.param(Row(name, via, tuple(args.items()), named), id=name,
                      marks=marks)


ROWS = [
    # The LARS constructor.
    row('constructor-momentum-out-of-range', 'constructor',
        ('momentum', '1.5'), momentum=1.5),
    row('constructor-bare-string-exclusion', 'constructor',
        ('exclude_from_weight_decay', "'bias'"),
        exclude_from_weight_decay='bias'),
    # YAML config files.
    row('yaml-unknown-field', 'in_process', (f'{LARS_FIELD}.etta', '0.1'),
        config_file=['{tmp}/unknown_field.yaml']),
    row('yaml-wrong-type', 'in_process', ('momentum', "'fast'"),
        config_file=['{tmp}/wrong_type.yaml']),
    row('yaml-missing-file', 'in_process',
        ('--config_file', '{tmp}/missing.yaml'),
        config_file=['{tmp}/missing.yaml']),
    row('yaml-config-file-is-a-directory', 'launcher',
        ('--config_file', '{tmp}', 'is a directory; give a file'),
        config_file=['{tmp}']),
    row('yaml-syntax-error', 'in_process',
        ('--config_file={tmp}/syntax_error.yaml', 'invalid YAML', 'line 2'),
        config_file=['{tmp}/syntax_error.yaml']),
    # --params_override.
    row('override-unknown-optimizer-type', 'in_process',
        ('trainer.optimizer_config.optimizer.type', "'larz'"),
        params_override='trainer.optimizer_config.optimizer.type=larz'),
    row('override-momentum-out-of-range', 'launcher', ('momentum', '1.5'),
        params_override=f'{LARS_FIELD}.momentum=1.5'),
    row('override-bad-regex', 'in_process',
        ('exclude_from_weight_decay', "'(bias'"),
        params_override=f"{LARS_FIELD}.exclude_from_weight_decay=['(bias']"),
    row('override-wrong-type', 'in_process', ('trainer.train_steps', "'abc'"),
        params_override='trainer.train_steps=abc'),
    row('override-negative-train-steps', 'in_process',
        ('trainer.train_steps', '-5'),
        params_override='trainer.train_steps=-5'),
    row('override-zero-batch-size', 'in_process',
        ('task.train_data.global_batch_size', '0'),
        params_override='task.train_data.global_batch_size=0'),
    row('override-negative-learning-rate', 'in_process',
        ('trainer.optimizer_config.learning_rate.polynomial.'
         'initial_learning_rate', '-1.0'),
        params_override=('trainer.optimizer_config.learning_rate.polynomial.'
                         'initial_learning_rate=-1.0')),
    row('override-unknown-precision', 'in_process',
        ('runtime.mixed_precision_dtype', "'float8'"),
        params_override='runtime.mixed_precision_dtype=float8'),
    row('override-unknown-strategy', 'in_process',
        ('runtime.distribution_strategy', "'foo'"),
        params_override='runtime.distribution_strategy=foo'),
    row('override-unknown-field', 'in_process', ('trainer.trian_steps', '10'),
        params_override='trainer.trian_steps=10'),
    row('override-not-field-value', 'in_process',
        ('--params_override', "'trainer.train_steps'"),
        params_override='trainer.train_steps'),
    row('override-missing-input-files', 'launcher',
        ('task.train_data.input_path', '/nonexistent/train*'),
        experiment='resnet_imagenet',
        params_override='task.train_data.input_path=/nonexistent/train*'),
    # --params_override: trainer intervals, as Orbit and Model Garden need.
    row('override-steps-per-loop-not-dividing-summary-interval', 'launcher',
        ('trainer.summary_interval', 'got 100',
         'a positive multiple of trainer.steps_per_loop (7)'),
        params_override='trainer.steps_per_loop=7'),
    row('override-zero-summary-interval', 'launcher',
        ('trainer.summary_interval', 'got 0', 'a positive multiple'),
        params_override='trainer.summary_interval=0'),
    row('override-zero-steps-per-loop', 'in_process',
        ('trainer.steps_per_loop', 'a positive int', 'got 0'),
        params_override='trainer.steps_per_loop=0'),
    row('override-zero-checkpoint-interval', 'in_process',
        ('trainer.checkpoint_interval', 'a positive int', 'got 0'),
        params_override='trainer.checkpoint_interval=0'),
    row('override-zero-max-to-keep', 'in_process',
        ('trainer.max_to_keep', 'a positive int', 'got 0'),
        params_override='trainer.max_to_keep=0'),
    row('override-negative-validation-interval', 'in_process',
        ('trainer.validation_interval', 'a positive int', 'got -1'),
        mode='train_and_eval',
        params_override='trainer.validation_interval=-1'),
    row('override-zero-validation-steps', 'in_process',
        ('trainer.validation_steps', '-1 (the whole validation set)',
         'got 0'),
        mode='eval', params_override='trainer.validation_steps=0'),
    row('override-while-loop-without-tf-function', 'in_process',
        ('trainer.train_tf_while_loop',
         'False when trainer.train_tf_function is False'),
        params_override='trainer.train_tf_function=false'),
    row('override-eval-while-loop-over-whole-validation-set', 'in_process',
        ('trainer.validation_steps', 'got -1',
         'when trainer.eval_tf_while_loop is True'),
        mode='eval', params_override='trainer.eval_tf_while_loop=true'),
    row('override-unknown-best-checkpoint-comparison', 'in_process',
        ('trainer.best_checkpoint_metric_comp', "'bigger'",
         'higher or lower'),
        params_override=('trainer.best_checkpoint_export_subdir=best,'
                         'trainer.best_checkpoint_eval_metric=accuracy,'
                         'trainer.best_checkpoint_metric_comp=bigger')),
    # --params_override: optimizer and learning rate schedules.
    row('override-unset-optimizer-type', 'in_process',
        ('trainer.optimizer_config.optimizer.type', 'got None',
         'one of adafactor, '),
        params_override='trainer.optimizer_config.optimizer.type=null'),
    row('override-unset-learning-rate-type', 'in_process',
        (f'{LR_FIELD}.type', 'got None', 'one of constant, cosine, '),
        experiment='image_classification',
        params_override='trainer.optimizer_config.optimizer.type=sgd'),
    row('override-zero-cosine-decay-steps', 'launcher',
        (f'{LR_FIELD}.cosine.decay_steps', 'a positive int', 'got 0'),
        params_override=(f'{LR_FIELD}.type=cosine,'
                         f'{LR_FIELD}.cosine.initial_learning_rate=1.0,'
                         f'{LR_FIELD}.cosine.decay_steps=0')),
    row('override-negative-warmup-steps', 'in_process',
        ('trainer.optimizer_config.warmup.linear.warmup_steps',
         'a positive int', 'got -5'),
        params_override=('trainer.optimizer_config.warmup.linear.'
                         'warmup_steps=-5')),
    row('override-decreasing-stepwise-boundaries', 'in_process',
        (f'{LR_FIELD}.stepwise.boundaries', 'strictly increasing',
         'got [10, 5]'),
        params_override=(f'{LR_FIELD}.type=stepwise,'
                         f'{LR_FIELD}.stepwise.boundaries=[10,5],'
                         f'{LR_FIELD}.stepwise.values=[0.1,0.01,0.001]')),
    row('override-stepwise-values-count', 'in_process',
        (f'{LR_FIELD}.stepwise.values', '2 learning rates for boundaries [10]',
         'got [0.1]'),
        params_override=(f'{LR_FIELD}.type=stepwise,'
                         f'{LR_FIELD}.stepwise.boundaries=[10],'
                         f'{LR_FIELD}.stepwise.values=[0.1]')),
    row('override-unset-exponential-decay-rate', 'in_process',
        (f'{LR_FIELD}.exponential.decay_rate', 'must be set'),
        params_override=(f'{LR_FIELD}.type=exponential,'
                         f'{LR_FIELD}.exponential.initial_learning_rate=1.0,'
                         f'{LR_FIELD}.exponential.decay_steps=10')),
    row('override-step-cosine-ending-before-training', 'in_process',
        (f'{LR_FIELD}.step_cosine_with_offset.boundaries', 'got [0, 100]',
         'the last >= 400'),
        params_override=(f'{LR_FIELD}.type=step_cosine_with_offset,'
                         f'{LR_FIELD}.step_cosine_with_offset.boundaries='
                         '[0,100],'
                         f'{LR_FIELD}.step_cosine_with_offset.values='
                         '[1.0,0.1]')),
    # Gin.
    row('gin-syntax-error', 'launcher',
        ('gin: syntax error in --gin_params', "'LARS.eeta = 0.002)'",
         'column 17', '`Configurable.parameter = value`'),
        gin_params=['LARS.eeta = 0.002)']),
    row('gin-file-is-a-directory', 'in_process',
        ('--gin_file', '{tmp}', 'is a directory; give a file'),
        gin_file=['{tmp}']),
    row('gin-unknown-configurable', 'in_process', ('LRAS.eeta', '0.1'),
        gin_params=['LRAS.eeta = 0.1']),
    row('gin-unknown-lars-field', 'launcher', ('LARS.etta', '0.1'),
        gin_params=['LARS.etta = 0.1']),
    row('gin-momentum-out-of-range', 'in_process', ('momentum', '1.5'),
        gin_params=['LARS.momentum = 1.5']),
    row('gin-missing-file', 'in_process', ('{tmp}/missing.gin',),
        gin_file=['{tmp}/missing.gin']),
    # Other flags.
    row('flag-unknown-experiment', 'in_process', ('--experiment', "'nope'"),
        experiment='nope'),
    row('flag-unsupported-mode', 'in_process',
        ('--mode', "'train_and_validate'"), mode='train_and_validate'),
    row('flag-model-dir-is-a-file', 'in_process',
        ('--model_dir', '{tmp}/a_file', 'existing file'),
        model_dir='{tmp}/a_file'),
    row('flag-model-dir-unwritable', 'launcher',
        ('--model_dir', '{tmp}/a_file/model', 'cannot be created'),
        model_dir='{tmp}/a_file/model'),
    # Setting up training fails: the earlier run's checkpoints are of
    # another model.
    row('flag-model-dir-holds-another-model', 'setup',
        ('--model_dir', '{model_dir}', 'training could not start',
         'Shape mismatch'),
        params_override='task.model.filters=[16,32]'),
    # Training that blows up (model_dir changes: training started).
    row('gin-training-blows-up', 'training',
        ('Training stopped at step ', "Model Garden's blow-up check",
         'the latest checkpoint is {model_dir}/ckpt-',
         'Likely responsible: learning rate ', 'eeta 1000.0',
         'weight decay 0.0001'),
        gin_params=['LARS.eeta = 1000.0'],
        params_override=f'{SHORT_RUN},trainer.train_steps=40'),
]


def _prepare_scratch(tmp: str):
  """Writes the files the rows refer to."""
  files = {
      'unknown_field.yaml': f'trainer:\n  optimizer_config:\n    optimizer:\n'
                            f'      lars:\n        etta: 0.1\n',
      'wrong_type.yaml': 'trainer:\n  optimizer_config:\n    optimizer:\n'
                         '      lars:\n        momentum: fast\n',
      'syntax_error.yaml': 'trainer: {train_steps: [\n',
      'a_file': 'not a directory\n',
  }
  for name, text in files.items():
    with open(os.path.join(tmp, name), 'w') as f:
      f.write(text)


def _launch(launcher: forked_launcher.ForkedLauncher,
            flags: Dict[str, object]) -> forked_launcher.Launch:
  """Starts `python -m official_ext.train` with `flags`."""
  argv = []
  for name, value in flags.items():
    for v in value if isinstance(value, list) else [value]:
      argv.append(f'--{name}={v}')
  return launcher.start(argv)


@pytest.fixture(scope='module')
def earlier_run(tmp_path_factory, launcher) -> str:
  """The model_dir of a short real training run, which every row copies.

  It holds what a launch must leave alone: params.yaml, the operative gin
  config, checkpoints and train summaries.

  Args:
    tmp_path_factory: pytest's.
    launcher: the session's `ForkedLauncher` (tests/conftest.py).

  Returns:
    The model_dir.
  """
  model_dir = str(tmp_path_factory.mktemp('earlier_run') / 'model_dir')
  launch = _launch(launcher, {
      'experiment': 'lars_digits', 'mode': 'train', 'model_dir': model_dir,
      'params_override': f'{SHORT_RUN},trainer.train_steps={EARLIER_RUN_STEPS}'
  })
  assert launch.wait(TIMEOUT) == 0, launch.stderr()[-3000:]
  assert tf.train.latest_checkpoint(model_dir).endswith(
      f'ckpt-{EARLIER_RUN_STEPS}')
  return model_dir


def _snapshot(tmp: str) -> Dict[str, str]:
  """Every file under `tmp`, path -> SHA-256 of its bytes."""
  files = {}
  for directory, _, names in os.walk(tmp):
    for name in names:
      path = os.path.join(directory, name)
      with open(path, 'rb') as f:
        files[os.path.relpath(path, tmp)] = hashlib.sha256(
            f.read()).hexdigest()
  return files


def _resolve(value, tmp: str, model_dir: str):
  if isinstance(value, list):
    return [_resolve(v, tmp, model_dir) for v in value]
  if isinstance(value, str):
    return value.format(tmp=tmp, model_dir=model_dir)
  return value


def _flags(bad: Row, tmp: str) -> Dict[str, object]:
  """The row's launcher flags, over a valid lars_digits training run."""
  model_dir = os.path.join(tmp, 'model_dir')
  flags = {'experiment': 'lars_digits', 'mode': 'train',
           'model_dir': model_dir}
  flags.update({k: _resolve(v, tmp, model_dir) for k, v in bad.args})
  return flags


def _setup(tmp: str, earlier_model_dir: str) -> Dict[str, str]:
  """Writes the scratch files, copies the earlier run; returns a snapshot."""
  _prepare_scratch(tmp)
  shutil.copytree(earlier_model_dir, os.path.join(tmp, 'model_dir'))
  return _snapshot(tmp)


@pytest.fixture(scope='module')
def launcher_results(tmp_path_factory, launcher, earlier_run):
  """Runs every subprocess row's command at once.

  Returns:
    name -> (exit code, stderr, scratch directory, snapshot before).
  """
  started = {}
  for param in ROWS:
    bad = param.values[0]
    if bad.via not in SUBPROCESS_VIAS:
      continue
    tmp = str(tmp_path_factory.mktemp(bad.name))
    before = _setup(tmp, earlier_run)
    started[bad.name] = (_launch(launcher, _flags(bad, tmp)), tmp, before)
  results = {}
  for name, (launch, tmp, before) in started.items():
    returncode = launch.wait(TIMEOUT)
    results[name] = (returncode, launch.stderr(), tmp, before)
  return results


@pytest.fixture
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _assert_names(message: str, bad: Row, tmp: str):
  assert '\n' not in message
  for text in bad.named:
    text = text.format(tmp=tmp, model_dir=os.path.join(tmp, 'model_dir'))
    assert text in message, (text, message)


def _assert_one_error_line(returncode: int, stderr: str, bad: Row, tmp: str):
  assert returncode != 0, stderr[-3000:]
  errors = [line for line in stderr.splitlines()
            if line.startswith(ERROR_PREFIX)]
  assert len(errors) == 1, stderr[-3000:]
  assert 'Traceback' not in stderr
  _assert_names(errors[0], bad, tmp)


def _assert_stopped_with_finite_checkpoints(stderr: str, tmp: str,
                                            before: Dict[str, str]):
  """Training ran, stopped, kept the earlier checkpoints, saved finite ones."""
  model_dir = os.path.join(tmp, 'model_dir')
  step = int(re.search(r'Training stopped at step (\d+):', stderr).group(1))
  latest = tf.train.latest_checkpoint(model_dir)
  assert EARLIER_RUN_STEPS < step
  assert f'the latest checkpoint is {latest} ' in stderr, stderr[-3000:]
  after = _snapshot(tmp)
  for name, digest in before.items():
    if os.path.basename(name).startswith('ckpt-'):
      assert after[name] == digest, name
  for index in tf.io.gfile.glob(os.path.join(model_dir, 'ckpt-*.index')):
    checkpoint = index[:-len('.index')]
    assert int(checkpoint.rsplit('-', 1)[1]) < step
    reader = tf.train.load_checkpoint(checkpoint)
    for name, dtype in reader.get_variable_to_dtype_map().items():
      if dtype.is_floating:
        assert np.all(np.isfinite(reader.get_tensor(name))), (checkpoint,
                                                              name)


@pytest.mark.parametrize('bad', ROWS)
def test_bad_input_is_refused(bad, tmp_path, clean_gin, request):
  del clean_gin  # Used for its cleanup.
  if bad.via == 'constructor':
    with pytest.raises((TypeError, ValueError)) as excinfo:
      lars.LARS(**dict(bad.args))
    _assert_names(str(excinfo.value), bad, '')
    return

  if bad.via in SUBPROCESS_VIAS:
    returncode, stderr, tmp, before = request.getfixturevalue(
        'launcher_results')[bad.name]
    _assert_one_error_line(returncode, stderr, bad, tmp)
    if bad.via == 'training':
      _assert_stopped_with_finite_checkpoints(stderr, tmp, before)
      return
    if bad.via == 'launcher':
      assert 'Training with optimizer' not in stderr  # Refused before.
    assert _snapshot(tmp) == before
    return

  tmp = str(tmp_path)
  before = _setup(tmp, request.getfixturevalue('earlier_run'))
  with pytest.raises(launch_checks.LaunchError) as excinfo:
    launch_checks.checked_configuration(Flags(**{
        'config_file': [], **_flags(bad, tmp)}))
  _assert_names(str(excinfo.value), bad, tmp)
  assert _snapshot(tmp) == before


def test_the_docs_table_has_one_row_per_test_id():
  with open(DOCS_TABLE) as f:
    documented = re.findall(r'^\| `([^`]+)`', f.read(), re.MULTILINE)
  assert documented == [param.id for param in ROWS]


def test_a_valid_launch_passes_the_same_checks(tmp_path, clean_gin):
  del clean_gin
  params = launch_checks.checked_configuration(Flags(
      experiment='lars_digits', config_file=[
          os.path.join(REPO, 'experiments', 'lars_digits.yaml')],
      model_dir=str(tmp_path / 'new' / 'model_dir'),
      params_override=('trainer.optimizer_config.learning_rate.polynomial.'
                       'initial_learning_rate=2'),
      gin_file=[os.path.join(REPO, 'experiments', 'lars.gin')]))
  # An int in a float field becomes a float: TensorFlow's schedules fail on
  # an int there.
  rate = params.trainer.optimizer_config.learning_rate.polynomial
  assert rate.initial_learning_rate == 2.0
  assert isinstance(rate.initial_learning_rate, float)
  assert params.trainer.optimizer_config.optimizer.lars.eeta == 0.002
  assert not os.path.exists(tmp_path / 'new')
