#!/usr/bin/env bash
# What an idle chat connection holds on the heap, by where it was allocated:
# BINARY under heaptrack holds N connections of `tincan-load idle` (100
# rooms, no pings, as bench/compare.sh's idle row), is killed HOLD seconds
# after the last one connected, and what it still held then is summed by the
# innermost frame of tincan, async-io, async-executor or tokio, per
# connection.
#
#   bench/heap.sh target/release/tincan-smol [N=2000] [HOLD=4]
#
# Installs heaptrack with apt if it is missing. The figures are heap bytes,
# not RSS: what the allocator keeps of freed memory is not in them.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/heap.sh BINARY [N] [HOLD]" >&2; exit 2; }
bin=$1 n=${2:-2000} hold=${3:-4}
cd "$(dirname "$0")/.."
command -v heaptrack >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack >/dev/null; }
LOAD=target/release/tincan-load
[ -x "$LOAD" ] || cargo build --release -q -p tincan-load
ulimit -n "$(ulimit -Hn)"
scratch=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$scratch"' EXIT
port=${PORT:-27400}
heaptrack -o "$scratch/heap" "$bin" -q --rate 1000000 --burst 1000000 --max-clients 100000 \
  --max-room-clients 100000 --history 0 --idle-timeout 0 --ping-interval 0 \
  --max-connections-per-ip 0 "$port" >"$scratch/server.log" 2>&1 &
tracker=$!
deadline=$((SECONDS + 60))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "heap.sh: $bin did not listen" >&2; cat "$scratch/server.log" >&2; exit 1; }
  sleep 0.1
done
"$LOAD" idle "ws://127.0.0.1:$port/idle" -t 600 -n "$n" --rooms 100 >"$scratch/load.json" &
deadline=$((SECONDS + 120))
until grep -q '}$' "$scratch/load.json"; do
  [ $SECONDS -lt $deadline ] || { echo "heap.sh: the connections did not open" >&2; exit 1; }
  sleep 0.1
done
cat "$scratch/load.json"
sleep "$hold"
# Killed, not stopped: a shutdown would free what is to be measured.
pkill -KILL -f "^$bin -q" || true
wait "$tracker" || true
heaptrack_print -f "$scratch"/heap.*zst --print-peaks 0 --print-allocators 0 --print-temporary 0 \
  --print-leaks 0 --flamegraph-cost-type leaked -F "$scratch/held.stacks" >/dev/null
python3 - "$scratch/held.stacks" "$n" <<'PY'
import collections, re, sys
n = int(sys.argv[2])
total, sites = 0, collections.Counter()
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip().rpartition(" ")
    total += int(cost)
    site = next((re.sub(r"::h[0-9a-f]{16}", "", f)[:120] for f in reversed(stack.split(";"))
                 if re.search(r"tincan|async_io|async_executor|tokio", f)), "elsewhere")
    sites[site] += int(cost)
print(f"held: {total} bytes, {total / n:.1f} per connection")
for site, cost in sites.most_common(15):
    print(f"{cost / n:8.1f}  {site}")
PY
