/* ticker: prints the guest and wall-clock time every second until stopped (count=N to stop). */
#include <inttypes.h>
#include <stdio.h>

#include "tandem_guest.h"

#define NS ((uint64_t)1000000000)

int main(int argc, char **argv)
{
    long count = tg_cmdline_long("count", 0), n;
    uint64_t next = tg_clock_ns(), now, wall;

    (void)argc;
    (void)argv;
    for (n = 1; count <= 0 || n <= count; n++) {
        now = tg_clock_ns();
        wall = tg_wall_ns();
        printf("tick %ld: guest time %" PRIu64 ".%03" PRIu64 " s, unix time %" PRIu64 ".%03" PRIu64
               ", generation %u\n",
               n, now / NS, now % NS / 1000000, wall / NS, wall % NS / 1000000,
               tg_clock_generation());
        next += NS;
        tg_sleep_until(next);
    }
    printf("SUCCESS\n");
    return 0;
}
