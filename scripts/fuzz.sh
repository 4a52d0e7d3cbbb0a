#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS, default 30;
# FUZZ_JOBS at once, default one per core)
# from the committed seed corpus, copied to a scratch directory so the tree
# stays clean. Fails on any crash; prints executions and coverage per target.
#
#   scripts/fuzz.sh                      # every target, 30 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh frame connection
#   cd fuzz && cargo +nightly fuzz run connection   # until stopped
set -euo pipefail
cd "$(dirname "$0")/.."
cargo +nightly fuzz --version >/dev/null 2>&1 || scripts/setup.sh fuzz

seconds=${FUZZ_SECONDS:-30}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(handshake frame connection utf8 chat deflate)
scratch=$(mktemp -d)
# Fuzzers still running (the script was interrupted) go with it.
trap 'kill $(jobs -p) 2>/dev/null || true; wait || true; rm -rf "$scratch"' EXIT

# Overflow checks on, no sanitizer: the core is safe Rust, so speed buys more.
flags=(--sanitizer none --debug-assertions)
(cd fuzz && cargo +nightly fuzz build "${flags[@]}")

# One target per core at a time (FUZZ_JOBS, default every core): each is
# one single-threaded process, so side by side they fuzz as long as in turn.
jobs=${FUZZ_JOBS:-$(nproc)}

# Runs one target into $scratch/$target.result (one line), its log beside it.
fuzz_target() {
  local target=$1 seeds status
  # A target without seeds would start from nothing and still "pass": refuse.
  seeds=(fuzz/corpus/"$target"/*)
  if [ ! -f "${seeds[0]}" ]; then
    echo "fuzz $target: no seed corpus in fuzz/corpus/$target/ (add seed-* files)" >"$scratch/$target.result"
    return
  fi
  mkdir -p "$scratch/$target"
  cp "${seeds[@]}" "$scratch/$target/"
  local log="$scratch/$target.log"
  if (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1); then
    status=ok
  else
    status=CRASH
  fi
  local execs last cov ft
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" || true)
  echo "fuzz $target: $status, $execs execs in ${seconds}s, ${cov:-cov: ?}, ${ft:-ft: ?}" >"$scratch/$target.result"
}

running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_target "$target" &
  running=$((running + 1))
done
wait || true

passed=0 failed=0
for target in "${targets[@]}"; do
  result=$(cat "$scratch/$target.result" 2>/dev/null || echo "fuzz $target: did not run")
  if [[ $result == "fuzz $target: ok,"* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    [ -f "$scratch/$target.log" ] && { grep -v '^#' "$scratch/$target.log" | tail -40 || true; }
  fi
  echo "$result"
done
echo "fuzz targets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
