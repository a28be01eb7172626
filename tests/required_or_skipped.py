"""Tests that need something beyond the test extra: skipped, or failed in CI.

A fresh machine may lack what `pip install -e ".[test]"` cannot install (the
package registry, a Debian package); such a test skips there with one reason,
and `.ci/run` sets the named environment variable so that it fails instead.
"""
import importlib.util
import os

import pytest

TORCH_INSTALLED = importlib.util.find_spec('torch') is not None


def skip_or_fail(missing: str, required_by: str):
  """Skips the calling test, or fails it if `required_by`=1 is set.

  Args:
    missing: what is missing, said in the message.
    required_by: the environment variable that makes it required.
  """
  if os.environ.get(required_by) == '1':
    pytest.fail(f'{missing} ({required_by}=1)')
  pytest.skip(f'{missing}; set {required_by}=1 to make this a failure')


def require_torch():
  """Skips the calling test without PyTorch, or fails it in CI."""
  if not TORCH_INSTALLED:
    skip_or_fail(
        'PyTorch is not installed (pip install -e ".[torch]"); the test extra '
        'leaves it out because its default build is a multi-GB CUDA download',
        'OFFICIAL_EXT_REQUIRE_TORCH')
