"""Tests of the Bazel BUILD files: coverage, deps against imports, real Bazel.

BUILD files are read as Python syntax (Starlark's is a subset of it) and only
the Python targets' `name`, `srcs` and `deps` are used, so the first checks
need no Bazel; `test_bazel_check_passes` then lints, builds and tests with
real Bazel, offline (tools/bazel_check.sh).
"""
import ast
import dataclasses
import importlib.machinery
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Dict, FrozenSet, List, Mapping, Optional

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# The repository's Python code: each .py file under these directories belongs
# to a Bazel target, and imports from them are deps.
FIRST_PARTY_DIRS = ('official_ext', 'tests')
PYTHON_RULES = ('py_binary', 'py_library', 'py_test', 'pytest_test')
# Deps that tools/pytest.bzl adds to every pytest_test.
IMPLICIT_DEPS = {'pytest_test': frozenset({'//tests:conftest'})}
# Lacks its dep by design: tools/bazel_check.sh checks that it fails.
MISSING_DEPS_BY_DESIGN = ('//tools/bazel_selftest:undeclared_dep_test',)
# Set to 1 (as .ci/run does), a machine that cannot run the Bazel check fails
# test_bazel_check_passes instead of skipping it.
REQUIRE_BAZEL = 'OFFICIAL_EXT_REQUIRE_BAZEL'
# tools/bazel_env.sh installs Bazel and buildifier here with npm.
BAZEL_TOOLS = REPO / '.bazel_tools' / 'node_modules' / '@bazel'


@dataclasses.dataclass(frozen=True)
class Target:
  label: str
  rule: str
  srcs: FrozenSet[str]  # Paths relative to the workspace root.
  deps: FrozenSet[str]  # Absolute labels, as the BUILD file lists them.


def absolute_label(label: str, package: str) -> str:
  """`label` as //package:name ('//a/b' means //a/b:b, ':x' this package's)."""
  if label.startswith(':'):
    return f'//{package}{label}'
  if ':' not in label:
    return f'{label}:{label.rsplit("/", 1)[-1]}'
  return label


def _string_list(call: ast.Call, attribute: str, where: str) -> List[str]:
  """The list of string literals `attribute` is set to, [] if unset."""
  for keyword in call.keywords:
    if keyword.arg == attribute:
      try:
        value = ast.literal_eval(keyword.value)
      except ValueError:
        value = None
      if not (isinstance(value, list) and
              all(isinstance(v, str) for v in value)):
        raise AssertionError(
            f'{where}: {attribute} must be a list of string literals, not '
            f'{ast.unparse(keyword.value)}')
      return value
  return []


def _package_dirs(root: pathlib.Path) -> List[pathlib.Path]:
  """The directories with a BUILD file, less those Bazel ignores."""
  ignored = {root / '.git'} | {
      root / entry for entry in (root / '.bazelignore').read_text().split()
  }
  directories = []
  for directory, subdirectories, files in os.walk(root):
    here = pathlib.Path(directory)
    subdirectories[:] = [d for d in subdirectories if here / d not in ignored]
    if 'BUILD' in files:
      directories.append(here)
  return sorted(directories)


class Workspace:
  """The Python targets of a Bazel workspace and the files they import."""

  def __init__(self, root: pathlib.Path):
    self.root = root
    self.package_dirs = _package_dirs(root)
    self.targets = [t for d in self.package_dirs for t in self._parse(d)]
    self.owners: Dict[str, List[str]] = {}
    for target in self.targets:
      for src in target.srcs:
        self.owners.setdefault(src, []).append(target.label)

  def _parse(self, directory: pathlib.Path) -> List[Target]:
    """The Python targets of `directory`'s BUILD file."""
    package = ('' if directory == self.root else
               directory.relative_to(self.root).as_posix())
    build = directory / 'BUILD'
    targets = []
    for statement in ast.parse(build.read_text(), str(build)).body:
      call = statement.value if isinstance(statement, ast.Expr) else None
      if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
              and call.func.id in PYTHON_RULES):
        continue
      name = next(ast.literal_eval(k.value) for k in call.keywords
                  if k.arg == 'name')
      where = f'{build.relative_to(self.root)}: {call.func.id} {name!r}'
      targets.append(
          Target(
              label=f'//{package}:{name}',
              rule=call.func.id,
              srcs=frozenset(
                  (directory / src).relative_to(self.root).as_posix()
                  for src in _string_list(call, 'srcs', where)),
              deps=frozenset(
                  absolute_label(dep, package)
                  for dep in _string_list(call, 'deps', where))))
    return targets

  def module_file(self, module: str) -> Optional[str]:
    """The file that defines `module` (a dotted name), if there is one."""
    path = self.root.joinpath(*module.split('.'))
    for candidate in (path.with_suffix('.py'), path / '__init__.py'):
      if candidate.is_file():
        return candidate.relative_to(self.root).as_posix()
    return None

  def imported_modules(self, source_file: str) -> List[str]:
    """What `source_file` imports; `from a import b` is a.b if a module."""
    package = source_file.rsplit('/', 1)[0].replace('/', '.')
    tree = ast.parse((self.root / source_file).read_text(), source_file)
    modules = []
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        modules.extend(alias.name for alias in node.names)
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          parent = package.rsplit('.', node.level - 1)[0]
          base = f'{parent}.{base}' if base else parent
        for alias in node.names:
          submodule = f'{base}.{alias.name}'
          modules.append(submodule if self.module_file(submodule) else base)
    return modules

  def expected_deps(self, target: Target) -> FrozenSet[str]:
    """Labels of the targets owning the first-party modules `target` imports.

    Args:
      target: one of `self.targets`.

    Returns:
      The labels, without `target`'s own and without the deps its rule adds
      by itself.

    Raises:
      AssertionError: an import names no file, or a file in the srcs of no
        target or of several.
    """
    labels = set()
    for src in sorted(target.srcs):
      for module in self.imported_modules(src):
        if module.split('.')[0] not in FIRST_PARTY_DIRS:
          continue
        module_file = self.module_file(module)
        if module_file is None:
          raise AssertionError(f'{src} imports {module}, which is no file')
        owners = self.owners.get(module_file, [])
        if len(owners) != 1:
          raise AssertionError(
              f'{src} imports {module_file}, which is in the srcs of '
              f'{len(owners)} targets {owners}, not of 1')
        labels.add(owners[0])
    return frozenset(labels - {target.label} -
                     IMPLICIT_DEPS.get(target.rule, frozenset()))

  def package_of(self, path: pathlib.Path) -> pathlib.Path:
    """The directory of the BUILD file that `path` falls under."""
    return max((d for d in self.package_dirs if path.is_relative_to(d)),
               key=lambda d: len(d.parts))


def _suggested_target(path: pathlib.Path) -> str:
  """A BUILD entry for `path`, named as this workspace names targets."""
  if path.name.endswith('_test.py'):
    return f'pytest_test(name = "{path.stem}", srcs = ["{path.name}"])'
  name = path.parent.name if path.name == '__init__.py' else path.stem
  return f'py_library(name = "{name}", srcs = ["{path.name}"])'


def test_every_python_file_belongs_to_a_target():
  workspace = Workspace(REPO)
  missing = []
  for directory in FIRST_PARTY_DIRS:
    for path in sorted((REPO / directory).rglob('*.py')):
      relative = path.relative_to(REPO).as_posix()
      if relative not in workspace.owners:
        package = workspace.package_of(path)
        build = (f'a new {path.parent.relative_to(REPO)}/BUILD'
                 if package == REPO else f'{package.relative_to(REPO)}/BUILD')
        missing.append(
            f'  {relative}: add to {build}: {_suggested_target(path)}')
  assert not missing, ('Python files in no Bazel target (deps: the targets '
                       'of what they import):\n' + '\n'.join(missing))


def test_deps_mirror_first_party_imports():
  workspace = Workspace(REPO)
  mismatches = []
  for target in workspace.targets:
    if target.label in MISSING_DEPS_BY_DESIGN:
      continue
    try:
      expected = workspace.expected_deps(target)
    except AssertionError as error:
      mismatches.append(f'  {target.label}: {error}')
      continue
    if target.deps != expected:
      mismatches.append(
          f'  {target.label}: add {sorted(expected - target.deps)}, '
          f'remove {sorted(target.deps - expected)}')
  assert not mismatches, ('deps differ from the imports:\n' +
                          '\n'.join(mismatches))


def test_absolute_label_expands_shorthands():
  assert absolute_label(':lars', 'official_ext/modeling/optimization') == (
      '//official_ext/modeling/optimization:lars')
  assert absolute_label('//official_ext/experiments', 'tests') == (
      '//official_ext/experiments:experiments')
  assert absolute_label('//tests:conftest', 'tests/core') == (
      '//tests:conftest')


def test_expected_deps_resolve_modules_packages_and_relative_imports(
    tmp_path):
  files = {
      '.bazelignore': '',
      'BUILD': '',
      'official_ext/__init__.py': '',
      'official_ext/a/__init__.py': 'from official_ext.a import b\n',
      'official_ext/a/b.py': 'from official_ext.a.c import SomeName\n',
      'official_ext/a/c.py': 'from . import b\nimport numpy\n',
      'official_ext/a/BUILD': (
          'py_library(name = "a", srcs = ["__init__.py"], deps = [":b"])\n'
          'py_library(name = "b", srcs = ["b.py"])\n'
          'py_library(name = "c", srcs = ["c.py"], deps = [":b"])\n'),
      'official_ext/BUILD': (
          'py_binary(name = "main", srcs = ["main.py"])\n'),
      'official_ext/main.py': 'import official_ext.a.c as c\n'
                              'from official_ext import a\n',
  }
  for name, text in files.items():
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text)
  workspace = Workspace(tmp_path)
  targets = {t.label: t for t in workspace.targets}
  assert {
      label: workspace.expected_deps(target)
      for label, target in targets.items()
  } == {
      '//official_ext/a:a': {'//official_ext/a:b'},
      '//official_ext/a:b': {'//official_ext/a:c'},
      '//official_ext/a:c': {'//official_ext/a:b'},
      '//official_ext:main': {'//official_ext/a:a', '//official_ext/a:c'},
  }
  assert targets['//official_ext/a:c'].deps == {'//official_ext/a:b'}


def bazel_check_skip_reason(environ: Mapping[str, str],
                            bazel_tools: pathlib.Path) -> Optional[str]:
  """Why the Bazel check cannot run here, or None if it can (or must).

  Args:
    environ: the environment (PATH, OFFICIAL_EXT_REQUIRE_BAZEL).
    bazel_tools: where tools/bazel_env.sh installs Bazel and buildifier.

  Returns:
    The one-line reason to skip, if Bazel is not installed, npm (which
    installs it) is not on PATH and the check is not required.
  """
  if environ.get(REQUIRE_BAZEL) == '1' or bazel_tools.is_dir():
    return None
  if shutil.which('npm', path=environ.get('PATH', '')) is not None:
    return None
  return ('Bazel check skipped: npm not found (needed to install Bazel and '
          f'buildifier); set {REQUIRE_BAZEL}=1 to make this a failure')


@pytest.mark.parametrize('required, installed, npm_on_path, skipped', [
    ('', False, False, True),
    ('1', False, False, False),
    ('', True, False, False),
    ('', False, True, False),
])
def test_bazel_check_skips_only_without_npm_unless_required(
    tmp_path, required, installed, npm_on_path, skipped):
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  if npm_on_path:
    (bin_dir / 'npm').write_text('#!/bin/sh\n')
    (bin_dir / 'npm').chmod(0o755)
  bazel_tools = tmp_path / 'bazel_tools'
  if installed:
    bazel_tools.mkdir()

  reason = bazel_check_skip_reason(
      {'PATH': str(bin_dir), REQUIRE_BAZEL: required}, bazel_tools)

  if skipped:
    assert reason == (
        'Bazel check skipped: npm not found (needed to install Bazel and '
        'buildifier); set OFFICIAL_EXT_REQUIRE_BAZEL=1 to make this a failure')
  else:
    assert reason is None


def _pytest_runner():
  """tools/pytest_runner.py as a module (tools/ is no Python package)."""
  spec = importlib.util.spec_from_file_location(
      'pytest_runner', REPO / 'tools' / 'pytest_runner.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_runner_drops_finders_that_import_official_ext_from_elsewhere(
    tmp_path):
  runfiles = tmp_path / 'runfiles'
  (runfiles / 'official_ext').mkdir(parents=True)
  (runfiles / 'official_ext' / '__init__.py').write_text('')
  checkout = tmp_path / 'checkout'
  (checkout / 'official_ext').mkdir(parents=True)
  (checkout / 'official_ext' / '__init__.py').write_text('')

  def finder_of(package_dir):
    """A finder like setuptools' editable hook, mapping official_ext there."""

    class Finder:

      @classmethod
      def find_spec(cls, fullname, path=None, target=None):
        del path, target
        if fullname != 'official_ext':
          return None
        return importlib.util.spec_from_file_location(
            fullname, package_dir / 'official_ext' / '__init__.py')

    return Finder

  editable_hook = finder_of(checkout)
  runfiles_finder = finder_of(runfiles)
  standard = [importlib.machinery.BuiltinImporter,
              importlib.machinery.PathFinder]

  kept = _pytest_runner().without_outside_finders(
      [*standard, editable_hook, runfiles_finder], str(runfiles))

  assert kept == [*standard, runfiles_finder]


@pytest.mark.bazel
def test_bazel_check_passes():
  reason = bazel_check_skip_reason(os.environ, BAZEL_TOOLS)
  if reason:
    pytest.skip(reason)
  # Bazel runs tests with the `python3` it finds on PATH: make that the
  # interpreter running this test, whose environment has the third-party
  # packages.
  path = os.pathsep.join(
      [os.path.dirname(sys.executable), os.environ.get('PATH', '')])
  check = subprocess.run(['bash', str(REPO / 'tools' / 'bazel_check.sh')],
                         env=dict(os.environ, PATH=path),
                         capture_output=True, text=True, check=False)
  assert check.returncode == 0, (
      f'tools/bazel_check.sh exited {check.returncode}:\n'
      f'{check.stdout[-10000:]}\n{check.stderr[-10000:]}')
