/* boottime: reports the TSC of its first instruction, for the create-time benchmark. */
#include <inttypes.h>
#include <stdio.h>

#include "tandem_guest.h"

int main(int argc, char **argv)
{
    const volatile struct tandem_clock *c =
        (const volatile struct tandem_clock *)(uintptr_t)tg_boot_info()->clock;

    (void)argc;
    (void)argv;
    printf("entry_tsc %" PRIu64 " tsc_khz %" PRIu64 "\n", tg_entry_tsc, c->tsc_khz);
    printf("SUCCESS\n");
    return 0;
}
