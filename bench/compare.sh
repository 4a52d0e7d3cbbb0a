#!/usr/bin/env bash
# Runs the same load against tincan and its peers and prints medians and our
# ratio to each peer. See bench/README.md.
#
#   bench/compare.sh                     # echo, broadcast and idle; 5 runs each
#   bench/compare.sh echo                # some scenarios only
#   bench/compare.sh tls                 # echo and broadcast over wss (not in the default set)
#   bench/compare.sh deflate fairness    # permessage-deflate on/off; echo p99 beside ping flooders
#   bench/compare.sh cross-node          # two tincan-smol nodes sharing a room through Redis
#   bench/compare.sh --quick             # 1 run of 3 s each: a smoke test
#   RUNS=5 SECS=10 bench/compare.sh      # the defaults
#
# Load tool and servers share this machine; every server is started fresh
# on its own port and stopped before the next. Raw JSON lines go to
# bench/results/<time>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SECS=${SECS:-10}
scenarios=()
for arg in "$@"; do
  case "$arg" in
    --quick) RUNS=1 SECS=3 ;;
    echo | broadcast | idle | tls | deflate | fairness | cross-node) scenarios+=("$arg") ;;
    *) echo "usage: bench/compare.sh [--quick] [echo] [broadcast] [idle] [tls] [deflate] [fairness] [cross-node]" >&2; exit 2 ;;
  esac
done
[ ${#scenarios[@]} -eq 0 ] && scenarios=(echo broadcast idle)

# Broadcast load: K senders at R messages/s each, to N receivers.
BC_RECEIVERS=${BC_RECEIVERS:-1000}
BC_SENDERS=${BC_SENDERS:-10}
BC_RATE=${BC_RATE:-400}
# Over TLS the load tool decrypts every delivery on its one thread: 10 x 100/s
# (1 M deliveries/s) is what it takes whole beside the server on 2 cores.
TLS_BC_RATE=${TLS_BC_RATE:-100}
IDLE_CONNS=${IDLE_CONNS:-10000}
# Deflate: senders' rate and message size (chat-sized text). The load tool
# inflates on one thread: past about 300k deliveries a second it, not the
# server, falls behind.
DEFLATE_BC_RATE=${DEFLATE_BC_RATE:-30}
DEFLATE_SIZE=${DEFLATE_SIZE:-200}
# Cross-node: receivers and senders dealt over two nodes sharing one Redis;
# CROSS_SENDERS x CROSS_RATE messages/s offered in total.
CROSS_RECEIVERS=${CROSS_RECEIVERS:-1000}
CROSS_SENDERS=${CROSS_SENDERS:-10}
CROSS_RATE=${CROSS_RATE:-100}
# Fairness: ping flooders beside the measured client.
FLOODERS=${FLOODERS:-2}

say() { printf '[compare] %s\n' "$*" >&2; }

say "building (release)"
cargo build --release -q -p tincan-smol -p tincan-async-std -p tincan-load
cargo build --release -q --manifest-path bench/peers/Cargo.toml

# 10,000 connections need more descriptors than the usual 1024 (each process
# gets its own; the hard limit here is 20000).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 100)) ]; then
  echo "compare.sh: ulimit -n is $(ulimit -n); idle needs $((IDLE_CONNS + 100)) (raise the hard limit)" >&2
  exit 1
fi

LOAD=target/release/tincan-load
PEERS=bench/peers/target/release
mkdir -p bench/results
results=bench/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl
scratch=$(mktemp -d)
server_pid=
cross_pids=()
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  for pid in "${cross_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# Chat limits off for tincan: the load is the point, not the rate limiter.
# Every load connection comes from 127.0.0.1: no per-address limit either.
CHAT=(-q --rate 1000000 --burst 1000000 --max-clients 100000 --max-room-clients 100000
  --history 0 --idle-timeout 0 --ping-interval 0 --max-connections-per-ip 0)
ECHO=(-q --echo --max-connections-per-ip 0)

next_port=19100
start_server() { # command...; sets $port and $server_pid
  port=$next_port
  next_port=$((next_port + 1))
  "$@" "$port" >"$scratch/server.log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$server_pid" 2>/dev/null; then
      echo "compare.sh: $* did not start listening on $port:" >&2
      cat "$scratch/server.log" >&2
      exit 1
    fi
    sleep 0.05
  done
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# CPU time (user + system) a process has used so far, in milliseconds.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"; }

# The median of `field` over the JSON lines in a file.
median() { # file field
  python3 - "$1" "$2" <<'PY'
import json, statistics, sys
values = [json.loads(line)[sys.argv[2]] for line in open(sys.argv[1]) if line.strip()]
m = statistics.median(values) if values else float("nan")
print(round(m, 2) if isinstance(m, float) else m)
PY
}

# Runs the load tool RUNS times against a fresh server each time; the JSON
# lines go to $scratch/<label>.jsonl and the results file.
measure() { # label, url-scheme (ws|wss|tcp), load args (with URL as @URL@), --, server command...
  local label=$1 scheme=$2
  shift 2
  local load_args=()
  while [ "$1" != -- ]; do load_args+=("$1"); shift; done
  shift
  : >"$scratch/$label.jsonl"
  for run in $(seq "$RUNS"); do
    start_server "$@"
    local url
    case $scheme in
      tcp) url="tcp://127.0.0.1:$port" ;;
      *) url="$scheme://127.0.0.1:$port/bench" ;;
    esac
    local args=("${load_args[@]/@URL@/$url}")
    # wss: trust the certificate tls_scenario made (and nothing else).
    [ "$scheme" = wss ] && args+=(--ca "$scratch/cert.pem")
    local line server_cpu
    line=$(timeout $((SECS * 3 + 120)) "$LOAD" "${args[@]}")
    server_cpu=$(cpu_ms "$server_pid")
    stop_server
    # The server's CPU time over the whole run (connecting included), per
    # message delivered (broadcast) or echoed (echo): what a message costs
    # the server, whoever the bottleneck was.
    line=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); n=d.get("delivered", d.get("messages", 0)); d["server_cpu_ms"]=int(sys.argv[2]); d["server_cpu_us_per_msg"]=round(int(sys.argv[2])*1000/n, 3) if n else None; print(json.dumps(d))' "$line" "$server_cpu")
    echo "$line" >>"$scratch/$label.jsonl"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["label"]=sys.argv[2]; print(json.dumps(d))' \
      "$line" "$label" >>"$results"
    say "$label run $run: $line"
  done
}

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b else '-')" "$1" "$2"; }

table=()
row() { # cells...
  local line="|" cell
  for cell in "$@"; do line+=" $cell |"; done
  table+=("$line")
}

# Echo at one size; over wss (against the TLS peer alone) when $2 is "tls".
echo_scenario() { # size [tls]
  local size=$1 tls=${2:-} args=(echo @URL@ -c 100 -s "$1" -d 1 -t "$SECS")
  local label=echo-$size scheme=ws name="echo ${size} B x100" extra=()
  local servers=(tincan-smol tincan-async-std fastwebsockets tokio-tungstenite raw-tcp)
  if [ -n "$tls" ]; then
    label=tls-echo-$size scheme=wss name="wss echo ${size} B x100" extra=("${TLS[@]}")
    servers=(tincan-smol tincan-async-std tokio-tungstenite)
  fi
  measure "$label-tincan-smol" $scheme "${args[@]}" -- target/release/tincan-smol "${ECHO[@]}" "${extra[@]}"
  measure "$label-tincan-async-std" $scheme "${args[@]}" -- target/release/tincan-async-std "${ECHO[@]}" "${extra[@]}"
  [ -z "$tls" ] && measure "$label-fastwebsockets" ws "${args[@]}" -- "$PEERS/peer-fastws-echo"
  measure "$label-tokio-tungstenite" $scheme "${args[@]}" -- "$PEERS/peer-tungstenite-echo" "${extra[@]}"
  [ -z "$tls" ] && measure "$label-raw-tcp" tcp "${args[@]}" -- "$PEERS/peer-raw-echo"
  local -A echoed=()
  local server
  for server in "${servers[@]}"; do
    echoed[$server]=$(median "$scratch/$label-$server.jsonl" msgs_per_sec)
  done
  for server in "${servers[@]}"; do
    local f="$scratch/$label-$server.jsonl" m=${echoed[$server]} note=
    case $server in
      tincan-*)
        note="$(ratio "$m" "${echoed[tokio-tungstenite]}") of tokio-tungstenite"
        [ -z "$tls" ] && note="$(ratio "$m" "${echoed[fastwebsockets]}") of fastwebsockets, $note, $(ratio "$m" "${echoed[raw-tcp]}") of raw TCP"
        ;;
      raw-tcp) note="ceiling (no WebSocket)" ;;
    esac
    row "$name" "$server" "$m msg/s" "p50 $(median "$f" p50_us) us" "p99 $(median "$f" p99_us) us" \
      "$(median "$f" server_cpu_us_per_msg) us" "$note"
  done
}

# Broadcast; over wss at TLS_BC_RATE when $1 is "tls".
broadcast_scenario() { # [tls]
  local tls=${1:-} rate=$BC_RATE label=broadcast scheme=ws extra=() name=broadcast
  if [ -n "$tls" ]; then
    rate=$TLS_BC_RATE label=tls-broadcast scheme=wss extra=("${TLS[@]}") name="wss broadcast"
  fi
  local args=(broadcast @URL@ -n "$BC_RECEIVERS" -k "$BC_SENDERS" -r "$rate" -t "$SECS")
  measure "$label-tincan-smol" $scheme "${args[@]}" -- target/release/tincan-smol "${CHAT[@]}" "${extra[@]}"
  measure "$label-tincan-async-std" $scheme "${args[@]}" -- target/release/tincan-async-std "${CHAT[@]}" "${extra[@]}"
  measure "$label-tokio-tungstenite" $scheme "${args[@]}" -- "$PEERS/peer-tungstenite-broadcast" "${extra[@]}"
  local peer
  peer=$(median "$scratch/$label-tokio-tungstenite.jsonl" delivered_per_sec)
  local peer_p99
  peer_p99=$(median "$scratch/$label-tokio-tungstenite.jsonl" p99_us)
  for server in tincan-smol tincan-async-std tokio-tungstenite; do
    local f="$scratch/$label-$server.jsonl" m note=
    m=$(median "$f" delivered_per_sec)
    [ "$server" != tokio-tungstenite ] && note="$(ratio "$m" "$peer") of tokio-tungstenite; p99 $(ratio "$(median "$f" p99_us)" "$peer_p99")"
    row "$name ${BC_SENDERS}x${rate}/s to $BC_RECEIVERS" "$server" "$m delivered/s" \
      "p50 $(median "$f" p50_us) us" "p99 $(median "$f" p99_us) us" \
      "$(median "$f" server_cpu_us_per_msg) us" "lost $(median "$f" lost), out of order $(median "$f" out_of_order), errors $(median "$f" errors); $note"
  done
}

# TLS: a throwaway certificate for 127.0.0.1 (not a CA: it is its own trust
# anchor for the load tool's --ca), every server on rustls with ring.
tls_scenario() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
    -keyout "$scratch/key.pem" -out "$scratch/cert.pem" 2>/dev/null
  TLS=(--tls-cert "$scratch/cert.pem" --tls-key "$scratch/key.pem")
  echo_scenario 20 tls
  broadcast_scenario tls
}

# Idle: server RSS before and while the tool holds IDLE_CONNS connections
# (over 100 rooms, so a chat server's presence notices stay small).
# Idle: server RSS per connection while the tool holds IDLE_CONNS of them
# (over 100 rooms); the load tool gets the extra arguments in $idle_extra.
declare -A per_conn=()
idle_extra=()
run_idle() { # label, server command...
  local label=$1
  shift
  : >"$scratch/idle-$label.txt"
  for run in $(seq "$RUNS"); do
    start_server "$@"
    local before fifo="$scratch/idle.out"
    before=$(rss_kib "$server_pid")
    "$LOAD" idle "ws://127.0.0.1:$port/idle" -n "$IDLE_CONNS" --rooms 100 -t 600 "${idle_extra[@]}" >"$fifo" &
    local load_pid=$! deadline=$((SECONDS + 180))
    until grep -q '}$' "$fifo" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ] || ! kill -0 "$load_pid" 2>/dev/null; then
        echo "compare.sh: idle run against $label printed nothing" >&2
        exit 1
      fi
      sleep 0.1
    done
    local line after connected
    line=$(head -1 "$fifo")
    after=$(rss_kib "$server_pid")
    kill "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    stop_server
    connected=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["connected"])' "$line")
    local kib
    kib=$(python3 -c "print(round(($after - $before) / max($connected, 1), 2))")
    echo "$kib" >>"$scratch/idle-$label.txt"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(label=sys.argv[2], rss_before_kib=int(sys.argv[3]), rss_after_kib=int(sys.argv[4]), rss_per_conn_kib=float(sys.argv[5])); print(json.dumps(d))' \
      "$line" "idle-$label" "$before" "$after" "$kib" >>"$results"
    say "idle $label run $run: $connected connections, RSS $before -> $after KiB, $kib KiB each"
  done
  per_conn[$label]=$(python3 -c 'import statistics,sys; print(round(statistics.median(float(l) for l in open(sys.argv[1])), 2))' "$scratch/idle-$label.txt")
}

idle_scenario() {
  run_idle tincan-smol target/release/tincan-smol "${CHAT[@]}"
  run_idle tincan-async-std target/release/tincan-async-std "${CHAT[@]}"
  run_idle tokio-tungstenite "$PEERS/peer-tungstenite-broadcast"
  for server in tincan-smol tincan-async-std tokio-tungstenite; do
    local note=
    [ "$server" != tokio-tungstenite ] && note="$(ratio "${per_conn[$server]}" "${per_conn[tokio-tungstenite]}") of tokio-tungstenite"
    row "idle x$IDLE_CONNS" "$server" "${per_conn[$server]} KiB RSS/conn" "" "" "" "$note"
  done
}

# permessage-deflate (RFC 7692) on tincan-smol: a broadcast of chat-sized
# messages (DEFLATE_SIZE bytes of chat-like text) with receivers that do and
# do not negotiate it, for the server CPU per delivery; and idle connections
# that negotiated it, for the memory per connection.
deflate_scenario() {
  local args=(broadcast @URL@ -n "$BC_RECEIVERS" -k "$BC_SENDERS" -r "$DEFLATE_BC_RATE" -t "$SECS"
    -s "$DEFLATE_SIZE")
  measure deflate-off ws "${args[@]}" -- target/release/tincan-smol "${CHAT[@]}"
  measure deflate-on ws "${args[@]}" --deflate -- target/release/tincan-smol "${CHAT[@]}"
  local off on
  off=$(median "$scratch/deflate-off.jsonl" server_cpu_us_per_msg)
  on=$(median "$scratch/deflate-on.jsonl" server_cpu_us_per_msg)
  for mode in off on; do
    local f="$scratch/deflate-$mode.jsonl" note=
    [ $mode = on ] && note="CPU per delivery $(ratio "$on" "$off") of deflate off"
    row "broadcast ${BC_SENDERS}x${DEFLATE_BC_RATE}/s of $DEFLATE_SIZE B to $BC_RECEIVERS, deflate $mode" \
      tincan-smol "$(median "$f" delivered_per_sec) delivered/s" "p50 $(median "$f" p50_us) us" \
      "p99 $(median "$f" p99_us) us" "$(median "$f" server_cpu_us_per_msg) us" \
      "lost $(median "$f" lost), errors $(median "$f" errors); $note"
  done
  idle_extra=()
  run_idle deflate-off target/release/tincan-smol "${CHAT[@]}"
  idle_extra=(--deflate)
  run_idle deflate-on target/release/tincan-smol "${CHAT[@]}"
  idle_extra=()
  row "idle x$IDLE_CONNS, deflate off" tincan-smol "${per_conn[deflate-off]} KiB RSS/conn" "" "" "" ""
  row "idle x$IDLE_CONNS, deflate negotiated" tincan-smol "${per_conn[deflate-on]} KiB RSS/conn" "" "" "" \
    "$(ratio "${per_conn[deflate-on]}" "${per_conn[deflate-off]}") of deflate off (target at most 1.5x)"
}

# Fairness: a fresh client's echo round trips (10 connections, depth 1)
# alone, and beside FLOODERS clients that send pings as fast as they can
# read the pongs (bench/flood.py). The p99 is the figure to watch.
fairness_scenario() {
  local bin flooders
  for bin in tincan-smol tincan-async-std; do
    for flooders in 0 "$FLOODERS"; do
      local label="fairness-$bin-$flooders"
      : >"$scratch/$label.jsonl"
      for run in $(seq "$RUNS"); do
        start_server "target/release/$bin" "${ECHO[@]}"
        local pids=() i
        for i in $(seq "$flooders"); do
          bench/flood.py 127.0.0.1 "$port" $((SECS + 5)) &
          pids+=($!)
        done
        local line
        line=$(timeout $((SECS * 3 + 120)) "$LOAD" echo "ws://127.0.0.1:$port/bench" -c 10 -d 1 -t "$SECS")
        # (Only the flooders: a bare `wait` would wait for the server too.)
        if [ ${#pids[@]} -gt 0 ]; then
          kill "${pids[@]}" 2>/dev/null || true
          wait "${pids[@]}" 2>/dev/null || true
        fi
        stop_server
        echo "$line" >>"$scratch/$label.jsonl"
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["label"]=sys.argv[2]; print(json.dumps(d))' \
          "$line" "$label" >>"$results"
        say "$label run $run: $line"
      done
      local f="$scratch/$label.jsonl"
      row "echo x10 depth 1 beside $flooders ping flooders" "$bin" "$(median "$f" msgs_per_sec) msg/s" \
        "p50 $(median "$f" p50_us) us" "p99 $(median "$f" p99_us) us" "" "errors $(median "$f" errors)"
    done
  done
}

# Cross-node broadcast: a redis-server (nothing on disk) and two tincan-smol
# nodes on it, fresh for each run; CROSS_RECEIVERS receivers and
# CROSS_SENDERS senders dealt over the two (the load tool's several URLs), so
# half of every delivery crosses Redis. Server CPU is both nodes' together;
# Redis's own is in the raw lines (redis_cpu_ms).
cross_node_scenario() {
  local label=cross-node-tincan-smol f="$scratch/cross-node-tincan-smol.jsonl"
  : >"$f"
  # CHAT's limits, with a history: the Lua script writes each message's
  # history stream too, as in production.
  local node_args=(-q --rate 1000000 --burst 1000000 --max-clients 100000 --max-room-clients 100000
    --history 50 --idle-timeout 0 --ping-interval 0 --max-connections-per-ip 0)
  for run in $(seq "$RUNS"); do
    local redis_port=$next_port
    next_port=$((next_port + 1))
    redis-server --port "$redis_port" --save '' --appendonly no --daemonize no >"$scratch/redis.log" 2>&1 &
    local redis_pid=$!
    cross_pids=("$redis_pid")
    local deadline=$((SECONDS + 30))
    until [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ]; do
      if [ $SECONDS -ge $deadline ]; then echo "compare.sh: redis-server did not start" >&2; exit 1; fi
      sleep 0.05
    done
    local ports=() pids=()
    for _ in 1 2; do
      start_server target/release/tincan-smol "${node_args[@]}" --redis "redis://127.0.0.1:$redis_port"
      ports+=("$port") pids+=("$server_pid")
      cross_pids+=("$server_pid")
      server_pid=
    done
    local line cpu_a cpu_b redis_cpu
    line=$(timeout $((SECS * 3 + 120)) "$LOAD" broadcast "ws://127.0.0.1:${ports[0]}/bench" \
      "ws://127.0.0.1:${ports[1]}/bench" -n "$CROSS_RECEIVERS" -k "$CROSS_SENDERS" -r "$CROSS_RATE" -t "$SECS")
    cpu_a=$(cpu_ms "${pids[0]}") cpu_b=$(cpu_ms "${pids[1]}") redis_cpu=$(cpu_ms "$redis_pid")
    for pid in "${pids[@]}" "$redis_pid"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    cross_pids=()
    line=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); n=d["delivered"]; c=int(sys.argv[2]); d["server_cpu_ms"]=c; d["redis_cpu_ms"]=int(sys.argv[3]); d["server_cpu_us_per_msg"]=round(c*1000/n, 3) if n else None; print(json.dumps(d))' \
      "$line" $((cpu_a + cpu_b)) "$redis_cpu")
    echo "$line" >>"$f"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["label"]=sys.argv[2]; print(json.dumps(d))' \
      "$line" "$label" >>"$results"
    say "$label run $run: $line"
  done
  row "cross-node broadcast ${CROSS_SENDERS}x${CROSS_RATE}/s to $CROSS_RECEIVERS over 2 nodes + Redis" tincan-smol \
    "$(median "$f" delivered_per_sec) delivered/s" "p50 $(median "$f" p50_us) us" "p99 $(median "$f" p99_us) us" \
    "$(median "$f" server_cpu_us_per_msg) us (both nodes)" \
    "lost $(median "$f" lost), out of order $(median "$f" out_of_order), errors $(median "$f" errors); Redis CPU $(median "$f" redis_cpu_ms) ms"
}

for scenario in "${scenarios[@]}"; do
  case $scenario in
    echo) echo_scenario 20; echo_scenario 16384 ;;
    broadcast) broadcast_scenario ;;
    idle) idle_scenario ;;
    tls) tls_scenario ;;
    deflate) deflate_scenario ;;
    fairness) fairness_scenario ;;
    cross-node) cross_node_scenario ;;
  esac
done

echo
echo "Medians of $RUNS runs of ${SECS} s on $(nproc) cores ($(date -u +%F)); raw lines: $results"
echo
echo "| scenario | server | throughput | p50 | p99 | server CPU per message | vs peer |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${table[@]}"
