/*
 * tdos_board.h: the one platform contract between TDOS's Swift code and a board.
 *
 * Implementations (the platform is chosen by the list of files built, never by
 * #ifdefs in here):
 *   BoardSupport/pico/  Raspberry Pi Pico W: pico-sdk + cyw43_arch (poll) + lwIP raw API;
 *   BoardSupport/stub/  CI: every function present, no hardware, so the Swift
 *                       firmware links with no pico-sdk (scripts/firmware-check.sh).
 *
 * Rules of the API:
 *   - flat C11, names tdos_*, fixed-width integers, no structs passed by value,
 *     no callbacks into Swift, no allocation: buffers belong to the caller;
 *   - int32_t results: >= 0 success (a count where one makes sense), < 0 a
 *     TDOS_E_* code;
 *   - single-threaded: everything, including lwIP's callbacks, runs on the caller's
 *     thread inside tdos_board_poll() or tdos_board_wait_until_us(). No function
 *     may be called from an interrupt handler;
 *   - self-contained: only <stdint.h>, <stdbool.h> and the flash layout, so Swift
 *     imports it (module TDOSBoard) without seeing pico-sdk's headers.
 */
#ifndef TDOS_BOARD_H
#define TDOS_BOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "tdos_flash_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- results --------------------------------------------------------------- */

#define TDOS_OK 0
#define TDOS_E_INVALID (-1)     /* bad argument (size, alignment, pin, ...) */
#define TDOS_E_NOT_READY (-2)   /* not initialised, or no network link */
#define TDOS_E_NO_MEMORY (-3)   /* lwIP had no buffer */
#define TDOS_E_IO (-4)          /* the device or the stack reported an error */
#define TDOS_E_TIMEOUT (-5)     /* the device did not answer in time */
#define TDOS_E_EMPTY (-6)       /* nothing to receive */
#define TDOS_E_UNSUPPORTED (-7) /* not on this board (the stub says this a lot) */
#define TDOS_E_RANGE (-8)       /* flash access outside the reserved regions */

/* ---- board ----------------------------------------------------------------- */

/* Clocks, UART stdio (115200 8N1 on GPIO0/1), ADC, reset-reason capture, stack
   paint. Call first. Does not start the radio. */
int32_t tdos_board_init(void);

/* Starts the CYW43 (Wi-Fi chip; it also drives the LED) for a regulatory
   country: two ASCII letters ("XX" = worldwide). Needed by the LED and Wi-Fi. */
int32_t tdos_radio_init(uint8_t country0, uint8_t country1);

/* Services the radio, lwIP timers and the Wi-Fi join state machine. Call it at
   least every few milliseconds while the network is in use; lwIP's receive
   callbacks run inside it (and inside tdos_board_wait_until_us). */
void tdos_board_poll(void);

/* Light sleep: waits for an interrupt (WFE) until the radio has work or the
   deadline passes, servicing the radio meanwhile. Returns at the deadline at the
   latest; may return earlier. */
void tdos_board_wait_until_us(uint64_t deadline_us);

/* 8-byte unique id of the board (its flash chip's id). */
void tdos_board_unique_id(uint8_t out[8]);

/* Heap and stack use, bytes. */
typedef struct {
    uint32_t heap_used_bytes;      /* allocated and not freed */
    uint32_t heap_free_bytes;      /* still available to malloc, incl. never-used heap */
    uint32_t heap_arena_bytes;     /* taken from sbrk: the heap's high-water mark */
    uint32_t stack_size_bytes;     /* core 0's stack */
    uint32_t stack_high_water_bytes; /* deepest use since boot (painted stack) */
} tdos_memory_stats_t;
void tdos_memory_stats(tdos_memory_stats_t *out);

/* ---- clocks and randomness ---------------------------------------------------- */

/* Monotonic, since boot; never wrap in practice (64-bit microseconds). */
uint64_t tdos_time_us(void);
uint64_t tdos_time_ms(void);

/* Hardware-seeded randomness (pico_rand: ring oscillator, timer and bus noise
   mixed into a PRNG). Fit for nonces and backoff jitter, not for key generation. */
uint32_t tdos_random_u32(void);
void tdos_random_fill(uint8_t *buf, uint32_t len);

/* ---- console (UART0 stdio) ------------------------------------------------------ */

void tdos_console_write(const uint8_t *buf, uint32_t len);
/* One byte if one is waiting, else TDOS_E_EMPTY. Never blocks. */
int32_t tdos_console_read_byte(void);

/* ---- LED (the Pico W's LED is wired to the CYW43, so it needs the radio) ------- */

void tdos_led_set(bool on);

/* ---- Wi-Fi ------------------------------------------------------------------- */

#define TDOS_WIFI_AUTH_OPEN 0u
#define TDOS_WIFI_AUTH_WPA2 1u
#define TDOS_WIFI_AUTH_WPA2_WPA3 2u

#define TDOS_WIFI_OFF 0u      /* tdos_wifi_start not called, or stopped */
#define TDOS_WIFI_JOINING 1u  /* associating or waiting for DHCP */
#define TDOS_WIFI_UP 2u       /* associated, has an IPv4 address */
#define TDOS_WIFI_BACKOFF 3u  /* last attempt failed; next one at next_attempt_ms */

/* Why the last join attempt failed (0 = none yet). */
#define TDOS_WIFI_FAIL_NONE 0u
#define TDOS_WIFI_FAIL_TIMEOUT 1u   /* no link (or no DHCP lease) in time */
#define TDOS_WIFI_FAIL_NO_NET 2u    /* SSID not found */
#define TDOS_WIFI_FAIL_BAD_AUTH 3u  /* wrong passphrase */
#define TDOS_WIFI_FAIL_LINK 4u      /* association failed */
#define TDOS_WIFI_FAIL_LOST 5u      /* was up, link went away */

#define TDOS_WIFI_SSID_BYTES_MAX 32u
#define TDOS_WIFI_PSK_BYTES_MAX 64u

typedef struct {
    uint32_t state;           /* TDOS_WIFI_* */
    uint32_t ip;              /* host order: 192.168.1.2 = 0xC0A80102; 0 when not up */
    uint32_t netmask;
    uint32_t gateway;
    uint32_t join_attempts;   /* since tdos_wifi_start */
    uint32_t link_losses;     /* UP -> not UP transitions */
    uint32_t last_failure;    /* TDOS_WIFI_FAIL_* */
    uint64_t next_attempt_ms; /* in BACKOFF: when the next join starts */
    uint64_t up_since_ms;     /* in UP: when the link came up */
} tdos_wifi_status_t;

/* Copies the credentials and starts joining, without blocking; tdos_board_poll
   drives the rest: a failed or timed-out attempt is retried after a backoff that
   doubles from 1 s up to 60 s (with random jitter), and a lost link is rejoined
   at once. ssid 1-32 bytes; psk empty (open) or 8-64 bytes. */
int32_t tdos_wifi_start(const uint8_t *ssid, uint32_t ssid_len, const uint8_t *psk, uint32_t psk_len,
                        uint32_t auth);
void tdos_wifi_stop(void);
/* Cheap: no traffic to the radio chip; call it as often as needed. */
void tdos_wifi_status(tdos_wifi_status_t *out);
/* Signal strength of the joined access point: asks the radio chip (an ioctl
   round trip), so call it when reporting, not every loop. */
int32_t tdos_wifi_rssi(int32_t *dbm);

/* CYW43 power-save modes. PERFORMANCE is the SDK's default (wakes every 200 ms
   beacon, short sleep after traffic); AGGRESSIVE saves the most (PM1, adds latency
   to receive); NONE keeps the radio awake. */
#define TDOS_WIFI_PM_NONE 0u
#define TDOS_WIFI_PM_PERFORMANCE 1u
#define TDOS_WIFI_PM_AGGRESSIVE 2u
int32_t tdos_wifi_set_power_mode(uint32_t mode);

/* ---- UDP (one socket) ---------------------------------------------------------- */

/* The ring the lwIP receive callback copies datagrams into; Swift drains it with
   tdos_udp_recv. A datagram that arrives when the ring is full is dropped and
   counted (the newest is dropped: the older ones are already queued). */
#define TDOS_UDP_RING_SLOTS 8u
/* Largest datagram kept: TDOS's frameBytesMax (a TDOS frame never exceeds it,
   anything longer is dropped and counted as oversized). */
#define TDOS_UDP_DATAGRAM_BYTES_MAX 1200u

typedef struct {
    uint32_t received;       /* copied into the ring */
    uint32_t dropped_full;   /* ring full */
    uint32_t dropped_oversized; /* longer than TDOS_UDP_DATAGRAM_BYTES_MAX */
    uint32_t sent;
    uint32_t send_errors;
    uint32_t ring_high_water; /* most datagrams queued at once */
} tdos_udp_stats_t;

/* Binds the socket to `port` on every address, broadcasts allowed. */
int32_t tdos_udp_open(uint16_t port);
void tdos_udp_close(void);
/* ip in host order. Returns len or an error. Needs Wi-Fi UP. */
int32_t tdos_udp_send(uint32_t ip, uint16_t port, const uint8_t *buf, uint32_t len);
/* To the subnet's broadcast address (ip | ~netmask). */
int32_t tdos_udp_broadcast(uint16_t port, const uint8_t *buf, uint32_t len);
/* Takes the oldest datagram from the ring: copies at most `cap` bytes into buf,
   writes the sender's address (host order) and port, and returns the number of
   bytes copied; TDOS_E_EMPTY when the ring is empty. A datagram longer than
   cap is truncated to cap (pass TDOS_UDP_DATAGRAM_BYTES_MAX to never truncate). */
int32_t tdos_udp_recv(uint8_t *buf, uint32_t cap, uint32_t *ip, uint16_t *port);
void tdos_udp_stats(tdos_udp_stats_t *out);

/* ---- sensors --------------------------------------------------------------------- */

/* ADC inputs: 0 = GPIO26 (TDOS: analog light sensor), 1 = GPIO27, 2 = GPIO28,
   4 = the RP2040's internal temperature sensor. Input 3 (GPIO29, VSYS/3) is
   shared with the CYW43's SPI on the Pico W and is refused. */
#define TDOS_ADC_LIGHT 0u
#define TDOS_ADC_TEMPERATURE 4u
/* 12-bit reading (0-4095 over 0-3.3 V) into *raw. */
int32_t tdos_adc_read(uint32_t input, uint16_t *raw);

/* I2C: bus 0 or 1, pins must be valid SDA/SCL pins of that bus. Internal pull-ups
   are enabled (breakout boards usually have their own). */
int32_t tdos_i2c_init(uint32_t bus, uint32_t sda_pin, uint32_t scl_pin, uint32_t baud_hz);
/* Returns len written, or an error (TDOS_E_IO: no ACK, TDOS_E_TIMEOUT).
   keep_bus: no STOP at the end (a repeated START follows). */
int32_t tdos_i2c_write(uint32_t bus, uint8_t address, const uint8_t *buf, uint32_t len, bool keep_bus);
int32_t tdos_i2c_read(uint32_t bus, uint8_t address, uint8_t *buf, uint32_t len);

/* ---- flash (reserved regions only; offsets from the start of flash) ------------- */

/* Any offset/length inside one reserved region (tdos_flash_layout.h). */
int32_t tdos_flash_read(uint32_t offset, uint8_t *buf, uint32_t len);
/* offset and len multiples of TDOS_FLASH_SECTOR_BYTES. Interrupts are off (and
   the other core locked out) while it runs: ~45 ms per sector. */
int32_t tdos_flash_erase(uint32_t offset, uint32_t len);
/* Any offset and length: the pages covered are programmed with 0xFF around the
   data, and NOR flash only clears bits, so bytes outside [offset, offset+len)
   keep their contents. Bytes inside must have been erased for the result to
   equal buf (flash programs 1 -> 0 only). ~1 ms per page. */
int32_t tdos_flash_program(uint32_t offset, const uint8_t *buf, uint32_t len);

/* ---- watchdog, reset, power ----------------------------------------------------- */

#define TDOS_RESET_POWER_ON 0u  /* power-on, RUN pin, or debugger */
#define TDOS_RESET_WATCHDOG 1u  /* the watchdog expired: the firmware hung */
#define TDOS_RESET_SOFTWARE 2u  /* tdos_reboot(code) */

/* The longest timeout the RP2040's watchdog can count (its 24-bit counter ticks
   twice per microsecond, erratum RP2040-E1). */
#define TDOS_WATCHDOG_TIMEOUT_MS_MAX 8300u

/* Starts the watchdog (timeout clamped to 1..TDOS_WATCHDOG_TIMEOUT_MS_MAX). Cannot
   be stopped except by tdos_reboot. */
void tdos_watchdog_enable(uint32_t timeout_ms);
void tdos_watchdog_feed(void);
/* Why the board last reset (TDOS_RESET_*), captured by tdos_board_init. */
uint32_t tdos_reset_reason(void);
/* With TDOS_RESET_SOFTWARE: the code passed to tdos_reboot. With
   TDOS_RESET_WATCHDOG: the last checkpoint set. Else 0. */
uint32_t tdos_reset_code(void);
/* A code that survives a watchdog reset (a scratch register): set it to what the
   main loop is doing, so a hang can be told apart after the reboot. */
void tdos_watchdog_checkpoint(uint32_t code);
/* Reboots through the watchdog within ~1 ms; `code` is kept for tdos_reset_code. */
__attribute__((noreturn)) void tdos_reboot(uint32_t code);

/* ---- display: Pimoroni Pico Display (ST7789, 240x135, SPI0) ---------------------
   Pins: SCK 18, MOSI 19, CS 17, DC 16, backlight 20. The panel is write-only, so
   its presence cannot be detected: the node's config says whether there is one. */
#define TDOS_DISPLAY_WIDTH 240u
#define TDOS_DISPLAY_HEIGHT 135u
/* Font: X11's public-domain misc-fixed 5x7 (glyph and gap in 5 columns, 7 rows,
   plus a blank row: a 5x8 cell), times `scale` (1-4): 48x16 characters at
   scale 1. Printable ASCII only; anything else draws as '?'. */
#define TDOS_DISPLAY_CELL_WIDTH 5u
#define TDOS_DISPLAY_CELL_HEIGHT 8u

int32_t tdos_display_init(void);
void tdos_display_backlight(bool on);
/* rgb565 colours. Rectangles are clipped to the screen. */
void tdos_display_fill(uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint16_t rgb565);
void tdos_display_text(uint32_t x, uint32_t y, const uint8_t *text, uint32_t len, uint16_t fg, uint16_t bg,
                       uint32_t scale);

#ifdef __cplusplus
}
#endif

#endif
