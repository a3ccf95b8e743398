#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# deploy_check.sh - offline checks of deploy/ against what mlsync really
# does: every YAML file parses; the ConfigMap's config passes
# `mlsync config check` and matches the Deployment's checksum annotation;
# grace period, probes, ports, env, secret paths, KEDA trigger, PDB,
# PodMonitor, NetworkPolicy and Strimzi resources agree with the config
# and with each other; both control topics of the shared budget exist
# under the names kafka.control_topic implies, with LogAppendTime, a
# compacted quota topic and the workers' ACLs; maxReplicaCount stays
# within the declared partition count; the grace period and the startup
# probe cover the control-topic timeouts src/control.c uses; the
# Dockerfile follows ops.md section 6 step 4; the runtime stage
# installs every library the binary links. Each check has a negative
# control that must fail. No network, nothing installed; PyYAML, yamllint,
# kubectl and dpkg are used when present and their checks skipped (with a
# "skip" line) when not.
set -u

top=${MLS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 1
bin=${MLS_BIN:-bin}
[[ $bin == /* ]] || bin=$top/$bin
mlsync=$bin/mlsync
dir=$top/deploy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

ok() { echo "ok   $1"; }
bad() {
	echo "FAIL $1"
	fails=$((fails + 1))
}
skip() { echo "skip $1"; }

# DEPLOY_CHECK_NO_PYYAML=1 runs the fallbacks, to test them where PyYAML
# is installed.
have_pyyaml=0
[[ -z ${DEPLOY_CHECK_NO_PYYAML:-} ]] && python3 -c 'import yaml' 2>/dev/null && have_pyyaml=1

# ---- 1. every YAML file parses ----

# The fallback when neither PyYAML nor yamllint is there: no tabs, and
# every document names its apiVersion and kind.
minimal_yaml_check() {
	local f=$1
	if grep -q $'\t' "$f"; then
		echo "$f: contains a tab"
		return 1
	fi
	awk 'function done() {
		if (body && (!api || !kind)) { bad = 1; print FILENAME ": document " doc " lacks apiVersion or kind" }
	}
	/^---/ { done(); doc++; api = kind = body = 0; next }
	/^apiVersion:/ { api = 1 }
	/^kind:/ { kind = 1 }
	/^[^#[:space:]]/ { body = 1 }
	END { done(); exit bad }' "$f"
}

printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n' >"$tmp/tab.yaml"
printf 'metadata:\n  name: x\n' >"$tmp/nokind.yaml"
if minimal_yaml_check "$tmp/tab.yaml" >/dev/null || minimal_yaml_check "$tmp/nokind.yaml" >/dev/null; then
	bad "negative control: the minimal YAML check accepted a tab or a document without kind"
else
	ok "negative control: the minimal YAML check refuses a tab and a document without kind"
fi

yaml_files=("$dir"/*.yaml)
if ((${#yaml_files[@]} < 10)); then
	bad "expected the deploy/ YAML set, found ${#yaml_files[@]} files"
fi
if ((have_pyyaml)); then
	# One interpreter for all files. Duplicate keys are errors here;
	# PyYAML alone would keep the last one silently.
	python3 - "$top" "${yaml_files[@]}" <<'PY'
import sys, yaml

class L(yaml.SafeLoader):
    pass

def mapping(loader, node):
    seen = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=True)
        if key in seen:
            raise yaml.YAMLError("duplicate key %r at line %d" % (key, k.start_mark.line + 1))
        seen.add(key)
    return loader.construct_mapping(node, deep=True)

L.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)

def problem(text):
    try:
        for d in yaml.load_all(text, Loader=L):
            if d is not None and (not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d):
                return "a document lacks apiVersion or kind"
    except yaml.YAMLError as e:
        return str(e).replace("\n", " ")
    return None

bad = 0
if problem("a: 1\nb: 2\na: 3\n") is None:
    print("FAIL negative control: the parser accepted a duplicate key")
    bad += 1
else:
    print("ok   negative control: the parser refuses a duplicate key")
for f in sys.argv[2:]:
    name = f[len(sys.argv[1]) + 1:]
    with open(f) as fp:
        p = problem(fp.read())
    if p:
        print("FAIL %s: %s" % (name, p))
        bad += 1
    else:
        print("ok   %s parses (PyYAML, no duplicate keys)" % name)
sys.exit(min(bad, 100))
PY
	fails=$((fails + $?))
else
	for f in "${yaml_files[@]}"; do
		name=${f#"$top"/}
		if command -v yamllint >/dev/null; then
			if out=$(yamllint -f parsable -d '{extends: relaxed, rules: {line-length: disable}}' "$f" 2>&1) &&
				! grep -q '\[error\]' <<<"$out"; then
				ok "$name parses (yamllint)"
			else
				bad "$name: $out"
			fi
		elif out=$(minimal_yaml_check "$f"); then
			ok "$name passes the minimal YAML check (no PyYAML, no yamllint)"
		else
			bad "$out"
		fi
	done
fi

# ---- 2. the embedded config: checksum and `mlsync config check` ----

# Prints the literal block scalar "KEY: |" of a YAML file, indentation
# removed, with YAML's default clip chomping (one final newline).
extract_block() {
	awk -v KEY="$1" '
	function indent(s) { match(s, /^ */); return RLENGTH }
	!found { if ($0 ~ ("^ *" KEY ": *[|] *$")) { found = 1; ki = indent($0) } next }
	stop { next }
	/^ *$/ { blanks++; next }
	{
		n = indent($0)
		if (!ci) { if (n <= ki) { stop = 1; next } ci = n }
		if (n < ci) { stop = 1; next }
		for (; blanks > 0; blanks--) print ""
		print substr($0, ci + 1)
	}
	END { exit found ? 0 : 1 }' "$2"
}

cfg=$tmp/config.yaml
if extract_block config.yaml "$dir/configmap.yaml" >"$cfg" && [[ -s $cfg ]]; then
	ok "configmap.yaml carries config.yaml ($(wc -l <"$cfg") lines)"
else
	bad "configmap.yaml has no 'config.yaml: |' block"
fi
if ((have_pyyaml)); then
	if python3 -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
sys.exit(d["data"]["config.yaml"] != open(sys.argv[2]).read())' "$dir/configmap.yaml" "$cfg"; then
		ok "the config extracted by awk equals PyYAML's value"
	else
		bad "awk and PyYAML disagree on configmap.yaml's config.yaml"
	fi
fi

want_sum=$(sha256sum <"$cfg" | cut -d' ' -f1)
have_sum=$(sed -n 's/^ *checksum\/config: *"\{0,1\}\([0-9a-f]*\)"\{0,1\} *$/\1/p' "$dir/deployment.yaml")
if [[ $have_sum == "$want_sum" ]]; then
	ok "deployment checksum/config matches the config ($want_sum)"
else
	bad "deployment.yaml checksum/config is '$have_sum'; the config's sha256 is $want_sum"
fi

# Runs `mlsync config check` on a config FILE the way a pod would see it:
# every ${VAR} it needs set to a dummy value (except those named in
# UNSET), every client_secret_file pointing at a readable temp file.
config_check() {
	local file=$1 unset_vars=${2:-} work=$tmp/cc.$RANDOM path var
	local -a envs=()
	mkdir -p "$work"
	cp "$file" "$work/config.yaml"
	while read -r path; do
		[[ -n $path ]] || continue
		printf 'dummy-secret\n' >"$work/${path##*/}"
		sed -i "s#$path#$work/${path##*/}#" "$work/config.yaml"
	done < <(sed -n 's/^ *client_secret_file: *"\{0,1\}\([^"#]*[^"# ]\).*$/\1/p' "$file")
	while read -r var; do
		[[ " $unset_vars " == *" $var "* ]] || envs+=("$var=dummy-$var")
	done < <(grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$file" | tr -d '${}' | sort -u)
	out=$(env -i PATH="$PATH" "${envs[@]}" "$mlsync" config check -c "$work/config.yaml" 2>&1)
}

if [[ ! -x $mlsync ]]; then
	bad "$mlsync is not built (make build)"
else
	config_check "$cfg"
	rc=$?
	if ((rc == 0)); then ok "mlsync config check accepts the ConfigMap's config ($out)"; else
		bad "mlsync config check exit $rc on the ConfigMap's config:"
		printf '%s\n' "$out" | sed 's/^/     /'
	fi
	# Negative controls: a bad value and a missing variable exit 78.
	sed 's/shutdown_timeout_ms: [0-9]*/shutdown_timeout_ms: soon/' "$cfg" >"$tmp/bad1.yaml"
	config_check "$tmp/bad1.yaml"
	rc=$?
	if ((rc == 78)); then ok "negative control: a non-numeric shutdown_timeout_ms exits 78"; else
		bad "negative control: non-numeric shutdown_timeout_ms gave exit $rc, want 78"
	fi
	config_check "$cfg" KAFKA_PASSWORD
	rc=$?
	if ((rc == 78)); then ok "negative control: an unset \${KAFKA_PASSWORD} exits 78"; else
		bad "negative control: unset KAFKA_PASSWORD gave exit $rc, want 78"
	fi
fi

# ---- 3. the Dockerfile (ops.md section 6, step 4) ----

# Prints every problem of a Dockerfile; returns 1 if there is any.
check_dockerfile() {
	local f=$1 flat line img stages=" " n_from=0 user="" entry="" rc=0
	# Comments out, continuation lines joined: one instruction a line.
	flat=$(sed -e 's/^[[:space:]]*#.*$//' "$f" | sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba' -e '}')
	while IFS= read -r line; do
		case ${line^^} in
		FROM\ *)
			n_from=$((n_from + 1))
			read -r -a w <<<"$line"
			img=${w[1]}
			[[ $img == --* ]] && img=${w[2]}
			if [[ ${#w[@]} -ge 4 && ${w[-2]^^} == AS ]]; then stages+="${w[-1]} "; fi
			if [[ $stages == *" $img "* && $img != "${w[-1]}" ]]; then
				:
			elif [[ $img == *'$'* ]]; then
				echo "FROM $img: the base image must be written out, not a variable"
				rc=1
			elif [[ $img != *:* && $img != *@sha256:* ]]; then
				echo "FROM $img: no tag (pin one)"
				rc=1
			elif [[ ${img%%@*} == *:latest ]]; then
				echo "FROM $img: ':latest' is not a pinned tag"
				rc=1
			fi
			;;
		USER\ *) user=${line#* } ;;
		ENTRYPOINT\ *) entry=${line#* } ;;
		CMD\ *)
			if [[ ${line#* } != \[* ]]; then
				echo "CMD is not in exec form: $line"
				rc=1
			fi
			;;
		ADD\ *)
			echo "ADD used (use COPY): $line"
			rc=1
			;;
		RUN\ *APT-GET\ INSTALL*)
			if [[ $line != *--no-install-recommends* ]]; then
				echo "apt-get install without --no-install-recommends"
				rc=1
			fi
			if [[ $line != *'rm -rf /var/lib/apt/lists'* ]]; then
				echo "apt-get install without removing /var/lib/apt/lists in the same RUN"
				rc=1
			fi
			;;
		esac
	done <<<"$flat"
	if ((n_from < 2)); then
		echo "$n_from FROM line(s): want a build stage and a runtime stage"
		rc=1
	fi
	user=${user%% *}
	if [[ ! $user =~ ^[0-9]+(:[0-9]+)?$ ]]; then
		echo "USER '${user}' is not numeric (the kubelet cannot verify runAsNonRoot)"
		rc=1
	elif [[ ${user%%:*} == 0 ]]; then
		echo "USER is root"
		rc=1
	fi
	if [[ $entry != \[* ]]; then
		echo "ENTRYPOINT is missing or not in exec form: '$entry'"
		rc=1
	elif [[ $entry != *tini* ]]; then
		echo "ENTRYPOINT does not run tini: $entry"
		rc=1
	fi
	if ! grep -q 'make build' <<<"$flat"; then
		echo "the build stage does not run 'make build'"
		rc=1
	fi
	for label in source version revision; do
		if ! grep -q "org.opencontainers.image.$label=" <<<"$flat"; then
			echo "no org.opencontainers.image.$label label"
			rc=1
		fi
	done
	return $rc
}

dockerfile=$dir/Dockerfile
if out=$(check_dockerfile "$dockerfile"); then
	ok "Dockerfile: 2 pinned stages, numeric USER, exec-form tini ENTRYPOINT, no ADD, apt lists removed, --no-install-recommends, OCI labels"
else
	bad "Dockerfile:"
	printf '%s\n' "$out" | sed 's/^/     /'
fi
# Negative controls: each edit breaks one rule and must be caught.
declare -A dvariants=(
	["untagged FROM"]='s/^FROM debian:bookworm-slim$/FROM debian/'
	["FROM :latest"]='s/^FROM debian:bookworm-slim$/FROM debian:latest/'
	["one stage"]='/^FROM debian:bookworm-slim AS build$/,/^FROM debian:bookworm-slim$/{/^FROM debian:bookworm-slim$/!d}'
	["named USER"]='s/^USER .*/USER mlsync/'
	["root USER"]='s/^USER .*/USER 0:0/'
	["shell-form ENTRYPOINT"]='s/^ENTRYPOINT .*/ENTRYPOINT \/usr\/bin\/tini -- \/usr\/bin\/mlsync/'
	["ADD"]='s/^COPY src\/ src\//ADD src\/ src\//'
	["apt lists kept"]='s/&& rm -rf \/var\/lib\/apt\/lists\/\*//'
	["recommends installed"]='s/ --no-install-recommends//'
)
for v in "${!dvariants[@]}"; do
	sed -e "${dvariants[$v]}" "$dockerfile" >"$tmp/Dockerfile.bad"
	if cmp -s "$dockerfile" "$tmp/Dockerfile.bad"; then
		bad "negative control '$v': the edit changed nothing (update the sed)"
	elif out=$(check_dockerfile "$tmp/Dockerfile.bad"); then
		bad "negative control '$v': the Dockerfile check did not notice"
	else
		ok "negative control: Dockerfile with $v is refused ($(head -n 1 <<<"$out"))"
	fi
done

# ---- 4. the runtime stage installs what the binary links ----

# The packages the last stage's apt-get install names.
runtime_packages() {
	sed -e 's/^[[:space:]]*#.*$//' "$1" | sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba' -e '}' |
		awk '/^FROM /{ pk = "" } /apt-get install/ { pk = $0 } END { print pk }' |
		sed -e 's/.*apt-get install//' -e 's/&&.*//' | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$'
}

# Names every package reachable from the given ones through Depends and
# Pre-Depends, as recorded for the packages installed here (one dpkg-query
# for the whole database; awk walks it).
dep_closure() {
	dpkg-query -W -f='${Package}\t${Depends},${Pre-Depends}\n' 2>/dev/null |
		awk -F '\t' -v start="$*" '
		{ deps[$1] = $2 }
		END {
			n = split(start, queue, " ")
			for (i = 1; i <= n; i++) {
				p = queue[i]
				if (p in seen) continue
				seen[p] = 1
				print p
				m = split(deps[p], alt, /[,|]/)
				for (j = 1; j <= m; j++) {
					d = alt[j]
					sub(/\(.*\)/, "", d)
					gsub(/[[:space:]]/, "", d)
					sub(/:any$/, "", d)
					if (d != "" && !(d in seen)) queue[++n] = d
				}
			}
		}'
}

# Prints "soname package" for every library BINARY links directly (one
# ldd, one dpkg -S over every spelling of each path: with merged /usr,
# dpkg may know /lib/... or /usr/lib/...).
linked_packages() {
	local binary=$1 soname path c
	local -A of=()
	local -a cands=()
	for soname in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		path=$(ldd "$binary" | awk -v s="$soname" '$1 == s { print $3 }')
		of[$soname]=""
		for c in "$path" "$(readlink -f "$path")"; do
			[[ $c == /* ]] || continue
			of["${c#/usr}"]=$soname
			of["/usr${c#/usr}"]=$soname
			cands+=("${c#/usr}" "/usr${c#/usr}")
		done
	done
	dpkg -S "${cands[@]}" 2>/dev/null | sed -n 's/^\([^:,]*\)[^ ]* \(\/.*\)$/\1 \2/p' |
		while read -r pkg path; do echo "${of[$path]} $pkg"; done | sort -u
	for soname in "${!of[@]}"; do
		[[ $soname == /* ]] || echo "$soname -"
	done
}

# Prints each linked library (lines "soname package" on stdin) whose
# package the given runtime list does not bring; returns 1 if any.
check_runtime_libs() {
	local closure soname pkg rc=0
	local -A found=()
	closure=" $(dep_closure "$@" | tr '\n' ' ') "
	while read -r soname pkg; do
		if [[ $pkg != - ]]; then
			found[$soname]=1
			if [[ $closure != *" $pkg "* ]]; then
				echo "$soname comes from $pkg, which the runtime stage does not install"
				rc=1
			fi
		elif [[ -z ${found[$soname]:-} ]]; then
			echo "$soname: no Debian package owns it"
			rc=1
		fi
	done < <(LC_ALL=C sort -k2,2r "$libs")
	return $rc
}

if ! command -v readelf >/dev/null || ! command -v dpkg-query >/dev/null || [[ ! -x $mlsync ]]; then
	skip "runtime-library check (needs readelf, dpkg and a built mlsync)"
else
	libs=$tmp/linked.txt
	linked_packages "$mlsync" >"$libs"
	mapfile -t rpkgs < <(runtime_packages "$dockerfile")
	if out=$(check_runtime_libs "${rpkgs[@]}"); then
		ok "runtime stage (${rpkgs[*]}) covers every library mlsync links ($(grep -vc ' -$' "$libs") linked)"
	else
		bad "runtime stage misses libraries:"
		printf '%s\n' "$out" | sed 's/^/     /'
	fi
	mapfile -t fewer < <(printf '%s\n' "${rpkgs[@]}" | grep -vx 'libyaml-0-2')
	if ((${#fewer[@]} == ${#rpkgs[@]})); then
		bad "negative control: libyaml-0-2 is not in the runtime list to take out"
	elif out=$(check_runtime_libs "${fewer[@]}"); then
		bad "negative control: a runtime stage without libyaml-0-2 was accepted"
	else
		ok "negative control: a runtime stage without libyaml-0-2 is refused ($out)"
	fi
fi

# ---- 5. kustomize renders the base ----

kver=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
if [[ -z $kver ]] || ((kver < 4)); then
	skip "kubectl kustomize (needs kubectl with kustomize v4 or later)"
elif out=$(kubectl kustomize "$dir" 2>&1); then
	ok "kubectl kustomize renders $(grep -c '^kind:' <<<"$out") objects offline"
else
	bad "kubectl kustomize deploy/: $out"
fi

# ---- 6. the manifests agree with the config and with each other ----

if ((!have_pyyaml)); then
	skip "manifest cross-checks (need PyYAML: python3-yaml)"
else
	"$mlsync" --help >"$tmp/help.txt" 2>&1
	uid=$(sed -n 's/^USER \([0-9]*\).*/\1/p' "$dockerfile" | tail -n 1)
	# The control-topic handles' start and close timeouts, read from the
	# source so the pod's startup window and grace period follow them.
	ctl_ms() { sed -n "s/^#define $1 \([0-9][0-9]*\)$/\1/p" "$top/src/control.c"; }
	ctl_start_ms=$(ctl_ms CTL_DEF_START_TIMEOUT_MS)
	ctl_close_ms=$(ctl_ms CTL_DEF_CLOSE_TIMEOUT_MS)
	# Written to a file so it can run twice: on deploy/ with every
	# negative control, then on a damaged copy of deploy/ (below).
	cat >"$tmp/cross.py" <<'PY'
import copy
import math
import os
import re
import sys

import yaml

deploy_dir, cfg_path, help_path, image_uid, ctl_start, ctl_close, mode = sys.argv[1:8]
fails = 0


def ok(msg):
    print("ok   " + msg)


def bad(msg):
    global fails
    fails += 1
    print("FAIL " + msg)


def dig(d, *path, default=None):
    for p in path:
        if isinstance(d, dict) and p in d:
            d = d[p]
        elif isinstance(d, list) and isinstance(p, int) and p < len(d):
            d = d[p]
        else:
            return default
    return d


objs = []
for fn in sorted(os.listdir(deploy_dir)):
    if fn.endswith(".yaml"):
        with open(os.path.join(deploy_dir, fn)) as fp:
            for doc in yaml.safe_load_all(fp):
                if doc:
                    objs.append((fn, doc))
with open(cfg_path) as fp:
    cfg_text = fp.read()
with open(help_path) as fp:
    help_text = fp.read()

W = {
    "objs": objs,
    "files": sorted(f for f in os.listdir(deploy_dir) if f.endswith(".yaml")),
    "cfg": yaml.safe_load(cfg_text),
    "cfg_text": cfg_text,
    "commands": set(re.findall(r"^  ([a-z][a-z-]*)\b", help_text, re.M)),
    "uid": image_uid,
    # src/control.c: CTL_DEF_START_TIMEOUT_MS, CTL_DEF_CLOSE_TIMEOUT_MS.
    "ctl_start_ms": int(ctl_start) if ctl_start.isdigit() else None,
    "ctl_close_ms": int(ctl_close) if ctl_close.isdigit() else None,
}


def find(w, kind, name=None):
    for fn, d in w["objs"]:
        if d.get("kind") == kind and (name is None or dig(d, "metadata", "name") == name):
            return d
    return None


def find_all(w, kind):
    return [d for _, d in w["objs"] if d.get("kind") == kind]


def props(w):
    return dig(w["cfg"], "kafka", "properties", default={}) or {}


def pod_labels(w):
    return dig(find(w, "Deployment"), "spec", "template", "metadata", "labels", default={})


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def http_port(w):
    addr = dig(w["cfg"], "worker", "http_addr")
    return int(addr.rsplit(":", 1)[1]) if addr else None


def container(w):
    cs = dig(find(w, "Deployment"), "spec", "template", "spec", "containers", default=[])
    return next((c for c in cs if c.get("name") == "mlsync"), cs[0] if cs else {})


def example_secrets(w):
    out = {}
    for fn, d in w["objs"]:
        if fn == "secret.example.yaml" and d.get("kind") == "Secret":
            keys = set((d.get("stringData") or {}).keys()) | set((d.get("data") or {}).keys())
            out[d["metadata"]["name"]] = keys
    return out


def check_config(w):
    e = []
    p = props(w)
    strat = str(p.get("partition.assignment.strategy", "range,roundrobin"))
    if "cooperative" in strat:
        e.append("config: partition.assignment.strategy %s: only eager assignors work on librdkafka 2.0.2" % strat)
    if "group.instance.id" in p:
        e.append("config: group.instance.id (static membership) is not supported here")
    if dig(w["cfg"], "log", "format", default="json") != "json":
        e.append("config: log.format must stay json in a pod")
    if not dig(w["cfg"], "worker", "http_addr"):
        e.append("config: worker.http_addr unset: no probes, no metrics")
    return e


def check_kustomization(w):
    e = []
    k = find(w, "Kustomization")
    res = (k or {}).get("resources") or []
    for r in res:
        if r not in w["files"]:
            e.append("kustomization lists %s, which does not exist" % r)
    for f in w["files"]:
        if f not in ("kustomization.yaml", "secret.example.yaml") and f not in res:
            e.append("kustomization does not list %s" % f)
    if "secret.example.yaml" in res:
        e.append("kustomization applies secret.example.yaml (placeholders only)")
    return e


def check_deployment(w):
    e = []
    dep = find(w, "Deployment")
    if not dep:
        return ["no Deployment"]
    spec = dep["spec"]
    pod = dig(spec, "template", "spec", default={})
    c = container(w)
    cfg = w["cfg"]
    if "replicas" in spec:
        e.append("Deployment sets spec.replicas; KEDA owns the count")
    if not selects(dig(spec, "selector", "matchLabels"), pod_labels(w)):
        e.append("Deployment selector does not match its pod labels")
    if not dig(spec, "strategy", "rollingUpdate") or "progressDeadlineSeconds" not in spec:
        e.append("Deployment needs an explicit rollingUpdate strategy and progressDeadlineSeconds")

    # Grace: the drain deadline, a revoke drain in progress (10 s), the
    # dead-letter flush (2 s), the consumer close (session timeout) and,
    # for each control-topic producer, its flush and the purge after it.
    shutdown = dig(cfg, "worker", "shutdown_timeout_ms", default=20000)
    session = int(props(w).get("session.timeout.ms", 45000))
    if w["ctl_close_ms"] is None or w["ctl_start_ms"] is None:
        return e + ["src/control.c: CTL_DEF_START_TIMEOUT_MS or CTL_DEF_CLOSE_TIMEOUT_MS not found"]
    ctl_ms = CTL_HANDLES * (w["ctl_close_ms"] + CTL_PURGE_MS)
    need = math.ceil(shutdown / 1000) + 10 + 2 + math.ceil(session / 1000) + math.ceil(ctl_ms / 1000)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace < need:
        e.append("terminationGracePeriodSeconds %s < %d (shutdown %d ms + 10 s revoke drain + 2 s flush + session %d ms + control close %d ms)"
                 % (grace, need, shutdown, session, ctl_ms))
    # /livez is served only after every control handle has started; each
    # may wait its start timeout. 10 s more for DNS and client set-up.
    sp = c.get("startupProbe") or {}
    window = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
    want_window = math.ceil(CTL_HANDLES * w["ctl_start_ms"] / 1000) + 10
    if window < want_window:
        e.append("startupProbe allows %d s, below %d s (%d control topics x %d ms start timeout + 10 s)"
                 % (window, want_window, CTL_HANDLES, w["ctl_start_ms"]))

    port = http_port(w)
    named = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    if named.get("http") != port:
        e.append("container port 'http' is %s, worker.http_addr's port is %s" % (named.get("http"), port))
    for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = dig(c, probe, "httpGet")
        if not get:
            e.append("%s missing" % probe)
            continue
        if get.get("path") != path:
            e.append("%s path %s, want %s" % (probe, get.get("path"), path))
        pp = get.get("port")
        pp = named.get(pp) if isinstance(pp, str) else pp
        if pp != port:
            e.append("%s port %s, worker.http_addr's port is %s" % (probe, get.get("port"), port))

    args = c.get("args") or []
    if not args or args[0] not in w["commands"]:
        e.append("args %s: '%s' is not an mlsync command (mlsync --help lists %s)"
                 % (args, args[0] if args else "", sorted(w["commands"])))
    elif args[0] != "run":
        e.append("the worker's command must be 'run', not %s" % args[0])
    env = {x["name"]: x for x in c.get("env", [])}
    cfg_file = None
    for i, a in enumerate(args):
        if a in ("-c", "--config") and i + 1 < len(args):
            cfg_file = args[i + 1]
    cfg_file = cfg_file or dig(env, "MLSYNC_CONFIG", "value")
    mounts = c.get("volumeMounts", [])
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cm = find(w, "ConfigMap")

    def mount_of(path):
        best = None
        for m in mounts:
            mp = m["mountPath"].rstrip("/") + "/"
            if path.startswith(mp) and (not best or len(mp) > len(best[0])):
                best = (mp, m)
        return best

    mo = mount_of(cfg_file or "")
    cmname = dig(vols, mo[1]["name"], "configMap", "name") if mo else None
    if not mo or cmname != dig(cm, "metadata", "name") or cfg_file[len(mo[0]):] not in (cm.get("data") or {}):
        e.append("config file %s is not a key of the ConfigMap mounted there" % cfg_file)

    for m in mounts:
        if "subPath" in m or "subPathExpr" in m:
            e.append("volumeMount %s uses subPath (never updated)" % m["name"])

    # Secret files named by the config lie in mounted Secrets, under keys
    # the example Secret declares.
    ex = example_secrets(w)
    files = [i.get("client_secret_file") for i in dig(cfg, "marketo", "instances", default=[])]
    files += [v for k, v in props(w).items() if k.endswith(".location")]
    for path in filter(None, files):
        mo = mount_of(path)
        if not mo:
            e.append("%s is in no mounted volume" % path)
            continue
        vol = vols.get(mo[1]["name"], {})
        rel = path[len(mo[0]):]
        sname = dig(vol, "secret", "secretName")
        items = dig(vol, "secret", "items")
        if items is not None and rel not in [i["path"] for i in items]:
            e.append("%s: volume %s maps no item to %s" % (path, mo[1]["name"], rel))
        elif items is None and sname in ex and rel not in ex[sname]:
            e.append("%s: Secret %s has no key %s (secret.example.yaml)" % (path, sname, rel))
    for name, x in env.items():
        ref = dig(x, "valueFrom", "secretKeyRef")
        if ref and ref["name"] in ex and ref["key"] not in ex[ref["name"]]:
            e.append("env %s: Secret %s has no key %s" % (name, ref["name"], ref["key"]))

    # ${VAR} in any value of the config (comments are not expanded).
    def strings(x):
        if isinstance(x, dict):
            for k, v in x.items():
                yield from strings(k)
                yield from strings(v)
        elif isinstance(x, list):
            for v in x:
                yield from strings(v)
        elif isinstance(x, str):
            yield x

    needed = set()
    for s in strings(w["cfg"]):
        needed |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", s))
    for var in sorted(needed):
        if var not in env:
            e.append("the config needs ${%s}; the container does not set it" % var)
    for var in ("POD_NAME", "POD_NAMESPACE"):
        if not dig(env, var, "valueFrom", "fieldRef"):
            e.append("env %s should come from the downward API" % var)

    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        e.append("runAsNonRoot not set")
    if not isinstance(uid, int) or uid == 0 or str(uid) != w["uid"]:
        e.append("runAsUser %s must be the image's numeric USER %s" % (uid, w["uid"]))
    if csc.get("allowPrivilegeEscalation") is not False:
        e.append("allowPrivilegeEscalation must be false")
    if csc.get("readOnlyRootFilesystem") is not True:
        e.append("readOnlyRootFilesystem must be true")
    if "ALL" not in (dig(csc, "capabilities", "drop") or []):
        e.append("capabilities must drop ALL")
    if "RuntimeDefault" not in (dig(csc, "seccompProfile", "type"), dig(psc, "seccompProfile", "type")):
        e.append("seccompProfile RuntimeDefault missing")
    if pod.get("automountServiceAccountToken") is not False:
        e.append("automountServiceAccountToken must be false")
    res = c.get("resources", {})
    if not (dig(res, "requests", "cpu") and dig(res, "requests", "memory") and dig(res, "limits", "memory")):
        e.append("resources need cpu and memory requests and a memory limit")
    image = c.get("image", "")
    if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        e.append("image %s has no pinned tag" % image)
    return e


# A worker opens two control handles: kafka.control_topic and its
# ".quota" topic (src/worker_budget.c). Closing one waits its close
# timeout for the flush, then up to 500 ms for the purge (src/control.c,
# close_producer).
CTL_HANDLES = 2
CTL_PURGE_MS = 500


def check_scaledobject(w):
    e = []
    so = find(w, "ScaledObject")
    if not so:
        return ["no ScaledObject"]
    cfg, spec = w["cfg"], so["spec"]
    if dig(spec, "scaleTargetRef", "name") != dig(find(w, "Deployment"), "metadata", "name"):
        e.append("scaleTargetRef does not name the Deployment")
    try:
        parts = int(dig(so, "metadata", "annotations", "mlsync/source-topic-partitions"))
    except (TypeError, ValueError):
        return e + ["ScaledObject lacks the mlsync/source-topic-partitions annotation"]
    for t in find_all(w, "KafkaTopic"):
        if dig(t, "metadata", "name") in dig(cfg, "kafka", "topics", default=[]) and t["spec"].get("partitions") != parts:
            e.append("KafkaTopic %s has %s partitions, the annotation says %d" % (t["metadata"]["name"], t["spec"].get("partitions"), parts))
    mx, mn = spec.get("maxReplicaCount", 100), spec.get("minReplicaCount", 0)
    # The budget is shared, so several workers may call one instance, but
    # its changes in one input topic are one partition: at most one busy
    # worker per (instance, input topic).
    insts = len(dig(cfg, "marketo", "instances", default=[]))
    ntop = len(dig(cfg, "kafka", "topics", default=[]))
    if mx > parts:
        e.append("maxReplicaCount %d > %d partitions" % (mx, parts))
    if mx > insts * ntop:
        e.append("maxReplicaCount %d > %d Marketo instances x %d input topics (an instance's traffic in a topic is one partition)"
                 % (mx, insts, ntop))
    if not 1 <= mn <= mx:
        e.append("minReplicaCount %s must be between 1 and maxReplicaCount" % mn)
    if not dig(spec, "fallback", "replicas") or spec["fallback"]["replicas"] > mx:
        e.append("fallback replicas missing or above maxReplicaCount")
    if (dig(spec, "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown",
            "stabilizationWindowSeconds") or 0) < 300:
        e.append("scale-down stabilization window below 300 s (each scale event is a rebalance)")
    kt = [t for t in spec.get("triggers", []) if t.get("type") == "kafka"]
    if len(kt) != 1:
        return e + ["want exactly one kafka trigger, found %d" % len(kt)]
    md = kt[0].get("metadata", {})
    for k, v in md.items():
        if not isinstance(v, str):
            e.append("trigger metadata %s is %s, not a quoted string" % (k, type(v).__name__))
    want = {
        "bootstrapServers": dig(cfg, "kafka", "brokers"),
        "consumerGroup": dig(cfg, "kafka", "group"),
        "offsetResetPolicy": str(props(w).get("auto.offset.reset", "earliest")),
        "allowIdleConsumers": "false",
    }
    for k, v in want.items():
        if md.get(k) != v:
            e.append("trigger %s is %r, want %r" % (k, md.get(k), v))
    if md.get("topic") not in dig(cfg, "kafka", "topics", default=[]):
        e.append("trigger topic %r is not one of kafka.topics" % md.get("topic"))
    for k in ("lagThreshold", "activationLagThreshold"):
        if not str(md.get(k, "")).isdigit():
            e.append("trigger %s missing or not a number" % k)
    ta = dig(kt[0], "authenticationRef", "name")
    if ta and not find(w, "TriggerAuthentication", ta):
        e.append("authenticationRef %s has no TriggerAuthentication" % ta)
    return e


def check_triggerauth(w):
    e = []
    ta = find(w, "TriggerAuthentication")
    if not ta:
        return ["no TriggerAuthentication"]
    refs = {r["parameter"]: r for r in dig(ta, "spec", "secretTargetRef", default=[])}
    keda_users = [u for u in find_all(w, "KafkaUser")
                  if all(set(a.get("operations", [])) <= {"Describe"} for a in dig(u, "spec", "authorization", "acls", default=[]))]
    names = [dig(u, "metadata", "name") for u in keda_users]
    if dig(refs, "password", "name") not in names:
        e.append("TriggerAuthentication password comes from %s, not a Describe-only KafkaUser %s"
                 % (dig(refs, "password", "name"), names))
    gen = dig(find(w, "Kustomization"), "secretGenerator", default=[])
    lit = {g["name"]: g.get("literals", []) for g in gen}
    uref = refs.get("username", {})
    if uref.get("name") not in lit or "%s=%s" % (uref.get("key"), names[0] if names else "") not in lit[uref["name"]]:
        e.append("TriggerAuthentication username does not come from the generated Secret naming the KEDA user")
    return e


def check_pdb(w):
    e = []
    pdb = find(w, "PodDisruptionBudget")
    if not pdb:
        return ["no PodDisruptionBudget"]
    s = pdb["spec"]
    if pdb.get("apiVersion") != "policy/v1":
        e.append("PDB apiVersion %s, want policy/v1" % pdb.get("apiVersion"))
    if s.get("maxUnavailable") != 1 or "minAvailable" in s:
        e.append("PDB must be maxUnavailable: 1 (minAvailable blocks drains at one replica)")
    if s.get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
        e.append("PDB needs unhealthyPodEvictionPolicy: AlwaysAllow")
    if not selects(dig(s, "selector", "matchLabels"), pod_labels(w)):
        e.append("PDB selector does not match the pods")
    return e


def check_podmonitor(w):
    e = []
    pm = find(w, "PodMonitor")
    if not pm:
        return ["no PodMonitor"]
    if not selects(dig(pm, "spec", "selector", "matchLabels"), pod_labels(w)):
        e.append("PodMonitor selector does not match the pods")
    names = [p.get("name") for p in container(w).get("ports", [])]
    eps = dig(pm, "spec", "podMetricsEndpoints", default=[])
    if not any(x.get("port") in names and x.get("path") == "/metrics" for x in eps):
        e.append("PodMonitor scrapes no container port at /metrics")
    return e


def check_networkpolicy(w):
    e = []
    np_ = find(w, "NetworkPolicy")
    if not np_:
        return ["no NetworkPolicy"]
    s = np_["spec"]
    if not selects(dig(s, "podSelector", "matchLabels"), pod_labels(w)):
        e.append("NetworkPolicy podSelector does not match the pods")
    if set(s.get("policyTypes", [])) != {"Ingress", "Egress"}:
        e.append("NetworkPolicy must govern Ingress and Egress")

    def ports(rules):
        return {(p.get("protocol", "TCP"), p.get("port")) for r in rules for p in r.get("ports", [])}

    if not ports(s.get("ingress", [])) & {("TCP", http_port(w)), ("TCP", "http")}:
        e.append("no ingress to the HTTP port %s" % http_port(w))
    eg = ports(s.get("egress", []))
    need = {("UDP", 53), ("TCP", 443)}
    need |= {("TCP", int(b.rsplit(":", 1)[1])) for b in str(dig(w["cfg"], "kafka", "brokers")).split(",")}
    for p in sorted(need - eg, key=str):
        e.append("no egress to %s/%s" % p)
    return e


OPS = {"Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
       "AlterConfigs", "DescribeConfigs", "IdempotentWrite", "All"}


def topic_cfg(t):
    return dig(t, "spec", "config", default={}) or {}


def policies(t):
    return {x.strip() for x in str(topic_cfg(t).get("cleanup.policy", "delete")).split(",")}


def control_topic_names(w):
    ct = dig(w["cfg"], "kafka", "control_topic")
    return (ct, ct + ".quota") if ct else (None, None)


def check_topic_basics(t, what):
    e = []
    for k in ("partitions", "replicas"):
        v = dig(t, "spec", k)
        if not isinstance(v, int) or v < 1:
            e.append("%s KafkaTopic %s %r is not an integer >= 1" % (what, k, v))
    isr = topic_cfg(t).get("min.insync.replicas")
    if isinstance(isr, int) and isinstance(dig(t, "spec", "replicas"), int) and isr > t["spec"]["replicas"]:
        e.append("%s KafkaTopic min.insync.replicas %d > replicas %d: acks=all writes would all fail"
                 % (what, isr, t["spec"]["replicas"]))
    return e


# The quota topic is read 26 h back at start (src/worker_budget.c,
# WB_QUOTA_HISTORY_MS); README.md asks for two days or more.
QUOTA_MIN_RETENTION_MS = 2 * 86400 * 1000


def check_control_topics(w):
    e = []
    rate_name, quota_name = control_topic_names(w)
    if not rate_name:
        return ["config: kafka.control_topic is not set"]
    rate = find(w, "KafkaTopic", rate_name)
    quota = find(w, "KafkaTopic", quota_name)
    if not rate:
        e.append("no KafkaTopic for the control topic %s (kafka.control_topic)" % rate_name)
    if not quota:
        e.append("no KafkaTopic for the quota topic %s (kafka.control_topic + \".quota\")" % quota_name)
    for t, what in ((rate, "control"), (quota, "quota")):
        if not t:
            continue
        e += check_topic_basics(t, "%s topic %s:" % (what, t["metadata"]["name"]))
        tt = topic_cfg(t).get("message.timestamp.type")
        if tt != "LogAppendTime":
            e.append("%s topic %s: message.timestamp.type is %r, want LogAppendTime (the protocol's shared clock)"
                     % (what, t["metadata"]["name"], tt))
    if rate and "compact" in policies(rate):
        e.append("control topic %s is compacted: a starting worker needs every recent record, not one per key" % rate_name)
    if quota:
        if "compact" not in policies(quota):
            e.append("quota topic %s: cleanup.policy %s is not compacted" % (quota_name, sorted(policies(quota))))
        ret = topic_cfg(quota).get("retention.ms", 7 * 86400 * 1000)
        if "delete" in policies(quota) and ret != -1 and (not isinstance(ret, int) or ret < QUOTA_MIN_RETENTION_MS):
            e.append("quota topic %s: retention.ms %r is below two days" % (quota_name, ret))
    return e


def grants_of(w):
    e, grants = [], {}
    for u in find_all(w, "KafkaUser"):
        n = dig(u, "metadata", "name")
        for a in dig(u, "spec", "authorization", "acls", default=[]):
            if "operation" in a:
                e.append("KafkaUser %s: 'operation' was removed in Strimzi v1; use the operations list" % n)
            ops = a.get("operations")
            if not isinstance(ops, list) or not ops or not set(ops) <= OPS:
                e.append("KafkaUser %s: operations %r is not a list of ACL operations" % (n, ops))
                continue
            r = a.get("resource", {})
            pt = r.get("patternType", "literal")
            if pt not in ("literal", "prefix"):
                e.append("KafkaUser %s: patternType %s" % (n, pt))
            for op in ops:
                grants.setdefault(n, set()).add((r.get("type"), r.get("name"), pt, op))
    return e, grants


def allows(grants, rtype, name, op, prefix=False):
    """Whether GRANTS allow OP on the resource NAME, or with PREFIX on
    every resource whose name starts with NAME (Kafka's rules: a literal
    ACL names one resource or "*", a prefixed one every name it starts)."""
    for t, n, pt, o in grants:
        if t != rtype or o not in (op, "All") or n is None:
            continue
        if pt == "literal" and (n == "*" or (n == name and not prefix)):
            return True
        if pt == "prefix" and name.startswith(n):
            return True
    return False


# The control reader's group id is this prefix and a per-process tag
# (src/control.c, make_conf).
CTL_GROUP_PREFIX = "mlsync-ctl-"


def check_strimzi(w):
    e = []
    cfg = w["cfg"]
    cluster = str(dig(cfg, "kafka", "brokers")).split("-kafka-bootstrap")[0]
    for kind in ("KafkaTopic", "KafkaUser"):
        for d in find_all(w, kind):
            n = dig(d, "metadata", "name")
            if d.get("apiVersion") not in ("kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1"):
                e.append("%s %s: apiVersion %s" % (kind, n, d.get("apiVersion")))
            if dig(d, "metadata", "labels", "strimzi.io/cluster") != cluster:
                e.append("%s %s: strimzi.io/cluster is not %s (from kafka.brokers)" % (kind, n, cluster))
    dlq = find(w, "KafkaTopic", dig(cfg, "kafka", "dead_letter_topic"))
    if not dlq:
        e.append("no KafkaTopic for the dead-letter topic %s" % dig(cfg, "kafka", "dead_letter_topic"))
    else:
        e += check_topic_basics(dlq, "dead-letter")
    e += check_control_topics(w)
    ge, grants = grants_of(w)
    e += ge
    user = props(w).get("sasl.username")
    g = grants.get(user, set())
    need = [("topic", t, "Read", False) for t in dig(cfg, "kafka", "topics", default=[])]
    need += [("group", dig(cfg, "kafka", "group"), "Read", False),
             ("topic", dig(cfg, "kafka", "dead_letter_topic"), "Write", False)]
    for t in control_topic_names(w):
        if t:
            need += [("topic", t, "Read", False), ("topic", t, "Write", False)]
    need += [("group", CTL_GROUP_PREFIX, "Read", True)]
    for rtype, name, op, prefix in need:
        if not allows(g, rtype, name, op, prefix):
            e.append("KafkaUser %s lacks %s ACL on %s %s%s" % (user, op, rtype, name, "* (prefixed)" if prefix else ""))
    return e


def check_secret_example(w):
    e = []
    for fn, d in w["objs"]:
        if fn != "secret.example.yaml":
            continue
        if d.get("data"):
            e.append("secret.example.yaml: use stringData placeholders, not data")
        for k, v in (d.get("stringData") or {}).items():
            if "REPLACE" not in str(v):
                e.append("secret.example.yaml: %s is not a REPLACE-... placeholder" % k)
    return e


CHECKS = [
    ("config: eager assignor, no static membership, JSON logs, HTTP on", check_config),
    ("kustomization lists every manifest and not the example Secret", check_kustomization),
    ("deployment: grace >= drain budget, probes /livez /readyz on http_addr's port, real command, env, secret paths, restricted securityContext", check_deployment),
    ("scaledobject: quoted metadata matching the config, replicas <= partitions and instances x input topics", check_scaledobject),
    ("triggerauthentication: KEDA's own Describe-only user", check_triggerauth),
    ("pdb: policy/v1, maxUnavailable 1, AlwaysAllow", check_pdb),
    ("podmonitor: scrapes http /metrics of the workers", check_podmonitor),
    ("networkpolicy: ingress on the HTTP port, egress to DNS, Kafka and HTTPS", check_networkpolicy),
    ("strimzi: DLQ and both control topics (LogAppendTime, quota compacted), operations lists, ACLs the config needs", check_strimzi),
    ("secret.example.yaml holds placeholders only", check_secret_example),
]
for desc, fn in CHECKS:
    errs = fn(W)
    if errs:
        for x in errs:
            bad(x)
    else:
        ok(desc)


# A run on a damaged copy of deploy/ stops here: only its verdict counts.
if mode == "checks-only":
    sys.exit(min(fails, 100))


# Negative controls: one deliberate mistake each, which its check must
# report.
def mut(kind, *path):
    def f(w, value):
        d = find(w, kind)
        for p in path[:-1]:
            d = d[p]
        if value is KeyError:
            del d[path[-1]]
        else:
            d[path[-1]] = value
    return f


def pod_spec(w):
    return find(w, "Deployment")["spec"]["template"]["spec"]


def set_probe(probe, key, value):
    def f(w, _):
        container(w)[probe]["httpGet"][key] = value
    return f


def drop_env(name):
    def f(w, _):
        c = container(w)
        c["env"] = [x for x in c["env"] if x["name"] != name]
    return f


def parts_plus_one(w, _):
    so = find(w, "ScaledObject")
    so["spec"]["maxReplicaCount"] = int(so["metadata"]["annotations"]["mlsync/source-topic-partitions"]) + 1


def singular_operation(w, _):
    acl = find(w, "KafkaUser")["spec"]["authorization"]["acls"][0]
    acl["operation"] = acl.pop("operations")[0]


def cooperative(w, _):
    w["cfg"]["kafka"]["properties"]["partition.assignment.strategy"] = "cooperative-sticky"


def real_secret(w, _):
    for fn, d in w["objs"]:
        if fn == "secret.example.yaml":
            k = sorted(d["stringData"])[0]
            d["stringData"][k] = "hunter2"


def drop_object(kind, name):
    def f(w, _):
        w["objs"] = [(fn, d) for fn, d in w["objs"]
                     if not (d.get("kind") == kind and dig(d, "metadata", "name") == name)]
    return f


def control_topic(quota):
    def get(w):
        return find(w, "KafkaTopic", control_topic_names(w)[1 if quota else 0])
    return get


def set_topic_cfg(get, key, value):
    def f(w, _):
        get(w)["spec"]["config"][key] = value
    return f


def rename_control_topic(w, _):
    w["cfg"]["kafka"]["control_topic"] = "mlsync.ctl"


def edit_worker_acl(rtype, name, change):
    def f(w, _):
        u = find(w, "KafkaUser", props(w).get("sasl.username"))
        for a in u["spec"]["authorization"]["acls"]:
            if a["resource"]["type"] == rtype and a["resource"]["name"] == name:
                change(a)
    return f


def unlist(fn):
    def f(w, _):
        k = find(w, "Kustomization")
        k["resources"] = [r for r in k["resources"] if r != fn]
    return f


def min_available(w, _):
    s = find(w, "PodDisruptionBudget")["spec"]
    s.pop("maxUnavailable")
    s["minAvailable"] = 1


NEGATIVE = [
    ("grace period 30 s", lambda w, v: pod_spec(w).__setitem__("terminationGracePeriodSeconds", 30), None, check_deployment),
    ("grace period 80 s (enough without the control producers)", lambda w, v: pod_spec(w).__setitem__("terminationGracePeriodSeconds", 80), None, check_deployment),
    ("startup probe allowing 20 s", lambda w, v: container(w)["startupProbe"].update(periodSeconds=2, failureThreshold=10), None, check_deployment),
    ("spec.replicas set", mut("Deployment", "spec", "replicas"), 3, check_deployment),
    ("readiness on /healthz", set_probe("readinessProbe", "path", "/healthz"), None, check_deployment),
    ("liveness on port 9090", set_probe("livenessProbe", "port", 9090), None, check_deployment),
    ("a replay subcommand", lambda w, v: container(w)["args"].__setitem__(0, "replay"), None, check_deployment),
    ("KAFKA_PASSWORD not set", drop_env("KAFKA_PASSWORD"), None, check_deployment),
    ("maxReplicaCount above partitions", parts_plus_one, None, check_scaledobject),
    ("maxReplicaCount above instances x input topics", lambda w, v: find(w, "ScaledObject")["spec"].update(maxReplicaCount=3), None, check_scaledobject),
    ("unquoted lagThreshold", lambda w, v: find(w, "ScaledObject")["spec"]["triggers"][0]["metadata"].__setitem__("lagThreshold", 10000), None, check_scaledobject),
    ("another consumer group", lambda w, v: find(w, "ScaledObject")["spec"]["triggers"][0]["metadata"].__setitem__("consumerGroup", "other"), None, check_scaledobject),
    ("PDB minAvailable 1", min_available, None, check_pdb),
    ("singular ACL operation", singular_operation, None, check_strimzi),
    ("a copy without the quota topic", drop_object("KafkaTopic", "mlsync.control.quota"), None, check_strimzi),
    ("a copy without the control topic", drop_object("KafkaTopic", "mlsync.control"), None, check_strimzi),
    ("kafka.control_topic renamed in the config only", rename_control_topic, None, check_strimzi),
    ("quota topic not compacted", set_topic_cfg(control_topic(True), "cleanup.policy", "delete"), None, check_strimzi),
    ("control topic compacted", set_topic_cfg(control_topic(False), "cleanup.policy", "compact"), None, check_strimzi),
    ("quota topic on CreateTime", set_topic_cfg(control_topic(True), "message.timestamp.type", "CreateTime"), None, check_strimzi),
    ("control topic without a timestamp type", lambda w, v: control_topic(False)(w)["spec"]["config"].pop("message.timestamp.type"), None, check_strimzi),
    ("quota topic kept 1 day", set_topic_cfg(control_topic(True), "retention.ms", 86400000), None, check_strimzi),
    ("control topic min.insync.replicas above replicas", set_topic_cfg(control_topic(False), "min.insync.replicas", 4), None, check_strimzi),
    ("no Write on the quota topic", edit_worker_acl("topic", "mlsync.control.quota", lambda a: a["operations"].remove("Write")), None, check_strimzi),
    ("no Read on the control topic", edit_worker_acl("topic", "mlsync.control", lambda a: a["operations"].remove("Read")), None, check_strimzi),
    ("control group ACL literal, not prefixed", edit_worker_acl("group", "mlsync-ctl-", lambda a: a["resource"].update(patternType="literal")), None, check_strimzi),
    ("control group ACL without Read", edit_worker_acl("group", "mlsync-ctl-", lambda a: a["operations"].remove("Read")), None, check_strimzi),
    ("kafkatopic-control.yaml not in the kustomization", unlist("kafkatopic-control.yaml"), None, check_kustomization),
    ("cooperative-sticky", cooperative, None, check_config),
    ("a real-looking secret", real_secret, None, check_secret_example),
]
for name, mutate, value, check in NEGATIVE:
    w = copy.deepcopy(W)
    # A mutation that no longer fits the manifests (the object it edits
    # is gone or renamed) is reported, not allowed to end the run.
    try:
        mutate(w, value)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as x:
        bad("negative control: %s cannot be applied to these manifests (%s: %s)" % (name, type(x).__name__, x))
        continue
    errs = check(w)
    if errs:
        ok("negative control: %s is caught (%s)" % (name, errs[0]))
    else:
        bad("negative control: %s was not caught" % name)

sys.exit(min(fails, 100))
PY
	cross() { python3 "$tmp/cross.py" "$1" "$cfg" "$tmp/help.txt" "${uid:-none}" "${ctl_start_ms:-none}" "${ctl_close_ms:-none}" "$2"; }
	cross "$dir" all
	fails=$((fails + $?))

	# Negative control on files, not on parsed objects: a copy of deploy/
	# whose kafkatopic-control.yaml lost its second document (the quota
	# topic) must fail the whole cross-check, for that reason.
	mkdir -p "$tmp/noquota"
	cp "$dir"/*.yaml "$tmp/noquota/"
	sed '/^---$/,$d' "$dir/kafkatopic-control.yaml" >"$tmp/noquota/kafkatopic-control.yaml"
	if cmp -s "$dir/kafkatopic-control.yaml" "$tmp/noquota/kafkatopic-control.yaml"; then
		bad "negative control: kafkatopic-control.yaml has no second document to take out (update the sed)"
	elif out=$(cross "$tmp/noquota" checks-only 2>&1); then
		bad "negative control: a deploy/ copy without the quota topic passed the cross-checks"
	elif grep -q '^FAIL no KafkaTopic for the quota topic' <<<"$out" && ! grep -q 'Traceback' <<<"$out"; then
		ok "negative control: a deploy/ copy without the quota topic fails ($(grep -c '^FAIL' <<<"$out") failure: $(grep -m 1 '^FAIL' <<<"$out" | cut -c 6-))"
	else
		bad "negative control: a deploy/ copy without the quota topic failed, but not for the missing topic:"
		printf '%s\n' "$out" | grep -v '^ok' | sed 's/^/     /'
	fi
fi

echo
if ((fails)); then
	echo "deploy_check: $fails failure(s)"
	exit 1
fi
echo "deploy_check: all checks passed"
