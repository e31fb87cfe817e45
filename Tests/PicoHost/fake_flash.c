// The reserved flash regions in RAM, with NOR semantics (erase sets bytes to
// 0xFF, programming only clears bits), for the host run of the Pico module's
// logic (scripts/firmware-check.sh). Overrides the stub board's flash functions,
// which the script links weakened.
#include <string.h>

#include "tdos_board.h"

static uint8_t flash[TDOS_FLASH_SIZE_BYTES - TDOS_FLASH_RESERVED_OFFSET];
static bool erased_once;
static uint32_t erase_count;

static bool in_range(uint32_t offset, uint32_t len) {
    return offset >= TDOS_FLASH_RESERVED_OFFSET && len <= TDOS_FLASH_SIZE_BYTES - offset;
}

static void start(void) {
    if (!erased_once) {
        memset(flash, 0xFF, sizeof flash);
        erased_once = true;
    }
}

int32_t tdos_flash_read(uint32_t offset, uint8_t *buf, uint32_t len) {
    start();
    if (!in_range(offset, len)) return TDOS_E_RANGE;
    memcpy(buf, flash + (offset - TDOS_FLASH_RESERVED_OFFSET), len);
    return (int32_t)len;
}

int32_t tdos_flash_erase(uint32_t offset, uint32_t len) {
    start();
    if (offset % TDOS_FLASH_SECTOR_BYTES != 0 || len % TDOS_FLASH_SECTOR_BYTES != 0) return TDOS_E_INVALID;
    if (!in_range(offset, len)) return TDOS_E_RANGE;
    memset(flash + (offset - TDOS_FLASH_RESERVED_OFFSET), 0xFF, len);
    erase_count += len / TDOS_FLASH_SECTOR_BYTES;
    return TDOS_OK;
}

int32_t tdos_flash_program(uint32_t offset, const uint8_t *buf, uint32_t len) {
    start();
    if (!in_range(offset, len)) return TDOS_E_RANGE;
    for (uint32_t i = 0; i < len; i++) {
        flash[offset - TDOS_FLASH_RESERVED_OFFSET + i] &= buf[i];
    }
    return (int32_t)len;
}

uint32_t tdos_fake_flash_erase_count(void) { return erase_count; }
