/*
 * tdos_flash_layout.h: the one place that says where things live in a Pico W's
 * 2 MB flash. Read by
 *   - C (BoardSupport), which refuses to erase or program outside the reserved regions;
 *   - Swift on the board, through tdos_board.h (the macros import as constants);
 *   - both linker scripts (linker/memmap_tdos.ld.in, BoardSupport/stub/stub.ld.in),
 *     which are run through the C preprocessor, so the image can never grow into
 *     the reserved regions;
 *   - the host tools (`tdos provision` writes the config region): HostTools keeps
 *     the same numbers and a test compares them with this file.
 *
 * Values are plain integer literals (no `u` suffix): GNU ld does not accept
 * suffixes, and every value is below 2^31.
 *
 *   offset 0x000000  firmware image (boot2 first)        1760 KB
 *          0x1B8000  consensus (Raft state, A/B copies)  16 KB
 *          0x1BC000  log      (append-only records)     256 KB
 *          0x1FC000  state    (boot epoch, 2 sectors)      8 KB
 *          0x1FE000  config A (provisioned record)         4 KB
 *          0x1FF000  config B (its A/B twin)               4 KB
 *          0x200000  end of the W25Q16 on the Pico W
 *
 * The reserved regions sit at the end so that a bigger firmware never moves
 * them: a board keeps its config and log across firmware updates.
 */
#ifndef TDOS_FLASH_LAYOUT_H
#define TDOS_FLASH_LAYOUT_H

/* XIP address of flash offset 0. */
#define TDOS_FLASH_XIP_BASE 0x10000000
/* Pico W: 2 MB. */
#define TDOS_FLASH_SIZE_BYTES 0x200000
/* Erase granularity (4 KB sector) and program granularity (256 B page). */
#define TDOS_FLASH_SECTOR_BYTES 0x1000
#define TDOS_FLASH_PAGE_BYTES 0x100

/* Storage role: Raft's persistent state, two copies of 8 KB (A, then B). */
#define TDOS_FLASH_CONSENSUS_OFFSET 0x1B8000
#define TDOS_FLASH_CONSENSUS_BYTES 0x4000
#define TDOS_FLASH_LOG_OFFSET 0x1BC000
#define TDOS_FLASH_LOG_BYTES 0x40000
#define TDOS_FLASH_STATE_OFFSET 0x1FC000
#define TDOS_FLASH_STATE_BYTES 0x2000
#define TDOS_FLASH_CONFIG_A_OFFSET 0x1FE000
#define TDOS_FLASH_CONFIG_B_OFFSET 0x1FF000
/* Size of each config copy. */
#define TDOS_FLASH_CONFIG_BYTES 0x1000

/* The image may use everything below the first reserved region. */
#define TDOS_FLASH_FIRMWARE_BYTES TDOS_FLASH_CONSENSUS_OFFSET
#define TDOS_FLASH_RESERVED_OFFSET TDOS_FLASH_CONSENSUS_OFFSET

/* Relations, checked wherever this file is included (C, Swift's importer, ld). */
#if TDOS_FLASH_CONSENSUS_OFFSET + TDOS_FLASH_CONSENSUS_BYTES != TDOS_FLASH_LOG_OFFSET
#error "consensus must end where the log begins"
#endif
#if (TDOS_FLASH_CONSENSUS_OFFSET % TDOS_FLASH_SECTOR_BYTES) || (TDOS_FLASH_CONSENSUS_BYTES % (2 * TDOS_FLASH_SECTOR_BYTES))
#error "consensus: two copies of whole sectors"
#endif
#if TDOS_FLASH_LOG_OFFSET + TDOS_FLASH_LOG_BYTES != TDOS_FLASH_STATE_OFFSET
#error "log must end where state begins"
#endif
#if TDOS_FLASH_STATE_OFFSET + TDOS_FLASH_STATE_BYTES != TDOS_FLASH_CONFIG_A_OFFSET
#error "state must end where config A begins"
#endif
#if TDOS_FLASH_CONFIG_A_OFFSET + TDOS_FLASH_CONFIG_BYTES != TDOS_FLASH_CONFIG_B_OFFSET
#error "config B must follow config A"
#endif
#if TDOS_FLASH_CONFIG_B_OFFSET + TDOS_FLASH_CONFIG_BYTES != TDOS_FLASH_SIZE_BYTES
#error "config B must end at the end of flash"
#endif
#if (TDOS_FLASH_LOG_OFFSET % TDOS_FLASH_SECTOR_BYTES) || (TDOS_FLASH_STATE_OFFSET % TDOS_FLASH_SECTOR_BYTES) || \
    (TDOS_FLASH_CONFIG_A_OFFSET % TDOS_FLASH_SECTOR_BYTES) || (TDOS_FLASH_CONFIG_B_OFFSET % TDOS_FLASH_SECTOR_BYTES)
#error "every reserved region must start on a sector boundary"
#endif
#if TDOS_FLASH_STATE_BYTES < 2 * TDOS_FLASH_SECTOR_BYTES
#error "state needs two sectors: one is always intact while the other is erased"
#endif

#endif
