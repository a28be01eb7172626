"""The experiment configs shipped in experiments/, loaded as the launcher does.

A YAML file is named after the experiment it configures and spells out that
experiment's settings: loaded over the registered experiment, it must change
nothing, so its numbers (resnet50_imagenet_lars's step counts, which Python
derives from the batch size) are the registered ones, not stale copies. A gin
file must parse and its `LARS.<field>` bindings land in the experiment's
LARSConfig.
"""
import ast
import pathlib
import re

import gin
import pytest
import yaml

from official.core import train_utils as mg_train_utils
from official_ext.launcher import config_parsing
# Registers the experiments the YAML files are named after.
import official_ext.experiments  # pylint: disable=unused-import

EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parents[2] / 'experiments'
YAML_FILES = sorted(EXPERIMENTS_DIR.glob('*.yaml'))
GIN_FILES = sorted(EXPERIMENTS_DIR.glob('*.gin'))
# The experiment gin files are tried on: any LARS experiment would do.
GIN_EXPERIMENT = 'lars_digits'
_LARS_BINDING = re.compile(r'^LARS\.(\w+)\s*=\s*(.+)$')


def _parse(experiment, config_files=(), gin_files=()):
  """The launcher's experiment config, without its input-file checks."""
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings([str(f) for f in gin_files], None)
    return config_parsing.parse_configuration(
        mg_train_utils.ParseConfigOptions(
            experiment=experiment,
            config_file=[str(f) for f in config_files]),
        lock_return=False, print_return=False)
  finally:
    gin.clear_config()


def test_every_config_file_is_yaml_or_gin():
  # A file of another kind would be loaded by no test below.
  assert {p.name for p in EXPERIMENTS_DIR.iterdir()} - {'BUILD'} == {
      p.name for p in YAML_FILES + GIN_FILES}
  assert YAML_FILES and GIN_FILES


@pytest.mark.parametrize('yaml_file', YAML_FILES, ids=lambda p: p.name)
def test_yaml_file_spells_out_its_registered_experiment(yaml_file):
  registered = _parse(yaml_file.stem)

  loaded = _parse(yaml_file.stem, config_files=[yaml_file])

  assert loaded.as_dict() == registered.as_dict()
  # Not vacuous: the file sets the optimizer, LARS telemetry included.
  fields = yaml.safe_load(yaml_file.read_text())
  lars = fields['trainer']['optimizer_config']['optimizer']['lars']
  assert lars['telemetry'] is True


@pytest.mark.parametrize('experiment',
                         ['lars_digits', 'resnet50_imagenet_lars'])
def test_shipped_lars_experiments_record_telemetry(experiment):
  optimizer = _parse(experiment).trainer.optimizer_config.optimizer
  assert optimizer.type == 'lars'
  assert optimizer.lars.telemetry


@pytest.mark.parametrize('gin_file', GIN_FILES, ids=lambda p: p.name)
def test_gin_file_bindings_land_in_the_lars_config(gin_file):
  bound = {}
  for line in gin_file.read_text().splitlines():
    match = _LARS_BINDING.match(line.strip())
    if match:
      bound[match.group(1)] = ast.literal_eval(match.group(2))
  assert bound, f'{gin_file.name} binds no LARS.<field>'

  lars = _parse(GIN_EXPERIMENT, gin_files=[gin_file]).trainer.optimizer_config
  lars = lars.optimizer.lars

  assert {field: getattr(lars, field) for field in bound} == bound
