#!/usr/bin/env bash
# End-to-end test in a real headless Chromium (Debian's, driven by
# playwright-core): two pages chat through each real server binary, which is
# then restarted; then two pages chat over https and wss; then two pages on
# two nodes that share a room through a redis-server the test starts on a
# free port (nothing on disk). Screenshots land in web/e2e/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || ! command -v openssl >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium chromium-driver openssl >/dev/null
fi
if [ ! -d web/e2e/node_modules/playwright-core ]; then
  (cd web/e2e && npm ci --no-audit --no-fund --silent)
fi
scripts/setup.sh redis >/dev/null
cargo build --release -q -p tincan-smol -p tincan-async-std -p tincan-tokio

status=0
for bin in tincan-smol tincan-async-std tincan-tokio; do
  echo "== e2e against $bin"
  if TINCAN_BIN="target/release/$bin" node --test --test-reporter=spec web/e2e/chat.test.mjs; then
    cp web/e2e/artifacts/chat.png "web/e2e/artifacts/chat-$bin.png"
    cp web/e2e/artifacts/after-restart.png "web/e2e/artifacts/after-restart-$bin.png"
    cp web/e2e/artifacts/chat-tls.png "web/e2e/artifacts/chat-tls-$bin.png"
    cp web/e2e/artifacts/chat-two-nodes.png "web/e2e/artifacts/chat-two-nodes-$bin.png"
  else
    status=1
  fi
done
exit "$status"
