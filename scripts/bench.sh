#!/usr/bin/env bash
# make bench: builds the benchmark tool in release and runs every group.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release --product tdos-bench >/dev/null
.build/release/tdos-bench "$@"
