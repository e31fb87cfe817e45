// tdos_board.h for CI: every function of the contract, no hardware. Linked with
// the Swift firmware by scripts/firmware-check.sh so that every symbol the
// firmware uses must exist in the contract (a missing or misspelt one fails the
// link), with no pico-sdk on the machine.
//
// Behaviour, where there is any, is deterministic: the clock advances only when
// the firmware waits, randomness is a fixed-seed xorshift, flash reads as erased
// (so the firmware takes its "not provisioned" path), the network never comes up.
#include <string.h>

#include "tdos_board.h"

static uint64_t now_us;
static uint32_t random_state = 0x2545F491u;

int32_t tdos_board_init(void) { return TDOS_OK; }
int32_t tdos_radio_init(uint8_t country0, uint8_t country1) {
    (void)country0;
    (void)country1;
    return TDOS_OK;
}
void tdos_board_poll(void) {}
void tdos_board_wait_until_us(uint64_t deadline_us) {
    if (deadline_us > now_us) now_us = deadline_us;
}
void tdos_board_unique_id(uint8_t out[8]) {
    static const uint8_t id[8] = {0xE6, 0x61, 0x38, 0x52, 0x83, 0x2F, 0x4A, 0x21};
    memcpy(out, id, 8);
}
void tdos_memory_stats(tdos_memory_stats_t *out) { memset(out, 0, sizeof *out); }

uint64_t tdos_time_us(void) { return now_us; }
uint64_t tdos_time_ms(void) { return now_us / 1000u; }

uint32_t tdos_random_u32(void) {
    // xorshift32: reproducible; the stub never makes keys.
    uint32_t x = random_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    random_state = x;
    return x;
}
void tdos_random_fill(uint8_t *buf, uint32_t len) {
    for (uint32_t i = 0; i < len; i++) buf[i] = (uint8_t)tdos_random_u32();
}

void tdos_console_write(const uint8_t *buf, uint32_t len) {
    (void)buf;
    (void)len;
}
int32_t tdos_console_read_byte(void) { return TDOS_E_EMPTY; }
void tdos_led_set(bool on) { (void)on; }

int32_t tdos_wifi_start(const uint8_t *ssid, uint32_t ssid_len, const uint8_t *psk, uint32_t psk_len,
                        uint32_t auth) {
    (void)ssid;
    (void)ssid_len;
    (void)psk;
    (void)psk_len;
    (void)auth;
    return TDOS_E_UNSUPPORTED;
}
void tdos_wifi_stop(void) {}
void tdos_wifi_status(tdos_wifi_status_t *out) { memset(out, 0, sizeof *out); }
int32_t tdos_wifi_rssi(int32_t *dbm) {
    *dbm = 0;
    return TDOS_E_NOT_READY;
}
int32_t tdos_wifi_set_power_mode(uint32_t mode) {
    (void)mode;
    return TDOS_E_UNSUPPORTED;
}

int32_t tdos_udp_open(uint16_t port) {
    (void)port;
    return TDOS_E_UNSUPPORTED;
}
void tdos_udp_close(void) {}
int32_t tdos_udp_send(uint32_t ip, uint16_t port, const uint8_t *buf, uint32_t len) {
    (void)ip;
    (void)port;
    (void)buf;
    (void)len;
    return TDOS_E_NOT_READY;
}
int32_t tdos_udp_broadcast(uint16_t port, const uint8_t *buf, uint32_t len) {
    (void)port;
    (void)buf;
    (void)len;
    return TDOS_E_NOT_READY;
}
int32_t tdos_udp_recv(uint8_t *buf, uint32_t cap, uint32_t *ip, uint16_t *port) {
    (void)buf;
    (void)cap;
    (void)ip;
    (void)port;
    return TDOS_E_EMPTY;
}
void tdos_udp_stats(tdos_udp_stats_t *out) { memset(out, 0, sizeof *out); }

int32_t tdos_adc_read(uint32_t input, uint16_t *raw) {
    (void)input;
    *raw = 0;
    return TDOS_E_UNSUPPORTED;
}
int32_t tdos_i2c_init(uint32_t bus, uint32_t sda_pin, uint32_t scl_pin, uint32_t baud_hz) {
    (void)bus;
    (void)sda_pin;
    (void)scl_pin;
    (void)baud_hz;
    return TDOS_E_UNSUPPORTED;
}
int32_t tdos_i2c_write(uint32_t bus, uint8_t address, const uint8_t *buf, uint32_t len, bool keep_bus) {
    (void)bus;
    (void)address;
    (void)buf;
    (void)len;
    (void)keep_bus;
    return TDOS_E_UNSUPPORTED;
}
int32_t tdos_i2c_read(uint32_t bus, uint8_t address, uint8_t *buf, uint32_t len) {
    (void)bus;
    (void)address;
    (void)buf;
    (void)len;
    return TDOS_E_UNSUPPORTED;
}

int32_t tdos_flash_read(uint32_t offset, uint8_t *buf, uint32_t len) {
    if (offset < TDOS_FLASH_RESERVED_OFFSET || len > TDOS_FLASH_SIZE_BYTES - offset) return TDOS_E_RANGE;
    memset(buf, 0xFF, len);  // erased
    return (int32_t)len;
}
int32_t tdos_flash_erase(uint32_t offset, uint32_t len) {
    (void)offset;
    (void)len;
    return TDOS_E_UNSUPPORTED;
}
int32_t tdos_flash_program(uint32_t offset, const uint8_t *buf, uint32_t len) {
    (void)offset;
    (void)buf;
    (void)len;
    return TDOS_E_UNSUPPORTED;
}

void tdos_watchdog_enable(uint32_t timeout_ms) { (void)timeout_ms; }
void tdos_watchdog_feed(void) {}
uint32_t tdos_reset_reason(void) { return TDOS_RESET_POWER_ON; }
uint32_t tdos_reset_code(void) { return 0; }
void tdos_watchdog_checkpoint(uint32_t code) { (void)code; }
void tdos_reboot(uint32_t code) {
    (void)code;
    for (;;) {
    }
}

int32_t tdos_display_init(void) { return TDOS_E_UNSUPPORTED; }
void tdos_display_backlight(bool on) { (void)on; }
void tdos_display_fill(uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint16_t rgb565) {
    (void)x;
    (void)y;
    (void)w;
    (void)h;
    (void)rgb565;
}
void tdos_display_text(uint32_t x, uint32_t y, const uint8_t *text, uint32_t len, uint16_t fg, uint16_t bg,
                       uint32_t scale) {
    (void)x;
    (void)y;
    (void)text;
    (void)len;
    (void)fg;
    (void)bg;
    (void)scale;
}
