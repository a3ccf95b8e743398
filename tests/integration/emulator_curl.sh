#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# emulator_curl.sh - shows, with curl alone, that the Marketo emulator
# reproduces the behaviours listed in marketo-api.md section 10: tokens
# and their expiry, the envelope dialects, list and lead calls with their
# record-level results, the limits (606, 615, 607, 413, 414), bulk import
# and the admin endpoints. Prints one line per check (every command and
# reply with VERBOSE=1) and writes the full transcript to
# $MLS_TMP/emulator_curl_transcript.txt (default /tmp). Exits 1 on any
# failed check. Tokens and the client secret are masked in the output.
set -u

top=${MLS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${MLS_BIN:-bin}
[[ $bin == /* ]] || bin=$top/$bin
emu=$bin/marketo-emulator
work=$(mktemp -d "${TMPDIR:-/tmp}/emucurl.XXXXXX")
transcript=${MLS_TMP:-/tmp}/emulator_curl_transcript.txt
: >"$transcript"

M=111-AAA-111
CID=client-a
SECRET=secret-a
pids=()
failures=0
checks=0
TOKEN=
REPLY=
STATUS=
CURL_RC=0

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

log() {
	echo "$*" >>"$transcript"
	[[ ${VERBOSE:-0} == 1 ]] && echo "$*"
	return 0
}

# Hide tokens (the emulator's UUID:em form) and the client secret.
mask() {
	printf '%s' "${1//$SECRET/<secret>}" |
		sed -E 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[a-z]+/<token>/g'
}

trim() {
	local s=$1
	((${#s} > 600)) && s="${s:0:600}... (${#1} bytes)"
	printf '%s' "$s"
}

# start_emu VAR ARGS...: start an emulator, set VAR to its base URL.
start_emu() {
	local var=$1 out port i
	shift
	out=$work/emu.$RANDOM.out
	"$emu" --listen 127.0.0.1:0 "$@" >"$out" 2>>"$work/emu.err" &
	pids+=($!)
	for ((i = 0; i < 100; i++)); do
		[[ -s $out ]] && break
		sleep 0.1
	done
	port=$(head -n 1 "$out")
	port=${port##*:}
	if [[ -z $port ]]; then
		echo "emulator did not start: $*"
		cat "$work/emu.err"
		exit 1
	fi
	printf -v "$var" 'http://127.0.0.1:%s' "$port"
	log "# started: marketo-emulator --listen 127.0.0.1:0 $(mask "$*") -> port $port"
}

# call CURL-ARGS...: run curl, set REPLY (body), STATUS (HTTP), CURL_RC.
call() {
	local raw
	raw=$(curl -sS --max-time 60 -w '\n%{http_code}' "$@" 2>"$work/curl.err")
	CURL_RC=$?
	STATUS=${raw##*$'\n'}
	REPLY=${raw%$'\n'*}
	[[ $raw == *$'\n'* ]] || REPLY=
	log "\$ curl $(mask "$*")"
	log "  -> HTTP $STATUS (curl exit $CURL_RC): $(trim "$(mask "$REPLY")")"
}

# check DESCRIPTION PYTHON-EXPR: r = parsed REPLY (None if not JSON),
# status = HTTP status, raw = REPLY text.
check() {
	local desc=$1 expr=$2
	checks=$((checks + 1))
	if python3 - "$REPLY" "$STATUS" "$expr" <<'EOF'; then
import json, sys
raw, status, expr = sys.argv[1], int(sys.argv[2] or 0), sys.argv[3]
try:
    r = json.loads(raw)
except ValueError:
    r = None
try:
    ok = eval(expr)
except Exception as ex:
    print("    check raised %r" % ex)
    ok = False
sys.exit(0 if ok else 1)
EOF
		log "  ok: $desc"
		echo "ok   $desc"
	else
		failures=$((failures + 1))
		log "  FAILED: $desc [$expr]"
		echo "FAIL $desc"
		echo "     reply (HTTP $STATUS): $(trim "$(mask "$REPLY")")"
	fi
}

# json EXPR: print a value computed from the last reply.
json() {
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$REPLY" "$1"
}

section() {
	log ""
	log "== $*"
	[[ ${VERBOSE:-0} == 1 ]] || echo "== $*"
}

get_token() {
	local base=$1
	call "$base/$M/identity/oauth/token?grant_type=client_credentials&client_id=$CID&client_secret=$SECRET"
	TOKEN=$(json 'r["access_token"]')
}

[[ -x $emu ]] || { echo "no emulator at $emu (build it first)"; exit 1; }
command -v curl >/dev/null || { echo "curl missing"; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing"; exit 1; }

start_emu E --instance "$M:$CID:$SECRET:Audiences" --seed 7
R=$E/$M/rest
AUTH=()

section "1. identity: token, reuse, bad credentials"
call "$E/$M/identity/oauth/token?grant_type=client_credentials&client_id=$CID&client_secret=$SECRET"
check "token issued (plain OAuth JSON, no envelope)" \
	'status == 200 and r["token_type"] == "bearer" and 3590 <= r["expires_in"] <= 3600 and "success" not in r'
TOKEN=$(json 'r["access_token"]')
call -X POST -d "grant_type=client_credentials&client_id=$CID&client_secret=$SECRET" "$E/$M/identity/oauth/token"
first=$TOKEN
TOKEN=$(json 'r["access_token"]')
check "form-body identity returns the same token" "r['access_token'] == '$first'"
TOKEN=$first
call "$E/$M/identity/oauth/token?grant_type=client_credentials&client_id=$CID&client_secret=wrong"
check "bad secret -> HTTP 401 invalid_client" 'status == 401 and r["error"] == "invalid_client"'
AUTH=(-H "Authorization: Bearer $TOKEN")

section "2. bearer calls, invalid and missing tokens (errors ride on HTTP 200)"
call "${AUTH[@]}" "$R/asset/v1/folder/byName.json?name=Audiences"
check "folder byName with a bearer token" \
	'status == 200 and r["success"] and r["errors"] == [] and r["warnings"] == [] and r["result"][0]["name"] == "Audiences" and r["result"][0]["folderId"]["type"] == "Folder"'
FOLDER=$(json 'r["result"][0]["id"]')
call -H "Authorization: Bearer not-a-token" "$R/v1/lists.json"
check "garbage token -> 601 on HTTP 200" \
	'status == 200 and not r["success"] and r["errors"][0]["code"] == "601"'
call "$R/v1/lists.json"
check "no token -> 600" 'r["errors"][0]["code"] == "600"'
call "$R/v1/lists.json?access_token=$TOKEN"
check "access_token query parameter still accepted" 'r["success"]'

section "3. token expiry: 602, then a new token"
call -X POST "$E/_admin/expire-tokens"
check "admin expired the token" 'status == 200 and r["expired"] >= 1'
call "${AUTH[@]}" "$R/v1/lists.json"
check "expired token -> 602" 'status == 200 and r["errors"][0]["code"] == "602"'
get_token "$E"
check "identity issues a fresh token" "r['access_token'] != '$first' and r['expires_in'] >= 3590"
AUTH=(-H "Authorization: Bearer $TOKEN")
call "${AUTH[@]}" "$R/v1/lists.json"
check "new token works" 'r["success"]'

section "4. folders and static lists (asset dialect)"
call "${AUTH[@]}" "$R/asset/v1/staticList/byName.json?name=Aud%20-%20Churn"
check "list not found: success, warning, no result key" \
	'r["success"] and "result" not in r and r["warnings"] == ["No assets found for the given search criteria."]'
call "${AUTH[@]}" --data-urlencode "name=Aud - Churn" \
	--data-urlencode "folder={\"id\":$FOLDER,\"type\":\"Folder\"}" "$R/asset/v1/staticLists.json"
check "create list in the folder" \
	"r['success'] and r['result'][0]['folder']['id'] == $FOLDER and r['result'][0]['createdAt'].endswith('Z+0000')"
LIST=$(json 'r["result"][0]["id"]')
call "${AUTH[@]}" --data-urlencode "name=Aud - Churn" \
	--data-urlencode "folder={\"id\":$FOLDER,\"type\":\"Folder\"}" "$R/asset/v1/staticLists.json"
check "same name again -> 709" \
	'not r["success"] and r["errors"][0]["code"] == "709" and "same name" in r["errors"][0]["message"]'
call "${AUTH[@]}" "$R/asset/v1/staticList/byName.json?name=Aud%20-%20Churn"
check "get by name finds it" "r['result'][0]['id'] == $LIST"

section "5. leads: sync with record-level skips, 300 cap, lookup via POST _method=GET"
call "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d '{"action":"createOrUpdate","lookupField":"email","input":[{"email":"ana@example.com"},{"email":"not an email"},{"email":"bo@example.com","firstName":"Bo"},{"email":"cy@example.com"},{"email":"di@example.com"},{"email":"ed@example.com"}]}' \
	"$R/v1/leads.json"
check "sync: success with one skipped record, input order kept, skip has reasons and no id" \
	'r["success"] and [x["status"] for x in r["result"]] == ["created","skipped","created","created","created","created"] and "id" not in r["result"][1] and r["result"][1]["reasons"][0]["code"] == "1003" and "errors" not in r'
big=$(python3 -c 'import json; print(json.dumps({"input":[{"email":"u%d@example.com" % i} for i in range(301)]}))')
call "${AUTH[@]}" -H 'Content-Type: application/json' -d "$big" "$R/v1/leads.json"
check "301 records -> request-level 1003" 'not r["success"] and r["errors"][0]["code"] == "1003"'
call "${AUTH[@]}" -d '{"input":[]}' "$R/v1/leads.json"
check "sync without application/json -> 612" 'r["errors"][0]["code"] == "612"'
call "${AUTH[@]}" -H 'Content-Type: application/json' -d '{"input":[' "$R/v1/leads.json"
check "malformed JSON -> 609" 'r["errors"][0]["code"] == "609"'
call "${AUTH[@]}" -d "_method=GET&filterType=email&filterValues=ana@example.com,BO@example.com,cy@example.com,di@example.com,ed@example.com,zz@example.com&fields=id,email" \
	"$R/v1/leads.json"
check "lookup by POST _method=GET form body (case-insensitive)" \
	'r["success"] and sorted(x["email"] for x in r["result"]) == ["ana@example.com","bo@example.com","cy@example.com","di@example.com","ed@example.com"]'
IDS=$(json '",".join(str(x["id"]) for x in sorted(r["result"], key=lambda x: x["email"]))')
IFS=, read -r ANA BO CY DI ED <<<"$IDS"
call "${AUTH[@]}" "$R/v1/leads.json?filterType=email&filterValues=nobody@example.com"
check "lookup miss -> result [] (lead DB dialect)" 'r["success"] and r["result"] == []'

section "6. list membership: add, idempotent re-add, remove, 1015, 1004"
call "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d "{\"input\":[{\"id\":$ANA},{\"id\":$BO},{\"id\":$CY},{\"id\":$DI},{\"id\":$ED}]}" "$R/v1/lists/$LIST/leads.json"
check "add 5 by JSON input" '[x["status"] for x in r["result"]] == ["added"]*5'
call "${AUTH[@]}" -X POST "$R/v1/lists/$LIST/leads.json?id=$ANA&id=999999"
check "re-add a member -> added; unknown lead -> skipped 1004" \
	'[x["status"] for x in r["result"]] == ["added","skipped"] and r["result"][1]["reasons"][0]["code"] == "1004"'
call "${AUTH[@]}" -X DELETE "$R/v1/lists/$LIST/leads.json?id=$ED"
check "remove a member -> removed" 'r["result"][0]["status"] == "removed"'
call "${AUTH[@]}" -X DELETE "$R/v1/lists/$LIST/leads.json?id=$ED,$ANA"
check "remove of a non-member -> skipped 1015 (success:true)" \
	'r["success"] and r["result"][0]["status"] == "skipped" and r["result"][0]["reasons"][0]["code"] == "1015" and r["result"][1]["status"] == "removed"'
call "${AUTH[@]}" "$R/v1/lists/$LIST/leads/ismember.json?id=$BO,$ED"
check "ismember -> memberof / notmemberof" \
	'[x["status"] for x in r["result"]] == ["memberof","notmemberof"]'
call "${AUTH[@]}" -X POST "$R/v1/lists/99999/leads.json?id=$BO"
check "unknown list -> 1013" 'r["errors"][0]["code"] == "1013"'

section "7. members paging with nextPageToken"
seen=
npt=
pages=0
while :; do
	q="batchSize=2&fields=email"
	[[ -n $npt ]] && q="$q&nextPageToken=$npt"
	call "${AUTH[@]}" "$R/v1/lists/$LIST/leads.json?$q"
	pages=$((pages + 1))
	seen="$seen$(json '"".join(x["email"] + " " for x in r.get("result", []))')"
	npt=$(json 'r.get("nextPageToken", "")')
	[[ -z $npt || $pages -ge 5 ]] && break
done
REPLY=$(printf '{"pages":%d,"emails":"%s"}' "$pages" "$seen")
check "3 members in 2 pages of batchSize 2, then no token" \
	'r["pages"] == 2 and sorted(r["emails"].split()) == ["bo@example.com","cy@example.com","di@example.com"]'

section "8. 413 / 414"
head -c 1100000 /dev/zero | tr '\0' ' ' >"$work/big.json"
call "${AUTH[@]}" -H 'Content-Type: application/json' --data-binary @"$work/big.json" "$R/v1/leads.json"
check "body > 1 MB -> HTTP 413" 'status == 413'
long=$(python3 -c 'print(",".join("first.last%04d@example-company.com" % i for i in range(300)))')
call "${AUTH[@]}" "$R/v1/leads.json?filterType=email&filterValues=$long&fields=id,email"
check "300 emails in a GET URI (> 8 KB) -> HTTP 414" 'status == 414'
call "${AUTH[@]}" -d "_method=GET&filterType=email&filterValues=$long&fields=id,email" "$R/v1/leads.json"
check "same lookup as POST _method=GET works" 'status == 200 and r["success"] and r["result"] == []'

section "9. bulk import into the list"
printf 'email,firstName\nfy@example.com,Fy\ngu@example.com,Gu\n,NoEmail\n' >"$work/leads.csv"
call "${AUTH[@]}" -F "file=@$work/leads.csv;type=text/csv" -F format=csv "$E/$M/bulk/v1/leads.json?listId=$LIST"
check "import queued" 'r["success"] and r["result"][0]["status"] == "Queued"'
BATCH=$(json 'r["result"][0]["batchId"]')
for ((i = 0; i < 60; i++)); do
	call "${AUTH[@]}" "$E/$M/bulk/v1/leads/batch/$BATCH.json"
	st=$(json 'r["result"][0]["status"] if r.get("result") else ""')
	[[ $st == Complete || $st == Failed ]] && break
	sleep 0.5
done
check "import completes: 2 processed, 1 failed (row without email)" \
	'r["result"][0]["status"] == "Complete" and r["result"][0]["numOfLeadsProcessed"] == 2 and r["result"][0]["numOfRowsFailed"] == 1'
call "${AUTH[@]}" "$E/$M/bulk/v1/leads/batch/$BATCH/failures.json"
check "failures file has the reason column" 'status == 200 and "Import Failure Reason" in raw.splitlines()[0]'
call "${AUTH[@]}" -F "file=@/dev/null;filename=empty.csv" -F format=csv "$E/$M/bulk/v1/leads.json"
check "empty file -> 1003" 'r["errors"][0]["code"] == "1003"'

section "10. admin: state, counters, seed, reset"
call "$E/_admin/state"
check "state shows the list with sorted members incl. imported ones" \
	"[l['members'] for l in r['instances']['$M']['lists'] if l['id'] == $LIST] == [['bo@example.com','cy@example.com','di@example.com','fy@example.com','gu@example.com']] and r['instances']['$M']['leads'] >= 7"
call "$E/_admin/counters"
REPLY=$(json "json.dumps(r['instances']['$M'])")
check "counters: calls by route, errors and skips by code" \
	'r["total_calls"] > 20 and r["calls"]["list.add"] >= 2 and r["errors"]["602"] == 1 and r["errors"]["http_413"] == 1 and r["skips"]["1015"] >= 1 and r["repeat_606"] == 0'
call -X POST -H 'Content-Type: application/json' \
	-d "{\"instance\":\"$M\",\"folders\":[{\"name\":\"Audiences\",\"kind\":\"marketing\"},{\"name\":\"Audiences\",\"kind\":\"program\"}],\"leads\":[{\"email\":\"dup@example.com\"},{\"email\":\"dup@example.com\"}],\"lists\":[{\"name\":\"Seeded\",\"folder\":\"Audiences\",\"members\":[\"hy@example.com\"]}]}" \
	"$E/_admin/seed"
check "seed: two more folders named Audiences, duplicate leads, a list" \
	'status == 200 and len(r["folders"]) == 2 and len(r["leads"]) == 2 and r["lists"][0]["name"] == "Seeded"'
call "${AUTH[@]}" "$R/asset/v1/folder/byName.json?name=Audiences"
check "folder byName returns all three same-named folders (Folder and Program)" \
	'len(r["result"]) == 3 and sorted(x["folderId"]["type"] for x in r["result"]) == ["Folder","Folder","Program"]'
call "${AUTH[@]}" -H 'Content-Type: application/json' -d '{"input":[{"email":"dup@example.com"}]}' "$R/v1/leads.json"
check "sync on a duplicated email -> skipped 1007" 'r["result"][0]["reasons"][0]["code"] == "1007"'
call -X POST "$E/_admin/reset?instance=$M"
call "$E/_admin/state?instance=$M"
check "reset clears lists, leads and seeded folders" \
	"r['instances']['$M']['lists'] == [] and r['instances']['$M']['leads'] == 0 and [f['name'] for f in r['instances']['$M']['folders']].count('Audiences') == 1"
call "${AUTH[@]}" "$R/v1/lists.json"
check "reset also dropped tokens -> 601" 'r["errors"][0]["code"] == "601"'

section "11. faults on demand"
get_token "$E"
AUTH=(-H "Authorization: Bearer $TOKEN")
call -X POST -d '{"faults":{"http502":1}}' "$E/_admin/faults"
check "admin sets a fault" 'r["faults"] == {"http502": 1.0}'
call "${AUTH[@]}" "$R/v1/lists.json"
check "http502 -> HTTP 502 with an HTML body" 'status == 502 and r is None and "<html>" in raw'
call -X POST -d '{"faults":{"timeout604":1}}' "$E/_admin/faults"
call "${AUTH[@]}" "$R/v1/lists.json"
check "timeout604 -> 604 envelope" 'r["errors"][0]["code"] == "604"'
call -X POST -d '{"faults":{"drop":1}}' "$E/_admin/faults"
call "${AUTH[@]}" "$R/v1/lists.json"
REPLY="{\"curl_rc\":$CURL_RC}"
check "drop -> connection closed without a reply (curl exit 52)" 'r["curl_rc"] == 52'
call -X POST -d '{"faults":{}}' "$E/_admin/faults"
check "faults cleared" 'r["faults"] == {}'

section "12. rate limit 606 (second emulator, --calls-per-20s 5)"
start_emu E2 --instance "$M:$CID:$SECRET" --calls-per-20s 5
get_token "$E2"
AUTH=(-H "Authorization: Bearer $TOKEN")
for i in 1 2 3 4 5; do call "${AUTH[@]}" "$E2/$M/rest/v1/lists.json"; done
check "5 calls inside the window succeed" 'r["success"]'
call "${AUTH[@]}" "$E2/$M/rest/v1/lists.json"
check "6th call in 20 s -> 606 on HTTP 200, no Retry-After" \
	'status == 200 and r["errors"][0]["code"] == "606"'
sleep 0.4 # past the grace for calls already on their way
call "${AUTH[@]}" "$E2/$M/rest/v1/lists.json"
call "$E2/_admin/counters"
REPLY=$(json "json.dumps(r['instances']['$M'])")
check "counters: two 606s, one a repeat after the first 606 reply" \
	'r["errors"]["606"] == 2 and r["repeat_606"] == 1 and r["max_calls_in_20s"] == 7'

section "13. concurrency 615 (third emulator, --concurrency 1 --latency-ms 2000-2000)"
start_emu E3 --instance "$M:$CID:$SECRET" --concurrency 1 --latency-ms 2000-2000
get_token "$E3"
par=()
for i in 1 2 3 4; do
	curl -sS --max-time 60 -H "Authorization: Bearer $TOKEN" "$E3/$M/rest/v1/lists.json" >"$work/par.$i" &
	par+=($!)
done
wait "${par[@]}"
REPLY=$(python3 -c 'import json,sys; print(json.dumps([json.load(open(f)) for f in sys.argv[1:]]))' "$work"/par.*)
STATUS=200
log "\$ 4 parallel: curl -H 'Authorization: Bearer <token>' $E3/$M/rest/v1/lists.json"
log "  -> $(mask "$REPLY")"
check "4 overlapping calls: one admitted, the others 615" \
	'sum(1 for x in r if x["success"]) >= 1 and sum(1 for x in r if not x["success"] and x["errors"][0]["code"] == "615") >= 1'
call "$E3/_admin/counters"
check "max_concurrency stays at the limit" "r['instances']['$M']['max_concurrency'] == 1"

section "14. daily quota 607 (fourth emulator, --daily-quota 2)"
start_emu E4 --instance "$M:$CID:$SECRET" --daily-quota 2
get_token "$E4"
AUTH=(-H "Authorization: Bearer $TOKEN")
call "${AUTH[@]}" "$E4/$M/rest/v1/lists.json"
call "${AUTH[@]}" "$E4/$M/rest/v1/lists.json"
check "2 calls within the quota" 'r["success"]'
call "${AUTH[@]}" "$E4/$M/rest/v1/lists.json"
check "3rd call -> 607 Daily quota reached" 'r["errors"][0]["code"] == "607"'
call "$E4/_admin/counters"
check "daily_used = 2" "r['instances']['$M']['daily_used'] == 2"

section "15. shutdown: SIGTERM -> exit 0, nothing alarming on stderr"
rcs=
for p in "${pids[@]}"; do
	kill -TERM "$p"
	wait "$p"
	rcs="$rcs$?,"
done
pids=()
log "# emulator stderr:"
log "$(mask "$(cat "$work/emu.err")")"
REPLY=$(python3 -c 'import json,sys; print(json.dumps({"rcs": sys.argv[1], "err": open(sys.argv[2]).read()}))' "$rcs" "$work/emu.err")
check "every emulator exited 0 on SIGTERM" 'set(r["rcs"].strip(",").split(",")) == {"0"}'
check "no sanitizer or libmicrohttpd errors" \
	'"Sanitizer" not in r["err"] and "runtime error" not in r["err"] and "libmicrohttpd" not in r["err"]'

echo
echo "$((checks - failures))/$checks checks passed; transcript: $transcript"
((failures == 0))
