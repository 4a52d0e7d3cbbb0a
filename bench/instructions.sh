#!/usr/bin/env bash
# Instructions per echoed message in a server's user space, counted by
# valgrind's callgrind: the count does not depend on how busy the machine
# is (where msg/s swings by 15%), so an A/B of a change to the per-message
# work needs a run or two of each (a server's count moves by a few percent
# with how many messages each read carries; the `core` count not at all).
# Kernel time is not counted.
#
#   bench/instructions.sh SERVER [SIZE=20] [DEPTH=1] [SECS=5]
#   bench/instructions.sh tincan-tokio 20 16
#   bench/instructions.sh peer-fastws-echo
#
# SERVER: a tincan binary (target/release, run with --echo) or a peer
# (bench/peers/target/release; peer-raw-echo is driven over raw TCP).
# Prints the messages echoed, the instructions and their ratio (start-up
# and connecting are included: a few percent at 5 s). The profile stays in
# $OUT (default /tmp/instructions.out) for callgrind_annotate.
#
#   bench/instructions.sh core [SIZE=20]
#
# The protocol alone (core/examples/echo_loop.rs: reads of 16 messages
# received, echoed and written, no sockets; DEPTH and SECS do not apply):
# the instructions of 20,000 reads less those of 10,000, per message, so
# start-up cancels out. Exact to the instruction from run to run.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/instructions.sh SERVER|core [SIZE] [DEPTH] [SECS]" >&2; exit 2; }
server=$1 size=${2:-20} depth=${3:-1} secs=${4:-5}
out=${OUT:-/tmp/instructions.out}
port=${PORT:-27400}
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
if [ "$server" = core ]; then
  cargo build --release -q -p tincan-core --example echo_loop
  count() { # reads: prints the instructions, or fails with what was said
    local said status=0
    said=$(valgrind --tool=callgrind --callgrind-out-file="$out" \
      target/release/examples/echo_loop "$1" "$size" 2>&1 >/dev/null) || status=$?
    [ "$status" = 0 ] && awk '/Collected :/ { print $NF }' <<<"$said" | grep -E '^[0-9]+$' ||
      { echo "instructions.sh: no count for $1 reads:" >&2; echo "$said" >&2; return 1; }
  }
  fewer=$(count 10000)
  more=$(count 20000)
  # The example reads 16 messages at a time (DEPTH in echo_loop.rs).
  echo "core echo loop, $size B: $(( (more - fewer) / (10000 * 16) )) instructions per message"
  exit 0
fi
cargo build --release -q -p tincan-smol -p tincan-async-std -p tincan-tokio -p tincan-load
cargo build --release -q --manifest-path bench/peers/Cargo.toml
case $server in
  tincan-*) cmd=(target/release/"$server" -q --echo --max-connections-per-ip 0 "$port")
    url=ws://127.0.0.1:$port/bench ;;
  peer-raw-echo) cmd=(bench/peers/target/release/"$server" "$port"); url=tcp://127.0.0.1:$port ;;
  *) cmd=(bench/peers/target/release/"$server" "$port"); url=ws://127.0.0.1:$port/bench ;;
esac
valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
deadline=$((SECONDS + 60))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null || { echo "instructions.sh: $server did not listen" >&2; exit 1; }
  sleep 0.1
done
line=$(target/release/tincan-load echo "$url" -c 100 -s "$size" -d "$depth" -t "$secs")
# SIGINT: the tincan binaries shut down and callgrind writes its file.
kill -INT "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen++ { gsub(",", "", $1); print $1 }')
python3 - "$line" "$total" "$server" "$size" "$depth" <<'PY'
import json, sys
d, total = json.loads(sys.argv[1]), int(sys.argv[2])
n = d["messages"]
print(f"{sys.argv[3]} echo {sys.argv[4]} B depth {sys.argv[5]}: {n} messages, "
      f"{total} instructions, {total / n:.0f} per message")
PY
