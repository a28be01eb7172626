"""Imports official_ext without a dep on it: must fail under `bazel test`.

tools/bazel_check.sh runs this target and expects ModuleNotFoundError, which
shows that a test only imports what its deps put in its runfiles, not the
source checkout that `pip install -e .` puts on sys.path.
"""
from official_ext.modeling.optimization import lr_serialization


def test_lr_serialization_was_imported():
  assert lr_serialization.__name__ == (
      'official_ext.modeling.optimization.lr_serialization')
