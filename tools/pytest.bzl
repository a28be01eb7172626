"""pytest_test: a Bazel py_test that runs pytest test files."""

load("@rules_python//python:defs.bzl", "py_test")

_RUNNER = "//tools:pytest_runner.py"

def pytest_test(name, srcs, deps = [], data = [], **kwargs):
    """A py_test whose main runs pytest on `srcs` (one test file, by convention).

    Bazel runs a py_test's main as a script; tools/pytest_runner.py gives the
    files pytest's fixtures, tests/conftest.py (4 logical CPUs, quiet
    TensorFlow) and pytest.ini (markers, warning filters).

    Args:
      name: the target's name: the test file's, without `.py`.
      srcs: the pytest files.
      deps: the py_library targets the files import (third-party packages
        come from the Python environment).
      data: files the tests read at run time.
      **kwargs: further py_test attributes (size, tags, ...).
    """
    py_test(
        name = name,
        srcs = srcs + [_RUNNER],
        main = _RUNNER,
        args = ["$(location %s)" % src for src in srcs],
        deps = deps + ["//tests:conftest"],
        data = data + ["//:pytest.ini"],
        **kwargs
    )
