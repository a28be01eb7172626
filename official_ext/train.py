r"""Model Garden training launcher whose `optimizer.type: lars` is official_ext's.

Takes Model Garden's standard flags (`official.common.flags`) and, like
`official/vision/train.py`, trains any registered experiment (Model Garden's
vision experiments and official_ext's own) and writes `params.yaml` and the
operative gin config to `--model_dir`. `LARS.<field>` gin bindings
(`--gin_file`, `--gin_params`) override the experiment's LARS config after
`--config_file` and `--params_override`.

  python -m official_ext.train --experiment=lars_digits \
      --mode=train_and_eval --model_dir=/tmp/lars_digits \
      --gin_params='LARS.eeta = 0.002'
"""
from absl import app
from absl import flags
import gin

from official.common import flags as tfm_flags
from official.core import train_utils as mg_train_utils
# Registers Model Garden's vision experiments and official_ext's.
from official.vision import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.core import train_lib
from official_ext.core import train_utils

FLAGS = flags.FLAGS


def main(_):
  # Everything is parsed and checked before anything is written to model_dir.
  gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  params = train_utils.parse_configuration(FLAGS)
  model_dir = FLAGS.model_dir
  if 'train' in FLAGS.mode:
    # As in Model Garden: pure eval jobs do not write params.yaml, so they
    # cannot race a training job writing the same file.
    mg_train_utils.serialize_config(params, model_dir)
  mg_train_utils.save_gin_config(FLAGS.mode, model_dir)
  train_lib.run_experiment(params, FLAGS.mode, model_dir)
  # Again: configurables first called during training join the operative
  # config.
  mg_train_utils.save_gin_config(FLAGS.mode, model_dir)


if __name__ == '__main__':
  tfm_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
