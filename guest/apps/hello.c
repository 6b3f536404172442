/* hello: prints a greeting, its boot info and the time, then powers off (prints SUCCESS). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem_guest.h"

int main(int argc, char **argv)
{
    const struct tandem_boot_info *bi = tg_boot_info();
    char *copy;
    int i;

    printf("Hello from a Tandem guest!\n");
    printf("abi %u, domid %u, memory %" PRIu64 " MiB, cmdline \"%s\"\n", bi->abi_version,
           bi->domid, bi->mem_size >> 20, bi->cmdline);
    for (i = 1; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    printf("guest time %" PRIu64 " ns, clock generation %u\n", tg_clock_ns(),
           tg_clock_generation());
    copy = strdup("heap works");
    if (!copy)
        tg_panic("malloc failed");
    printf("%s\n", copy);
    free(copy);
    printf("SUCCESS\n");
    return 0;
}
