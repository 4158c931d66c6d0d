#!/usr/bin/env bash
# Smoke run of every benchmark scenario: small fleets, seconds each. It proves the harness
# still works and checks correctness only (everyone registered, every byte delivered or
# counted as dropped, nobody shown online early); it never judges speed.
# Usage: bench/run-all.sh [--release]   (debug by default, reusing the test build)
set -euo pipefail
cd "$(dirname "$0")/.."

profile_flag=()
profile_dir=debug
if [[ "${1:-}" == "--release" ]]; then
  profile_flag=(--release)
  profile_dir=release
fi

cargo build "${profile_flag[@]}" -p fleetgate -p fleetgate-bench -p fleetgate-agent
target_dir="${CARGO_TARGET_DIR:-target}"
bench=("$target_dir/$profile_dir/fleetgate-bench" --server-bin "$target_dir/$profile_dir/fleetgate")

"${bench[@]}" connect-storm --agents 50,200 --limit-secs 60
"${bench[@]}" steady-fleet --agents 100 --duration-secs 4 --heartbeat-secs 1 --databases sqlite
"${bench[@]}" keystroke-rtt --inputs 300
# Two cluster instances sharing the PostgreSQL and NATS that .ci/run has started.
"${bench[@]}" cross-region-rtt --inputs 300
"${bench[@]}" region-loss --agents 200 --offline-after-secs 4 --limit-secs 60
"${bench[@]}" cluster-fleet --agents 300 --duration-secs 4 --heartbeat-secs 1 --limit-secs 120
# 32 MiB: in a debug build the flood must outlast the metric batcher's 1 s flush, so that the
# flooding machine's heartbeats can be seen stored during it.
"${bench[@]}" terminal-throughput --mib 32 --slow-mib 16 --slow-agent-mib-per-sec 32
"${bench[@]}" machine-list --agents 200 --samples 4
"${bench[@]}" reconnect-storm --agents 100 --limit-secs 90
echo "bench smoke run: every scenario passed its correctness checks"
