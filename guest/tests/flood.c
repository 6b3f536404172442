/* flood: writes mb=N MiB to the console in 64 KiB calls (console.log must stop at its cap). */
#include <stdio.h>
#include <string.h>

#include "tandem_guest.h"

static char chunk[TANDEM_HC_CONSOLE_MAX];

int main(int argc, char **argv)
{
    long mb = tg_cmdline_long("mb", 16), i;

    (void)argc;
    (void)argv;
    for (i = 0; i < (long)sizeof(chunk); i++)
        chunk[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
    for (i = 0; i < mb * 16; i++)
        if (tg_console_write(chunk, sizeof(chunk)) != (long)sizeof(chunk))
            tg_panic("console write %ld failed", i);
    printf("SUCCESS\n");
    return 0;
}
