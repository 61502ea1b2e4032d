#!/bin/sh
# Installs what vmrunner needs from the distribution's packages, when missing:
# QEMU for x86_64 and arm64 guests, the Debian archive keyring used to
# verify the mirror's Release signatures, tmux for the shell test, and the
# archive tools the fixture tests build Ubuntu and RPM repositories with. Needs root or sudo for apt-get.
set -eu
missing=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
command -v qemu-system-aarch64 >/dev/null 2>&1 || missing="$missing qemu-system-arm"
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$missing debian-archive-keyring"
# tmux drives the interactive `vmrunner repro --shell` in the integration tests.
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
# The fixture archives of the ubuntu: and rpm: sources' tests are made with
# the distros' own tools (docs/fleet-kernels.md).
command -v apt-ftparchive >/dev/null 2>&1 || missing="$missing apt-utils"
command -v dpkg-deb >/dev/null 2>&1 || missing="$missing dpkg"
command -v gpg >/dev/null 2>&1 || missing="$missing gnupg"
command -v rpmbuild >/dev/null 2>&1 || missing="$missing rpm"
command -v createrepo_c >/dev/null 2>&1 || missing="$missing createrepo-c"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: please install:$missing (this script knows only apt-get)" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
		echo "install-deps: run as root or install sudo, then: apt-get install$missing" >&2
		exit 1
	fi
fi
echo "install-deps: installing$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
