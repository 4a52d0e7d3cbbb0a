#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzingclient against one server binary in echo
# mode: every case, 12.* and 13.* (permessage-deflate) included. Fails unless
# every case is OK or INFORMATIONAL, both in behaviour and in closing
# behaviour.
#
#   scripts/autobahn.sh target/release/tincan-smol [label]
#   AUTOBAHN_CASES='1.*,2.*' scripts/autobahn.sh ...   # a quick subset
#   AUTOBAHN_TLS=1 scripts/autobahn.sh ...             # over wss, with a
#                                    # self-signed certificate made for the run;
#                                    # 1-11 only (deflate is the same code over
#                                    # either transport, and 12-13 take minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "$1")
label=${2:-$(basename "$1")}
[ -x "$bin" ] || { echo "autobahn.sh: no executable at $1" >&2; exit 2; }
[ -x .autobahn/venv/bin/wstest ] || scripts/setup.sh autobahn

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tls=() scheme=ws exclude='[]'
if [ -n "${AUTOBAHN_TLS:-}" ]; then
  exclude='["12.*", "13.*"]'
  # wstest (Twisted) does not verify the certificate: any pair will do.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem") scheme=wss
fi
# One thread: the three binaries' runs share 2 cores with three wstest
# processes, and conformance does not depend on the thread count (the
# integration tests run the default).
"$bin" --echo --quiet --threads 1 --bind 127.0.0.1 "${tls[@]}" "$port" >"$work/server.log" 2>&1 &
server_pid=$!
# Wait (bounded) for the port to accept.
for _ in $(seq 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "autobahn.sh: the server exited:" >&2; cat "$work/server.log" >&2; exit 1
  fi
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done

cases=${AUTOBAHN_CASES:-*}
cases_json=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1].split(",")))' "$cases")
reports="reports/autobahn/$label"
rm -rf "$reports"
mkdir -p "$reports"
cat >"$work/spec.json" <<JSON
{"outdir": "$PWD/$reports", "servers": [{"agent": "$label", "url": "$scheme://127.0.0.1:$port"}],
 "cases": $cases_json, "exclude-cases": $exclude, "exclude-agent-cases": {}}
JSON
echo "== Autobahn|Testsuite against $label over $scheme (cases $cases)"
(cd "$work" && timeout 2700 "$OLDPWD/.autobahn/venv/bin/wstest" -m fuzzingclient -s spec.json >wstest.log 2>&1) || {
  echo "autobahn.sh: wstest failed or timed out:" >&2; tail -20 "$work/wstest.log" >&2; exit 1
}

python3 - "$reports/index.json" "$label" <<'PY'
import collections, json, sys
results = json.load(open(sys.argv[1]))
good = {"OK", "INFORMATIONAL"}
counts = collections.Counter()
bad = []
for agent, cases in results.items():
    for case, r in cases.items():
        counts[(r["behavior"], r["behaviorClose"])] += 1
        if r["behavior"] not in good or r["behaviorClose"] not in good:
            bad.append((case, r["behavior"], r["behaviorClose"]))
for (behavior, close), n in sorted(counts.items()):
    print(f"  {n:4d}  behavior={behavior} close={close}")
for case, behavior, close in sorted(bad):
    print(f"  FAILED {case}: behavior={behavior} close={close}")
total = sum(counts.values())
print(f"autobahn {sys.argv[2]}: {total - len(bad)} passed, {len(bad)} failed")
sys.exit(1 if bad or total == 0 else 0)
PY
