/* Guest clock: ns since boot from the TSC and the VMM's clock page (pvclock-style). */
#include "tandem_guest.h"

static const volatile struct tandem_clock *clock_page(void)
{
    return (const volatile struct tandem_clock *)(uintptr_t)tg_boot_info()->clock;
}

uint64_t tg_clock_ns(void)
{
    const volatile struct tandem_clock *c = clock_page();
    uint32_t v;
    uint64_t delta, ns;

    do {
        v = c->version;
        __asm__ volatile("" ::: "memory");
        delta = tg_rdtsc() - c->tsc_base;
        delta = c->shift >= 0 ? delta << c->shift : delta >> -c->shift;
        ns = c->ns_base + (uint64_t)(((unsigned __int128)delta * c->mul) >> 32);
        __asm__ volatile("" ::: "memory");
    } while ((v & 1) || v != c->version);
    return ns;
}

uint64_t tg_wall_ns(void)
{
    return clock_page()->wall_base_ns + tg_clock_ns();
}

uint32_t tg_clock_generation(void)
{
    return clock_page()->generation;
}
