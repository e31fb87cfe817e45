// tdos_board.h on the Pico W: board start-up, clocks, randomness, console, LED,
// memory statistics, watchdog and reset reason. Wi-Fi and UDP are in
// tdos_net_pico.c, flash in tdos_flash_pico.c, sensors in tdos_sensors_pico.c,
// the display in tdos_display_st7789.c.
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include "hardware/adc.h"
#include "hardware/structs/watchdog.h"
#include "hardware/sync.h"
#include "hardware/watchdog.h"
#include "pico/cyw43_arch.h"
#include "pico/rand.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"

#include "tdos_board.h"
#include "tdos_pico_internal.h"

bool tdos_pico_radio_ready = false;

// ---- reset reason -------------------------------------------------------------
//
// Watchdog scratch registers 0-3 are the application's (the SDK's
// watchdog_reboot uses 4-7; the bootrom leaves 0-3 alone). They survive a
// watchdog reset, not a power cycle.
#define SCRATCH_MAGIC 0
#define SCRATCH_REBOOT_CODE 1
#define SCRATCH_CHECKPOINT 2
#define TDOS_SCRATCH_MAGIC 0x7D05B007u

static uint32_t reset_reason = TDOS_RESET_POWER_ON;
static uint32_t reset_code = 0;

static void capture_reset_reason(void) {
    if (watchdog_enable_caused_reboot()) {
        // The watchdog we enabled expired: the firmware hung at its checkpoint.
        reset_reason = TDOS_RESET_WATCHDOG;
        reset_code = watchdog_hw->scratch[SCRATCH_CHECKPOINT];
    } else if (watchdog_caused_reboot()) {
        // tdos_reboot, or a reboot by someone else through the watchdog (the
        // bootrom after a UF2 download): code 0.
        reset_reason = TDOS_RESET_SOFTWARE;
        reset_code = watchdog_hw->scratch[SCRATCH_MAGIC] == TDOS_SCRATCH_MAGIC
                         ? watchdog_hw->scratch[SCRATCH_REBOOT_CODE]
                         : 0;
    } else {
        reset_reason = TDOS_RESET_POWER_ON;
        reset_code = 0;
    }
    watchdog_hw->scratch[SCRATCH_MAGIC] = 0;
    watchdog_hw->scratch[SCRATCH_REBOOT_CODE] = 0;
    watchdog_hw->scratch[SCRATCH_CHECKPOINT] = 0;
}

uint32_t tdos_reset_reason(void) { return reset_reason; }
uint32_t tdos_reset_code(void) { return reset_code; }

void tdos_watchdog_enable(uint32_t timeout_ms) {
    if (timeout_ms == 0) timeout_ms = 1;
    if (timeout_ms > TDOS_WATCHDOG_TIMEOUT_MS_MAX) timeout_ms = TDOS_WATCHDOG_TIMEOUT_MS_MAX;
    // pause_on_debug: a debugger halting the core must not reset the board.
    watchdog_enable(timeout_ms, true);
}

void tdos_watchdog_feed(void) { watchdog_update(); }

void tdos_watchdog_checkpoint(uint32_t code) { watchdog_hw->scratch[SCRATCH_CHECKPOINT] = code; }

void tdos_reboot(uint32_t code) {
    watchdog_hw->scratch[SCRATCH_MAGIC] = TDOS_SCRATCH_MAGIC;
    watchdog_hw->scratch[SCRATCH_REBOOT_CODE] = code;
    stdio_flush();
    watchdog_reboot(0, 0, 1);
    for (;;) {
        __wfi();
    }
}

// ---- stack paint ----------------------------------------------------------------

extern uint32_t __StackBottom[];  // linker/memmap_tdos.ld.in
extern uint32_t __StackTop[];
extern char __StackLimit[];       // the heap's ceiling
#define STACK_PAINT 0x5AFE57ACu

// Fills the unused part of the stack with a pattern so the high-water mark can
// be measured later; the first word that lost it is how deep the stack went.
static void __attribute__((noinline)) paint_stack(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __StackBottom; p < sp - 16; p++) {
        *p = STACK_PAINT;
    }
}

void tdos_memory_stats(tdos_memory_stats_t *out) {
    struct mallinfo m = mallinfo();
    char *brk = sbrk(0);
    uint32_t never_used = brk == (char *)-1 ? 0 : (uint32_t)(__StackLimit - brk);
    out->heap_used_bytes = (uint32_t)m.uordblks;
    out->heap_free_bytes = (uint32_t)m.fordblks + never_used;
    out->heap_arena_bytes = (uint32_t)m.arena;
    out->stack_size_bytes = (uint32_t)((uintptr_t)__StackTop - (uintptr_t)__StackBottom);
    uint32_t *p = __StackBottom;
    while (p < __StackTop && *p == STACK_PAINT) {
        p++;
    }
    out->stack_high_water_bytes = (uint32_t)((uintptr_t)__StackTop - (uintptr_t)p);
}

// ---- start-up ---------------------------------------------------------------------

int32_t tdos_board_init(void) {
    capture_reset_reason();
    paint_stack();
    stdio_init_all();
    adc_init();
    return TDOS_OK;
}

int32_t tdos_radio_init(uint8_t country0, uint8_t country1) {
    if (tdos_pico_radio_ready) return TDOS_OK;
    if (cyw43_arch_init_with_country(CYW43_COUNTRY(country0, country1, 0)) != 0) {
        return TDOS_E_IO;
    }
    cyw43_arch_enable_sta_mode();
    tdos_pico_radio_ready = true;
    return TDOS_OK;
}

void tdos_board_poll(void) {
    if (!tdos_pico_radio_ready) return;
    // Poll mode: the CYW43 driver and lwIP run here, on this stack, never in an
    // interrupt; lwIP's UDP receive callback fills the ring from inside this call.
    cyw43_arch_poll();
    tdos_pico_wifi_step();
}

void tdos_board_wait_until_us(uint64_t deadline_us) {
    absolute_time_t until = from_us_since_boot(deadline_us);
    if (tdos_pico_radio_ready) {
        // Sleeps (WFE) until the CYW43 signals work, an lwIP timer is due, or
        // the deadline, then services whatever is pending.
        cyw43_arch_wait_for_work_until(until);
        tdos_board_poll();
    } else {
        sleep_until(until);
    }
}

void tdos_board_unique_id(uint8_t out[8]) {
    pico_unique_board_id_t id;
    pico_get_unique_board_id(&id);
    memcpy(out, id.id, 8);
}

// ---- clocks and randomness -----------------------------------------------------------

uint64_t tdos_time_us(void) { return time_us_64(); }

uint64_t tdos_time_ms(void) { return time_us_64() / 1000u; }

uint32_t tdos_random_u32(void) { return get_rand_32(); }

void tdos_random_fill(uint8_t *buf, uint32_t len) {
    while (len > 0) {
        uint32_t r = get_rand_32();
        uint32_t n = len < 4 ? len : 4;
        memcpy(buf, &r, n);
        buf += n;
        len -= n;
    }
}

// ---- console and LED -----------------------------------------------------------------

void tdos_console_write(const uint8_t *buf, uint32_t len) {
    // cr_translation: "\n" becomes "\r\n" for serial terminals.
    stdio_put_string((const char *)buf, (int)len, false, true);
}

int32_t tdos_console_read_byte(void) {
    int c = getchar_timeout_us(0);
    return c < 0 ? TDOS_E_EMPTY : (int32_t)(c & 0xFF);
}

void tdos_led_set(bool on) {
    if (!tdos_pico_radio_ready) return;
    cyw43_arch_gpio_put(CYW43_WL_GPIO_LED_PIN, on);
}
