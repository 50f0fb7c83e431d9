#ifndef PTRAIN_CSUPPORT_H
#define PTRAIN_CSUPPORT_H
// Functions Swift cannot reach directly: GNU-only affinity calls, CPU feature probes, the pause hint.
// No decisions are made here; the Swift code above owns them.

#include <stdint.h>

/// 1 when the CPU and OS support AVX2 and FMA (x86-64 only; 0 elsewhere).
int csupport_cpu_has_avx2_fma(void);

/// 1 when the CPU supports x86-64-v4 (AVX-512 F, CD, BW, DQ, VL) and the OS saves the zmm and mask
/// registers (XCR0 bits 5-7; the compiler runtime's probe checks them), else 0.
int csupport_cpu_has_avx512(void);

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int csupport_pin_current_thread(int cpu);

/// Fills `cpus` (capacity `capacity`) with the CPUs this process may run on; returns the count, or -1.
int csupport_allowed_cpus(int32_t *cpus, int capacity);

/// The CPU the calling thread runs on now, or -1.
int csupport_current_cpu(void);

/// A spin-wait hint (x86 `pause`, arm64 `yield`).
void csupport_cpu_relax(void);

/// A read prefetch hint for the cache line holding `address` (inline: it is one instruction).
static inline void csupport_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// A write prefetch hint (ownership of the line, ahead of a store) for the line holding `address`.
static inline void csupport_prefetch_write(const void *address) { __builtin_prefetch(address, 1, 3); }

/// sched_yield(2).
void csupport_yield(void);

/// Sequentially consistent load of a 32-bit word (claim words, the futex word).
uint32_t csupport_load_u32(const uint32_t *word);

/// Sequentially consistent compare-and-swap of a 32-bit word; returns 1 when `*word` was `expected`
/// and is now `desired`.
static inline int csupport_cas_u32(uint32_t *word, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(word, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/// futex(2) FUTEX_WAIT_PRIVATE: sleeps while *word == expected (returns at once otherwise).
void csupport_futex_wait(uint32_t *word, uint32_t expected);

/// futex(2) FUTEX_WAKE_PRIVATE for every waiter on `word`.
void csupport_futex_wake_all(uint32_t *word);

#endif
