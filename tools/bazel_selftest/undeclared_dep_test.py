"""Imports official_ext without a dep on it: must fail under `bazel test`.

tools/bazel_check.sh runs this target and expects ModuleNotFoundError, which
shows that a test only imports what its deps put in its runfiles, not the
source checkout that `pip install -e .` puts on sys.path.
"""
import official_ext


def test_official_ext_was_imported():
  assert official_ext.__name__ == 'official_ext'
