#!/usr/bin/env bash
# The codec (web/) compiled to wasm32 with Debian's Rust and tested in
# headless Chromium and Firefox (recipe: shared/notes/wasm-toolchain.md).
#
#   scripts/wasm-test.sh              # wasm-bindgen-test in both browsers, then check-pkg
#   scripts/wasm-test.sh build-pkg    # rebuild web/pkg/, the codec the chat page loads
#   scripts/wasm-test.sh check-pkg    # fail if web/pkg/ differs from a fresh build
set -euo pipefail
cd "$(dirname "$0")/.."

# Only the wasm steps use Debian's cargo/rustc (rustup has no wasm32 std here).
export PATH=/usr/bin:$HOME/.cargo/bin:$PATH RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$PWD/target/wasm
# wasm-pack passes extra options to `cargo test` but not to its `cargo build
# --tests` step, so build-std goes in through cargo's config environment.
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
command -v wasm-pack >/dev/null && [ -x /usr/bin/rustc ] || scripts/setup.sh wasm

# Each step's failure is checked by hand: these functions run as
# `check_pkg || status=1`, and on the left of `||` bash ignores `set -e`, so
# a failed build would otherwise be followed by a comparison with whatever
# stale artifact the last build left.
build_pkg() { # out-dir
  local wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/tincan_web.wasm"
  rm -f "$wasm"
  cargo build -q --release --target wasm32-unknown-unknown -p tincan-web ||
    { echo "wasm-test: the release build of tincan-web failed" >&2; return 1; }
  [ -f "$wasm" ] || { echo "wasm-test: the build left no $wasm" >&2; return 1; }
  rm -rf "$1" || return 1
  wasm-bindgen --target web --no-typescript --out-dir "$1" "$wasm" ||
    { echo "wasm-test: wasm-bindgen failed" >&2; return 1; }
}

check_pkg() {
  local fresh
  fresh=$(mktemp -d) || return 1
  if ! build_pkg "$fresh"; then
    rm -rf "$fresh"
    echo "wasm-test: no fresh build to compare web/pkg with" >&2
    return 1
  fi
  if diff -r web/pkg "$fresh" >/dev/null; then
    echo "web/pkg matches the source"
    rm -rf "$fresh"
  else
    echo "web/pkg is stale: run scripts/wasm-test.sh build-pkg and commit it" >&2
    diff -rq web/pkg "$fresh" >&2 || true
    rm -rf "$fresh"
    return 1
  fi
}

case "${1:-test}" in
  build-pkg) build_pkg web/pkg ;;
  check-pkg) check_pkg ;;
  test)
    status=0
    echo "== wasm-bindgen-test in headless Chromium"
    wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --mode no-install web || status=1
    echo "== wasm-bindgen-test in headless Firefox"
    wasm-pack test --headless --firefox --geckodriver "$HOME/.cargo/bin/geckodriver" --mode no-install web || status=1
    check_pkg || status=1
    exit "$status"
    ;;
  *) echo "usage: scripts/wasm-test.sh [test|build-pkg|check-pkg]" >&2; exit 2 ;;
esac
