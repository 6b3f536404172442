/*
 * fault: raises a CPU exception; the VMM must crash the domain with
 * "guest fault #..." and the faulting rip. mode=ud (default): ud2;
 * mode=pf: read past the end of RAM; mode=port: out to a non-hypercall
 * port (#GP from the TSS I/O bitmap); mode=de: divide by zero.
 */
#include <stdio.h>
#include <string.h>

#include "tandem_guest.h"

int main(int argc, char **argv)
{
    char mode[32] = "ud";
    volatile uint64_t *p;

    (void)argc;
    (void)argv;
    tg_cmdline_str("mode", mode, sizeof(mode));
    printf("fault: mode %s\n", mode);
    if (strcmp(mode, "ud") == 0) {
        __asm__ volatile("ud2");
    } else if (strcmp(mode, "pf") == 0) {
        p = (volatile uint64_t *)(uintptr_t)(tg_boot_info()->mem_size + 0x1000);
        printf("fault: read %llu\n", (unsigned long long)*p);
    } else if (strcmp(mode, "port") == 0) {
        __asm__ volatile("outb %%al, $0x80" : : "a"(0));
    } else if (strcmp(mode, "de") == 0) {
        __asm__ volatile("xor %%ecx, %%ecx; div %%ecx" : : "a"(1), "d"(0) : "ecx");
    } else {
        tg_panic("fault: unknown mode %s", mode);
    }
    printf("fault: no fault happened\n");
    return 1;
}
