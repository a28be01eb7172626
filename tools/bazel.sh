#!/usr/bin/env bash
# Runs this workspace's pinned Bazel, offline (see tools/bazel_env.sh):
#
#   tools/bazel.sh test //tests/modeling/optimization:lars_test
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bazel_env.sh"
cd "$ROOT"
exec "$BAZEL" "${BAZEL_STARTUP[@]}" "$@"
