#!/usr/bin/env bash
# Step "build" of the vmrunner action (action.yml), runnable without GitHub:
#   BIN=/tmp/vmrunner-bin [VERSION=REF [VMRUNNER_REPO=URL]] scripts/action/build.sh
# Builds bin/vmrunner and the guest agents (make cli agents) into $BIN
# (default $RUNNER_TEMP/vmrunner-bin): from the source tree this script is
# in, or with VERSION from that tag, branch or commit of $VMRUNNER_REPO
# (default https://github.com/vmrunner/vmrunner). Needs Go and git.
# Writes bin= and version= to $GITHUB_OUTPUT when set.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-${RUNNER_TEMP:-/tmp}/vmrunner-bin}
version=${VERSION:-}
if [ -n "$version" ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	git clone --quiet "${VMRUNNER_REPO:-https://github.com/vmrunner/vmrunner}" "$work/vmrunner"
	git -C "$work/vmrunner" -c advice.detachedHead=false checkout --quiet "$version"
	src=$work/vmrunner
else
	# An action is checked out without .git: then the action's ref names it.
	version=$(git -C "$src" describe --always --dirty 2>/dev/null || echo "${ACTION_REF:-dev}")
fi
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)
make -C "$src" --no-print-directory cli agents BIN="$bin" VERSION="$version"
"$bin/vmrunner" version
{
	echo "bin=$bin"
	echo "version=$version"
} >>"${GITHUB_OUTPUT:-/dev/null}"
