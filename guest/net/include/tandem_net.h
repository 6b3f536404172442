/* Tandem guest networking: lwIP over the PV net device, static addresses, the guest's main loop. */
#ifndef TANDEM_NET_H
#define TANDEM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/ip_addr.h"
#include "lwip/netif.h"

/*
 * A networked guest is one thread: it calls tn_init() once, then loops
 *
 *     for (;;) {
 *         tn_process();          // frames in -> lwIP callbacks, lwIP timers, re-announce
 *         ...application work... // e.g. kv_store_commit() after a round of input
 *         tn_wait(deadline);     // sleep until a frame, the next lwIP timer or deadline
 *     }
 *
 * All lwIP raw-API calls must come from this thread (there is no other).
 * docs/guest-net.md describes the command line and the announce rules.
 */

/* Static addressing, from the command line (tn_config_parse) or filled in by hand. */
struct tn_config {
    int vif_nth;  /* which vif (0-based among the vifs in the boot info) */
    int have_ip4; /* ip=ADDR/PREFIX given */
    ip4_addr_t ip4, mask4, gw4;
    unsigned prefix4;
    int have_gw4; /* gw=ADDR given */
    int have_ip6; /* ip6=ADDR/PREFIX given (prefix must be 64, lwIP assumes /64 on-link) */
    ip6_addr_t ip6;
    unsigned prefix6;
};

/*
 * Read ip=ADDR/PREFIX (IPv4, prefix 0..32, default 24 when omitted),
 * gw=ADDR and ip6=ADDR/64 from the guest command line into *cfg. At least
 * one of ip= or ip6= must be present. Returns 0, or -1 after writing one
 * line naming the bad key and value into err (errlen bytes).
 */
int tn_config_parse(struct tn_config *cfg, char *err, size_t errlen);

/*
 * Bring up the stack: seed LWIP_RAND from the wall clock (distinct TCP
 * initial sequence numbers per boot), lwip_init(), add the netif over the
 * vif cfg->vif_nth with its MAC and MTU from the boot info, set the static
 * addresses, set the link up and announce the addresses (gratuitous ARP,
 * unsolicited neighbour advertisement). Call once, before any lwIP call.
 * Returns 0, or -1 after writing why into err (no such vif).
 */
int tn_init(const struct tn_config *cfg, char *err, size_t errlen);

/* The netif (valid after tn_init). */
struct netif *tn_netif(void);

/*
 * One round of input: take every frame the vif has queued (at most a
 * bounded batch, so a flood cannot starve the application) and feed it to
 * lwIP, run due lwIP timers, and re-announce if the clock generation
 * changed (the domain was resumed elsewhere). Returns the number of
 * frames taken.
 */
unsigned tn_process(void);

/*
 * Sleep until a frame is pending, the next lwIP timer is due or guest
 * time deadline_ns (0 = no deadline of its own), whichever comes first.
 * Returns at once when tn_process left frames queued.
 */
void tn_wait(uint64_t deadline_ns);

/*
 * tn_config_parse + tn_init for an application guest: prints one line
 * "APP: vif H mac M mtu N ip A/P ..." on success; on a bad command line or a
 * missing vif prints "APP: why" and powers the domain off with code 2 and
 * that message.
 */
void tn_start(const char *app);

/* Send the gratuitous ARP and unsolicited NA now (tn_process does it on its own). */
void tn_announce(void);

/* Counters, for guest logs and tests. */
struct tn_stats {
    uint64_t rx_frames, tx_frames;
    uint64_t rx_nomem;      /* no pbuf for an incoming frame (it stays queued in the device) */
    uint64_t tx_eagain;     /* times the TX path was full and we polled before retrying */
    uint64_t tx_dropped;    /* frames given up after TN_TX_GIVEUP_NS of a full TX path */
    uint64_t announcements; /* rounds of gratuitous ARP / unsolicited NA sent */
    uint32_t generation;    /* clock generation last announced for */
};
void tn_stats(struct tn_stats *out);

/*
 * How long linkoutput keeps polling a full TX path before it gives a frame
 * up (counted in tx_dropped and reported on the console). TCP retransmits;
 * this only stops a guest from hanging forever on a wedged backend.
 */
#define TN_TX_GIVEUP_NS (2ull * 1000 * 1000 * 1000)

#endif
