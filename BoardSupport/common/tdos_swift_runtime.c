// What Embedded Swift needs at link time beyond libc, over the board contract;
// built into every image (board and stub). See DESIGN.md, "Firmware build facts".
//   - posix_memalign: Swift allocates through it; newlib 3.3 (Debian's, used by
//     pico-sdk) has only memalign;
//   - arc4random_buf: seeds Set/Dictionary hashing and `random`, from the
//     board's randomness.
// putchar comes from the C library (pico-sdk's stdio wraps it onto the UART), and
// __atomic_*_4 from pico-sdk's pico_atomic (the stub has its own).
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tdos_board.h"

int posix_memalign(void **memptr, size_t alignment, size_t size) {
    // POSIX: alignment is a power of two and a multiple of sizeof(void *).
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) {
        return EINVAL;
    }
    void *p = memalign(alignment, size);
    if (p == NULL) {
        return ENOMEM;
    }
    *memptr = p;
    return 0;
}

void arc4random_buf(void *buf, size_t n) {
    tdos_random_fill((uint8_t *)buf, (uint32_t)n);
}
