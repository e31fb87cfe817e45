#!/usr/bin/env bash
# embedded-check.sh — prove that Firmware/Core and Firmware/Node are Embedded
# Swift for the RP2040's instruction set (armv6m), and run the embedded tests on
# an emulated Cortex-M0. Part of `make test`; works on a clean clone.
#
#   1. installs the ARM toolchain and qemu if missing (scripts/ensure-packages.sh);
#   2. compiles each Firmware module (TDOSCore, then TDOSNode if it has sources)
#      for armv6m-none-none-eabi with the board's flags: a .swiftmodule + one object;
#   3. compiles the test runner (Tests/Embedded/*.swift + Tests/Vectors/*.swift) and
#      links it with picolibc's semihosting runtime, Tests/Embedded/runtime.c and
#      libgcc; every undefined symbol fails the link;
#   4. runs it in qemu: the runner's failure count is qemu's exit status;
#   5. prints the code size of each module.
#
# Machine: qemu's `lm3s6965evb` with `-cpu cortex-m0` (256 KB flash, 64 KB RAM).
# The RP2040's core is a Cortex-M0+, the same ARMv6-M instruction set. `microbit`
# (also a real Cortex-M0) has only 16 KB RAM: the bytes/crypto/cbor groups pass there
# (EMBEDDED_QEMU_MACHINE=microbit), but the deflate group runs out of heap (its
# compressor's match tables alone are ~10 KB) even with a 2 KB stack, and this script's
# 8 KB stack leaves microbit only ~4 KB of heap. The RP2040
# has 264 KB, so a 16 KB test machine would only measure the emulator; 64 KB it is.
#
# Environment: SWIFTC (default: swiftc on PATH, else /opt/swift/usr/bin/swiftc),
# EMBEDDED_QEMU_MACHINE (lm3s6965evb | microbit), EMBEDDED_TIMEOUT_S (default 120).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/.build-embedded"
machine="${EMBEDDED_QEMU_MACHINE:-lm3s6965evb}"
timeout_s="${EMBEDDED_TIMEOUT_S:-120}"

ENSURE_PACKAGES_FOR="the embedded check" "$root/scripts/ensure-packages.sh" \
    gcc-arm-none-eabi libnewlib-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm

# ---- toolchain ------------------------------------------------------------------

tool=embedded-check
# shellcheck source=scripts/armv6m-swift.sh
source "$root/scripts/armv6m-swift.sh"
swift_flags=("${board_swift_flags[@]}" -module-cache-path "$build/module-cache" -I "$build")
cpu_flags=(-mcpu=cortex-m0 -mthumb)

case "$machine" in
    lm3s6965evb) ram_size=0x10000; qemu_machine=(-M lm3s6965evb -cpu cortex-m0) ;;
    microbit)    ram_size=0x4000;  qemu_machine=(-M microbit) ;;
    *) echo "embedded-check: unknown EMBEDDED_QEMU_MACHINE=$machine" >&2; exit 1 ;;
esac
# Both machines: 256 KB flash at 0, RAM at 0x20000000. picolibc's linker script puts
# the stack at the top of RAM and gives the heap everything between .bss and it.
# Tests/Embedded/tests.ld is picolibc.ld with an 8 KB stack (see there why).
link_flags=(
    "${cpu_flags[@]}"
    --specs=picolibc.specs --oslib=semihost --crt0=semihost
    -Wl,--defsym=__flash=0x0 -Wl,--defsym=__flash_size=0x40000
    -Wl,--defsym=__ram=0x20000000 -Wl,--defsym=__ram_size="$ram_size"
    -T "$root/Tests/Embedded/tests.ld"
    -Wl,--gc-sections
    -Wl,-z,noexecstack  # picolibc's memcmp.o has no .note.GNU-stack: ld would warn
)

# ---- build ----------------------------------------------------------------------

# Everything but the clang module cache is rebuilt each run (a few seconds), so a
# removed module or file can never leave a stale object behind.
mkdir -p "$build"
find "$build" -mindepth 1 -maxdepth 1 ! -name module-cache -exec rm -rf {} +

sources_of() { # DIR [find options]: its Swift files, sorted, one per line
    local dir="$1"; shift
    [ -d "$dir" ] || return 0
    find "$dir" "$@" -name '*.swift' -type f | LC_ALL=C sort
}

compile_module() { # NAME SOURCES...
    local name="$1"; shift
    "$swiftc" "${swift_flags[@]}" "${extra_swift_flags[@]}" -module-name "$name" \
        -emit-module -emit-module-path "$build/$name.swiftmodule" \
        -c -o "$build/$name.o" "$@"
}

modules=()
extra_swift_flags=()
for entry in TDOSCore:Firmware/Core TDOSNode:Firmware/Node; do
    name="${entry%%:*}"
    dir="$root/${entry#*:}"
    mapfile -t sources < <(sources_of "$dir")
    if [ "${#sources[@]}" -eq 0 ]; then
        if [ "$name" = TDOSCore ]; then
            echo "embedded-check: no Swift sources in $dir" >&2
            exit 1
        fi
        continue
    fi
    echo "embedded-check: swiftc $name (${#sources[@]} files)"
    compile_module "$name" "${sources[@]}"
    modules+=("$name")
done

# The runner declares putchar with @_extern(c), hence the Extern feature.
mapfile -t test_sources < <(sources_of "$root/Tests/Embedded"; sources_of "$root/Tests/Vectors" -maxdepth 1)

arm-none-eabi-gcc "${cpu_flags[@]}" --specs=picolibc.specs -Os -ffunction-sections \
    -Wall -Wextra -Werror -c -o "$build/runtime.o" "$root/Tests/Embedded/runtime.c"
arm-none-eabi-gcc "${cpu_flags[@]}" --specs=picolibc.specs -Os -ffunction-sections \
    -Wall -Wextra -Werror -c -o "$build/atomics.o" "$root/BoardSupport/common/tdos_atomics_armv6m.c"

# The emulated board has 256 KB of flash, so the groups run as several images
# (Runner.swift: EMBEDDED_PART_n); --gc-sections keeps only each part's code.
parts=(1 2)
stack_used=0
for part in "${parts[@]}"; do
    echo "embedded-check: swiftc TDOSEmbeddedTests part $part (${#test_sources[@]} files)"
    extra_swift_flags=(-enable-experimental-feature Extern -D "EMBEDDED_PART_$part")
    compile_module TDOSEmbeddedTests "${test_sources[@]}"
    mv "$build/TDOSEmbeddedTests.o" "$build/TDOSEmbeddedTests$part.o"

    objects=()
    for name in "${modules[@]}"; do objects+=("$build/$name.o"); done
    arm-none-eabi-gcc "${link_flags[@]}" -Wl,-Map="$build/tests$part.map" -o "$build/tests$part.elf" \
        "${objects[@]}" "$build/TDOSEmbeddedTests$part.o" "$build/runtime.o" "$build/atomics.o" -lgcc

    echo "embedded-check: qemu ${qemu_machine[*]} (part $part)"
    status=0
    timeout "$timeout_s" qemu-system-arm "${qemu_machine[@]}" -nographic -monitor none \
        -serial null -semihosting-config enable=on,target=native \
        -kernel "$build/tests$part.elf" >"$build/run.log" 2>&1 || status=$?
    # lm3s6965evb's emulation says this on every boot; it is not ours.
    grep -v '^Timer with period zero, disabling$' "$build/run.log" >"$build/run.out" || true

    if [ "$status" -ne 0 ]; then
        cat "$build/run.out"
        if [ "$status" -eq 124 ]; then
            echo "embedded-check: FAILED: the runner did not finish within ${timeout_s} s" >&2
        elif ! grep -q '^embedded: ' "$build/run.out"; then
            echo "embedded-check: FAILED: the runner stopped (exit $status) without its summary:" \
                 "a Swift trap in the last group listed above" >&2
            # picolibc's fault handler dumps the registers; a Swift trap is a `udf`, so
            # PC is the trap itself, in the function it was inlined into.
            pc="$(awk '$1 == "PC:" { print $2; exit }' "$build/run.out")"
            if [ -n "$pc" ]; then
                demangle="$(dirname "$swiftc")/swift-demangle"
                where="$(arm-none-eabi-addr2line -f -e "$build/tests$part.elf" "$pc" | head -1)"
                [ -x "$demangle" ] && where="$("$demangle" --simplified "$where")"
                echo "embedded-check: the trap is at $pc, in $where" >&2
            fi
        else
            echo "embedded-check: FAILED: exit status $status (= failed checks, capped at 100)" >&2
        fi
        exit 1
    fi
    if ! grep -q '^embedded: .* 0 failures$' "$build/run.out"; then
        cat "$build/run.out"
        echo "embedded-check: FAILED: exit status 0 but no passing summary line" >&2
        exit 1
    fi
    grep '^embedded: ' "$build/run.out" | sed "s/^embedded: /embedded (part $part): /"
    used="$(sed -n 's/^embedded: stack high-water \([0-9]*\) B.*/\1/p' "$build/run.out")"
    [ -n "$used" ] && [ "$used" -gt "$stack_used" ] && stack_used="$used"
done

# pico-sdk gives core 0 a 2 KB stack unless the image sets PICO_STACK_SIZE.
if [ "$stack_used" -gt 2048 ]; then
    echo "embedded-check: note: stack high-water ${stack_used} B (with ~170 B of startup and" \
         "harness) is above pico-sdk's default 2048 B: images need a larger PICO_STACK_SIZE"
fi

# ---- sizes ----------------------------------------------------------------------

# "object": the whole module as compiled (what a firmware using all of it pays);
# "linked": what survives --gc-sections in each part's image, read from its link map.
size_of() { # OBJECT -> "text data bss"
    arm-none-eabi-size -B "$1" | awk 'NR == 2 { print $1, $2, $3 }'
}
linked_of() { # OBJECT -> "text data bss" kept in the link, by input section kind
    awk -v obj="$1" '
        function hex(s,    i, n) {  # mawk has no strtonum
            n = 0; s = tolower(substr(s, 3))
            for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return n
        }
        # A map line is either "section addr size file" or, for long names,
        # the section alone followed by a line "addr size file".
        # Only the memory map counts: "Discarded input sections" above it lists the
        # sections --gc-sections dropped, in the same format.
        /^Linker script and memory map/ { inmap = 1; next }
        !inmap { next }
        /^ \.[^ ]+$/ { pending = $1; next }
        {
            if (pending != "" && $1 ~ /^0x/ && NF == 3) { sec = pending; size = $2; file = $3 }
            else if ($1 ~ /^\./ && $2 ~ /^0x/ && NF == 4) { sec = $1; size = $3; file = $4 }
            else { pending = ""; next }
            pending = ""
            if (file != obj) next
            n = hex(size)
            if (sec ~ /^\.(text|rodata)/) text += n
            else if (sec ~ /^\.data/) data += n
            else if (sec ~ /^\.bss/) bss += n
        }
        END { print text + 0, data + 0, bss + 0 }
    ' "$2"
}

echo "embedded-check: sizes (armv6m, -Osize)"
for name in "${modules[@]}"; do
    read -r t d b < <(size_of "$build/$name.o")
    linked=""
    for part in "${parts[@]}"; do
        read -r lt _ _ < <(linked_of "$build/$name.o" "$build/tests$part.map")
        linked="$linked part $part: $lt B"
    done
    printf '  armv6m %-18s text %6s B, data %4s B, bss %4s B   (linked text:%s)\n' \
        "$name:" "$t" "$d" "$b" "$linked"
done
for part in "${parts[@]}"; do
    read -r t d b < <(size_of "$build/tests$part.elf")
    printf '  armv6m %-18s text %6s B, data %4s B, bss %4s B   (+ picolibc, libgcc, runtime.c; flash 256 KB)\n' \
        "tests$part.elf:" "$t" "$d" "$b"
done
echo "  (object = whole module; bss of each image includes its 8 KB stack)"
