#!/bin/sh
# Installs what only the test suite needs, when missing: Debian's chromium,
# which report/html_test.go drives headless to check the HTML report after
# its script ran, and shellcheck, which ci/ runs on the workflows' and the
# action's scripts. CI (.ci/run) calls this before `make test`; developers
# may skip it, and those tests then skip with a note. Needs root or sudo.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: please install:$missing (this script knows only apt-get)" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
		echo "install-test-deps: run as root or install sudo, then: apt-get install$missing" >&2
		exit 1
	fi
fi
echo "install-test-deps: installing$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
