"""Model Garden's own optimization tests, run against official_ext's modules.

The tests are read from the installed tf-models-official; only their imports
of Model Garden's optimizer factory and optimization configs are pointed at
official_ext's. They must pass as they do against Model Garden.
"""
import io
import os
import re
import types
import unittest

import pytest

from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config
from official_ext.modeling.optimization.configs import optimizer_config

_MODEL_GARDEN_DIR = os.path.dirname(mg_optimizer_factory.__file__)
# Test file -> how many of its import lines name a module official_ext
# replaces.
_SUITE = {
    'optimizer_factory_test.py': 2,
    'configs/optimization_config_test.py': 2,
    'lr_schedule_test.py': 0,
}
_REPLACED_IMPORT = re.compile(
    r'^from official(\.modeling\.optimization(?:\.configs)? import '
    r'(?:optimizer_factory|optimization_config|optimizer_config)\b)',
    re.MULTILINE)


def _source(test_file):
  with open(os.path.join(_MODEL_GARDEN_DIR, test_file)) as f:
    return f.read()


def _run(test_file, source):
  """Runs the TestCases of `source`; returns the module and the result.

  Model Garden's registry test registers an optimizer type, which may be
  registered once only: the registries are restored afterwards.
  """
  registries = (mg_optimizer_factory.LEGACY_OPTIMIZERS_CLS,
                mg_optimizer_factory.NEW_OPTIMIZERS_CLS)
  saved = [dict(registry) for registry in registries]
  module = types.ModuleType(test_file.replace('/', '.')[:-len('.py')])
  try:
    exec(compile(source, test_file, 'exec'), module.__dict__)  # pylint: disable=exec-used
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(stream=io.StringIO()).run(suite)
  finally:
    for registry, classes in zip(registries, saved):
      registry.clear()
      registry.update(classes)
  return module, result


def _outcome(result):
  return {
      'run': result.testsRun,
      'failures': len(result.failures),
      'errors': len(result.errors),
      'skipped': len(result.skipped),
  }


@pytest.mark.parametrize('test_file', sorted(_SUITE))
def test_model_garden_tests_pass_against_official_ext(test_file):
  source = _source(test_file)
  swapped, replaced = _REPLACED_IMPORT.subn(r'from official_ext\1', source)
  assert replaced == _SUITE[test_file]
  module, ours = _run(test_file, swapped)
  for name, ext_module in (('optimizer_factory', optimizer_factory),
                           ('optimization_config', optimization_config),
                           ('opt_cfg', optimizer_config)):
    if name in module.__dict__:
      assert module.__dict__[name] is ext_module, name
  _, theirs = _run(test_file, source)
  assert _outcome(ours) == _outcome(theirs), (ours.failures, ours.errors)
  assert _outcome(ours)['failures'] == _outcome(ours)['errors'] == 0
  assert ours.testsRun > 0
