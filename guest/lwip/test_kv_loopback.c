/* Guest test: kvstore core served by kv_lwip over lwIP's loopback netif to 20 in-guest clients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_core.h"
#include "kv_lwip.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "tandem_guest.h"

#define NCLIENTS 20
#define PORT 7000

static unsigned char disk[256 * 1024];

static int md_read(void *o, uint64_t off, void *b, size_t l)
{
    memcpy(b, disk + off, l);
    return 0;
}

static int md_write(void *o, uint64_t off, const void *b, size_t l)
{
    memcpy(disk + off, b, l);
    return 0;
}

static int md_flush(void *o, kv_flush_done_fn *done, void *arg)
{
    done(arg, 0);
    return 0;
}

struct client {
    int idx, connected, done, counter;
    char got[256];
    size_t got_len;
};

static struct client clients[NCLIENTS];

static err_t cl_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct client *c = arg;
    if (!p) {
        c->done = 1;
        return ERR_OK;
    }
    for (struct pbuf *q = p; q; q = q->next) {
        size_t n = q->len;
        if (c->got_len + n >= sizeof(c->got))
            n = sizeof(c->got) - 1 - c->got_len;
        memcpy(c->got + c->got_len, q->payload, n);
        c->got_len += n;
        c->got[c->got_len] = 0;
    }
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
}

static err_t cl_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct client *c = arg;
    char req[128];
    int n = snprintf(req, sizeof(req), "SET key%d v%d\nINCR n\nGET key%d\nPING\n", c->idx, c->idx,
                     c->idx);
    c->connected = 1;
    tcp_recv(pcb, cl_recv);
    return tcp_write(pcb, req, (u16_t)n, TCP_WRITE_FLAG_COPY);
}

int main(int argc, char **argv)
{
    struct kv_backend be = {
        .capacity = sizeof(disk), .read = md_read, .write = md_write, .flush = md_flush};
    struct kv_config cfg = {.send = kv_lwip_send};
    struct kv_store *st;
    struct kv_lwip *srv;
    const char *err;

    srand((unsigned)tg_wall_ns());
    lwip_init();
    if (kv_store_open(&cfg, &be, &st, &err) || kv_lwip_listen(st, IP_ANY_TYPE, PORT, &srv)) {
        printf("FAILURE: cannot start the server\n");
        return 1;
    }
    ip_addr_t lo;
    IP_ADDR4(&lo, 127, 0, 0, 1);
    for (int i = 0; i < NCLIENTS; i++) {
        struct client *c = &clients[i];
        c->idx = i;
        struct tcp_pcb *pcb = tcp_new();
        tcp_arg(pcb, c);
        if (tcp_connect(pcb, &lo, PORT, cl_connected) != ERR_OK) {
            printf("FAILURE: connect %d\n", i);
            return 1;
        }
    }
    uint64_t deadline = tg_clock_ns() + 5000000000ull;
    int done = 0;
    while (tg_clock_ns() < deadline && done < NCLIENTS) {
        netif_poll_all();
        sys_check_timeouts();
        kv_lwip_poll(srv);
        done = 0;
        for (int i = 0; i < NCLIENTS; i++) {
            /* "OK\nVALUE <n>\nVALUE v<i>\nPONG\n"; n depends on the order of the clients */
            struct client *c = &clients[i];
            char *end, want[64];
            if (!c->done && strncmp(c->got, "OK\nVALUE ", 9) == 0) {
                long v = strtol(c->got + 9, &end, 10);
                snprintf(want, sizeof(want), "\nVALUE v%d\nPONG\n", i);
                if (end != c->got + 9 && strcmp(end, want) == 0) {
                    c->counter = (int)v;
                    c->done = 1;
                }
            }
            done += c->done;
        }
    }
    /* every INCR was applied once: the counters seen are exactly 1..NCLIENTS */
    int seen[NCLIENTS + 1] = {0};
    for (int i = 0; i < NCLIENTS && done == NCLIENTS; i++) {
        int v = clients[i].counter;
        if (v < 1 || v > NCLIENTS || seen[v]++) {
            printf("FAILURE: INCR results are not 1..%d (client %d saw %d)\n", NCLIENTS, i, v);
            return 1;
        }
    }
    if (done != NCLIENTS) {
        for (int i = 0; i < NCLIENTS; i++)
            if (!clients[i].done)
                printf("client %d got '%s'\n", i, clients[i].got);
        printf("FAILURE: %d of %d clients answered\n", done, NCLIENTS);
        return 1;
    }
    printf("%d clients, %u server connections\nSUCCESS\n", NCLIENTS, kv_lwip_connections(srv));
    return 0;
}
