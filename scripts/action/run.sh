#!/usr/bin/env bash
# Step "run" of the vmrunner action (action.yml), runnable without GitHub:
#   VMRUNNER=/tmp/vmrunner-bin/vmrunner MATRIX=matrix.yaml KERNEL="6.1" ARCH=x86_64 \
#   SHARD=1/3 JUNIT=junit.xml scripts/action/run.sh
# Runs `vmrunner run` with the action's inputs, all optional but VMRUNNER:
#   MATRIX     matrix file (default matrix.yaml)
#   KERNEL     kernel names, space-separated (--kernel each)
#   ARCH       arches, space-separated (--arch each)
#   SHARD      I/N: only that shard of the plan (vmrunner plan)
#   TIMINGS    previous results.json the plan was balanced with (--timings)
#   RUNNERS    ARCH=LABEL words the plan was made with (--runner each)
#   PLAN_HASH  the plan's hash from the plan job (--plan-hash)
#   JUNIT      also write JUnit XML there, and a copy into the run directory
#   ARGS       more vmrunner run flags, split on spaces (e.g. --parallel 4)
#   OUT        results directory (default vmrunner-results)
#   ARTIFACT   artifact name (default vmrunner-results, or vmrunner-shard-I-of-N)
# Writes dir=, exit-code= and artifact= to $GITHUB_OUTPUT when set, and exits
# with vmrunner's exit code (0 pass, 1 a check failed, 2 bad input, 3
# infrastructure).
set -uo pipefail
vmrunner=${VMRUNNER:?set VMRUNNER to the vmrunner binary (see build.sh)}
out=${OUT:-vmrunner-results}
args=(run "${MATRIX:-matrix.yaml}" --out "$out")
read -ra words <<<"${KERNEL:-}"
for w in "${words[@]}"; do args+=(--kernel "$w"); done
read -ra words <<<"${ARCH:-}"
for w in "${words[@]}"; do args+=(--arch "$w"); done
read -ra words <<<"${RUNNERS:-}"
for w in "${words[@]}"; do args+=(--runner "$w"); done
if [ -n "${SHARD:-}" ]; then args+=(--shard "$SHARD"); fi
if [ -n "${TIMINGS:-}" ]; then args+=(--timings "$TIMINGS"); fi
if [ -n "${PLAN_HASH:-}" ]; then args+=(--plan-hash "$PLAN_HASH"); fi
if [ -n "${JUNIT:-}" ]; then args+=(--junit "$JUNIT"); fi
read -ra words <<<"${ARGS:-}"
args+=("${words[@]}")

echo "+ vmrunner ${args[*]}"
code=0
"$vmrunner" "${args[@]}" || code=$?

artifact=${ARTIFACT:-vmrunner-results}
if [ -z "${ARTIFACT:-}" ] && [ -n "${SHARD:-}" ]; then
	artifact="vmrunner-shard-${SHARD%/*}-of-${SHARD#*/}"
fi
dir=""
if [ -e "$out/latest" ]; then
	dir=$(readlink -f "$out/latest")
	if [ -n "${JUNIT:-}" ] && [ -f "$JUNIT" ]; then cp "$JUNIT" "$dir/junit.xml"; fi
fi
{
	echo "dir=$dir"
	echo "exit-code=$code"
	echo "artifact=$artifact"
} >>"${GITHUB_OUTPUT:-/dev/null}"
exit "$code"
