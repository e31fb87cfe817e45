#!/usr/bin/env bash
# image-sizes.sh NAME ELF MAP — the sizes of one firmware image against issue 5's
# budgets, read from the ELF's symbols and the linker map:
#   swift flash   code + read-only data + initialised data of the Swift objects
#                 (TDOS*.o: TDOSCore, TDOSNode, TDOSPico), after --gc-sections;
#   image flash   everything the image puts in flash (boot2 to __flash_binary_end),
#                 which is what its UF2 writes;
#   static RAM    main RAM below the heap (.data, .bss, tables: __bss_end__) plus
#                 core 0's stack; the heap gets the rest of the 256 KB.
# Exit 1 when a budget is exceeded. Used by scripts/firmware-check.sh (stub image)
# and scripts/firmware.sh (pico-sdk image).
set -euo pipefail

swift_flash_max=$((96 * 1024))
image_flash_max=$((512 * 1024))
static_ram_max=$((128 * 1024))

# --report-only: print the sizes and say which budgets are exceeded, exit 0.
# --swift-ceiling KB: while the Swift budget is not met (docs/FIRMWARE.md,
# "Sizes"), Swift above the budget is reported and Swift above KB fails, so an
# image cannot grow unnoticed; the image and RAM budgets are still enforced
# (scripts/firmware-check.sh; `make firmware` enforces the budget itself).
report_only=0
swift_ceiling=0
while [ "$#" -gt 3 ]; do
    case "$1" in
        --report-only) report_only=1; shift ;;
        --swift-ceiling) swift_ceiling=$(($2 * 1024)); shift 2 ;;
        *) echo "image-sizes: unknown option $1" >&2; exit 2 ;;
    esac
done
name="$1" elf="$2" map="$3"

sym() { # NAME -> value (decimal)
    local v
    v="$(arm-none-eabi-nm "$elf" | awk -v s="$1" '$3 == s { print $1; exit }')"
    [ -n "$v" ] || { echo "image-sizes: $elf has no symbol $1" >&2; exit 1; }
    echo $((16#$v))
}

flash_end="$(sym __flash_binary_end)"
bss_end="$(sym __bss_end__)"
stack_top="$(sym __StackTop)"
stack_bottom="$(sym __StackBottom)"
image_flash=$((flash_end - 0x10000000))
stack=$((stack_top - stack_bottom))
static_ram=$((bss_end - 0x20000000 + stack))

# Swift objects' input sections, by the output section they landed in. A map line
# is "section addr size file", or the section alone with "addr size file" on the
# next line; output sections start in column 0. Only the memory map counts
# ("Discarded input sections" above it has the same format).
read -r swift_flash swift_ram < <(awk '
    function hex(s,    i, n) {  # mawk has no strtonum
        n = 0; s = tolower(substr(s, 3))
        for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
        return n
    }
    /^Linker script and memory map/ { inmap = 1; next }
    !inmap { next }
    /^[.A-Za-z_]/ { out = $1; pending = ""; next }
    /^ [^ ]+$/ { pending = $1; next }
    {
        if (pending != "" && $1 ~ /^0x/ && NF == 3) { size = $2; file = $3 }
        else if ($2 ~ /^0x/ && $3 ~ /^0x/ && NF == 4) { size = $3; file = $4 }
        else { pending = ""; next }
        pending = ""
        if (file !~ /(^|\/)TDOS[A-Za-z]*\.o$/) next
        n = hex(size)
        if (out ~ /^\.(text|rodata|ARM\.exidx|ARM\.extab|binary_info)$/) flash += n
        else if (out ~ /^\.(data|tdata)$/) { flash += n; ram += n }
        else if (out ~ /^\.(bss|tbss|uninitialized_data)$/) ram += n
    }
    END { print flash + 0, ram + 0 }
' "$map")

kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1024 }'; }
printf '  %-16s swift flash %9s  image flash %9s  static RAM %9s (incl. %s stack; swift %s)\n' \
    "$name" "$(kb "$swift_flash")" "$(kb "$image_flash")" "$(kb "$static_ram")" "$(kb "$stack")" "$(kb "$swift_ram")"

status=0
check() { # WHAT VALUE MAX
    if [ "$2" -gt "$3" ]; then
        echo "image-sizes: $name: $1 $(kb "$2") exceeds the budget of $(kb "$3")" >&2
        status=1
    fi
}
if [ "$swift_ceiling" -gt 0 ] && [ "$swift_flash" -gt "$swift_flash_max" ]; then
    echo "image-sizes: $name: Swift flash $(kb "$swift_flash") is over the budget of $(kb "$swift_flash_max") (reported: docs/FIRMWARE.md, \"Sizes\"); the ceiling is $(kb "$swift_ceiling")" >&2
    check "Swift flash" "$swift_flash" "$swift_ceiling"
else
    check "Swift flash" "$swift_flash" "$swift_flash_max"
fi
check "image flash" "$image_flash" "$image_flash_max"
check "static RAM" "$static_ram" "$static_ram_max"
if [ "$status" -ne 0 ] && [ "$report_only" -eq 1 ]; then
    echo "image-sizes: $name: OVER BUDGET (reported, not failed: see docs/FIRMWARE.md, \"Sizes\")" >&2
    exit 0
fi
exit "$status"
