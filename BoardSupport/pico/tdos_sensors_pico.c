// tdos_board.h on the Pico W: ADC (internal temperature sensor, analog light
// sensor on GPIO26) and I2C (for the humidity sensor; its driver is Swift,
// Firmware/Pico/SHT3x.swift).
#include "hardware/adc.h"
#include "hardware/gpio.h"
#include "hardware/i2c.h"

#include "tdos_board.h"

// Per-transfer timeout: a 100 kHz byte is ~90 us, so 2 ms per byte plus a base
// covers clock stretching without letting a stuck bus hang the main loop.
#define I2C_TIMEOUT_BASE_US 2000u
#define I2C_TIMEOUT_PER_BYTE_US 2000u

int32_t tdos_adc_read(uint32_t input, uint16_t *raw) {
    if (input > 4 || input == 3) return input == 3 ? TDOS_E_UNSUPPORTED : TDOS_E_INVALID;
    if (input == TDOS_ADC_TEMPERATURE) {
        adc_set_temp_sensor_enabled(true);
    } else {
        // Disconnects the pin's digital input and pulls, so it reads the analog level.
        adc_gpio_init(26 + input);
    }
    adc_select_input(input);
    // The first conversion after switching the temperature sensor on settles the
    // sampling capacitor; discard it.
    (void)adc_read();
    *raw = adc_read();
    return TDOS_OK;
}

static i2c_inst_t *i2c_bus(uint32_t bus) { return bus == 0 ? i2c0 : bus == 1 ? i2c1 : NULL; }

int32_t tdos_i2c_init(uint32_t bus, uint32_t sda_pin, uint32_t scl_pin, uint32_t baud_hz) {
    i2c_inst_t *i2c = i2c_bus(bus);
    // RP2040 I2C pin mux: SDA on GPIO 4k+0 (bus 0) / 4k+2 (bus 1), SCL on the next
    // pin; GPIO 23-25 and 29 belong to the CYW43 on the Pico W.
    if (i2c == NULL || sda_pin > 26 || scl_pin != sda_pin + 1 || sda_pin % 2 != 0 || (sda_pin / 2) % 2 != bus ||
        sda_pin == 22 || sda_pin == 24 || baud_hz == 0 || baud_hz > 1000000) {
        return TDOS_E_INVALID;
    }
    i2c_init(i2c, baud_hz);
    gpio_set_function(sda_pin, GPIO_FUNC_I2C);
    gpio_set_function(scl_pin, GPIO_FUNC_I2C);
    gpio_pull_up(sda_pin);
    gpio_pull_up(scl_pin);
    return TDOS_OK;
}

static int32_t i2c_result(int rc, uint32_t len) {
    if (rc == (int)len) return (int32_t)len;
    if (rc == PICO_ERROR_TIMEOUT) return TDOS_E_TIMEOUT;
    return TDOS_E_IO;  // PICO_ERROR_GENERIC: address not acknowledged
}

int32_t tdos_i2c_write(uint32_t bus, uint8_t address, const uint8_t *buf, uint32_t len, bool keep_bus) {
    i2c_inst_t *i2c = i2c_bus(bus);
    if (i2c == NULL || address > 0x7F || len == 0) return TDOS_E_INVALID;
    int rc = i2c_write_timeout_us(i2c, address, buf, len, keep_bus,
                                  I2C_TIMEOUT_BASE_US + I2C_TIMEOUT_PER_BYTE_US * len);
    return i2c_result(rc, len);
}

int32_t tdos_i2c_read(uint32_t bus, uint8_t address, uint8_t *buf, uint32_t len) {
    i2c_inst_t *i2c = i2c_bus(bus);
    if (i2c == NULL || address > 0x7F || len == 0) return TDOS_E_INVALID;
    int rc = i2c_read_timeout_us(i2c, address, buf, len, false, I2C_TIMEOUT_BASE_US + I2C_TIMEOUT_PER_BYTE_US * len);
    return i2c_result(rc, len);
}
