"""The command-line flags of official_ext's launcher: those of Model Garden's.

`define_flags` defines every flag of Model Garden's vision launcher,
`official/vision/train.py`: Model Garden's common flags
(`official.common.flags.define_flags`: `--experiment`, `--mode`,
`--model_dir`, `--config_file`, `--params_override`, `--gin_file`,
`--gin_params`, `--tpu`, `--tf_data_service`, `--tpu_platform`,
`--tfhub_handle`, `--tflex_output_uri`) and the one vision's launcher adds,
`--enable_async_checkpointing`, with its default (True). A Model Garden
command line therefore runs unchanged with `python -m official_ext.train` and
`python -m official_ext.lars_report`.
"""
from absl import flags

from official.common import flags as tfm_flags

ENABLE_ASYNC_CHECKPOINTING = 'enable_async_checkpointing'


def define_flags():
  """Defines the launcher's flags on absl's global FLAGS, once.

  Later calls do nothing, so that a program and its tests can both call it.
  """
  if ENABLE_ASYNC_CHECKPOINTING in flags.FLAGS:
    return
  tfm_flags.define_flags()
  # As official/vision/train.py defines it.
  flags.DEFINE_bool(
      ENABLE_ASYNC_CHECKPOINTING,
      default=True,
      help='A boolean indicating whether to enable async checkpoint saving')

