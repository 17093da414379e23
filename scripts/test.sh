#!/usr/bin/env bash
# The whole test suite: type check, unit tests, conformance suites, real-kernel integration tests.
# Real-kernel tests run inside throwaway network namespaces (cnmt-*) and need root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test

echo "== type check" >&2
npx tsc -p tsconfig.json --noEmit

mapfile -t files < <(find test/unit test/integration -name '*.test.ts' 2>/dev/null | sort)
if [ "$#" -gt 0 ]; then files=("$@"); fi
echo "== ${#files[@]} test files" >&2
exec node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
