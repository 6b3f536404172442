/* echo: a TCP echo server (port= on the command line, default 7) over lwIP, any number of
 * connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/tcp.h"
#include "tandem_guest.h"
#include "tandem_net.h"

/*
 * Flow control end to end: received data is acknowledged to the peer
 * (tcp_recved) only once it has been queued for sending back, so a client
 * that does not read stops being read from instead of growing our memory.
 */
struct echo_conn {
    struct tcp_pcb *pcb;
    struct pbuf *pending; /* received, not yet queued for sending back */
};

static unsigned long conns_open, conns_total;

static void echo_free(struct echo_conn *ec)
{
    if (ec->pending)
        pbuf_free(ec->pending);
    free(ec);
    conns_open--;
}

static void echo_close(struct echo_conn *ec)
{
    struct tcp_pcb *pcb = ec->pcb;

    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    echo_free(ec);
    if (tcp_close(pcb) != ERR_OK)
        tcp_abort(pcb);
}

/* Queue as much of ec->pending as the send buffer takes. */
static void echo_push(struct echo_conn *ec)
{
    while (ec->pending) {
        struct pbuf *p = ec->pending;
        u16_t room = tcp_sndbuf(ec->pcb);
        u16_t len = p->len < room ? p->len : room;

        if (len == 0 || tcp_write(ec->pcb, p->payload, len, TCP_WRITE_FLAG_COPY) != ERR_OK)
            break;
        tcp_recved(ec->pcb, len);
        if (len < p->len) {
            pbuf_remove_header(p, len);
            break;
        }
        ec->pending = p->next;
        if (p->next)
            pbuf_ref(p->next);
        pbuf_free(p);
    }
    tcp_output(ec->pcb);
}

static err_t echo_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct echo_conn *ec = arg;

    (void)pcb;
    if (!p || err != ERR_OK) {
        if (p)
            pbuf_free(p);
        echo_close(ec);
        return ERR_OK;
    }
    if (ec->pending)
        pbuf_cat(ec->pending, p);
    else
        ec->pending = p;
    echo_push(ec);
    return ERR_OK;
}

static err_t echo_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    (void)len;
    echo_push(arg);
    return ERR_OK;
}

/* The pcb is already gone (reset or out of memory). */
static void echo_err(void *arg, err_t err)
{
    (void)err;
    if (arg)
        echo_free(arg);
}

static err_t echo_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct echo_conn *ec;

    (void)arg;
    if (err != ERR_OK || !pcb)
        return ERR_VAL;
    ec = calloc(1, sizeof(*ec));
    if (!ec)
        return ERR_MEM; /* lwIP aborts the connection */
    ec->pcb = pcb;
    conns_open++;
    conns_total++;
    tcp_nagle_disable(pcb);
    tcp_arg(pcb, ec);
    tcp_recv(pcb, echo_recv);
    tcp_sent(pcb, echo_sent);
    tcp_err(pcb, echo_err);
    return ERR_OK;
}

int main(int argc, char **argv)
{
    long port = tg_cmdline_long("port", 7);
    struct tcp_pcb *lpcb;
    uint64_t next_report, reported_rx = 0;

    (void)argc;
    (void)argv;
    if (port < 1 || port > 65535) {
        printf("echo: port=%ld: must be 1..65535\n", port);
        tg_halt(TANDEM_HALT_POWEROFF, 2, "echo: bad port= on the command line");
    }
    tn_start("echo");

    lpcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
    if (!lpcb || tcp_bind(lpcb, IP_ANY_TYPE, (u16_t)port) != ERR_OK)
        tg_panic("echo: cannot bind TCP port %ld", port);
    lpcb = tcp_listen_with_backlog(lpcb, 255);
    if (!lpcb)
        tg_panic("echo: out of memory for the listening socket");
    tcp_accept(lpcb, echo_accept);
    printf("echo: listening on port %ld\n", port);

    /* A status line every 10 s of activity keeps the console useful without flooding it. */
    next_report = tg_clock_ns() + 10ull * 1000000000u;
    for (;;) {
        tn_process();
        if (tg_clock_ns() >= next_report) {
            struct tn_stats st;
            tn_stats(&st);
            if (st.rx_frames != reported_rx)
                printf("echo: %lu connections open, %lu total, rx %llu tx %llu frames\n",
                       conns_open, conns_total, (unsigned long long)st.rx_frames,
                       (unsigned long long)st.tx_frames);
            reported_rx = st.rx_frames;
            next_report = tg_clock_ns() + 10ull * 1000000000u;
        }
        tn_wait(next_report);
    }
}
