#!/usr/bin/env bash
# The browser console's tests in real Chromium: installs Debian's chromium and the pinned
# playwright-core when missing, builds the server and the agent, and runs console/tests/*.mjs
# (screenshots in target/console-screenshots/).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
(cd console && npm ci --no-audit --no-fund --silent)
cargo build -p fleetgate -p fleetgate-agent
target="${CARGO_TARGET_DIR:-$PWD/target}"
FLEETGATE_BIN="$target/debug/fleetgate" FLEETGATE_AGENT_BIN="$target/debug/fleetgate-agent" \
  node --test --test-concurrency=1 console/tests/
