#!/usr/bin/env bash
# Runs the benchmark programs (tests/bench/bench_*.c, built into
# $MLS_BIN/tests) one after the other; each prints its own table.
# Usage: tests/bench.sh [NAME]   (NAME: only bench_NAME)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export MLS_TOP=$top
bin=${MLS_BIN:-bin}
export MLS_BIN=$bin
mkdir -p tests/out
rc=0
only=${1:-}
for prog in "$bin"/tests/bench_*; do
	[[ -x $prog ]] || continue
	[[ -z $only || $(basename "$prog") == "bench_$only" ]] || continue
	echo "=== $(basename "$prog")"
	"$prog" || rc=1
	echo
done
exit $rc
