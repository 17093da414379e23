#!/usr/bin/env bash
# The whole test suite: type check, unit tests, conformance suites, real-kernel integration tests.
# Real-kernel tests run inside throwaway network namespaces (cnmt-*) and need root.
# At the end: every skipped test with its reason, and the run FAILS when, as root, a real-kernel or
# real-client test was skipped (reasons starting "real kernel:" / "real client:", test/helpers/privileges.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test

mapfile -t files < <(find test/unit test/integration -name '*.test.ts' 2>/dev/null | sort)
# The longest files start first (longest processing time first): the workers then end together on the
# many short files instead of one waiting for a long file that started last. Seconds: a full run at three
# files at a time on a shared, loaded 2-core machine (load 10-13).
slow_first=(
  test/integration/kernel-netlink.test.ts      # 91
  test/integration/kernel-iproute.test.ts      # 88
  test/integration/multihost-demo.test.ts      # 85
  test/integration/killed-file-cleanup.test.ts # 59 (waits)
  test/integration/ports-ipv6.test.ts          # 58
  test/integration/firewall.test.ts            # 52
  test/integration/cluster-faults.test.ts      # 49
  test/integration/docker-plugin.test.ts       # 46
  test/integration/ports.test.ts               # 43
  test/integration/overlay-gateway.test.ts     # 41
  test/integration/cluster-vip.test.ts         # 40
  test/integration/store-etcd-faults.test.ts   # 39
  test/integration/services.test.ts            # 38
  test/integration/reconcile-ownership.test.ts # 37
  test/integration/services-ipv6.test.ts       # 37
  test/integration/api-limits.test.ts          # 37
  test/integration/cluster-overlay.test.ts     # 34
)
ordered=()
for f in "${slow_first[@]}"; do [[ " ${files[*]} " == *" $f "* ]] && ordered+=("$f"); done
for f in "${files[@]}"; do [[ " ${slow_first[*]} " == *" $f "* ]] || ordered+=("$f"); done
files=("${ordered[@]}")
if [ "$#" -gt 0 ]; then files=("$@"); fi
echo "== ${#files[@]} test files" >&2
report=$(mktemp "${TMPDIR:-/tmp}/cnm-test-report.XXXXXX")
# This run's token and notes (test/helpers/teardown.ts): whatever a killed test file left behind is
# removed when the run ends, by scripts/sweep-test-run.sh, which touches only what carries this token.
CNM_TEST_RUN="cnmrun-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CNM_TEST_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cnm-test-run.XXXXXX")
export CNM_TEST_RUN CNM_TEST_RUN_DIR
sweep() { env -u CNM_TEST_RUN -u CNM_TEST_RUN_DIR bash scripts/sweep-test-run.sh "$CNM_TEST_RUN_DIR" "$CNM_TEST_RUN" >&2 || true; }
# The type check emits this checkout's JavaScript into a directory of the run: the tests' daemons and CLI
# runs use it (test/helpers/daemon.ts cliEntry), a quarter of the CPU of starting them through tsx.
# One level below the checkout, like dist/, so package.json and node_modules resolve the same way.
test_dist=".test-dist-$CNM_TEST_RUN"
trap 'sweep; rm -rf "$report" "$test_dist"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== type check" >&2
npx tsc -p tsconfig.json --outDir "$test_dist" --sourceMap false
export CNM_TEST_CLI_ENTRY="$PWD/$test_dist/src/cli/main.js"
if [ -t 1 ]; then shown=spec; else shown=tap; fi
rc=0
# Three files at a time on two cores: most integration tests wait (probes, timeouts, daemons starting in
# other processes) more than they compute. Ten of the longest integration files, same load (~15, shared
# machine): 428 s with 2 at a time, 286 s with 3, no failure in either.
node --import tsx --test --test-concurrency=3 --test-timeout=300000 \
  --test-reporter="$shown" --test-reporter-destination=stdout \
  --test-reporter=./test/helpers/skip-reporter.mjs --test-reporter-destination="$report" \
  "${files[@]}" || rc=$?

forbidden=0
if grep -q '^skip' "$report"; then
  echo
  echo "== skipped tests"
  while IFS=$'\t' read -r kind file name reason; do
    [ "$kind" = skip ] || continue
    echo "SKIP ${file#"$PWD/"} > $name: $reason"
    if [ "$(id -u)" -eq 0 ] && [[ "$reason" == "real kernel:"* || "$reason" == "real client:"* ]]; then forbidden=$((forbidden + 1)); fi
  done <"$report"
fi
if [ "$forbidden" -gt 0 ]; then
  echo "FAIL: $forbidden real-kernel or real-client test(s) skipped on a root machine (counted as failed below)"
  rc=1
fi
echo
echo "== slowest test files (seconds, the tests' own time; the run took $SECONDS s)"
grep '^file' "$report" | sort -t$'\t' -k2,2nr | awk 'NR <= 12' | while IFS=$'\t' read -r _ ms file; do
  printf '%6d  %s\n' "$((ms / 1000))" "${file#"$PWD/"}"
done
IFS=$'\t' read -r _ passed failed skipped < <(grep '^total' "$report" || printf 'total\t0\t0\t0\n')
echo "tests: $passed passed, $((failed + forbidden)) failed, $((skipped - forbidden)) skipped"
[ "$rc" -ne 0 ] || [ "$((failed + forbidden))" -eq 0 ] || rc=1
exit "$rc"
