/* lwIP system hooks for Tandem PV guests: sys_now() over the guest SDK clock, lwIP's heap memory. */
#include <stdlib.h>

#include "lwip/mem.h"
#include "lwip/opt.h"
#include "lwip/sys.h"

#include "arch/sys_arch.h"
#include "tandem_guest.h"

u32_t sys_now(void)
{
    /* Wraps after 49 days, as lwIP expects of a 32-bit millisecond clock. */
    return (u32_t)(tg_clock_ns() / 1000000u);
}

u32_t sys_jiffies(void)
{
    return sys_now();
}

uint32_t tandem_lwip_clock_generation(void)
{
    return tg_clock_generation();
}

void *tandem_lwip_heap(void)
{
    static void *heap;
    /* As lwIP's own ram_heap: room for one struct mem at the end and for alignment. */
    const size_t bytes = MEM_SIZE + 4096;

    if (!heap)
        heap = malloc(bytes);
    if (!heap)
        tg_panic("lwip: no room for its %zu-byte heap (give the domain more memory)", bytes);
    return heap;
}
