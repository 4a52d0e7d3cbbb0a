#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine, skipping
# whatever is already there. Sections: redis, autobahn, browser, wasm, fuzz;
# no argument means all of them.
#
#   scripts/setup.sh            # everything
#   scripts/setup.sh autobahn   # just Autobahn|Testsuite
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
}

# The version of a package in Cargo.lock.
locked_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

cargo_install() { # binary, crate, version ('' for latest), version-probe
  local bin=$1 crate=$2 version=$3
  if command -v "$bin" >/dev/null 2>&1 && { [ -z "$version" ] || "$bin" --version 2>/dev/null | grep -qF "$version"; }; then
    return 0
  fi
  say "cargo install $crate ${version:+--version $version}"
  cargo install -q "$crate" ${version:+--version "$version"}
}

setup_autobahn() {
  # Autobahn|Testsuite is Python 2 code: the image's pyenv 2.7.18 (see
  # shared/notes/autobahn.md). A virtualenv keeps zope's namespace package whole.
  if .autobahn/venv/bin/wstest --help >/dev/null 2>&1; then return 0; fi
  local py2=$HOME/.pyenv/versions/2.7.18/bin/python
  say "Autobahn|Testsuite into .autobahn/"
  "$py2" -m pip install -q --disable-pip-version-check --target .autobahn/tools "virtualenv<20.22" 2>/dev/null
  PYTHONPATH=.autobahn/tools "$py2" -m virtualenv -q .autobahn/venv
  .autobahn/venv/bin/pip install -q --disable-pip-version-check autobahntestsuite==25.10.1 2>/dev/null
  .autobahn/venv/bin/wstest --help >/dev/null
}

setup_redis() {
  # runtimes/tests/redis.rs, scripts/e2e.sh and bench/compare.sh start their
  # own redis-server on a free port (nothing kept on disk); the package's
  # service is not used (no init system here).
  apt_install redis-server
}

setup_browser() {
  # openssl makes the browser test's certificate (web/e2e/chat.test.mjs).
  apt_install chromium chromium-driver openssl
  if [ ! -d web/e2e/node_modules/playwright-core ]; then
    say "npm ci in web/e2e"
    (cd web/e2e && npm ci --no-audit --no-fund --silent)
  fi
}

setup_wasm() {
  # rustup cannot fetch wasm32 here: Debian's rustc-web builds std from source
  # (shared/notes/wasm-toolchain.md).
  apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium chromium-driver firefox-esr
  local version
  version=$(locked_version wasm-bindgen)
  if [ -n "$version" ]; then
    cargo_install wasm-bindgen wasm-bindgen-cli "$version"
  fi
  cargo_install wasm-pack wasm-pack ""
  cargo_install geckodriver geckodriver ""
}

setup_fuzz() {
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    say "cargo install cargo-fuzz"
    cargo install -q cargo-fuzz
  fi
}

sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(redis autobahn browser wasm fuzz)
for section in "${sections[@]}"; do
  case "$section" in
    redis | autobahn | browser | wasm | fuzz) "setup_$section" ;;
    *) echo "setup.sh: unknown section '$section' (redis, autobahn, browser, wasm, fuzz)" >&2; exit 2 ;;
  esac
done
say "done: ${sections[*]}"
