// __atomic_*_N for ARMv6-M (Cortex-M0/M0+), which has no exclusive loads or
// stores: each operation masks interrupts around a plain access. Single core
// only. Embedded Swift's runtime calls these; the Pico image uses pico-sdk's
// pico_atomic instead, the CI stub image and the qemu test runner use this file.
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t irq_save(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask) { __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory"); }

// GCC knows these names as builtins and objects to their signatures; the
// definitions follow the libatomic ABI, which is what the calls expect.
#pragma GCC diagnostic ignored "-Wbuiltin-declaration-mismatch"

#define TDOS_ATOMIC_RMW(N, T, NAME, EXPR)                                      \
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

#define TDOS_ATOMICS(N, T)                                                     \
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
    TDOS_ATOMIC_RMW(N, T, add, old + v)                                        \
    TDOS_ATOMIC_RMW(N, T, sub, old - v)                                        \
    TDOS_ATOMIC_RMW(N, T, and, old & v)                                        \
    TDOS_ATOMIC_RMW(N, T, or, old | v)                                         \
    TDOS_ATOMIC_RMW(N, T, xor, old ^ v)

// --gc-sections drops the widths nobody uses.
TDOS_ATOMICS(1, uint8_t)
TDOS_ATOMICS(2, uint16_t)
TDOS_ATOMICS(4, uint32_t)
TDOS_ATOMICS(8, uint64_t)
