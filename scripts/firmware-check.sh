#!/usr/bin/env bash
# firmware-check.sh — the firmware's Swift links for the board, with no pico-sdk:
# compiles the firmware's Swift for armv6m-none-none-eabi with the board's flags
# (Firmware/Core, Node and Pico as one module per role image, with that role's
# Firmware/PicoImage file), links each role image (kernel, sensor, storage) with
# the stub BoardSupport (BoardSupport/stub: every function of tdos_board.h, no
# hardware), a small start-up and a linker script with the board's memory map,
# against newlib-nano as pico-sdk does. Every undefined symbol fails the link.
# Then prints each image's sizes against issue 5's budgets (scripts/image-sizes.sh).
# The images are linked and measured, never run. Last, the same Swift compiled for
# Linux runs Tests/PicoHost against the stub board with flash faked in RAM: the
# Pico module's formats and conversions (config record, boot epoch, sensor maths).
# Part of `make test`.
#
# Environment: SWIFTC (default: swiftc on PATH, else /opt/swift/usr/bin/swiftc).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/.build-firmware-check"

ENSURE_PACKAGES_FOR="the firmware check" "$root/scripts/ensure-packages.sh" \
    gcc-arm-none-eabi libnewlib-arm-none-eabi

tool=firmware-check
# shellcheck source=scripts/armv6m-swift.sh
source "$root/scripts/armv6m-swift.sh"
# The Pico module sees the board contract as the Clang module TDOSBoard
# (BoardSupport/include/module.modulemap).
swift_flags=("${board_swift_flags[@]}" -module-cache-path "$build/module-cache" -I "$build"
    -I "$root/BoardSupport/include" -Xcc "-I$root/linker")
c_flags=(
    -mcpu=cortex-m0plus -mthumb -std=c11 -Os -ffunction-sections -fdata-sections
    -Wall -Wextra -Werror
    -I "$root/BoardSupport/include" -I "$root/linker"
)

mkdir -p "$build"
find "$build" -mindepth 1 -maxdepth 1 ! -name module-cache -exec rm -rf {} +

sources_of() { # DIR: its Swift files, sorted, one per line
    [ -d "$1" ] || return 0
    find "$1" -name '*.swift' -type f | LC_ALL=C sort
}

# The board images' own condition (as in BoardSupport/CMakeLists.txt): no
# DEFLATE compressor on the board (Frame.swift), the inflater stays.
image_swift_flags=(-D TDOS_NO_DEFLATE_COMPRESSOR)

# One module per role image: Firmware/Core, Firmware/Node, Firmware/Pico and
# that role's Firmware/PicoImage file (PicoPlatform.imageRole) compiled together
# (-D TDOS_ONE_MODULE drops their cross-module imports), as the pico-sdk build
# does. Whole-module optimisation then sees the whole program: ~2.5 KB less
# Swift than three modules (docs/FIRMWARE.md, "Sizes").
roles=(kernel sensor storage)
# Swift ceilings per role (KB): each image's size when last measured plus a
# little room, so that no image grows unnoticed while it is over the budget;
# an image at or under the 96 KB budget is held to the budget itself. The
# storage image carries config consensus and log replication.
declare -A swift_ceiling_kb=([kernel]=103 [sensor]=96 [storage]=134)
mapfile -t firmware_sources < <(for d in Core Node Pico; do sources_of "$root/Firmware/$d"; done)
for role in "${roles[@]}"; do
    mkdir -p "$build/$role"
    image_file="$root/Firmware/PicoImage/${role^}.swift"
    echo "firmware-check: swiftc TDOSFirmware for the $role image (${#firmware_sources[@]} files + ${image_file#"$root"/})"
    "$swiftc" "${swift_flags[@]}" "${image_swift_flags[@]}" -D TDOS_ONE_MODULE -module-name TDOSFirmware \
        -c -o "$build/$role/TDOSFirmware.o" "${firmware_sources[@]}" "$image_file"
done

board_objects=()
for c in "$root"/BoardSupport/stub/*.c "$root"/BoardSupport/common/*.c; do
    o="$build/$(basename "${c%.c}").c.o"
    arm-none-eabi-gcc "${c_flags[@]}" -c -o "$o" "$c"
    board_objects+=("$o")
done

# The linker script takes its flash regions from linker/tdos_flash_layout.h.
arm-none-eabi-gcc -E -P -x c -I "$root/linker" -o "$build/stub.ld" "$root/BoardSupport/stub/stub.ld.in"

echo "firmware-check: sizes (stub board, newlib-nano; the pico-sdk image adds the SDK, lwIP and the CYW43 firmware)"
for role in "${roles[@]}"; do
    image="$role-stub"
    elf="$build/$image.elf"
    arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb -nostartfiles \
        --specs=nano.specs --specs=nosys.specs \
        -T "$build/stub.ld" -Wl,--gc-sections -Wl,-Map="$build/$image.map" \
        -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments \
        -o "$elf" "$build/$role/TDOSFirmware.o" "${board_objects[@]}" -lm -lgcc \
        2>"$build/link-$role.log" || {
            cat "$build/link-$role.log" >&2
            echo "firmware-check: FAILED: the $role image does not link against the stub board" >&2
            exit 1
        }
    # libnosys warns that its I/O stubs "will always fail": expected, nothing calls them.
    grep -v 'is not implemented and will always fail' "$build/link-$role.log" | grep -v '^.*: in function' >&2 || true
    # An image whose Swift is over issue 5's 96 KB budget (docs/FIRMWARE.md,
    # "Sizes") is reported and held under its role's ceiling; lower the
    # ceilings as images shrink. `make firmware` enforces the budget itself.
    "$root/scripts/image-sizes.sh" --swift-ceiling "${swift_ceiling_kb[$role]}" "$image" "$elf" "$build/$image.map"
done

# ---- host run of the Pico module's board-independent logic -------------------------

host="$build/host"
mkdir -p "$host"
host_swift_flags=(-Onone -module-cache-path "$build/module-cache-host" -I "$host"
    -I "$root/BoardSupport/include" -Xcc "-I$root/linker")
host_libs=()
for entry in TDOSCore:Firmware/Core TDOSNode:Firmware/Node TDOSPico:Firmware/Pico; do
    name="${entry%%:*}"
    mapfile -t sources < <(sources_of "$root/${entry#*:}")
    [ "${#sources[@]}" -eq 0 ] && continue
    extra=()
    # The image's @main becomes a plain function, so the checks bring their own main.
    [ "$name" = TDOSPico ] && extra=(-Xfrontend -entry-point-function-name -Xfrontend tdos_pico_image_main)
    "$swiftc" "${host_swift_flags[@]}" -parse-as-library "${extra[@]}" -module-name "$name" \
        -emit-module -emit-module-path "$host/$name.swiftmodule" \
        -emit-library -static -o "$host/lib$name.a" "${sources[@]}"
    host_libs=("$host/lib$name.a" "${host_libs[@]}")
done
cc -std=c11 -Wall -Wextra -Werror -I "$root/BoardSupport/include" -I "$root/linker" \
    -c -o "$host/stub.o" "$root/BoardSupport/stub/tdos_board_stub.c"
# fake_flash.c replaces the stub's flash functions.
objcopy --weaken-symbol=tdos_flash_read --weaken-symbol=tdos_flash_erase \
    --weaken-symbol=tdos_flash_program "$host/stub.o"
cc -std=c11 -Wall -Wextra -Werror -I "$root/BoardSupport/include" -I "$root/linker" \
    -c -o "$host/fake_flash.o" "$root/Tests/PicoHost/fake_flash.c"
"$swiftc" "${host_swift_flags[@]}" -module-name TDOSPicoHostChecks \
    -o "$host/pico-host-checks" "$root"/Tests/PicoHost/*.swift \
    "${host_libs[@]}" "$host/stub.o" "$host/fake_flash.o" -lm
"$host/pico-host-checks"
