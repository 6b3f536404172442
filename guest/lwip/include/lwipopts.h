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

/*
 * lwIP's own pools (LIFO free lists) and heap (first fit from the lowest
 * free block), not the SDK's next-fit malloc: a busy stack then reuses the
 * same few pages instead of sweeping the whole heap, which keeps the pages
 * a Remus checkpoint must copy few (measured: ~50 fewer distinct heap pages
 * per 25 ms at 2600 kvstore ops/s). The heap (PBUF_RAM: frames, TCP data)
 * is malloc'ed once at lwip_init (tandem_lwip_heap(), sys_arch.c) so the
 * SDK's start-up does not zero megabytes of .bss. The counts below are
 * therefore hard limits.
 */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#define MEM_SIZE (8u * 1024 * 1024)
#define LWIP_RAM_HEAP_POINTER tandem_lwip_heap()
/*
 * MEM_SIZE plus lwIP's overhead, malloc'ed on the first call (mem_init, from
 * lwip_init); the guest stops with a message if the SDK heap cannot hold it.
 */
void *tandem_lwip_heap(void);

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

/* Many concurrent connections (the kvstore benchmark uses 16, tests 200, Remus more). */
#define MEMP_NUM_TCP_PCB 2048
#define MEMP_NUM_TCP_PCB_LISTEN 8
#define MEMP_NUM_TCP_SEG 8192
#define MEMP_NUM_PBUF 1024
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
/* Frames are received into PBUF_RAM (heap); the pool only serves lwIP's own copies. */
#define PBUF_POOL_SIZE 64
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
