#!/usr/bin/env bash
# A/B of two builds of one binary, runs alternating so that a busy machine
# weighs on both alike: a chat broadcast (RECEIVERS receivers, SENDERS x
# RATE/s) for SECS, and the server's CPU per delivery from /proc/PID/stat.
#
#   bench/ab.sh A_BINARY B_BINARY [RUNS=5]
#   RECEIVERS=500 SENDERS=5 RATE=100 SECS=5 bench/ab.sh ...
#
# Prints one line per run and the medians; the load tool is this tree's
# (cargo build --release -p tincan-load).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/ab.sh A_BINARY B_BINARY [RUNS]" >&2; exit 2; }
a=$1 b=$2 runs=${3:-5}
cd "$(dirname "$0")/.."
LOAD=target/release/tincan-load
[ -x "$LOAD" ] || cargo build --release -q -p tincan-load
CHAT=(-q --rate 1000000 --burst 1000000 --max-clients 100000 --max-room-clients 100000
  --history 0 --idle-timeout 0 --ping-interval 0 --max-connections-per-ip 0 --threads 1)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
port=${BASE_PORT:-27300}
run() { # binary label
  "$1" "${CHAT[@]}" "$port" >/dev/null 2>&1 &
  local pid=$! deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null || { echo "ab.sh: $1 did not listen" >&2; exit 1; }
    sleep 0.05
  done
  local line cpu
  line=$("$LOAD" broadcast "ws://127.0.0.1:$port/ab" -n "${RECEIVERS:-500}" -k "${SENDERS:-5}" \
    -r "${RATE:-100}" -t "${SECS:-5}")
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  port=$((port + 1))
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); n=d["delivered"]
print(sys.argv[3], round(int(sys.argv[2]) * 1000 / n, 3) if n else "nan", n, d["lost"])' \
    "$line" "$cpu" "$2" | tee -a "$scratch/runs"
}
echo "label us_cpu_per_delivery delivered lost"
for _ in $(seq "$runs"); do run "$a" A; run "$b" B; done
python3 - "$scratch/runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
a = [float(r[1]) for r in rows if r[0] == "A"]
b = [float(r[1]) for r in rows if r[0] == "B"]
pairs = [y / x for x, y in zip(a, b)]
print(f"median CPU per delivery: A {statistics.median(a):.3f} us, B {statistics.median(b):.3f} us; "
      f"B/A per pair {statistics.median(pairs):.3f} (from {min(pairs):.2f} to {max(pairs):.2f})")
PY
