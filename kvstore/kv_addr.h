/* "ADDR:PORT" and "[ADDR]:PORT" to a TCP address, for tandem-kvstore-native and tandem-kvclient. */
#ifndef KV_ADDR_H
#define KV_ADDR_H

#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

/*
 * Split spec at its last ':' into a host (brackets around an IPv6 address
 * dropped) and a numeric port, and resolve it for a TCP socket with
 * AI_NUMERICSERV | flags (AI_PASSIVE for a listener). 0 with *res to be
 * released with freeaddrinfo, or -1 when the host or the port is missing,
 * the host is longer than 255 bytes, or getaddrinfo fails.
 * Header-only, so that the client need not link the kvstore core.
 */
static inline int kv_addr_resolve(const char *spec, int flags, struct addrinfo **res)
{
    char host[256];
    const char *colon = strrchr(spec, ':'), *h = spec;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | flags};
    size_t hl;

    if (!colon || colon == spec || !colon[1])
        return -1;
    hl = (size_t)(colon - spec);
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    return getaddrinfo(host, colon + 1, &hints, res) ? -1 : 0;
}

#endif
