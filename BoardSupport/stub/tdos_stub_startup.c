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

static inline uint32_t irq_save(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask) { __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory"); }

// GCC knows these names as builtins and objects to their signatures; the
// definitions follow the libatomic ABI, which is what the calls expect.
#pragma GCC diagnostic ignored "-Wbuiltin-declaration-mismatch"

#define STUB_ATOMIC_RMW(N, T, NAME, EXPR)                                      \
    T __atomic_fetch_##NAME##_##N(volatile void *p, T v, int order) {          \
        (void)order;                                                           \
        uint32_t s = irq_save();                                               \
        T old = *(volatile T *)p;                                              \
        *(volatile T *)p = (T)(EXPR);                                          \
        irq_restore(s);                                                        \
        return old;                                                            \
    }                                                                          \
    T __atomic_##NAME##_fetch_##N(volatile void *p, T v, int order) {          \
        (void)order;                                                           \
        uint32_t s = irq_save();                                               \
        T old = *(volatile T *)p;                                              \
        T next = (T)(EXPR);                                                    \
        *(volatile T *)p = next;                                               \
        irq_restore(s);                                                        \
        return next;                                                           \
    }

#define STUB_ATOMICS(N, T)                                                     \
    T __atomic_load_##N(const volatile void *p, int order) {                   \
        (void)order;                                                           \
        uint32_t s = irq_save();                                               \
        T v = *(const volatile T *)p;                                          \
        irq_restore(s);                                                        \
        return v;                                                              \
    }                                                                          \
    void __atomic_store_##N(volatile void *p, T v, int order) {                \
        (void)order;                                                           \
        uint32_t s = irq_save();                                               \
        *(volatile T *)p = v;                                                  \
        irq_restore(s);                                                        \
    }                                                                          \
    T __atomic_exchange_##N(volatile void *p, T v, int order) {                \
        (void)order;                                                           \
        uint32_t s = irq_save();                                               \
        T old = *(volatile T *)p;                                              \
        *(volatile T *)p = v;                                                  \
        irq_restore(s);                                                        \
        return old;                                                            \
    }                                                                          \
    bool __atomic_compare_exchange_##N(volatile void *p, void *expected,       \
                                       T desired, bool weak, int success_order,\
                                       int failure_order) {                    \
        (void)weak;                                                            \
        (void)success_order;                                                   \
        (void)failure_order;                                                   \
        uint32_t s = irq_save();                                               \
        T current = *(volatile T *)p;                                          \
        bool equal = current == *(T *)expected;                                \
        if (equal) {                                                           \
            *(volatile T *)p = desired;                                        \
        } else {                                                               \
            *(T *)expected = current;                                          \
        }                                                                      \
        irq_restore(s);                                                        \
        return equal;                                                          \
    }                                                                          \
    STUB_ATOMIC_RMW(N, T, add, old + v)                                        \
    STUB_ATOMIC_RMW(N, T, sub, old - v)                                        \
    STUB_ATOMIC_RMW(N, T, and, old & v)                                        \
    STUB_ATOMIC_RMW(N, T, or, old | v)                                         \
    STUB_ATOMIC_RMW(N, T, xor, old ^ v)

// --gc-sections drops the widths nobody uses.
STUB_ATOMICS(1, uint8_t)
STUB_ATOMICS(2, uint16_t)
STUB_ATOMICS(4, uint32_t)
STUB_ATOMICS(8, uint64_t)
