# Sourced by tools/bazel.sh and tools/bazel_check.sh (bash): installs the
# pinned Bazel and buildifier if needed and defines
#   ROOT        the workspace root;
#   BAZEL       Bazel $(cat .bazelversion), run as "$BAZEL" "${BAZEL_STARTUP[@]}";
#   BUILDIFIER  buildifier $BUILDIFIER_VERSION.
#
# Both come from the npm registry into .bazel_tools/ (git-ignored), skipped
# when already there. Bazel downloads nothing: the repositories it would
# fetch are pointed at the stand-ins under tools/bazel_standins/ by
# .bazel_tools/overrides.bazelrc, which .bazelrc imports (Bazel 2.1 wants
# absolute override paths, so they are written here, for this checkout).
# Bazel's output lives under $OFFICIAL_EXT_BAZEL_ROOT (default: a per-user
# directory in $TMPDIR), outside the source tree.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly BUILDIFIER_VERSION=8.2.1
_tools="$ROOT/.bazel_tools"
_bazel_version="$(cat "$ROOT/.bazelversion")"
readonly BAZEL="$_tools/node_modules/@bazel/bazel-linux_x64/bazel-$_bazel_version-linux-x86_64"
readonly BUILDIFIER="$_tools/node_modules/@bazel/buildifier/buildifier-linux_amd64"
# A server left behind (say, by a killed check) exits after 10 idle minutes.
readonly BAZEL_STARTUP=(
  "--output_user_root=${OFFICIAL_EXT_BAZEL_ROOT:-${TMPDIR:-/tmp}/official_ext_bazel_$(id -u)}"
  --max_idle_secs=600
)

if [[ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]]; then
  echo "tools/bazel_env.sh: npm ships Bazel $_bazel_version for Linux x86_64," \
    "not for $(uname -s)-$(uname -m)" >&2
  exit 1
fi

if [[ ! -x "$BAZEL" || ! -x "$BUILDIFIER" ]]; then
  if ! command -v npm >/dev/null; then
    echo "tools/bazel_env.sh: installing Bazel needs npm (Node.js)" >&2
    exit 1
  fi
  # --ignore-scripts: the binaries need no install hook, only their execute
  # bit, which npm drops (and @bazel/bazel's node wrapper then exits 0
  # without running anything, so the binaries are called directly).
  npm install --prefix "$_tools" --no-audit --no-fund --ignore-scripts \
    --loglevel=error "@bazel/bazel@$_bazel_version" \
    "@bazel/bazel-linux_x64@$_bazel_version" \
    "@bazel/buildifier@$BUILDIFIER_VERSION" >&2
  chmod +x "$BAZEL" "$BUILDIFIER"
fi

{
  echo "# Written by tools/bazel_env.sh for $ROOT."
  for _repository in rules_cc rules_java rules_python remote_coverage_tools; do
    for _command in build query; do
      echo "$_command --override_repository=$_repository=$ROOT/tools/bazel_standins/$_repository"
    done
  done
} >"$_tools/overrides.bazelrc.$$"
mv "$_tools/overrides.bazelrc.$$" "$_tools/overrides.bazelrc"
