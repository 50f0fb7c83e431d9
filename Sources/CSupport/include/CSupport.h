#ifndef PTRAIN_CSUPPORT_H
#define PTRAIN_CSUPPORT_H
// Functions Swift cannot reach directly: GNU-only affinity calls, CPU feature probes, the pause hint.
// No decisions are made here; the Swift code above owns them.

#include <stdint.h>

/// 1 when the CPU and OS support AVX2 and FMA (x86-64 only; 0 elsewhere).
int csupport_cpu_has_avx2_fma(void);

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int csupport_pin_current_thread(int cpu);

/// Fills `cpus` (capacity `capacity`) with the CPUs this process may run on; returns the count, or -1.
int csupport_allowed_cpus(int32_t *cpus, int capacity);

/// The CPU the calling thread runs on now, or -1.
int csupport_current_cpu(void);

/// A spin-wait hint (x86 `pause`, arm64 `yield`).
void csupport_cpu_relax(void);

/// sched_yield(2).
void csupport_yield(void);

#endif
