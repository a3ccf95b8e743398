#!/usr/bin/env bash
# Runs the test programs: unit tests first, then integration tests (real
# processes over loopback). Usage: tests/run.sh [unit|integration] [NAME...]
# Prints one line per program and a closing "N passed, N failed" line.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export MLS_TOP=$top
bin=${MLS_BIN:-bin}
export MLS_BIN=$bin
mkdir -p tests/out
which=${1:-all}
shift || true
filter=("$@")

passed=0
failed=0
failed_names=()

selected() {
	local name=$1
	((${#filter[@]} == 0)) && return 0
	for f in "${filter[@]}"; do [[ $name == *"$f"* ]] && return 0; done
	return 1
}

run_one() {
	local prog=$1 name log start rc
	name=$(basename "$prog")
	selected "$name" || return 0
	log=tests/out/$name.log
	start=$(date +%s)
	echo "--- $name"
	if [[ $prog == *.sh ]]; then
		bash "$prog" >"$log" 2>&1
	else
		"$prog" >"$log" 2>&1
	fi
	rc=$?
	# cmocka's own summary lines, so CI can read them.
	grep -E '^\[ *(PASSED|FAILED|SKIPPED) *\]|^\[==========\]' "$log" | tail -n 4
	if ((rc == 0)); then
		passed=$((passed + 1))
		echo "ok   $name ($(($(date +%s) - start)) s)"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		echo "FAIL $name (exit $rc, $(($(date +%s) - start)) s); last lines of $log:"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
}

if [[ $which == all || $which == unit ]]; then
	for prog in "$bin"/tests/test_*; do
		[[ -x $prog ]] && run_one "$prog"
	done
fi
if [[ $which == all || $which == integration ]]; then
	for prog in "$bin"/tests/it_* tests/integration/*.sh; do
		[[ -e $prog ]] && run_one "$prog"
	done
fi

echo
((failed > 0)) && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
((failed == 0))
