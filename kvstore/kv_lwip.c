/* kvstore TCP front end over lwIP's raw API: accept, feed lines to the core, write replies back. */
#include "kv_lwip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/tcp.h"

/* Stop acknowledging received data (closing the window) while this much output waits. */
#define OUT_HIGH (64u * 1024u)
#define OUT_LOW (16u * 1024u)

struct kvl_conn {
    struct kv_lwip *srv;
    struct tcp_pcb *pcb; /* NULL once lwIP freed it (error callback) */
    struct kv_conn *kc;
    struct kvl_conn *prev, *next;
    char *out;
    size_t len, cap;
    uint32_t owed; /* received bytes not yet given back to the window */
    int peer_done; /* the client shut down its side: close once everything is answered */
    int dead;      /* close at the next kv_lwip_poll */
};

struct kv_lwip {
    struct kv_store *st;
    struct tcp_pcb *listen;
    struct kvl_conn *conns;
    unsigned n;
};

static void give_window(struct kvl_conn *c)
{
    while (c->owed && c->pcb) {
        u16_t n = c->owed > 0xffff ? 0xffff : (u16_t)c->owed;
        tcp_recved(c->pcb, n);
        c->owed -= n;
    }
}

/* Hand queued output to lwIP as far as its send buffer allows. */
static void push(struct kvl_conn *c)
{
    if (!c->pcb || c->dead)
        return;
    size_t done = 0;
    while (done < c->len) {
        u16_t room = tcp_sndbuf(c->pcb);
        if (room == 0)
            break;
        size_t n = c->len - done < room ? c->len - done : room;
        err_t e = tcp_write(c->pcb, c->out + done, (u16_t)n, TCP_WRITE_FLAG_COPY);
        if (e == ERR_MEM)
            break;
        if (e != ERR_OK) {
            c->dead = 1;
            return;
        }
        done += n;
    }
    if (done) {
        memmove(c->out, c->out + done, c->len - done);
        c->len -= done;
        tcp_output(c->pcb);
    }
    if (c->len < OUT_LOW)
        give_window(c);
}

void kv_lwip_send(void *conn_arg, const char *data, size_t len)
{
    struct kvl_conn *c = conn_arg;
    if (c->dead)
        return;
    if (c->len + len > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + len)
            cap *= 2;
        char *nb = realloc(c->out, cap);
        if (!nb) {
            c->dead = 1;
            return;
        }
        c->out = nb;
        c->cap = cap;
    }
    memcpy(c->out + c->len, data, len);
    c->len += len;
    push(c);
}

static void conn_free(struct kvl_conn *c)
{
    struct kv_lwip *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n--;
    kv_conn_close(c->kc);
    free(c->out);
    free(c);
}

/* Detach from lwIP and close the pcb (outside lwIP callbacks only). */
static void conn_close(struct kvl_conn *c)
{
    if (c->pcb) {
        tcp_arg(c->pcb, NULL);
        tcp_recv(c->pcb, NULL);
        tcp_sent(c->pcb, NULL);
        tcp_err(c->pcb, NULL);
        if (tcp_close(c->pcb) != ERR_OK)
            tcp_abort(c->pcb);
        c->pcb = NULL;
    }
    conn_free(c);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct kvl_conn *c = arg;
    if (!p) {
        c->peer_done = 1;
        return ERR_OK;
    }
    if (err != ERR_OK || c->dead) {
        pbuf_free(p);
        return ERR_OK;
    }
    for (struct pbuf *q = p; q; q = q->next)
        kv_conn_input(c->kc, q->payload, q->len);
    c->owed += p->tot_len;
    pbuf_free(p);
    if (c->len < OUT_HIGH)
        give_window(c);
    return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    push(arg);
    return ERR_OK;
}

/* lwIP already freed the pcb (reset or abort). */
static void on_err(void *arg, err_t err)
{
    struct kvl_conn *c = arg;
    if (!c)
        return;
    c->pcb = NULL;
    c->dead = 1;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct kv_lwip *srv = arg;
    if (err != ERR_OK || !pcb)
        return ERR_VAL;
    struct kvl_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_MEM;
    c->kc = kv_conn_open(srv->st, c);
    if (!c->kc) {
        free(c);
        return ERR_MEM;
    }
    c->srv = srv;
    c->pcb = pcb;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n++;
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    tcp_nagle_disable(pcb); /* replies are small and latency is the point */
    return ERR_OK;
}

int kv_lwip_listen(struct kv_store *st, const ip_addr_t *addr, uint16_t port, struct kv_lwip **out)
{
    struct kv_lwip *srv = calloc(1, sizeof(*srv));
    struct tcp_pcb *pcb = NULL;
    if (!srv)
        return -ENOMEM;
    pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
    if (!pcb) {
        free(srv);
        return -ENOMEM;
    }
    if (tcp_bind(pcb, addr, port) != ERR_OK) {
        tcp_close(pcb);
        free(srv);
        return -EADDRINUSE;
    }
    srv->listen = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
    if (!srv->listen) {
        tcp_close(pcb);
        free(srv);
        return -ENOMEM;
    }
    srv->st = st;
    tcp_arg(srv->listen, srv);
    tcp_accept(srv->listen, on_accept);
    *out = srv;
    return 0;
}

void kv_lwip_poll(struct kv_lwip *srv)
{
    kv_store_commit(srv->st);
    for (struct kvl_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        push(c);
        if (c->dead || (c->peer_done && !c->len && !kv_conn_pending(c->kc)))
            conn_close(c);
    }
}

unsigned kv_lwip_connections(const struct kv_lwip *srv)
{
    return srv->n;
}
