// tdos_board.h on the Pico W: the Pimoroni Pico Display (1.14" 240x135 IPS panel,
// ST7789 controller) over SPI0, drawn directly (no frame buffer: 240x135x2 bytes
// would be 63 KB of RAM). Pins are the Pico Display's: SCK 18, MOSI 19, CS 17,
// DC 16 (low = command), backlight 20. No reset line: software reset.
#include "hardware/gpio.h"
#include "hardware/spi.h"
#include "pico/time.h"

#include "tdos_board.h"

#define PIN_DC 16
#define PIN_CS 17
#define PIN_SCK 18
#define PIN_MOSI 19
#define PIN_BACKLIGHT 20
// clk_peri / 2 at the default 125 MHz system clock: the ST7789's write cycle is
// 16 ns minimum, so 62.5 MHz is within spec.
#define SPI_BAUD_HZ 62500000u

// ST7789 commands used here (datasheet section 9).
#define CMD_SWRESET 0x01
#define CMD_SLPOUT 0x11
#define CMD_INVON 0x21
#define CMD_DISPON 0x29
#define CMD_CASET 0x2A
#define CMD_RASET 0x2B
#define CMD_RAMWR 0x2C
#define CMD_MADCTL 0x36
#define CMD_COLMOD 0x3A
#define CMD_PORCTRL 0xB2
#define CMD_GCTRL 0xB7
#define CMD_VCOMS 0xBB
#define CMD_LCMCTRL 0xC0
#define CMD_VDVVRHEN 0xC2
#define CMD_VRHS 0xC3
#define CMD_VDVS 0xC4
#define CMD_FRCTRL2 0xC6
#define CMD_PWCTRL1 0xD0

// The 135x240 panel sits inside the controller's 240x320 memory; in landscape
// (row/column exchange) its visible window starts at column 40, row 53.
#define MADCTL_LANDSCAPE 0x70  // MX | MV | ML: landscape, connector on the left
#define COL_OFFSET 40u
#define ROW_OFFSET 53u

extern const uint8_t tdos_font5x7[95][7];

static bool display_ready = false;

static void command(uint8_t cmd, const uint8_t *data, uint32_t len) {
    gpio_put(PIN_CS, 0);
    gpio_put(PIN_DC, 0);
    spi_write_blocking(spi0, &cmd, 1);
    if (len > 0) {
        gpio_put(PIN_DC, 1);
        spi_write_blocking(spi0, data, len);
    }
    gpio_put(PIN_CS, 1);
}

static void command1(uint8_t cmd, uint8_t value) { command(cmd, &value, 1); }

int32_t tdos_display_init(void) {
    spi_init(spi0, SPI_BAUD_HZ);
    gpio_set_function(PIN_SCK, GPIO_FUNC_SPI);
    gpio_set_function(PIN_MOSI, GPIO_FUNC_SPI);
    gpio_init(PIN_CS);
    gpio_set_dir(PIN_CS, GPIO_OUT);
    gpio_put(PIN_CS, 1);
    gpio_init(PIN_DC);
    gpio_set_dir(PIN_DC, GPIO_OUT);
    gpio_init(PIN_BACKLIGHT);
    gpio_set_dir(PIN_BACKLIGHT, GPIO_OUT);
    gpio_put(PIN_BACKLIGHT, 0);  // dark until the panel holds a clean picture

    command(CMD_SWRESET, NULL, 0);
    sleep_ms(150);  // datasheet: 120 ms before SLPOUT after a software reset
    command1(CMD_COLMOD, 0x05);  // 16 bits per pixel, RGB565
    static const uint8_t porch[] = {0x0C, 0x0C, 0x00, 0x33, 0x33};
    command(CMD_PORCTRL, porch, sizeof porch);
    // Panel voltages for this 1.14" glass (gate, VCOM, VRH/VDV), as its maker sets them.
    command1(CMD_LCMCTRL, 0x2C);
    command1(CMD_VDVVRHEN, 0x01);
    command1(CMD_VRHS, 0x00);
    command1(CMD_VDVS, 0x20);
    command1(CMD_FRCTRL2, 0x0F);  // 60 Hz
    static const uint8_t power[] = {0xA4, 0xA1};
    command(CMD_PWCTRL1, power, sizeof power);
    command1(CMD_GCTRL, 0x75);
    command1(CMD_VCOMS, 0x3D);
    command(CMD_INVON, NULL, 0);  // IPS panels need inverted colours
    command(CMD_SLPOUT, NULL, 0);
    sleep_ms(120);
    command(CMD_DISPON, NULL, 0);
    command1(CMD_MADCTL, MADCTL_LANDSCAPE);
    display_ready = true;
    tdos_display_fill(0, 0, TDOS_DISPLAY_WIDTH, TDOS_DISPLAY_HEIGHT, 0x0000);
    gpio_put(PIN_BACKLIGHT, 1);
    return TDOS_OK;
}

void tdos_display_backlight(bool on) {
    if (display_ready) gpio_put(PIN_BACKLIGHT, on);
}

// Sets the drawing window (inclusive corners, screen coordinates) and starts a
// RAMWR: the caller streams w*h pixels, then raises CS.
static void begin_window(uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
    uint32_t x0 = x + COL_OFFSET, x1 = x + w - 1 + COL_OFFSET;
    uint32_t y0 = y + ROW_OFFSET, y1 = y + h - 1 + ROW_OFFSET;
    uint8_t cols[4] = {(uint8_t)(x0 >> 8), (uint8_t)x0, (uint8_t)(x1 >> 8), (uint8_t)x1};
    uint8_t rows[4] = {(uint8_t)(y0 >> 8), (uint8_t)y0, (uint8_t)(y1 >> 8), (uint8_t)y1};
    command(CMD_CASET, cols, 4);
    command(CMD_RASET, rows, 4);
    uint8_t cmd = CMD_RAMWR;
    gpio_put(PIN_CS, 0);
    gpio_put(PIN_DC, 0);
    spi_write_blocking(spi0, &cmd, 1);
    gpio_put(PIN_DC, 1);
}

static void end_window(void) { gpio_put(PIN_CS, 1); }

// Clips a rectangle to the screen; false when nothing is left.
static bool clip(uint32_t *x, uint32_t *y, uint32_t *w, uint32_t *h) {
    if (*x >= TDOS_DISPLAY_WIDTH || *y >= TDOS_DISPLAY_HEIGHT || *w == 0 || *h == 0) return false;
    if (*w > TDOS_DISPLAY_WIDTH - *x) *w = TDOS_DISPLAY_WIDTH - *x;
    if (*h > TDOS_DISPLAY_HEIGHT - *y) *h = TDOS_DISPLAY_HEIGHT - *y;
    return true;
}

void tdos_display_fill(uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint16_t rgb565) {
    if (!display_ready || !clip(&x, &y, &w, &h)) return;
    // A short run of the colour, big-endian as the controller wants it, sent again
    // and again: no frame buffer.
    uint8_t run[64];
    for (uint32_t i = 0; i < sizeof run; i += 2) {
        run[i] = (uint8_t)(rgb565 >> 8);
        run[i + 1] = (uint8_t)rgb565;
    }
    begin_window(x, y, w, h);
    uint32_t bytes = w * h * 2u;
    while (bytes > 0) {
        uint32_t n = bytes < sizeof run ? bytes : sizeof run;
        spi_write_blocking(spi0, run, n);
        bytes -= n;
    }
    end_window();
}

void tdos_display_text(uint32_t x, uint32_t y, const uint8_t *text, uint32_t len, uint16_t fg, uint16_t bg,
                       uint32_t scale) {
    if (!display_ready) return;
    if (scale < 1) scale = 1;
    if (scale > 4) scale = 4;
    uint32_t cell_w = TDOS_DISPLAY_CELL_WIDTH * scale, cell_h = TDOS_DISPLAY_CELL_HEIGHT * scale;
    uint8_t line[TDOS_DISPLAY_CELL_WIDTH * 4 * 2];  // one pixel row of one cell at scale 4
    for (uint32_t i = 0; i < len; i++, x += cell_w) {
        // Whole cells only: a character that does not fit is not drawn.
        if (x + cell_w > TDOS_DISPLAY_WIDTH || y + cell_h > TDOS_DISPLAY_HEIGHT) break;
        uint8_t c = text[i];
        const uint8_t *glyph = tdos_font5x7[(c >= 0x20 && c <= 0x7E ? c : '?') - 0x20];
        begin_window(x, y, cell_w, cell_h);
        for (uint32_t row = 0; row < TDOS_DISPLAY_CELL_HEIGHT; row++) {
            uint8_t bits = row < 7 ? glyph[row] : 0;
            uint32_t n = 0;
            for (uint32_t col = 0; col < TDOS_DISPLAY_CELL_WIDTH; col++) {
                uint16_t colour = (bits >> (TDOS_DISPLAY_CELL_WIDTH - 1 - col)) & 1u ? fg : bg;
                for (uint32_t s = 0; s < scale; s++) {
                    line[n++] = (uint8_t)(colour >> 8);
                    line[n++] = (uint8_t)colour;
                }
            }
            for (uint32_t s = 0; s < scale; s++) {
                spi_write_blocking(spi0, line, n);
            }
        }
        end_window();
    }
}
