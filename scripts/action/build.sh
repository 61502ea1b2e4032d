#!/usr/bin/env bash
# Step "build" of the vmrunner action (action.yml), runnable without GitHub:
#   BIN=/tmp/vmrunner-bin [VERSION=...] scripts/action/build.sh
# Puts vmrunner and the guest binaries beside it into $BIN (default
# $RUNNER_TEMP/vmrunner-bin). VERSION says which:
#   empty        the release named by the action's ref ($ACTION_REF) when it
#                is a tag v..., else the latest release
#   v...         that release
#                Releases come from $VMRUNNER_RELEASES (default
#                https://github.com/vmrunner/vmrunner/releases):
#                vmrunner-linux-<amd64|arm64>.tar.gz and SHA256SUMS. An
#                archive whose sha256 is not the one SHA256SUMS lists is
#                refused and the step fails. Needs curl, sha256sum, tar.
#   source       built from the source tree this script is in (make cli
#                agents; needs Go): what the nightly workflow tests
#   REF          any other branch or commit: built from a clone of
#                $VMRUNNER_REPO (default https://github.com/vmrunner/vmrunner)
#                at REF (needs Go and git)
# Writes bin= and version= to $GITHUB_OUTPUT when set.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-${RUNNER_TEMP:-/tmp}/vmrunner-bin}
version=${VERSION:-}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

install_release() {
	local tag=$1 base url arch name dl
	base=${VMRUNNER_RELEASES:-https://github.com/vmrunner/vmrunner/releases}
	url=$base/download/$tag
	[ "$tag" != latest ] || url=$base/latest/download
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*)
		echo "::error title=vmrunner::no vmrunner release for $(uname -m): set the action's version to source" >&2
		exit 1
		;;
	esac
	name=vmrunner-linux-$arch.tar.gz
	dl=$(mktemp -d)
	curl -fsSL --retry 3 -o "$dl/$name" "$url/$name"
	curl -fsSL --retry 3 -o "$dl/SHA256SUMS" "$url/SHA256SUMS"
	if ! (cd "$dl" && grep -E "^[0-9a-f]{64}  $name\$" SHA256SUMS | sha256sum -c --strict -); then
		echo "::error title=vmrunner::$name of release $tag does not match its SHA256SUMS: refusing to install it" >&2
		rm -rf "$dl"
		exit 1
	fi
	tar -xzf "$dl/$name" -C "$dl"
	cp -R "$dl/vmrunner-linux-$arch/." "$bin/"
	rm -rf "$dl"
}

case $version in
source)
	# An action is checked out without .git: then the action's ref names it.
	version=$(git -C "$src" describe --always --dirty 2>/dev/null || echo "${ACTION_REF:-dev}")
	make -C "$src" --no-print-directory cli agents BIN="$bin" VERSION="$version"
	;;
"" | v*)
	tag=$version
	if [ -z "$tag" ]; then
		tag=latest
		case ${ACTION_REF:-} in v*) tag=$ACTION_REF ;; esac
	fi
	install_release "$tag"
	version=$("$bin/vmrunner" version | awk '{print $2}')
	;;
*)
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	git clone --quiet "${VMRUNNER_REPO:-https://github.com/vmrunner/vmrunner}" "$work/vmrunner"
	git -C "$work/vmrunner" -c advice.detachedHead=false checkout --quiet "$version"
	make -C "$work/vmrunner" --no-print-directory cli agents BIN="$bin" VERSION="$version"
	;;
esac
"$bin/vmrunner" version
{
	echo "bin=$bin"
	echo "version=$version"
} >>"${GITHUB_OUTPUT:-/dev/null}"
