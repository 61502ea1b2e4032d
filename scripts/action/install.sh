#!/usr/bin/env bash
# Step "install" of the vmrunner action (action.yml), runnable without GitHub:
#   scripts/action/install.sh
# Installs QEMU for both arches and the Debian archive keyring when missing
# (scripts/install-deps.sh), and opens /dev/kvm to the runner's user with a
# udev rule when the machine has one (GitHub's x86_64 Linux runners do; it
# is root's only there). Writes kvm=true|false to $GITHUB_OUTPUT when set.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/scripts/install-deps.sh"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
if [ -e /dev/kvm ] && [ ! -w /dev/kvm ]; then
	echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' | $sudo tee /etc/udev/rules.d/99-kvm4all.rules >/dev/null
	$sudo udevadm control --reload-rules
	$sudo udevadm trigger --name-match=kvm
	$sudo udevadm settle || true
fi
kvm=false
if [ -e /dev/kvm ] && [ -w /dev/kvm ]; then
	kvm=true
	echo "install: /dev/kvm is usable: guests of the runner's arch run under KVM, the others under TCG"
else
	echo "install: no usable /dev/kvm: every guest runs under TCG emulation (several times slower)"
fi
echo "kvm=$kvm" >>"${GITHUB_OUTPUT:-/dev/null}"
