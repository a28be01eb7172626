"""Main of every `pytest_test` (tools/pytest.bzl): runs pytest on its files.

Bazel runs a py_test's main as a script, while test files are pytest modules
(fixtures, tests/conftest.py, pytest.ini), so each test target runs this
runner with its test files as arguments:

  pytest_runner.py tests/modeling/optimization/lars_test.py
"""
import importlib.machinery
import os
import sys
from typing import Any

import pytest

# <runfiles>/<workspace>/tools/pytest_runner.py. Symlinks are not resolved:
# they lead back to the source tree.
_WORKSPACE_RUNFILES = os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
_RUNFILES = os.path.dirname(_WORKSPACE_RUNFILES)
_PACKAGE = 'official_ext'
# Python's own finders: never dropped (PathFinder searches sys.path, which
# `without_source_checkouts` has already cleaned).
_STANDARD_FINDERS = (importlib.machinery.BuiltinImporter,
                     importlib.machinery.FrozenImporter,
                     importlib.machinery.PathFinder)


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


def without_outside_finders(finders: list[Any], runfiles: str) -> list[Any]:
  """`finders` less those that would import official_ext from outside runfiles.

  setuptools' editable install (`pip install -e .` with its import hook, e.g.
  `__editable___official_ext_0_1_0_finder.py`) does not put the checkout on
  sys.path: a `.pth` file appends a finder to sys.meta_path that maps
  official_ext to the checkout, after Python's PathFinder. Without this, a
  test whose deps lack official_ext would import it through that finder.

  Args:
    finders: sys.meta_path-like finders.
    runfiles: the test's runfiles directory.

  Returns:
    The finders to keep, in order.
  """
  kept = []
  for finder in finders:
    spec = None
    if finder not in _STANDARD_FINDERS and hasattr(finder, 'find_spec'):
      spec = finder.find_spec(_PACKAGE, None)
    locations = [] if spec is None else [
        spec.origin, *(spec.submodule_search_locations or [])]
    if not any(location and not _is_within(location, runfiles)
               for location in locations):
      kept.append(finder)
  return kept


def main(test_files: list[str]) -> int:
  """Runs pytest on `test_files` (runfiles paths); returns its exit code."""
  if not test_files:
    raise SystemExit('usage: pytest_runner.py TEST_FILE...')
  sys.path[:] = without_source_checkouts(sys.path, _RUNFILES)
  sys.meta_path[:] = without_outside_finders(sys.meta_path, _RUNFILES)
  # No .pytest_cache: the runfiles tree is not the place for it.
  return pytest.main(['-p', 'no:cacheprovider', *test_files])


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
