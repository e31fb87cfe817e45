// tdos_board.h on the Pico W: erase, program and read the reserved flash regions
// (linker/tdos_flash_layout.h) while the program itself executes from that flash.
//
// Erasing or programming stops XIP: nothing may execute from flash meanwhile.
// flash_safe_execute runs the operation with interrupts off on this core (the
// CYW43 and timer interrupts would otherwise run code from flash) and, if core 1
// were ever started with pico_multicore, locks it out too. The SDK's
// flash_range_* functions themselves run from RAM.
#include <string.h>

#include "hardware/flash.h"
#include "hardware/watchdog.h"
#include "pico/flash.h"

#include "tdos_board.h"

// Timeout for the (absent) other core to acknowledge the lockout.
#define SAFE_EXECUTE_TIMEOUT_MS 100u

// True when [offset, offset + len) lies inside one reserved region.
static bool inside_one_region(uint32_t offset, uint32_t len) {
    static const uint32_t regions[][2] = {
        {TDOS_FLASH_CONSENSUS_OFFSET, TDOS_FLASH_CONSENSUS_BYTES},
        {TDOS_FLASH_LOG_OFFSET, TDOS_FLASH_LOG_BYTES},
        {TDOS_FLASH_STATE_OFFSET, TDOS_FLASH_STATE_BYTES},
        {TDOS_FLASH_CONFIG_A_OFFSET, TDOS_FLASH_CONFIG_BYTES},
        {TDOS_FLASH_CONFIG_B_OFFSET, TDOS_FLASH_CONFIG_BYTES},
    };
    for (uint32_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        uint32_t start = regions[i][0], size = regions[i][1];
        if (offset >= start && len <= size && offset - start <= size - len) return true;
    }
    return false;
}

int32_t tdos_flash_read(uint32_t offset, uint8_t *buf, uint32_t len) {
    if (!inside_one_region(offset, len)) return TDOS_E_RANGE;
    memcpy(buf, (const uint8_t *)(XIP_BASE + offset), len);
    return (int32_t)len;
}

typedef struct {
    uint32_t offset;
    const uint8_t *page;  // NULL: erase one sector at offset
} flash_op_t;

static void run_flash_op(void *param) {
    const flash_op_t *op = param;
    if (op->page == NULL) {
        flash_range_erase(op->offset, FLASH_SECTOR_SIZE);
    } else {
        flash_range_program(op->offset, op->page, FLASH_PAGE_SIZE);
    }
}

int32_t tdos_flash_erase(uint32_t offset, uint32_t len) {
    if (offset % TDOS_FLASH_SECTOR_BYTES != 0 || len % TDOS_FLASH_SECTOR_BYTES != 0) return TDOS_E_INVALID;
    if (!inside_one_region(offset, len)) return TDOS_E_RANGE;
    // One sector per safe-execute: interrupts are never off for more than one
    // sector erase (~45 ms, 400 ms worst case by the W25Q16 datasheet), so the
    // radio keeps up; the watchdog is fed between sectors because erasing the
    // whole 256 KB log takes ~3 s. The loop is bounded by len.
    for (uint32_t done = 0; done < len; done += TDOS_FLASH_SECTOR_BYTES) {
        flash_op_t op = {.offset = offset + done, .page = NULL};
        if (flash_safe_execute(run_flash_op, &op, SAFE_EXECUTE_TIMEOUT_MS) != PICO_OK) return TDOS_E_IO;
        watchdog_update();
    }
    return TDOS_OK;
}

int32_t tdos_flash_program(uint32_t offset, const uint8_t *buf, uint32_t len) {
    if (!inside_one_region(offset, len)) return TDOS_E_RANGE;
    if (len == 0) return 0;
    static uint8_t page[FLASH_PAGE_SIZE];
    uint32_t end = offset + len;
    for (uint32_t page_start = offset - offset % FLASH_PAGE_SIZE; page_start < end; page_start += FLASH_PAGE_SIZE) {
        // 0xFF leaves a byte as it is (programming only clears bits).
        memset(page, 0xFF, sizeof page);
        uint32_t from = offset > page_start ? offset : page_start;
        uint32_t to = end < page_start + FLASH_PAGE_SIZE ? end : page_start + FLASH_PAGE_SIZE;
        memcpy(page + (from - page_start), buf + (from - offset), to - from);
        flash_op_t op = {.offset = page_start, .page = page};
        if (flash_safe_execute(run_flash_op, &op, SAFE_EXECUTE_TIMEOUT_MS) != PICO_OK) return TDOS_E_IO;
    }
    return (int32_t)len;
}
