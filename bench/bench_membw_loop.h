/* The memory-bandwidth loop shared by the guest (guest/tests/membw.c) and the host (bench_membw.c).
 */
#ifndef BENCH_MEMBW_LOOP_H
#define BENCH_MEMBW_LOOP_H

#include <stddef.h>
#include <stdint.h>

/* One read pass over words 64-bit words; returns their sum so the loop is not optimised away. */
static inline uint64_t membw_read(const volatile uint64_t *buf, size_t words)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i;

    for (i = 0; i + 4 <= words; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

/* One write pass. */
static inline void membw_write(volatile uint64_t *buf, size_t words, uint64_t v)
{
    size_t i;

    for (i = 0; i + 4 <= words; i += 4) {
        buf[i] = v;
        buf[i + 1] = v;
        buf[i + 2] = v;
        buf[i + 3] = v;
    }
}

#endif
