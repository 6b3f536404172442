/* Guest networking internals shared by the netif (net_netif.c) and the main loop (net_loop.c). */
#ifndef TANDEM_NET_INTERNAL_H
#define TANDEM_NET_INTERNAL_H

#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "tandem_net.h"

/* The one vif lwIP runs on; a guest is single-threaded, so plain globals suffice. */
struct tn_state {
    struct netif netif;
    unsigned handle;       /* vif handle for tg_net_* */
    size_t frame_max;      /* mtu + 14: the largest frame either way */
    void *txbuf;           /* frame_max bytes: chained pbufs are flattened here */
    struct pbuf *rx_spare; /* a frame_max pbuf ready to receive into */
    int rx_more;           /* the last tn_process stopped at its batch limit */
    uint32_t generation;   /* clock generation the addresses were last announced for */
    struct tn_stats stats;
};

extern struct tn_state tn;

/* Announce the addresses now and again a second later (link up, new clock generation). */
void tn_announce_twice(void);

#endif
