# Sourced by scripts/embedded-check.sh and scripts/firmware-check.sh: the one
# place that finds the Embedded Swift toolchain and lists the board's Swift
# flags (DESIGN.md, "Firmware build facts"; BoardSupport/CMakeLists.txt has the
# same list for the pico-sdk build). Set `tool` (for messages) before sourcing.
# -fshort-enums: the objects must agree with pico-sdk's C on enum sizes.
# -disable-stack-protector: the guard is read through a GOT the startup never copies.
# Inlining held back at both levels (SIL: caller benefit reduced 256x; LLVM:
# threshold 0): -Osize alone still inlines large bodies at many call sites, and
# these two flags take ~14 KB off the kernel image (docs/FIRMWARE.md, "Sizes").
# -mergeable-traps: the runtime checks of a function share one trap instruction
# instead of one each (the reason of a trap is the same: ~1.4 KB).

swiftc="${SWIFTC:-$(command -v swiftc || true)}"
[ -n "$swiftc" ] || swiftc=/opt/swift/usr/bin/swiftc
if [ ! -x "$swiftc" ]; then
    echo "$tool: no swiftc (set SWIFTC, or put a Swift 6 toolchain on PATH)" >&2
    exit 1
fi
if [ ! -d "$(dirname "$swiftc")/../lib/swift/embedded/armv6m-none-none-eabi" ]; then
    echo "$tool: $swiftc has no Embedded Swift stdlib for armv6m-none-none-eabi" >&2
    exit 1
fi

board_swift_flags=(
    -target armv6m-none-none-eabi
    -enable-experimental-feature Embedded
    -wmo -Osize -parse-as-library
    -Xfrontend -function-sections
    -Xcc -fshort-enums -Xcc -mfloat-abi=soft
    -Xfrontend -disable-stack-protector
    -Xfrontend -sil-inline-caller-benefit-reduction-factor -Xfrontend 256
    -Xfrontend -mergeable-traps
    -Xllvm -inline-threshold=0
)
