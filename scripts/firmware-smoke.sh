#!/usr/bin/env bash
# firmware-smoke.sh — boots the real Pico W image in an emulated RP2040 and reads
# its UART: PyPI's rp2040py emulates the RP2040 (bootrom, boot2, XIP flash, timer,
# UART, watchdog) and enough of the CYW43 (gSPI bus, join, a DHCP server) for
# cyw43_arch and lwIP to come up. Its ADC reads 0 (the temperature shown is
# meaningless) and nothing answers the heartbeats: this checks the image boots,
# reads the config region, persists its boot epoch through flash_safe_execute,
# joins, and sends a heartbeat every second without growing its heap.
#
# Needs `make firmware` (build/firmware/tdos-node.elf) and the firmware check's
# host build (scripts/firmware-check.sh). The emulated clock runs several times
# faster than the wall clock when the firmware sleeps.
#
# Environment: SMOKE_SECONDS (default 60, wall clock), FIRMWARE_BUILD_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FIRMWARE_BUILD_DIR:-$root/build/firmware}"
work="$root/.build-firmware-smoke"
seconds="${SMOKE_SECONDS:-60}"
elf="$build/tdos-node.elf"
checks="$root/.build-firmware-check/host/pico-host-checks"

[ -f "$elf" ] || { echo "firmware-smoke: no $elf: run make firmware PICO_SDK_PATH=... first" >&2; exit 1; }
[ -x "$checks" ] || "$root/scripts/firmware-check.sh"
[ -x "$build/tdos-uf2" ] || { echo "firmware-smoke: no $build/tdos-uf2: run make firmware first" >&2; exit 1; }

mkdir -p "$work"
if [ ! -x "$work/venv/bin/rp2040py" ]; then
    echo "firmware-smoke: installing rp2040py (PyPI) into $work/venv"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q rp2040py==0.3.6
fi

"$checks" --write-test-config "$work/config.bin"
config_a="$(printf '#include "tdos_flash_layout.h"\nTDOS_FLASH_XIP_BASE + TDOS_FLASH_CONFIG_A_OFFSET\n' |
    arm-none-eabi-cpp -P -I "$root/linker" - | tail -n 1)"
"$build/tdos-uf2" convert "$elf" "$work/smoke.uf2" --add "$(printf '0x%x' $((config_a)))=$work/config.bin"

echo "firmware-smoke: rp2040py --board pico_w, ${seconds} s"
status=0
timeout "$seconds" "$work/venv/bin/rp2040py" run --board pico_w --gdb-port $((20000 + RANDOM % 20000)) \
    --image "$work/smoke.uf2" >"$work/uart.log" 2>&1 || status=$?
[ "$status" -eq 124 ] || { cat "$work/uart.log"; echo "firmware-smoke: FAILED: the emulator exited ($status)" >&2; exit 1; }

grep '^tdos: \|^TDOS' "$work/uart.log" | head -n 8
fail() { echo "firmware-smoke: FAILED: $1 (log: $work/uart.log)" >&2; exit 1; }
grep -q '^TDOS Pico W node' "$work/uart.log" || fail "no banner"
[ "$(grep -c '^tdos: reset' "$work/uart.log")" -eq 1 ] || fail "the board reset more than once"
grep -q '^tdos: node smoke id 0a0b0c0d role 2 epoch 1 ' "$work/uart.log" || fail "config not read, or epoch not 1"
grep -q '^tdos: wifi up ' "$work/uart.log" || fail "Wi-Fi did not come up"
mapfile -t statuses < <(grep '^tdos: up_s=' "$work/uart.log")
[ "${#statuses[@]}" -ge 3 ] || fail "fewer than 3 status lines"
heaps="$(printf '%s\n' "${statuses[@]:1}" | sed -n 's/.* heap_free=\([0-9]*\).*/\1/p' | sort -u | wc -l)"
[ "$heaps" -eq 1 ] || fail "free heap changes between status lines (heap growth)"
last="${statuses[-1]}"
up_s="$(sed -n 's/^tdos: up_s=\([0-9]*\).*/\1/p' <<<"$last")"
sent="$(sed -n 's/.* hb_sent=\([0-9]*\).*/\1/p' <<<"$last")"
[ "$sent" -ge $((up_s - 5)) ] || fail "$sent heartbeats in $up_s s"
echo "firmware-smoke: ok: ${#statuses[@]} status lines, $sent heartbeats in $up_s s (emulated), heap steady"
