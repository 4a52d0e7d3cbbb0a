#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS, default 30)
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
trap 'rm -rf "$scratch"' EXIT

# Overflow checks on, no sanitizer: the core is safe Rust, so speed buys more.
flags=(--sanitizer none --debug-assertions)
(cd fuzz && cargo +nightly fuzz build "${flags[@]}")

passed=0 failed=0
for target in "${targets[@]}"; do
  # A target without seeds would start from nothing and still "pass": refuse.
  seeds=(fuzz/corpus/"$target"/*)
  if [ ! -f "${seeds[0]}" ]; then
    echo "fuzz $target: no seed corpus in fuzz/corpus/$target/ (add seed-* files)" >&2
    failed=$((failed + 1))
    continue
  fi
  mkdir -p "$scratch/$target"
  cp "${seeds[@]}" "$scratch/$target/"
  log="$scratch/$target.log"
  if (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1); then
    status=ok
    passed=$((passed + 1))
  else
    status=CRASH
    failed=$((failed + 1))
    grep -v '^#' "$log" | tail -40
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" || true)
  echo "fuzz $target: $status, $execs execs in ${seconds}s, ${cov:-cov: ?}, ${ft:-ft: ?}"
done
echo "fuzz targets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
