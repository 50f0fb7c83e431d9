// What it costs to pass cache lines between two CPUs: the numbers behind the non-temporal-store
// entry of docs/architecture.md ("Designs measured and not taken") and the round trip that
// `CoreRoundTrip` and `ptrain-bench scaling` record.
//
//   cc -O2 -mavx2 -mprfchw -mclflushopt -pthread Benchmarks/reference/line_transfer.c -o /tmp/line_transfer
//   /tmp/line_transfer 0 1        # CPU 0 and CPU 1
//
// Prints, for the two CPUs:
//   round trip    one word stored by each CPU in turn, each spinning until it sees the other's
//                 store (median of 5 repeats of 20,000 trips);
//   40 KB, per 64-byte line, 2,000 alternations of: CPU a writes the block, then CPU b reads it:
//                 "write" is CPU a's time per line (every line was last read by CPU b), "read"
//                 is CPU b's time per line (every line was last written by CPU a). Four ways:
//                 ordinary 32-byte stores; non-temporal ones followed by a store fence; ordinary
//                 stores with a write prefetch (prefetchw) 32 lines ahead; ordinary stores, with
//                 CPU b flushing each line (clflushopt, then a fence) after reading it, which it
//                 pays in "read".
// 40 KB is the size of one batch's da1 or one k-block's partial sums in the default run.
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BLOCK_FLOATS (40 * 1024 / 4)
#define LINES (BLOCK_FLOATS / 16)

static _Alignas(64) atomic_int turn;
static _Alignas(64) float block[BLOCK_FLOATS];
enum way { ORDINARY, NONTEMPORAL, PREFETCHW, READER_FLUSH, WAYS };
static int cpu_a, cpu_b;
static enum way way;
static volatile float sink;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Round trip: side 0 waits for even values, side 1 for odd ones; both run all REPEATS x TRIPS
// trips in one go (one thread each for the whole measurement), and side 0 times each repeat.
enum { TRIPS = 20000, REPEATS = 5, ALTERNATIONS = 2000 };
static double trip_ns[REPEATS];

static void *ping_side(void *arg) {
    int side = (int)(long)arg;
    pin(side ? cpu_b : cpu_a);
    for (int r = 0; r < REPEATS; r++) {
        double start = now_ns();
        for (int t = 0; t < TRIPS; t++) {
            int i = r * TRIPS + t;
            // A bare spin: a pause hint in it would add its own latency to every trip.
            while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + side) {}
            atomic_store_explicit(&turn, 2 * i + side + 1, memory_order_release);
        }
        if (side == 0) trip_ns[r] = (now_ns() - start) / TRIPS;
    }
    return NULL;
}

static void round_trips(void) {
    atomic_store(&turn, 0);
    pthread_t other;
    pthread_create(&other, NULL, ping_side, (void *)1L);
    ping_side((void *)0L);
    pthread_join(other, NULL);
}

static double read_ns;

static void *reader(void *arg) {
    (void)arg;
    pin(cpu_b);
    for (int i = 0; i < ALTERNATIONS; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 1) _mm_pause();
        double t0 = now_ns();
        __m256 sum = _mm256_setzero_ps();
        for (int j = 0; j < BLOCK_FLOATS; j += 8) sum = _mm256_add_ps(sum, _mm256_load_ps(block + j));
        sink = sum[0];
        if (way == READER_FLUSH) {
            for (int j = 0; j < BLOCK_FLOATS; j += 16) _mm_clflushopt(block + j);
            _mm_sfence();
        }
        read_ns += now_ns() - t0;
        atomic_store_explicit(&turn, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static double write_ns(void) {
    atomic_store(&turn, 0);
    read_ns = 0;
    pthread_t other;
    pthread_create(&other, NULL, reader, NULL);
    pin(cpu_a);
    double total = 0;
    for (int i = 0; i < ALTERNATIONS; i++) {
        double t0 = now_ns();
        __m256 v = _mm256_set1_ps((float)i);
        if (way == NONTEMPORAL) {
            for (int j = 0; j < BLOCK_FLOATS; j += 8) _mm256_stream_ps(block + j, v);
            _mm_sfence();
        } else if (way == PREFETCHW) {
            for (int j = 0; j < BLOCK_FLOATS; j += 8) {
                if (j % 16 == 0 && j + 32 * 16 < BLOCK_FLOATS) _m_prefetchw(block + j + 32 * 16);
                _mm256_store_ps(block + j, v);
            }
        } else {
            for (int j = 0; j < BLOCK_FLOATS; j += 8) _mm256_store_ps(block + j, v);
        }
        total += now_ns() - t0;
        atomic_store_explicit(&turn, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 2) _mm_pause();
    }
    pthread_join(other, NULL);
    return total / ALTERNATIONS / LINES;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CPU_A CPU_B\n", argv[0]);
        return 2;
    }
    cpu_a = atoi(argv[1]);
    cpu_b = atoi(argv[2]);
    round_trips();
    qsort(trip_ns, REPEATS, sizeof trip_ns[0], cmp);
    printf("CPUs %d and %d: round trip %.0f ns (median of %d; min %.0f, max %.0f)\n", cpu_a, cpu_b, trip_ns[REPEATS / 2], REPEATS,
           trip_ns[0], trip_ns[REPEATS - 1]);
    static const char *names[WAYS] = {"ordinary stores:", "non-temporal stores+fence:", "prefetchw 32 lines ahead:",
                                      "reader flushes (clflushopt):"};
    for (way = ORDINARY; way < WAYS; way++) {
        double w = write_ns();
        printf("40 KB, %-28s write %.1f ns per line, read on the other CPU %.1f ns per line\n", names[way], w,
               read_ns / ALTERNATIONS / LINES);
    }
    return 0;
}
