#!/usr/bin/env bash
# The mlsync command line as a user meets it: config check and print on the
# shipped example, a broken file reported as file:line:column with exit 78,
# secrets redacted, version and help, usage errors exit 64.
set -u
top=${MLS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 1
mlsync=${MLS_BIN:-bin}/mlsync
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

ok() { echo "ok   $1"; }
bad() {
	echo "FAIL $1"
	fails=$((fails + 1))
}
# expect NAME WANT_RC CMD...: runs CMD, keeps stdout+stderr in $out.
expect() {
	local name=$1 want=$2 rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [[ $rc == "$want" ]]; then ok "$name (exit $rc)"; else
		bad "$name: exit $rc, want $want"
		printf '%s\n' "$out" | sed 's/^/     /'
	fi
}
has() {
	if grep -qF -- "$2" <<<"$out"; then ok "$1"; else
		bad "$1: no '$2' in:"
		printf '%s\n' "$out" | sed 's/^/     /'
	fi
}
hasnt() {
	if grep -qF -- "$2" <<<"$out"; then
		bad "$1: '$2' found in:"
		printf '%s\n' "$out" | sed 's/^/     /'
	else ok "$1"; fi
}

export MARKETO_CLIENT_ID=cli-test-client
export MARKETO_CLIENT_SECRET=cli-test-Sup3rSecret
unset MLSYNC_CONFIG KAFKA_BROKERS

expect "config check on config.example.yaml" 0 \
	"$mlsync" config check -c config.example.yaml
has "check names the file" "config.example.yaml: ok"

expect "config print" 0 "$mlsync" config print -c config.example.yaml
has "print shows the redaction" "client_secret: \"<redacted>\""
hasnt "print never shows the secret" "cli-test-Sup3rSecret"
has "print shows defaults" "max_wait_ms: 1000"

expect "MLSYNC_CONFIG is read when -c is absent" 0 \
	env MLSYNC_CONFIG=config.example.yaml "$mlsync" config check

(
	unset MARKETO_CLIENT_SECRET
	expect "unset variable" 78 "$mlsync" config check -c config.example.yaml
	line=$(grep -n 'client_secret: ${MARKETO_CLIENT_SECRET}' config.example.yaml | cut -d: -f1)
	has "unset variable named at its position" \
		"config.example.yaml:$line:22: marketo.instances[0].client_secret: environment variable MARKETO_CLIENT_SECRET is not set"
	exit "$fails"
) || fails=$((fails + $?))

cat >"$tmp/broken.yaml" <<'YAML'
kafka:
  brokers: localhost:9092
  group: [not, a, string]
  topics: []
  dead_letter_topic: dlq
  control_topic: ctl
  bogus: 1
marketo:
  folder: Audiences
  budget: {calls_per_20s: 500}
  instances:
    - munchkin_id: 123-ABC-456
      endpoint: http://marketo.example.com/rest
      client_id: x
      client_secret: ${MARKETO_CLIENT_SECRET}
log:
  level: verbose
YAML
expect "broken file exits 78" 78 "$mlsync" config check -c "$tmp/broken.yaml"
has "wrong type" "broken.yaml:3:10: kafka.group: expected a string, got a list"
has "empty list" "broken.yaml:4:11: kafka.topics: must name at least one topic"
has "unknown key" "broken.yaml:7:3: kafka: unknown key 'bogus'"
has "range" "broken.yaml:10:27: marketo.budget.calls_per_20s: must be between 1 and 100 (got 500)"
has "plain http only for loopback" \
	"broken.yaml:13:17: marketo.instances[0].endpoint: endpoint must use https://"
has "bad enum" "broken.yaml:17:10: log.level: expected error, warn, info or debug, got 'verbose'"
hasnt "errors never show the secret" "cli-test-Sup3rSecret"
n=$(grep -c '^/.*broken.yaml:[0-9]*:[0-9]*: ' <<<"$out")
if [[ $n == 6 ]]; then ok "every error reported (6)"; else bad "$n errors, want 6"; fi

printf 'kafka:\n  brokers: [\n' >"$tmp/syntax.yaml"
expect "YAML syntax error exits 78" 78 "$mlsync" config check -c "$tmp/syntax.yaml"
has "syntax error has a position" "syntax.yaml:3:1:"

expect "missing file exits 78" 78 "$mlsync" config check -c "$tmp/nope.yaml"
has "missing file named" "nope.yaml"

expect "version" 0 "$mlsync" version
has "version names librdkafka" "librdkafka 2."
expect "version --json" 0 "$mlsync" version --json
has "version json" '"mlsync":'
expect "--help" 0 "$mlsync" --help
has "help lists config check" "config check -c FILE"
expect "no command is a usage error" 64 "$mlsync"
expect "unknown command is a usage error" 64 "$mlsync" frobnicate
expect "run without a config is a usage error" 64 "$mlsync" run
expect "config without a verb is a usage error" 64 "$mlsync" config

echo
if ((fails)); then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all checks passed"
