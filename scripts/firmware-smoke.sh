#!/usr/bin/env bash
# firmware-smoke.sh — boots the real Pico W image in an emulated RP2040 and reads
# its UART: PyPI's rp2040py emulates the RP2040 (bootrom, boot2, XIP flash, timer,
# UART, watchdog) and enough of the CYW43 (gSPI bus, join, a DHCP server) for
# cyw43_arch and lwIP to come up. Its ADC reads 0 (the temperature is
# meaningless) and no other node answers: this checks that the image boots,
# validates the config `tdos provision` wrote, persists its boot epoch through
# flash_safe_execute, joins, and runs the full node runtime (scheduler, mesh:
# heartbeats every second, announces every 10 s, the sampler, the watchdog fed by
# the scheduler) without growing its heap.
#
# Needs `make firmware` (build/firmware/sensor.elf: the sensor image, as the
# config is a sensor node's). The config is made the
# way a user makes one: `tdos provision` (a sensor node on the emulator's open
# test network), merged into the image's UF2 with `tdos uf2 --merge`. The
# emulated clock runs several times faster than the wall clock when the
# firmware sleeps.
#
# Environment: SMOKE_SECONDS (default 60, wall clock), FIRMWARE_BUILD_DIR,
# TDOS_CLI (a built tdos; default .build/release/tdos, built if missing).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FIRMWARE_BUILD_DIR:-$root/build/firmware}"
work="$root/.build-firmware-smoke"
seconds="${SMOKE_SECONDS:-60}"
elf="$build/sensor.elf"

[ -f "$elf" ] || { echo "firmware-smoke: no $elf: run make firmware PICO_SDK_PATH=... first" >&2; exit 1; }
tdos="${TDOS_CLI:-$root/.build/release/tdos}"
if [ ! -x "$tdos" ]; then
    echo "firmware-smoke: swift build -c release --product tdos"
    (cd "$root" && swift build -c release --product tdos >/dev/null)
fi

mkdir -p "$work"
if [ ! -x "$work/venv/bin/rp2040py" ]; then
    echo "firmware-smoke: installing rp2040py (PyPI) into $work/venv"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q rp2040py==0.3.6
fi

# The golden vectors' key (bytes 0..31): a test mesh, not a secret.
printf '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n' >"$work/mesh.key"
"$tdos" provision --ssid tdos-smoke --name smoke --role sensor --service temp_sensor --service light_sensor \
    --node-id 0a0b0c0d --key-file "$work/mesh.key" -o "$work/config.uf2" >"$work/provision.log"
"$tdos" uf2 "$elf" -o "$work/smoke.uf2" --merge "$work/config.uf2"

echo "firmware-smoke: rp2040py --board pico_w, ${seconds} s"
status=0
timeout "$seconds" "$work/venv/bin/rp2040py" run --board pico_w --gdb-port $((20000 + RANDOM % 20000)) \
    --image "$work/smoke.uf2" >"$work/uart.log" 2>&1 || status=$?
[ "$status" -eq 124 ] || { cat "$work/uart.log"; echo "firmware-smoke: FAILED: the emulator exited ($status)" >&2; exit 1; }

grep '^tdos: \|^TDOS' "$work/uart.log" | grep -v '^tdos: up_s=' | head -n 12
grep '^tdos: up_s=' "$work/uart.log" | tail -n 3
fail() { echo "firmware-smoke: FAILED: $1 (log: $work/uart.log)" >&2; exit 1; }
grep -q '^TDOS Pico W node' "$work/uart.log" || fail "no banner"
[ "$(grep -c '^tdos: reset' "$work/uart.log")" -eq 1 ] || fail "the board reset more than once"
grep -q '^tdos: ERROR' "$work/uart.log" && fail "the board is in its error state"
grep -q '^tdos: node smoke id 0a0b0c0d role sensor epoch 1 ' "$work/uart.log" || fail "config not read, or epoch not 1"
grep -q '^tdos: node smoke started as sensor' "$work/uart.log" || fail "the node runtime did not start"
grep -q '^tdos: wifi up ' "$work/uart.log" || fail "Wi-Fi did not come up"
mapfile -t statuses < <(grep '^tdos: up_s=' "$work/uart.log")
[ "${#statuses[@]}" -ge 3 ] || fail "fewer than 3 status lines"
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }
heaps="$(for s in "${statuses[@]:1}"; do field heap_free "$s"; done | sort -u | wc -l)"
[ "$heaps" -eq 1 ] || fail "free heap changes between status lines (heap growth)"
last="${statuses[-1]}"
up_s="$(sed -n 's/^tdos: up_s=\([0-9]*\).*/\1/p' <<<"$last")"
sent="$(field hb_sent "$last")" announces="$(field announces "$last")" feeds="$(field wd_feeds "$last")"
samples="$(field samples "$last")" events="$(field sched_events "$last")" tasks="$(field tasks "$last")"
[ "$sent" -ge $((up_s * 8 / 10 - 5)) ] || fail "$sent heartbeats in $up_s s"
[ "$announces" -ge $((up_s / 12)) ] || fail "$announces announces in $up_s s"
[ "$samples" -ge $((up_s - 5)) ] || fail "$samples sensor samples in $up_s s"
[ "$feeds" -ge "$up_s" ] || fail "the scheduler fed the watchdog $feeds times in $up_s s"
[ "$events" -eq 0 ] || fail "$events scheduler events (task failures, stalls): see the log"
echo "firmware-smoke: ok: ${#statuses[@]} status lines; in $up_s s (emulated): $sent heartbeats, $announces announces," \
    "$samples samples, $tasks tasks, $events scheduler events, watchdog fed $feeds times; heap steady"
