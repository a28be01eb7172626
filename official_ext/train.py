r"""Model Garden training launcher whose `optimizer.type: lars` is official_ext's.

Takes the flags of Model Garden's `official/vision/train.py`
(`launcher_flags`) and, like it, trains any registered experiment (Model
Garden's NLP and vision experiments and official_ext's own) and writes
`params.yaml` and the operative gin config to `--model_dir`. `LARS.<field>`
gin bindings (`--gin_file`, `--gin_params`) override the experiment's LARS
config after `--config_file` and `--params_override`. Bad input stops the
launcher with a one-line error before it writes anything, and settings that
training would ignore are warned about; `params.yaml` and the gin config are
written once the first training loop has run, so a launch that cannot start
training leaves model_dir's files as they were; a run that blows up stops
with a one-line error before its next checkpoint (docs/robustness.md).

  python -m official_ext.train --experiment=lars_digits \
      --mode=train_and_eval --model_dir=/tmp/lars_digits \
      --gin_params='LARS.eeta = 0.002'
"""
import sys

from absl import app
from absl import flags
import tensorflow as tf

# Registers what Model Garden's NLP and vision launchers register, and
# official_ext's experiments.
from official.common import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import finite_check
from official_ext.launcher import atomic_files
from official_ext.launcher import experiment_runner
from official_ext.launcher import launch_checks
from official_ext.launcher import launcher_flags

FLAGS = flags.FLAGS
ERROR_PREFIX = 'official_ext.train: error: '
# Errors of setting up training from a checked config: e.g. a checkpoint in
# model_dir that does not fit the model, or input files that cannot be read.
_SETUP_ERRORS = (ValueError, OSError, tf.errors.OpError)


def launch(flags_obj):
  """Checks the flags' configuration, then trains and evaluates as `--mode`.

  Args:
    flags_obj: the parsed absl FLAGS (`launcher_flags`).
  """
  # Everything is parsed and checked before anything is written to model_dir.
  try:
    params = launch_checks.checked_configuration(flags_obj)
  except launch_checks.LaunchError as e:
    sys.exit(f'{ERROR_PREFIX}{e}')
  model_dir = flags_obj.model_dir
  # Written once training (or evaluation) has run its first loop.
  run_files = atomic_files.RunFiles(params, flags_obj.mode, model_dir)
  try:
    experiment_runner.run_experiment(
        params, flags_obj.mode, model_dir,
        train_actions=[run_files],
        eval_actions=[run_files],
        enable_async_checkpointing=flags_obj.enable_async_checkpointing)
  except finite_check.NonFiniteTrainingError as e:
    sys.exit(f'{ERROR_PREFIX}{e}')
  except _SETUP_ERRORS as e:
    if run_files.saved:
      raise
    sys.exit(f'{ERROR_PREFIX}--model_dir={model_dir!r}: training could not '
             f'start: {launch_checks.one_line(e)}')
  # Again: configurables first called during training join the operative
  # config (and a run with nothing left to train still writes its files).
  run_files.save()


def main(_):
  launch(FLAGS)


if __name__ == '__main__':
  launcher_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
