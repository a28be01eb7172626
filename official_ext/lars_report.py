r"""Prints which variables LARS decays and adapts, without training.

Builds the experiment's model and optimizer exactly as `official_ext.train`
would, from the same flags (`launcher_flags`; `--experiment`, `--config_file`,
`--params_override`, `--gin_file` and `--gin_params` shape the report), and
prints the exclusion report: every trainable variable with its shape, whether
it gets weight decay and layer adaptation and which setting decided, then a
warning for every exclusion setting that matches no variable. Nothing is
written. Bad input stops it with a one-line error, as it stops the launcher.

  python -m official_ext.lars_report --experiment=lars_digits \
      --gin_params='LARS.exclude_normalization_from_weight_decay = True'
"""
import sys

from absl import app
from absl import flags

# Registers the experiments of Model Garden's NLP and vision launchers, and
# official_ext's.
from official.common import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import exclusion_report
from official_ext.launcher import launch_checks
from official_ext.launcher import launcher_flags

FLAGS = flags.FLAGS


def main(_):
  try:
    params = launch_checks.checked_configuration(FLAGS, for_run=False)
    with launch_checks.reported_as_launch_errors():
      report = exclusion_report.build_report(params)
  except launch_checks.LaunchError as e:
    sys.exit(f'official_ext.lars_report: error: {e}')
  print(report.text())


if __name__ == '__main__':
  launcher_flags.define_flags()
  flags.mark_flags_as_required(['experiment'])
  app.run(main)
