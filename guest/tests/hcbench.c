/* hcbench: measures the hypercall round trip (POLL with a past deadline); calls=N. */
#include <inttypes.h>
#include <stdio.h>

#include "tandem_guest.h"

int main(int argc, char **argv)
{
    long calls = tg_cmdline_long("calls", 20000), i;
    uint64_t t0, t1;

    (void)argc;
    (void)argv;
    for (i = 0; i < 1000; i++) /* warm up */
        tg_poll(0);
    t0 = tg_clock_ns();
    for (i = 0; i < calls; i++)
        tg_poll(0);
    t1 = tg_clock_ns();
    printf("hypercall_round_trip_ns %" PRIu64 " calls %ld\n", (t1 - t0) / (uint64_t)calls, calls);
    printf("SUCCESS\n");
    return 0;
}
