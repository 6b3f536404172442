/* hammer: issues hypercalls as fast as it can, forever (or calls=N); the VMM must stay
 * controllable. */
#include <inttypes.h>
#include <stdio.h>

#include "tandem_guest.h"

int main(int argc, char **argv)
{
    long calls = tg_cmdline_long("calls", 0);
    uint64_t n;

    (void)argc;
    (void)argv;
    printf("hammer: started\n");
    for (n = 1; calls <= 0 || n <= (uint64_t)calls; n++) {
        tg_poll(0); /* deadline in the past: an immediate return, one exit each */
        if (n % 5000 == 0)
            printf("hammer: %" PRIu64 " calls\n", n);
    }
    printf("SUCCESS\n");
    return 0;
}
