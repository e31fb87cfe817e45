// Start-up for the CI stub image (scripts/firmware-check.sh): a Cortex-M0+ vector
// table and a reset handler that copies .data, clears .bss, runs constructors and
// calls main. Also what the board gets from pico-sdk and the stub must supply:
// __atomic_*_N (interrupt masking: ARMv6-M has no exclusive loads/stores; the
// board uses pico_atomic) and putchar (discarded). The image is linked, measured
// and never run.
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern uint32_t __StackTop[];
extern uint32_t __data_source[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(int argc, char **argv);

void __attribute__((noreturn)) reset_handler(void);
void reset_handler(void) {
    memcpy(__data_start, __data_source, (size_t)((uintptr_t)__data_end - (uintptr_t)__data_start));
    memset(__bss_start, 0, (size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start));
    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++) {
        (*f)();
    }
    (void)main(0, NULL);
    for (;;) {
    }
}

static void default_handler(void) {
    for (;;) {
    }
}

// Initial stack pointer, reset, then NMI, HardFault and the rest (16 system + 32 IRQ).
__attribute__((section(".vectors"), used)) static const void *const vectors[48] = {
    [0] = __StackTop,
    [1] = (const void *)reset_handler,
    [2 ... 47] = (const void *)default_handler,
};

int putchar(int c) { return c; }

// __atomic_*_N: BoardSupport/common/tdos_atomics_armv6m.c (shared with the embedded test runner).
