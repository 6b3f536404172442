/* Guest networking: the main-loop pieces, frames from the vif into lwIP, timers, sleeping. */
#include <stdio.h>

#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"

#include "arch/sys_arch.h"
#include "net_internal.h"
#include "tandem_dev.h"
#include "tandem_guest.h"

/* Frames taken per tn_process call before the application gets a turn. */
#define RX_BATCH 256u

/* Receive one frame into a pbuf; 1 = fed to lwIP (or dropped, counted), 0 = nothing pending. */
static int rx_one(void)
{
    struct pbuf *p = tn.rx_spare;
    int n;

    if (!p) {
        p = pbuf_alloc(PBUF_RAW, (u16_t)tn.frame_max, PBUF_RAM);
        if (!p) {
            /* Leave the frame queued in the device; lwIP frees memory as TCP makes progress. */
            tn.stats.rx_nomem++;
            return 0;
        }
        tn.rx_spare = p;
    }
    n = tg_net_recv(tn.handle, p->payload, tn.frame_max);
    if (n == TANDEM_HC_EAGAIN)
        return 0;
    if (n <= 0)
        /* ENOSPC cannot happen with mtu + 14 bytes (tandem_dev.h): the device broke its contract.
         */
        tg_panic("net: vif %u receive failed (error %d) with a %zu-byte buffer", tn.handle, n,
                 tn.frame_max);
    tn.rx_spare = NULL;
    tn.stats.rx_frames++;
    pbuf_realloc(p, (u16_t)n);
    if (tn.netif.input(p, &tn.netif) != ERR_OK)
        pbuf_free(p);
    return 1;
}

unsigned tn_process(void)
{
    unsigned frames = 0;
    uint32_t gen;

    while (frames < RX_BATCH && rx_one())
        frames++;
    tn.rx_more = frames == RX_BATCH;
#if LWIP_NETIF_LOOPBACK
    netif_poll_all(); /* frames lwIP sent to itself (our own address, the loopback netif) */
#endif
    sys_check_timeouts();

    /* A new generation: resumed from a saved image, migrated or failed over. Tell the new LAN. */
    gen = tandem_lwip_clock_generation();
    if (gen != tn.generation) {
        /* On the console so tests (and people) can see the domain announced itself after a move. */
        printf("net: clock generation %u -> %u: resumed elsewhere, announcing addresses\n",
               tn.generation, gen);
        tn.generation = gen;
        tn.stats.generation = gen;
        tn_announce_twice();
    }
    return frames;
}

void tn_wait(uint64_t deadline_ns)
{
    uint64_t now = tg_clock_ns();
    u32_t sleep_ms;
    uint64_t until;

    if (tn.rx_more)
        return;
    sleep_ms = sys_timeouts_sleeptime();
    until = sleep_ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? UINT64_MAX
                                                        : now + (uint64_t)sleep_ms * 1000000u;
    if (deadline_ns && deadline_ns < until)
        until = deadline_ns;
    if (until <= now)
        return;
    tg_poll(until);
}
