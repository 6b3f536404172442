/*
 * badptr: passes an out-of-range pointer to a hypercall; the VMM must crash
 * the domain with a "bad pointer" reason and stay healthy itself.
 * mode=buffer (default): console buffer past the end of RAM;
 * mode=wrap: buffer whose end wraps around 2^64; mode=arg: argument struct
 * outside RAM; mode=misaligned: argument struct not 8-byte aligned.
 */
#include <stdio.h>
#include <string.h>

#include "tandem_guest.h"

static struct tandem_hc_console_write args __attribute__((aligned(8)));
static uint8_t raw[64] __attribute__((aligned(8)));

int main(int argc, char **argv)
{
    char mode[32] = "buffer";

    (void)argc;
    (void)argv;
    tg_cmdline_str("mode", mode, sizeof(mode));
    printf("badptr: mode %s\n", mode);
    if (strcmp(mode, "buffer") == 0) {
        args.data = tg_boot_info()->mem_size - 16;
        args.len = 4096;
        tg_hypercall(TANDEM_HC_CONSOLE_WRITE, &args);
    } else if (strcmp(mode, "wrap") == 0) {
        args.data = 0xfffffffffffff000ull;
        args.len = 0x2000;
        tg_hypercall(TANDEM_HC_CONSOLE_WRITE, &args);
    } else if (strcmp(mode, "arg") == 0) {
        __asm__ volatile("outl %0, %w1"
                         :
                         : "a"(0xfffffff0u), "Nd"((uint16_t)TANDEM_HC_PORT(TANDEM_HC_CONSOLE_WRITE))
                         : "memory");
    } else if (strcmp(mode, "misaligned") == 0) {
        tg_hypercall(TANDEM_HC_CONSOLE_WRITE, raw + 4);
    } else {
        tg_panic("badptr: unknown mode %s", mode);
    }
    printf("badptr: the VMM accepted a bad pointer\n");
    return 1;
}
