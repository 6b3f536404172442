/* membw: guest memory bandwidth with the loop bench_membw runs on the host; mem=MiB, passes=N. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tandem_guest.h"
#include "../../bench/bench_membw_loop.h"

int main(int argc, char **argv)
{
    long mib = tg_cmdline_long("mem", 64), passes = tg_cmdline_long("passes", 10), i;
    size_t words;
    uint64_t *buf, t0, t1, t2, sum = 0, bytes;

    (void)argc;
    (void)argv;
    if (mib <= 0 || passes <= 0)
        tg_panic("membw: mem and passes must be positive");
    words = (size_t)mib << 17;
    buf = malloc(words * 8);
    if (!buf)
        tg_panic("membw: cannot allocate %ld MiB", mib);
    membw_write(buf, words, 1); /* touch once before timing */
    t0 = tg_clock_ns();
    for (i = 0; i < passes; i++)
        sum += membw_read(buf, words);
    t1 = tg_clock_ns();
    for (i = 0; i < passes; i++)
        membw_write(buf, words, (uint64_t)i);
    t2 = tg_clock_ns();
    bytes = (uint64_t)words * 8 * (uint64_t)passes;
    printf("membw read_mb_s %" PRIu64 " write_mb_s %" PRIu64 " (sum %" PRIu64 ")\n",
           bytes * 1000 / (t1 - t0), bytes * 1000 / (t2 - t1), sum);
    printf("SUCCESS\n");
    return 0;
}
