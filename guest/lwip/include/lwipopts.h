/* lwIP options for Tandem PV guests: NO_SYS raw API, IPv4+IPv6, TCP for many connections. */
#ifndef TANDEM_LWIPOPTS_H
#define TANDEM_LWIPOPTS_H

/*
 * The guest is one thread without interrupts: the application loop polls the
 * PV net device and calls sys_check_timeouts() (docs/lwip.md), so lwIP runs
 * with NO_SYS=1 and only the raw (callback) API; no locking is needed.
 */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_TIMERS 1

/* Heap and pools come from the SDK's malloc, so limits below are counts, not a fixed arena. */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8

/* Protocols. */
#define LWIP_ETHERNET 1
#define LWIP_ARP 1
#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_ICMP 1
#define LWIP_ICMP6 1
#define LWIP_IPV6_MLD 1        /* solicited-node groups, needed by neighbour discovery */
#define LWIP_IPV6_AUTOCONFIG 0 /* static addresses from the command line */
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_FRAG 1
/* 64-bit pointers do not fit the 8-byte fragment header lwIP reuses for bookkeeping. */
#define IPV6_FRAG_COPYHEADER 1
#define LWIP_TCP 1
#define LWIP_UDP 1
#define LWIP_RAW 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define ARP_QUEUEING 1

/* Many concurrent connections (the kvstore benchmark uses 16, Remus tests more). */
#define MEMP_NUM_TCP_PCB 512
#define MEMP_NUM_TCP_PCB_LISTEN 8
#define MEMP_NUM_TCP_SEG 2048
#define MEMP_NUM_PBUF 256
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
#define PBUF_POOL_SIZE 1024
#define TCP_MSS 1460
#define TCP_WND (16 * TCP_MSS)
#define TCP_SND_BUF (16 * TCP_MSS)
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_TIMESTAMPS 0
#define LWIP_TCP_KEEPALIVE 1
#define TCP_LISTEN_BACKLOG 1

/* The PV net device sends one contiguous frame per call. */
#define LWIP_SINGLE_NETIF 0
/* 127.0.0.1 inside the guest (tests, and local clients); delivered by netif_poll_all(). */
#define LWIP_HAVE_LOOPIF 1
#define LWIP_NETIF_LOOPBACK 1
#define LWIP_NETIF_TX_SINGLE_PBUF 1
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define ETH_PAD_SIZE 0

/* No statistics or debug output unless asked for. */
#define LWIP_STATS 0
#define LWIP_DEBUG_TIMERNAMES 0
#ifndef LWIP_DEBUG
#define LWIP_NOASSERT_ON_ERROR 0
#endif

#endif
