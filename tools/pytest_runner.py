"""Main of every `pytest_test` (tools/pytest.bzl): runs pytest on its files.

Bazel runs a py_test's main as a script, while test files are pytest modules
(fixtures, tests/conftest.py, pytest.ini), so each test target runs this
runner with its test files as arguments:

  pytest_runner.py tests/modeling/optimization/lars_test.py
"""
import os
import sys

import pytest

# <runfiles>/<workspace>/tools/pytest_runner.py. Symlinks are not resolved:
# they lead back to the source tree.
_WORKSPACE_RUNFILES = os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
_RUNFILES = os.path.dirname(_WORKSPACE_RUNFILES)
_PACKAGE = 'official_ext'


def _is_within(path: str, directory: str) -> bool:
  return os.path.commonpath([os.path.abspath(path), directory]) == directory


def without_source_checkouts(path_entries: list[str],
                             runfiles: str) -> list[str]:
  """`path_entries` less those outside `runfiles` that hold official_ext.

  An editable pip install (`pip install -e .`) puts the source checkout on
  sys.path; a test that imported official_ext from there would pass with
  deps its BUILD target does not declare.

  Args:
    path_entries: sys.path-like entries.
    runfiles: the test's runfiles directory.

  Returns:
    The entries to keep, in order.
  """
  return [
      entry for entry in path_entries
      if _is_within(entry, runfiles) or not os.path.isfile(
          os.path.join(entry, _PACKAGE, '__init__.py'))
  ]


def main(test_files: list[str]) -> int:
  """Runs pytest on `test_files` (runfiles paths); returns its exit code."""
  if not test_files:
    raise SystemExit('usage: pytest_runner.py TEST_FILE...')
  sys.path[:] = without_source_checkouts(sys.path, _RUNFILES)
  # No .pytest_cache: the runfiles tree is not the place for it.
  return pytest.main(['-p', 'no:cacheprovider', *test_files])


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
