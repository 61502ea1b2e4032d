#!/usr/bin/env bash
# Builds a vmrunner release, the same here as in .github/workflows/release.yml:
#   scripts/release.sh VERSION [OUT]
# writes into OUT (default dist/):
#   vmrunner-linux-amd64.tar.gz, vmrunner-linux-arm64.tar.gz
#       vmrunner for that host, and beside it what it needs: the guest agents
#       and workload runners for both guest arches and the guest shell tools
#       (the layout of `make build`, so vmrunner finds them beside itself);
#   vmrunner.spdx.json   an SPDX 2.3 SBOM: every Go module in those binaries;
#   SHA256SUMS           sha256sum of the archives and the SBOM;
#   NOTES.md             release notes: the commits since the previous tag.
# Archive names carry no version, so that .../releases/latest/download/NAME
# works (scripts/action/build.sh installs that way). Binaries are static
# (CGO_ENABLED=0) and built with -trimpath. Needs Go, make, git, tar,
# sha256sum. Publishing (gh release, provenance) is the workflow's part.
set -euo pipefail
version=${1:?usage: scripts/release.sh VERSION [OUT]}
out=${2:-dist}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0

# What runs in the guest is the same in both archives: built once.
make -C "$src" --no-print-directory agents guest-tools BIN="$work/guest" VERSION="$version"
for arch in amd64 arm64; do
	stage=$work/vmrunner-linux-$arch
	mkdir -p "$stage"
	cp -R "$work/guest/." "$stage/"
	GOOS=linux GOARCH=$arch make -C "$src" --no-print-directory cli BIN="$stage" VERSION="$version"
	cp "$src/README.md" "$stage/"
	[ ! -f "$src/LICENSE" ] || cp "$src/LICENSE" "$stage/"
	# Reproducible: sorted names, fixed owner and time.
	tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
		-czf "$out/vmrunner-linux-$arch.tar.gz" "vmrunner-linux-$arch"
done

(cd "$src" && go run ./internal/release/sbom -name vmrunner -version "$version" \
	"$work"/vmrunner-linux-*/vmrunner "$work"/guest/vmrunner-agent-* "$work"/guest/vmrunner-workload-*) >"$out/vmrunner.spdx.json"

(cd "$out" && sha256sum vmrunner-linux-amd64.tar.gz vmrunner-linux-arm64.tar.gz vmrunner.spdx.json >SHA256SUMS)

# Notes: the commits since the previous tag (all of them for the first).
range=HEAD
if prev=$(git -C "$src" describe --tags --abbrev=0 HEAD^ 2>/dev/null); then
	range=$prev..HEAD
fi
{
	echo "## vmrunner $version"
	echo
	echo "Changes${prev:+ since $prev}:"
	echo
	git -C "$src" log --no-merges --format='- %s (%h)' "$range"
	echo
	echo "Verify: \`sha256sum -c SHA256SUMS\`; provenance: \`gh attestation verify vmrunner-linux-amd64.tar.gz --repo OWNER/REPO\`."
} >"$out/NOTES.md"
ls -l "$out"
