/*
 * hello: prints a greeting, its boot info and the time, then powers off
 * (prints SUCCESS). halt=reboot|crash and code=N on the command line choose
 * how it stops instead (for the lifecycle tests).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem_guest.h"

int main(int argc, char **argv)
{
    const struct tandem_boot_info *bi = tg_boot_info();
    char *copy, halt[16] = "poweroff";
    long code = tg_cmdline_long("code", 0);
    int i;

    printf("Hello from a Tandem guest!\n");
    printf("abi %u, domid %u, memory %" PRIu64 " MiB, cmdline \"%s\"\n", bi->abi_version, bi->domid,
           bi->mem_size >> 20, bi->cmdline);
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
    tg_cmdline_str("halt", halt, sizeof(halt));
    if (strcmp(halt, "reboot") == 0)
        tg_halt(TANDEM_HALT_REBOOT, (int)code, "hello asked to reboot");
    if (strcmp(halt, "crash") == 0)
        tg_halt(TANDEM_HALT_CRASH, (int)code, "hello asked to crash");
    return (int)code;
}
