r"""Model Garden training launcher whose `optimizer.type: lars` is official_ext's.

Takes Model Garden's standard flags (`official.common.flags`) and, like
`official/vision/train.py`, trains any registered experiment (Model Garden's
NLP and vision experiments and official_ext's own) and writes `params.yaml`
and the operative gin config to `--model_dir`. `LARS.<field>` gin bindings
(`--gin_file`, `--gin_params`) override the experiment's LARS config after
`--config_file` and `--params_override`. Bad input stops the launcher with a
one-line error before it writes anything; a run that produces inf or NaN stops
before its next checkpoint.

  python -m official_ext.train --experiment=lars_digits \
      --mode=train_and_eval --model_dir=/tmp/lars_digits \
      --gin_params='LARS.eeta = 0.002'
"""
import sys

from absl import app
from absl import flags

from official.common import flags as tfm_flags
# Registers what Model Garden's NLP and vision launchers register, and
# official_ext's experiments.
from official.common import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import finite_check
from official_ext.launcher import atomic_files
from official_ext.launcher import experiment_runner
from official_ext.launcher import launch_checks

FLAGS = flags.FLAGS


def main(_):
  # Everything is parsed and checked before anything is written to model_dir.
  try:
    params = launch_checks.checked_configuration(FLAGS)
  except launch_checks.LaunchError as e:
    sys.exit(f'official_ext.train: error: {e}')
  model_dir = FLAGS.model_dir
  if 'train' in FLAGS.mode:
    # As in Model Garden: pure eval jobs do not write params.yaml, so they
    # cannot race a training job writing the same file.
    atomic_files.save_params(params, model_dir)
  atomic_files.save_gin_config(FLAGS.mode, model_dir)
  try:
    experiment_runner.run_experiment(params, FLAGS.mode, model_dir)
  except finite_check.NonFiniteTrainingError as e:
    sys.exit(f'official_ext.train: error: {e}')
  # Again: configurables first called during training join the operative
  # config.
  atomic_files.save_gin_config(FLAGS.mode, model_dir)


if __name__ == '__main__':
  tfm_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
