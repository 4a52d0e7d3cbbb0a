#!/usr/bin/env bash
# Every test of the project, after installing what they need (scripts/setup.sh
# skips what is already there). Runs every stage, then fails if any failed.
#
#   scripts/test.sh           # everything (what CI runs)
#   scripts/test.sh --quick   # fmt, clippy and doc (workspace, fuzz/, bench/peers/)
#                             # and cargo test: no release build, Autobahn,
#                             # browsers, wasm or fuzzing
set -uo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true

passed=() failed=()
stage() { # name, command...
  local name=$1
  shift
  printf '\n===== %s =====\n' "$name"
  local start=$SECONDS
  if "$@"; then
    passed+=("$name")
    printf '===== %s: ok (%ss)\n' "$name" $((SECONDS - start))
  else
    failed+=("$name")
    printf '===== %s: FAILED (%ss)\n' "$name" $((SECONDS - start))
  fi
}

# Autobahn against every release binary at once (one Python process and one
# server each, side by side); `wss` runs it over TLS. Fails if any fails;
# each run's output is printed whole, in turn.
#
# Sections 1-11 run whole on every binary. Sections 12 and 13
# (permessage-deflate, 216 cases) take 690 of Autobahn's 705 s on one
# binary, nearly all of it in Python: they are shared out instead. Each
# binary runs every subsection, with every data set and every negotiated
# parameter set, at a third of the message sizes (subcases n, n+3, ...), so
# the three together run each case once. The deflate code they test is the
# protocol crate's, the same in every binary. `scripts/autobahn.sh BINARY`
# alone runs every case on one binary.
autobahn_all() {
  local tls=${1:-} pids=() logs=() status=0 share=0
  for bin in tincan-smol tincan-async-std tincan-tokio; do
    share=$((share + 1))
    local cases='*'
    [ -z "$tls" ] && cases=$(deflate_share "$share")
    logs+=("$(mktemp)")
    AUTOBAHN_TLS=${tls:+1} AUTOBAHN_CASES=$cases \
      scripts/autobahn.sh "target/release/$bin" "${bin#tincan-}${tls:+-$tls}" \
      >"${logs[-1]}" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || status=1
    cat "${logs[$i]}"
    rm -f "${logs[$i]}"
  done
  # Each ran every case outside 12 and 13, and together they ran every case
  # of the pinned suite (517; 301 outside 12 and 13). A run that failed has
  # said so already, and may have left no report (or an old one).
  [ "$status" -eq 0 ] || return "$status"
  local labels=(smol async-std tokio)
  [ -n "$tls" ] && labels=("${labels[@]/%/-$tls}")
  python3 - "${labels[@]}" <<'PY' || status=1
import json, sys
every, outside = 517, 301
ran = set()
for label in sys.argv[1:]:
    cases = set()
    for agent_cases in json.load(open(f"reports/autobahn/{label}/index.json")).values():
        cases.update(agent_cases)
    rest = {c for c in cases if c.split(".")[0] not in ("12", "13")}
    if len(rest) != outside:
        sys.exit(f"autobahn {label}: {len(rest)} cases outside 12 and 13, {outside} expected")
    ran |= cases
expected = outside if all(l.endswith("-wss") for l in sys.argv[1:]) else every
print(f"autobahn: {len(ran)} distinct cases run, {expected} expected")
sys.exit(len(ran) != expected)
PY
  return "$status"
}

# Sections 1-11, and the third of 12 and 13 whose subcases start at $1 (1-3).
deflate_share() {
  local cases=() section n
  for section in $(seq 1 11); do cases+=("$section.*"); done
  for section in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
    for n in $(seq "$1" 3 18); do cases+=("$section.$n"); done
  done
  (IFS=,; echo "${cases[*]}")
}

# fuzz/ and bench/peers/ are Cargo projects of their own (nightly for
# cargo-fuzz; the peers' dependencies stay out of the workspace): lint them too.
stage "cargo fmt" cargo fmt --all -- --check
stage "cargo fmt (fuzz, peers)" sh -c 'cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check &&
  cargo fmt --manifest-path bench/peers/Cargo.toml --all -- --check'
stage "cargo clippy" cargo clippy --workspace --all-targets -q -- -D warnings
stage "cargo clippy (fuzz, peers)" sh -c 'cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -q -- -D warnings &&
  cargo clippy --manifest-path bench/peers/Cargo.toml --all-targets -q -- -D warnings'
stage "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q
# runtimes/tests/redis.rs starts redis-server (quick mode too).
stage "redis setup" scripts/setup.sh redis
stage "cargo test" cargo test --workspace
# The workspace turns the protocol crate's deflate feature on; built alone it
# is off, and the crate must build, lint and pass without it too.
stage "core without deflate" sh -c 'cargo clippy -p tincan-core --all-targets -q -- -D warnings &&
  cargo test -p tincan-core -q'
if ! $quick; then
  stage "release build" cargo build --release -q -p tincan-smol -p tincan-async-std -p tincan-tokio
  stage "autobahn setup" scripts/setup.sh autobahn
  # Autobahn is one Python process against one server: the binaries' runs
  # go side by side.
  stage "autobahn 1-13 (smol, async-std, tokio)" autobahn_all
  stage "autobahn 1-11 over wss (smol, async-std, tokio)" autobahn_all wss
  stage "browser setup" scripts/setup.sh browser
  stage "browser end-to-end" scripts/e2e.sh
  stage "wasm setup" scripts/setup.sh wasm
  stage "wasm tests" scripts/wasm-test.sh
  stage "fuzz setup" scripts/setup.sh fuzz
  stage "fuzz" scripts/fuzz.sh
fi

printf '\n'
for name in "${failed[@]}"; do printf 'FAILED stage: %s\n' "$name"; done
printf 'stages: %d passed, %d failed\n' "${#passed[@]}" "${#failed[@]}"
[ ${#failed[@]} -eq 0 ]
