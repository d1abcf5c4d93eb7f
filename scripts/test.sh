#!/usr/bin/env bash
# Runs the whole test suite (unit + integration against a real local cluster and S3
# server) on a fresh Debian machine as root, and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

report=$(mktemp)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node scripts/summary.mjs "$report" || status=1
rm -f "$report"
exit "$status"
