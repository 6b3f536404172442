/* abidump: hex-dumps the boot info and clock page so a test can check the ABI byte by byte. */
#include <stdio.h>

#include "tandem_guest.h"

static void dump(const char *what, const uint8_t *p, unsigned len)
{
    unsigned i;

    printf("%s", what);
    for (i = 0; i < len; i++)
        printf("%02x", p[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    dump("bootinfo ", (const uint8_t *)(uintptr_t)TANDEM_ABI_BOOTINFO_ADDR, 2144);
    dump("clock ", (const uint8_t *)(uintptr_t)tg_boot_info()->clock, 64);
    printf("SUCCESS\n");
    return 0;
}
