// C runtime for the embedded test runner (scripts/embedded-check.sh), linked with
// picolibc's semihosting crt0 and run in qemu on a Cortex-M0 (ARMv6-M).
//
// It supplies what Embedded Swift needs at link time and picolibc does not give
// us in the form we want:
//   - main(), which returns the Swift runner's failure count: crt0 passes it to
//     exit(), semihosting turns that into qemu's exit status (0 = pass);
//   - stack and heap high-water marks, which the runner prints (and fails on a
//     stack that was used to its last word: an overflow into the heap);
//   - posix_memalign over memalign (the board's newlib 3.3 has no posix_memalign,
//     so the test image uses the same shape of shim as the firmware);
//   - __atomic_*_N: ARMv6-M has no LDREX/STREX, so every atomic operation runs with
//     interrupts masked (PRIMASK). Single core, so that is enough. The firmware gets
//     these from pico_atomic instead;
//   - arc4random_buf, for Set/Dictionary seeding and `random`. THIS IS A TEST RUNNER:
//     the bytes come from a fixed-seed xorshift generator, so runs are reproducible.
//     Nothing here is fit for keys or nonces.
// picolibc provides putchar (semihosting console), malloc and free.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <malloc.h>

// ---- entry point and memory high-water marks --------------------------------------

// Defined in Swift (Tests/Embedded/Runner.swift) with @_cdecl.
int32_t tdos_embedded_tests_main(void);

// picolibc's linker script: the stack is [__heap_end, __stack), at the top of RAM
// (picolibc's default 2 KB, the same as pico-sdk's default PICO_STACK_SIZE); the
// heap grows up from the end of .bss towards it.
extern uint32_t __heap_end[];
extern uint32_t __stack[];

#define STACK_PAINT 0x5AFE57ACu

static inline uint32_t *stack_pointer(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

// Fills the unused part of the stack with a pattern, so the lowest word that no
// longer holds it is how deep the tests went. Runs before any Swift code.
static void __attribute__((noinline)) paint_stack(void) {
    uint32_t *limit = stack_pointer() - 16;  // stay clear of this function's own frame
    for (uint32_t *p = __heap_end; p < limit; p++) {
        *p = STACK_PAINT;
    }
}

uint32_t tdos_test_stack_size(void) {
    return (uint32_t)((uintptr_t)__stack - (uintptr_t)__heap_end);
}

// Deepest stack use so far, in bytes; equal to the stack size if it overflowed.
uint32_t tdos_test_stack_high_water(void) {
    uint32_t *p = __heap_end;
    while (p < __stack && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)__stack - (uintptr_t)p);
}

// Bytes the allocator has taken from sbrk: its high-water mark (nano-malloc never
// gives memory back).
uint32_t tdos_test_heap_high_water(void) {
    return (uint32_t)mallinfo().arena;
}

uint32_t tdos_test_heap_size(void) {
    extern uint8_t __heap_start[];
    return (uint32_t)((uintptr_t)__heap_end - (uintptr_t)__heap_start);
}

int main(void) {
    paint_stack();
    return (int)tdos_embedded_tests_main();
}

// ---- allocation -------------------------------------------------------------------

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

// ---- atomics: BoardSupport/common/tdos_atomics_armv6m.c, linked by scripts/embedded-check.sh

// ---- randomness (TEST ONLY: fixed seed, reproducible) ----------------------------

static uint32_t test_random_state = 0x2545F491u;

static uint32_t test_random_next(void) {
    // xorshift32 (Marsaglia): tiny, deterministic, good enough for hash seeds.
    uint32_t x = test_random_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    test_random_state = x;
    return x;
}

void arc4random_buf(void *buf, size_t n) {
    uint8_t *out = buf;
    while (n > 0) {
        uint32_t r = test_random_next();
        size_t chunk = n < 4 ? n : 4;
        memcpy(out, &r, chunk);
        out += chunk;
        n -= chunk;
    }
}

uint32_t arc4random(void) {
    return test_random_next();
}
