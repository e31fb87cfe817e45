#!/usr/bin/env bash
# firmware.sh [PICO_SDK_PATH] — `make firmware`: the Pico W images, as UF2 files.
#
#   1. checks the tools: arm-none-eabi-gcc + newlib, cmake, a host C/C++ compiler
#      (pico-sdk builds its pioasm tool natively), python3 (pico-sdk checksums
#      boot2 with it), swiftc with Embedded Swift for armv6m, and a pico-sdk 2.x
#      with lib/cyw43-driver and lib/lwip; stops with what to install if one is
#      missing;
#   2. configures BoardSupport/CMakeLists.txt in build/firmware (picotool is not
#      needed: PICO_NO_PICOTOOL=1) and builds every image (ELF + link map);
#   3. converts each ELF to UF2 with the project's converter (`tdos uf2`, over
#      HostTools/Host/UF2.swift) and validates it: magics, RP2040 family id,
#      256-byte payloads, flash addresses below the reserved regions, block
#      numbering, boot2 CRC; then again with the independent
#      Tests/tools/uf2_check.py against the ELF;
#   4. prints each image's sizes against issue 5's budgets (scripts/image-sizes.sh).
#
# PICO_SDK_PATH comes from the argument or the environment, as for every pico-sdk
# project: TDOS never downloads or vendors the SDK.
# Environment: FIRMWARE_BUILD_DIR (default build/firmware), FIRMWARE_BUILD_TYPE
# (default MinSizeRel), SWIFTC, JOBS (default: number of CPUs), TDOS_CLI (a built
# tdos to convert with; default: swift build -c release --product tdos).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FIRMWARE_BUILD_DIR:-$root/build/firmware}"
sdk="${1:-${PICO_SDK_PATH:-}}"

missing=()
need_tool() { # COMMAND WHAT-TO-INSTALL
    command -v "$1" >/dev/null 2>&1 || missing+=("$1: $2")
}
need_tool arm-none-eabi-gcc "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
need_tool cmake "apt-get install cmake (3.13 or later; Debian bookworm's 3.25 works)"
need_tool make "apt-get install make"
need_tool c++ "apt-get install build-essential (pico-sdk builds its pioasm tool for the host)"
need_tool python3 "apt-get install python3 (pico-sdk checksums boot2 with it)"
if command -v arm-none-eabi-gcc >/dev/null 2>&1 &&
    [ ! -f "$(arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb -print-file-name=libc_nano.a)" ]; then
    missing+=("newlib for arm-none-eabi: apt-get install libnewlib-arm-none-eabi")
fi

swiftc="${SWIFTC:-$(command -v swiftc || true)}"
[ -n "$swiftc" ] || swiftc=/opt/swift/usr/bin/swiftc
if [ ! -x "$swiftc" ] || [ ! -d "$(dirname "$swiftc")/../lib/swift/embedded/armv6m-none-none-eabi" ]; then
    missing+=("swiftc: a Swift 6 toolchain with the Embedded Swift stdlib for armv6m-none-none-eabi (set SWIFTC or put it on PATH)")
fi

if [ -z "$sdk" ]; then
    missing+=("PICO_SDK_PATH: a pico-sdk 2.x checkout (the raspberrypi/pico-sdk repository, e.g. tag 2.2.0) with its submodules lib/cyw43-driver and lib/lwip (git submodule update --init lib/cyw43-driver lib/lwip); then: make firmware PICO_SDK_PATH=/path/to/pico-sdk")
elif [ ! -f "$sdk/pico_sdk_init.cmake" ]; then
    missing+=("PICO_SDK_PATH=$sdk is not a pico-sdk checkout (no pico_sdk_init.cmake)")
else
    [ -f "$sdk/lib/cyw43-driver/src/cyw43.h" ] ||
        missing+=("$sdk/lib/cyw43-driver is empty: in the SDK, git submodule update --init lib/cyw43-driver")
    [ -f "$sdk/lib/lwip/src/include/lwip/init.h" ] ||
        missing+=("$sdk/lib/lwip is empty: in the SDK, git submodule update --init lib/lwip")
fi

if [ "${#missing[@]}" -gt 0 ]; then
    echo "firmware: cannot build the Pico W images; missing:" >&2
    for m in "${missing[@]}"; do echo "  - $m" >&2; done
    exit 1
fi
sdk="$(cd "$sdk" && pwd)"

# ---- build ------------------------------------------------------------------------

echo "firmware: pico-sdk $sdk"
mkdir -p "$build"
cmake -S "$root/BoardSupport" -B "$build" \
    -DPICO_SDK_PATH="$sdk" -DPICO_NO_PICOTOOL=1 -DSWIFTC="$swiftc" \
    -DCMAKE_BUILD_TYPE="${FIRMWARE_BUILD_TYPE:-MinSizeRel}" >"$build/configure.log" 2>&1 || {
        cat "$build/configure.log" >&2
        echo "firmware: FAILED: cmake configure (log: $build/configure.log)" >&2
        exit 1
    }
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
make -C "$build" -j"$jobs" --no-print-directory >"$build/build.log" 2>&1 || {
    tail -n 40 "$build/build.log" >&2
    echo "firmware: FAILED: build (log: $build/build.log)" >&2
    exit 1
}

# ---- UF2 --------------------------------------------------------------------------

# The project's converter: `tdos uf2` (HostTools/CLI/FirmwareCommands.swift over
# HostTools/Host/UF2.swift). TDOS_CLI names a built tdos; else it is built here.
tdos="${TDOS_CLI:-}"
if [ -z "$tdos" ]; then
    swift="$(dirname "$swiftc")/swift"
    [ -x "$swift" ] || swift=swift
    echo "firmware: swift build -c release --product tdos (the UF2 converter)"
    (cd "$root" && "$swift" build -c release --product tdos >"$build/tdos-cli.log" 2>&1) || {
        tail -n 20 "$build/tdos-cli.log" >&2
        echo "firmware: FAILED: building the tdos CLI (log: $build/tdos-cli.log)" >&2
        exit 1
    }
    tdos="$root/.build/release/tdos"
fi

# Images must end below the reserved flash regions (linker/tdos_flash_layout.h).
reserved_start="$(printf '#include "tdos_flash_layout.h"\nTDOS_FLASH_XIP_BASE + TDOS_FLASH_RESERVED_OFFSET\n' |
    arm-none-eabi-cpp -P -I "$root/linker" - | tail -n 1)"
reserved_start="$(printf '0x%x' $((reserved_start)))"

shopt -s nullglob
elfs=("$build"/*.elf)
if [ "${#elfs[@]}" -eq 0 ]; then
    echo "firmware: FAILED: the build produced no ELF image" >&2
    exit 1
fi
status=0
for elf in "${elfs[@]}"; do
    name="$(basename "${elf%.elf}")"
    uf2="$build/$name.uf2"
    "$tdos" uf2 "$elf" -o "$uf2" --below "$reserved_start"
    python3 "$root/Tests/tools/uf2_check.py" "$uf2" "$elf" --image
done

echo "firmware: sizes (budgets: swift flash 96 KB, image flash 512 KB, static RAM 128 KB)"
for elf in "${elfs[@]}"; do
    name="$(basename "${elf%.elf}")"
    "$root/scripts/image-sizes.sh" "$name" "$elf" "$build/$name.map" || status=1
done
echo "firmware: UF2 files:"
for elf in "${elfs[@]}"; do echo "  ${elf%.elf}.uf2"; done
exit "$status"
