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
# server each; wstest, the busier side, leaves the cores idle enough that
# three side by side take about as long as two); `wss` runs it over TLS.
# Fails if any fails; each run's output is printed whole, in turn.
autobahn_all() {
  local tls=${1:-} pids=() logs=() status=0
  for bin in tincan-smol tincan-async-std tincan-tokio; do
    logs+=("$(mktemp)")
    AUTOBAHN_TLS=${tls:+1} scripts/autobahn.sh "target/release/$bin" "${bin#tincan-}${tls:+-$tls}" \
      >"${logs[-1]}" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || status=1
    cat "${logs[$i]}"
    rm -f "${logs[$i]}"
  done
  return "$status"
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
