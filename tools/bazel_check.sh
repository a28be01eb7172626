#!/usr/bin/env bash
# Checks the Bazel build, offline (tools/bazel_env.sh installs the pinned
# Bazel and buildifier on first use):
#   1. buildifier: BUILD, .bzl and WORKSPACE files formatted and lint-clean;
#   2. bazel query //... and bazel build of every target (manual ones too);
#   3. bazel test of one small test per package (test results are not
#      cached, the tests really run): the pytest suite runs every test file
#      and tests/build_test.py checks every target's deps against its
#      imports, so Bazel shows the rules work without paying a Python and
#      TensorFlow start-up per test file;
#   4. a test missing a dep on what it imports fails (tools/bazel_selftest).
# Run by tests/build_test.py; stops the Bazel server it started when done.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bazel_env.sh"
cd "$ROOT"

bazel() {
  "$BAZEL" "${BAZEL_STARTUP[@]}" "$@"
}
selftest_log="$(mktemp)"
trap 'bazel shutdown; rm -f "$selftest_log"' EXIT

step() {
  echo "== [${SECONDS}s] $*"
}

step buildifier
mapfile -t bazel_files < <(find . \( -path ./.git -o -path ./.bazel_tools \) \
  -prune -o \( -name BUILD -o -name '*.bzl' -o -name WORKSPACE \) -print | sort)
"$BUILDIFIER" -mode=check -lint=warn -warnings=all "${bazel_files[@]}"
echo "${#bazel_files[@]} files formatted and lint-clean"

step bazel query
echo "$(bazel query //... | wc -l) targets"
mapfile -t manual_targets < <(bazel query 'attr(tags, "\bmanual\b", //...)')

step bazel build
bazel build -- //... "${manual_targets[@]}"

step bazel test: one small test per package
mapfile -t small_tests < <(bazel query \
  'attr(size, small, tests(//...)) except attr(tags, "\bmanual\b", //...)' |
  sort | awk -F: '!seen[$1]++')
bazel test --nocache_test_results -- "${small_tests[@]}"

step bazel test: an undeclared dep fails
if bazel test --nocache_test_results --test_output=all \
    //tools/bazel_selftest:undeclared_dep_test >"$selftest_log" 2>&1; then
  cat "$selftest_log"
  echo "FAIL: //tools/bazel_selftest:undeclared_dep_test imported official_ext" \
    "without a dep on it: tests can import what their BUILD target does not" \
    "declare (see tools/pytest_runner.py)" >&2
  exit 1
fi
if ! grep -q "ModuleNotFoundError: No module named 'official_ext'" "$selftest_log"; then
  cat "$selftest_log"
  echo "FAIL: //tools/bazel_selftest:undeclared_dep_test failed, but not for" \
    "the missing official_ext" >&2
  exit 1
fi
echo "failed as it must: ModuleNotFoundError: No module named 'official_ext'"
step done
