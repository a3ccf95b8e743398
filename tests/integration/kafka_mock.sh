#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kafka_mock.sh - kafka-mock end to end: argument errors exit 64; a started
# mock prints loopback bootstraps first, serves keyed produce/consume (kcat,
# when installed), obeys control-FIFO commands and exits 0 on SIGTERM.
set -u

top=${MLS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${MLS_BIN:-bin}
[[ $bin == /* ]] || bin=$top/$bin
mock=$bin/kafka-mock
work=$top/tests/out/kafka_mock.$$
mkdir -p "$work"

pids=()
failures=0

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

pass() {
	echo "ok: $*"
}

# wait_for DESC TRIES CMD...: retry CMD every 0.1 s; a generous deadline,
# not a timing assertion (the machine has 2 noisy cores).
wait_for() {
	local desc=$1 tries=$2
	shift 2
	for _ in $(seq "$tries"); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out waiting for $desc"
	return 1
}

[[ -x $mock ]] || { echo "FAIL: $mock not built"; exit 1; }

# --- usage errors exit 64 and never start a cluster ----------------------
expect_usage() {
	local rc
	timeout 10 "$mock" "$@" >"$work/usage.out" 2>"$work/usage.err"
	rc=$?
	if ((rc == 64)) && [[ -s $work/usage.err ]] && [[ ! -s $work/usage.out ]]
	then
		pass "usage error exits 64: $*"
	else
		fail "expected exit 64 with a message for: $* (got $rc)"
	fi
}
expect_usage --topic 'bad/name:3'
expect_usage --topic 'audience:0'
expect_usage --topic 'audience'
expect_usage --topic 'a.b:1' --topic 'a_b:1'
expect_usage --brokers 10 --topic 'audience:3'
expect_usage --no-such-option

if timeout 10 "$mock" --help >"$work/help.out" 2>&1 &&
	grep -q -- '--control-fifo' "$work/help.out"; then
	pass "--help"
else
	fail "--help did not exit 0 with usage text"
fi

# --- start the mock -------------------------------------------------------
fifo=$work/ctl
bsfile=$work/bootstrap
"$mock" --brokers 3 --topic audience:6 --topic control:2 \
	--bootstrap-file "$bsfile" --control-fifo "$fifo" \
	>"$work/mock.out" 2>"$work/mock.err" &
mock_pid=$!
pids+=("$mock_pid")

first_line() { [[ -s $work/mock.out ]] && head -n 1 "$work/mock.out" | grep -q .; }
wait_for "the bootstrap line" 300 first_line || exit 1
bs=$(head -n 1 "$work/mock.out")
echo "bootstrap: $bs"

lo='127\.0\.0\.1:[0-9]+'
if [[ $bs =~ ^$lo,$lo,$lo$ ]]; then
	pass "first stdout line lists 3 loopback brokers"
else
	fail "bootstrap line is not 3 loopback addresses: '$bs'"
fi
if [[ -f $bsfile && $(cat "$bsfile") == "$bs" ]]; then
	pass "bootstrap file matches stdout"
else
	fail "bootstrap file missing or different"
fi
if [[ -p $fifo ]]; then
	pass "control FIFO created"
else
	fail "control FIFO missing"
fi

# A bad command is reported on stderr and the mock keeps running.
echo "frobnicate 1" >"$fifo"
bad_reported() { grep -q 'bad control command' "$work/mock.err"; }
if wait_for "bad-command report" 100 bad_reported &&
	kill -0 "$mock_pid" 2>/dev/null; then
	pass "bad FIFO command reported and ignored"
fi

# --- kcat: keyed produce/consume, FIFO effects ----------------------------
if ! command -v kcat >/dev/null; then
	echo "SKIP: kcat not installed (apt-get install kcat); produce/consume part skipped"
else
	kx=(-b "$bs" -X socket.timeout.ms=10000 -X topic.metadata.refresh.interval.ms=1000)

	# Partition count of a topic as the cluster reports it.
	partitions_of() {
		timeout 20 kcat -L "${kx[@]}" -t "$1" 2>/dev/null |
			sed -n "s/^  topic \"$1\" with \([0-9]*\) partitions:.*/\1/p"
	}
	[[ $(partitions_of audience) == 6 ]] && pass "audience has 6 partitions" ||
		fail "audience does not have 6 partitions"
	[[ $(partitions_of control) == 2 ]] && pass "control has 2 partitions" ||
		fail "control does not have 2 partitions"

	# 100 messages over 10 keys, then 50 more with the same keys.
	produce() { # FIRST LAST
		local i
		for i in $(seq "$1" "$2"); do
			echo "mkto-$((i % 10)):msg-$i"
		done >"$work/produce.txt"
		timeout 60 kcat -P "${kx[@]}" -t audience -K: -l "$work/produce.txt"
	}
	consume() { # EXPECTED-COUNT
		timeout 60 kcat -C "${kx[@]}" -t audience -o beginning -e -q \
			-c "$1" -f '%p %k %s\n' >"$work/consumed.txt"
	}
	# Each key on exactly one partition, and how many keys/messages.
	check_keys() { # EXPECTED-COUNT LABEL
		local n keys split
		n=$(wc -l <"$work/consumed.txt")
		keys=$(awk '{print $2}' "$work/consumed.txt" | sort -u | wc -l)
		split=$(awk '{print $2, $1}' "$work/consumed.txt" | sort -u |
			awk '{print $1}' | uniq -d | wc -l)
		if ((n == $1 && keys == 10 && split == 0)) &&
			[[ $(awk '{print $3}' "$work/consumed.txt" | sort -u | wc -l) == "$1" ]]
		then
			pass "$2: $n unique messages, 10 keys, each on one partition"
		else
			fail "$2: got $n messages, $keys keys, $split keys split"
		fi
	}

	produce 0 99 || fail "kcat produce failed"
	consume 100 || fail "kcat consume failed"
	check_keys 100 "first batch"
	awk '{print $2, $1}' "$work/consumed.txt" | sort -u >"$work/map1.txt"

	produce 100 149 || fail "kcat produce (second batch) failed"
	consume 150 || fail "kcat consume (second batch) failed"
	check_keys 150 "both batches"
	awk '{print $2, $1}' "$work/consumed.txt" | sort -u >"$work/map2.txt"
	if cmp -s "$work/map1.txt" "$work/map2.txt"; then
		pass "keys map to the same partitions across producer runs"
	else
		fail "key to partition map changed between producer runs"
	fi
	if (($(awk '{print $2}' "$work/map1.txt" | sort -u | wc -l) > 1)); then
		pass "keys spread over more than one partition"
	else
		fail "all keys landed on one partition"
	fi

	# FIFO commands reach the cluster.
	echo "topic extra 3" >"$fifo"
	extra_made() { [[ $(partitions_of extra) == 3 ]]; }
	wait_for "topic created through the FIFO" 100 extra_made &&
		pass "FIFO 'topic extra 3' created the topic"

	echo "leader audience 0 3" >"$fifo"
	leader_moved() {
		timeout 20 kcat -L "${kx[@]}" -t audience 2>/dev/null |
			grep -q 'partition 0, leader 3,'
	}
	wait_for "leader move through the FIFO" 100 leader_moved &&
		pass "FIFO 'leader audience 0 3' moved the leader"
fi

# --- SIGTERM: exit 0 within a few seconds, clean up -----------------------
kill -TERM "$mock_pid"
gone() { ! kill -0 "$mock_pid" 2>/dev/null; }
if wait_for "exit after SIGTERM" 100 gone; then
	wait "$mock_pid"
	rc=$?
	pids=()
	((rc == 0)) && pass "SIGTERM exits 0" || fail "SIGTERM exit code $rc"
fi
[[ ! -e $bsfile ]] && pass "bootstrap file removed on exit" ||
	fail "bootstrap file left behind"
[[ ! -e $fifo ]] && pass "FIFO removed on exit" || fail "FIFO left behind"

if ((failures > 0)); then
	echo "kafka_mock: $failures check(s) failed; mock stderr:"
	tail -n 20 "$work/mock.err"
	exit 1
fi
rm -rf "$work"
echo "kafka_mock: all checks passed"
