"""Tests of setup.py: every admitted Python resolves the install, no other.

`python_requires` must admit exactly the CPython versions for which pip finds
binary wheels of tensorflow 2.20, tf-models-official 2.20.0 and the test
extra. pip's resolver answers that without installing anything
(`pip install --dry-run --python-version X.Y --only-binary=:all:`); it needs
the package registry, so the resolver test skips where pip cannot reach it,
unless OFFICIAL_EXT_REQUIRE_NETWORK=1 (as .ci/run sets) makes that a failure.
"""
import ast
import concurrent.futures
import os
import pathlib
import subprocess
import sys
from typing import List, Tuple

from packaging import specifiers
import pytest

from tests import required_or_skipped

REPO = pathlib.Path(__file__).resolve().parent.parent
REQUIRE_NETWORK = 'OFFICIAL_EXT_REQUIRE_NETWORK'
# CPython minor versions worth asking about.
CANDIDATE_MINORS = range(8, 16)
# Dependencies published only as pure-Python source archives (no wheel):
# built into a local wheel so that the rest resolves from binary wheels only.
PURE_PYTHON_SDISTS = ('promise',)


def python_requires() -> str:
  """The `python_requires` string of setup.py, read without running it."""
  tree = ast.parse((REPO / 'setup.py').read_text())
  for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == 'python_requires':
      return ast.literal_eval(node.value)
  raise AssertionError('setup.py sets no python_requires')


def admitted_versions(requires: str) -> List[str]:
  """The CPython `3.N` versions that the specifier `requires` admits."""
  spec = specifiers.SpecifierSet(requires)
  return [f'3.{minor}' for minor in CANDIDATE_MINORS
          if spec.contains(f'3.{minor}.0')]


def test_admitted_versions_reads_the_specifier():
  assert admitted_versions('>=3.11,<3.14') == ['3.11', '3.12', '3.13']
  assert admitted_versions('>=3.11,<3.12') == ['3.11']


def test_the_running_python_is_admitted():
  running = f'{sys.version_info.major}.{sys.version_info.minor}'
  assert running in admitted_versions(python_requires())


def _pip(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'pip', *args],
                        capture_output=True, text=True, timeout=600,
                        check=False)


def _resolves(version: str, wheel_dir: pathlib.Path,
              target: pathlib.Path) -> Tuple[bool, str]:
  """Whether pip resolves `.[test]` for CPython `version` from wheels."""
  result = _pip('install', '--dry-run', '--ignore-installed',
                '--only-binary=:all:', f'--python-version={version}',
                f'--find-links={wheel_dir}', f'--target={target / version}',
                f'{REPO}[test]')
  last_lines = '\n'.join(
      (result.stdout + result.stderr).strip().splitlines()[-3:])
  return result.returncode == 0, last_lines


@pytest.mark.network
def test_exactly_the_admitted_pythons_resolve(tmp_path):
  if _pip('download', '--no-deps', '--dest', str(tmp_path / 'probe'),
          PURE_PYTHON_SDISTS[0]).returncode != 0:
    required_or_skipped.skip_or_fail('pip cannot reach the package registry',
                                     REQUIRE_NETWORK)
  wheel_dir = tmp_path / 'wheels'
  built = _pip('wheel', '--no-deps', f'--wheel-dir={wheel_dir}',
               *PURE_PYTHON_SDISTS)
  assert built.returncode == 0, built.stderr
  admitted = admitted_versions(python_requires())
  # The versions just outside the range must not resolve, or the range is
  # narrower than where official_ext installs.
  below = f'3.{int(admitted[0].split(".")[1]) - 1}'
  above = f'3.{int(admitted[-1].split(".")[1]) + 1}'
  versions = [below, *admitted, above]
  with concurrent.futures.ThreadPoolExecutor(len(versions)) as pool:
    results = dict(zip(versions, pool.map(
        lambda v: _resolves(v, wheel_dir, tmp_path / 'targets'), versions)))
  for version in admitted:
    resolved, log = results[version]
    assert resolved, f'Python {version} is admitted but does not resolve:\n{log}'
  for version in (below, above):
    resolved, _ = results[version]
    assert not resolved, (f'Python {version} resolves but python_requires '
                          f'({python_requires()}) does not admit it')
