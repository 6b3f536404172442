/* lwIP system glue for Tandem PV guests: the clock hooks NO_SYS lwIP needs, and nothing else. */
#ifndef TANDEM_LWIP_ARCH_SYS_ARCH_H
#define TANDEM_LWIP_ARCH_SYS_ARCH_H

/*
 * With NO_SYS=1 lwIP needs no threads, semaphores or mailboxes; it needs a
 * millisecond clock (sys_now(), declared by lwip/sys.h) for its timers.
 * guest/lwip/sys_arch.c implements it over tg_clock_ns() of the guest SDK.
 *
 * The guest clock is monotonic while its generation (tg_clock_generation())
 * is unchanged; after a restore on another host the VMM keeps guest time
 * continuous, so TCP timers neither fire early nor stall across a failover.
 * tandem_lwip_clock_generation() lets the netif glue notice a new generation
 * (to send a gratuitous ARP / unsolicited neighbour advertisement).
 */
#include <stdint.h>

uint32_t tandem_lwip_clock_generation(void);

#endif
