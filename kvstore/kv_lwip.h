/* kvstore TCP front end over lwIP's raw API (NO_SYS): one kvstore connection per TCP connection. */
#ifndef KV_LWIP_H
#define KV_LWIP_H

#include "kv_core.h"

#include "lwip/ip_addr.h"

/*
 * For the kvstore guest: lwIP delivers TCP data through callbacks from the
 * guest's poll loop; this file feeds it to the core and writes the core's
 * released replies back with tcp_write. Single-threaded like the core.
 *
 * Use: open the store with cfg.send = kv_lwip_send, then kv_lwip_listen.
 * After each round of lwIP input (netif input, sys_check_timeouts) call
 * kv_lwip_poll, which commits the round's writes (group commit) and pushes
 * output that did not fit earlier.
 */
struct kv_lwip;

/*
 * Listen on addr:port (IP_ANY_TYPE for every IPv4 and IPv6 address). Returns
 * 0, -ENOMEM, or -EADDRINUSE when the port cannot be bound.
 */
int kv_lwip_listen(struct kv_store *st, const ip_addr_t *addr, uint16_t port, struct kv_lwip **out);

/* The kv_config.send callback for stores served by kv_lwip. */
void kv_lwip_send(void *conn_arg, const char *data, size_t len);

/* Commit pending writes and push queued output; call once per poll-loop round. */
void kv_lwip_poll(struct kv_lwip *srv);

/* Number of open client connections. */
unsigned kv_lwip_connections(const struct kv_lwip *srv);

#endif
