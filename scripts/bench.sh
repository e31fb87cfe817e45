#!/usr/bin/env bash
# make bench: builds the benchmark tool in release and runs every group.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# rpc: libcoap's coap-server is the reference the TDOS round trip is compared with.
ENSURE_PACKAGES_FOR="make bench (rpc: libcoap reference)" scripts/ensure-packages.sh libcoap3-bin || true
swift build -c release --product tdos-bench >/dev/null
swift build -c release --product tdos >/dev/null  # rpc: the sensor node process
.build/release/tdos-bench "$@"
# runtime: the armv6m flash of the scheduler, subscriptions, config, metrics.
if [[ $# -eq 0 || " $* " == *" runtime "* ]]; then scripts/runtime-size.sh || echo "runtime-size: skipped (no armv6m toolchain: see scripts/embedded-check.sh)"; fi
