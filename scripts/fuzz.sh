#!/usr/bin/env bash
# make fuzz: libFuzzer (with AddressSanitizer) on the frame decoder for a bounded
# time. Prints executions run and crashes found; exits non-zero on a crash.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-120}"
out="$root/.build-fuzz"
mkdir -p "$out/corpus" "$out/artifacts"
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"

# The module is compiled normally with coverage instrumentation; the entry file imports it.
mapfile -t core < <(find "$root/Firmware/Core" -name '*.swift' | sort)
build_log="$out/build.log"
echo "fuzz: building the fuzz target (log: $build_log)"
"$swiftc" -emit-library -static -parse-as-library -module-name TDOSCore -emit-module \
    -emit-module-path "$out/TDOSCore.swiftmodule" -O -sanitize=fuzzer,address \
    -o "$out/libTDOSCore.a" "${core[@]}" >"$build_log" 2>&1 || { cat "$build_log"; exit 1; }
"$swiftc" -parse-as-library -O -sanitize=fuzzer,address -I "$out" \
    "$root/Tests/Fuzz/FrameFuzz.swift" "$out/libTDOSCore.a" -o "$out/fuzz-frame" >>"$build_log" 2>&1 \
    || { grep -v "Cannot export local symbol" "$build_log"; exit 1; }

# Seed corpus: the golden vectors, as they are and marked for the signed mode.
python3 - "$root" "$out/corpus" <<'PY'
import subprocess, sys
root, corpus = sys.argv[1], sys.argv[2]
out = subprocess.check_output(["python3", root + "/Tests/tools/tdos_ref.py", "vectors"]).decode().split("\n")[1:]
for line in filter(None, out):
    name, hexstr = line.split()
    frame = bytes.fromhex(hexstr)
    open(f"{corpus}/{name}", "wb").write(b"\x00" + frame)
    open(f"{corpus}/{name}-signed", "wb").write(b"\x01" + frame[:-16])
PY

log="$out/fuzz.log"
set +e
"$out/fuzz-frame" "$out/corpus" -max_total_time="$seconds" -max_len=1400 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/" >"$log" 2>&1
status=$?
set -e
execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
crashes=$(find "$out/artifacts" -type f | wc -l)
echo "fuzz: ${execs:-0} executions in ${seconds}s, $crashes crash artifacts, exit $status (log: $log)"
if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz: reproduce with $out/fuzz-frame <artifact>" >&2
    exit 1
fi
