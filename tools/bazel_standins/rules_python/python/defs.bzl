"""Offline stand-in for @rules_python//python:defs.bzl: Bazel's native rules."""

py_binary = native.py_binary
py_library = native.py_library
py_test = native.py_test
