#!/usr/bin/env bash
# make bench: builds the benchmark tool in release and runs every group.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# rpc: libcoap's coap-server is the reference the TDOS round trip is compared with.
ENSURE_PACKAGES_FOR="make bench (rpc: libcoap reference)" scripts/ensure-packages.sh libcoap3-bin || true
swift build -c release --product tdos-bench >/dev/null
swift build -c release --product tdos >/dev/null  # rpc: the sensor node process
.build/release/tdos-bench "$@"
