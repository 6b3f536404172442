/* lwIP clock hooks for Tandem PV guests: sys_now() over the guest SDK clock. */
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
