/* tandem-kvclient: kvstore load generator (latency histogram, history file) and checker. */
#include "../kvstore/kv_addr.h"
#include "kvc_history.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECONNECT_DELAY_US 100000
#define CHECK_BATCH 64

enum conn_state { C_DOWN, C_CONNECTING, C_READY, C_WAIT, C_DEAD };

struct conn {
    int idx, fd;
    enum conn_state state;
    char in[2048];
    size_t inlen;
    char out[600];
    size_t outlen, outoff;
    struct kvc_op req;
    int64_t deadline_us, reconnect_at_us;
    uint64_t rng, nvalue;
};

struct options {
    const char *server, *history, *check;
    unsigned conns, keys;
    double duration_s, rate;
    uint64_t max_ops, seed;
    unsigned mix[KVC_NOPS];
    int timeout_ms, reconnect, quiet;
    double progress_s;
};

static volatile sig_atomic_t interrupted;
static struct addrinfo *server_ai;
static int64_t t0_us;
static FILE *hist;
static uint32_t run_id;
static int64_t connect_timeout_us = 5000000; /* --timeout applies to connecting too */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - t0_us;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void event(int conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void event(int conn, const char *fmt, ...)
{
    if (!hist)
        return;
    va_list ap;
    fprintf(hist, "E %" PRId64 " %d ", now_us(), conn);
    va_start(ap, fmt);
    vfprintf(hist, fmt, ap);
    va_end(ap);
    fputc('\n', hist);
}

/* Start a non-blocking connect; -1 with errno on immediate failure. */
static int start_connect(struct conn *c)
{
    int one = 1;
    c->fd = socket(server_ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->inlen = c->outlen = c->outoff = 0;
    if (connect(c->fd, server_ai->ai_addr, server_ai->ai_addrlen) == 0) {
        c->state = C_READY;
        return 0;
    }
    if (errno == EINPROGRESS) {
        c->state = C_CONNECTING;
        c->deadline_us = now_us() + connect_timeout_us;
        return 0;
    }
    int e = errno;
    close(c->fd);
    c->fd = -1;
    errno = e;
    return -1;
}

struct stats {
    uint64_t issued, acked, errors, err_replies, broken, timeouts, connect_failures;
    uint32_t *lat;
    size_t nlat, caplat;
};

static void record_latency(struct stats *s, int64_t us)
{
    if (s->nlat == s->caplat) {
        size_t cap = s->caplat ? s->caplat * 2 : 65536;
        uint32_t *n = realloc(s->lat, cap * sizeof(*n));
        if (!n)
            return;
        s->lat = n;
        s->caplat = cap;
    }
    s->lat[s->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* The connection failed: record its request (if any) and close it or schedule a reconnect. */
static void conn_fail(struct conn *c, const struct options *o, struct stats *s, enum kvc_status why,
                      const char *what)
{
    if (c->state == C_WAIT) {
        c->req.status = why;
        c->req.reply_us = -1;
        c->req.reply[0] = 0;
        if (hist)
            kvc_history_write(hist, &c->req);
        if (why == KVC_TIMEOUT)
            s->timeouts++;
        else
            s->broken++;
    } else if (c->state == C_CONNECTING) {
        s->connect_failures++;
    } else {
        s->broken++;
    }
    s->errors++;
    event(c->idx, "%s", what);
    if (!o->quiet)
        fprintf(stderr, "tandem-kvclient: connection %d: %s\n", c->idx, what);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (o->reconnect) {
        c->state = C_DOWN;
        c->reconnect_at_us = now_us() + RECONNECT_DELAY_US;
    } else {
        c->state = C_DEAD;
    }
}

static void issue(struct conn *c, const struct options *o, struct stats *s)
{
    unsigned total = 0;
    for (int i = 0; i < KVC_NOPS; i++)
        total += o->mix[i];
    uint64_t r = rng_next(&c->rng) % total;
    enum kvc_opcode op = KVC_SET;
    for (int i = 0; i < KVC_NOPS; i++) {
        if (r < o->mix[i]) {
            op = (enum kvc_opcode)i;
            break;
        }
        r -= o->mix[i];
    }
    unsigned k = (unsigned)(rng_next(&c->rng) % o->keys);
    struct kvc_op *q = &c->req;
    memset(q, 0, sizeof(*q));
    q->conn = c->idx;
    q->id = ++s->issued;
    q->op = op;
    /* Counters live apart from the other keys so INCR never meets a SET value. */
    snprintf(q->key, sizeof(q->key), "%c%u", op == KVC_INCR ? 'c' : 'k', k);
    if (op == KVC_SET)
        snprintf(q->arg, sizeof(q->arg), "%08x.%d.%" PRIu64, run_id, c->idx, ++c->nvalue);
    int n = snprintf(c->out, sizeof(c->out), "%s %s%s%s\n", kvc_op_name(op), q->key,
                     q->arg[0] ? " " : "", q->arg);
    c->outlen = (size_t)n;
    c->outoff = 0;
    q->send_us = now_us();
    q->reply_us = -1;
    c->deadline_us = q->send_us + (int64_t)o->timeout_ms * 1000;
    c->state = C_WAIT;
}

static void flush_out(struct conn *c, const struct options *o, struct stats *s)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "broken while sending: %s", strerror(errno));
            conn_fail(c, o, s, KVC_BROKEN, msg);
            return;
        }
        c->outoff += (size_t)n;
    }
}

/* Read what is there; complete the request when its reply line is in. */
static void read_reply(struct conn *c, const struct options *o, struct stats *s)
{
    ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "broken: %s", n == 0 ? "closed by the server" : strerror(errno));
        conn_fail(c, o, s, KVC_BROKEN, msg);
        return;
    }
    c->inlen += (size_t)n;
    char *nl = memchr(c->in, '\n', c->inlen);
    if (!nl) {
        if (c->inlen >= sizeof(c->in) - 1)
            conn_fail(c, o, s, KVC_BROKEN, "broken: reply line too long");
        return;
    }
    if (c->state != C_WAIT) {
        conn_fail(c, o, s, KVC_BROKEN, "broken: unexpected data from the server");
        return;
    }
    size_t len = (size_t)(nl - c->in);
    if (len && c->in[len - 1] == '\r')
        len--;
    if (len >= sizeof(c->req.reply))
        len = sizeof(c->req.reply) - 1;
    memcpy(c->req.reply, c->in, len);
    c->req.reply[len] = 0;
    size_t used = (size_t)(nl - c->in) + 1;
    memmove(c->in, c->in + used, c->inlen - used);
    c->inlen -= used;
    c->req.reply_us = now_us();
    c->req.status = KVC_ACK;
    if (hist)
        kvc_history_write(hist, &c->req);
    if (strncmp(c->req.reply, "ERR", 3) == 0) {
        s->err_replies++;
        s->errors++;
        if (!o->quiet && s->err_replies <= 5)
            fprintf(stderr, "tandem-kvclient: %s %s: %s\n", kvc_op_name(c->req.op), c->req.key,
                    c->req.reply);
    } else {
        s->acked++;
        record_latency(s, c->req.reply_us - c->req.send_us);
    }
    c->state = C_READY;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const struct stats *s, double p)
{
    if (!s->nlat)
        return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)s->nlat);
    if (i == 0)
        i = 1;
    return s->lat[i - 1];
}

static void report(struct stats *s, int64_t elapsed_us)
{
    qsort(s->lat, s->nlat, sizeof(*s->lat), cmp_u32);
    /* Power-of-two histogram of acknowledged latencies. */
    printf("latency_us histogram:");
    size_t i = 0;
    for (uint64_t hi = 16; i < s->nlat; hi *= 2) {
        size_t n = 0;
        while (i < s->nlat && s->lat[i] < hi) {
            i++;
            n++;
        }
        if (n)
            printf(" <%" PRIu64 ":%zu", hi, n);
    }
    printf("\n");
    double secs = elapsed_us > 0 ? (double)elapsed_us / 1e6 : 1e-6;
    printf("ops: %" PRIu64 " ops/s: %.1f errors: %" PRIu64
           " p50_us: %u p90_us: %u p99_us: %u max_us: %u broken: %" PRIu64 " timeouts: %" PRIu64
           " err_replies: %" PRIu64 " connect_failures: %" PRIu64 "\n",
           s->acked, (double)s->acked / secs, s->errors, pct(s, 50), pct(s, 90), pct(s, 99),
           s->nlat ? s->lat[s->nlat - 1] : 0, s->broken, s->timeouts, s->err_replies,
           s->connect_failures);
}

static int run_load(const struct options *o)
{
    struct conn *cs = calloc(o->conns, sizeof(*cs));
    struct pollfd *pfd = calloc(o->conns, sizeof(*pfd));
    struct stats s = {0};
    int64_t end_us = o->duration_s > 0 ? (int64_t)(o->duration_s * 1e6) : INT64_MAX;
    int64_t interval_us = o->rate > 0 ? (int64_t)(1e6 / o->rate) : 0, next_send = 0;
    int64_t stop_at = -1;
    int ret = 1;

    if (!cs || !pfd)
        goto out;
    for (unsigned i = 0; i < o->conns; i++) {
        cs[i].idx = (int)i;
        cs[i].fd = -1;
        cs[i].rng = (o->seed + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
        if (!cs[i].rng)
            cs[i].rng = 1;
        if (start_connect(&cs[i])) {
            char msg[128];
            snprintf(msg, sizeof(msg), "connect failed: %s", strerror(errno));
            cs[i].state = C_CONNECTING;
            conn_fail(&cs[i], o, &s, KVC_BROKEN, msg);
        } else {
            event((int)i, "connecting");
        }
    }
    int64_t flushed_at = 0, progress_us = (int64_t)(o->progress_s * 1e6),
            next_progress = progress_us;
    uint64_t progress_acked = 0, progress_errors = 0;
    for (;;) {
        int64_t now = now_us();
        /* A line per interval shows pauses (a failover) that the totals would average away. */
        if (progress_us && now >= next_progress && stop_at < 0) {
            double secs = (double)progress_us / 1e6;
            printf("progress: t_s: %.1f ops: %" PRIu64 " ops/s: %.1f errors: %" PRIu64 "\n",
                   (double)next_progress / 1e6, s.acked - progress_acked,
                   (double)(s.acked - progress_acked) / secs, s.errors - progress_errors);
            fflush(stdout);
            progress_acked = s.acked;
            progress_errors = s.errors;
            next_progress += progress_us;
        }
        /* Keep the history on disk within 100 ms, so a killed client leaves most of it. */
        if (hist && now - flushed_at >= 100000) {
            fflush(hist);
            flushed_at = now;
        }
        if (stop_at < 0 && (interrupted || now >= end_us || (o->max_ops && s.issued >= o->max_ops)))
            stop_at = now;
        int waiting = 0, alive = 0;
        for (unsigned i = 0; i < o->conns; i++) {
            struct conn *c = &cs[i];
            if (c->state == C_WAIT && now >= c->deadline_us)
                conn_fail(c, o, &s, KVC_TIMEOUT, "timeout: no reply in time");
            if (c->state == C_CONNECTING && now >= c->deadline_us)
                conn_fail(c, o, &s, KVC_BROKEN, "connect failed: timeout");
            if (c->state == C_DOWN && stop_at < 0 && now >= c->reconnect_at_us) {
                if (start_connect(c)) {
                    c->state = C_CONNECTING;
                    char msg[128];
                    snprintf(msg, sizeof(msg), "reconnect failed: %s", strerror(errno));
                    conn_fail(c, o, &s, KVC_BROKEN, msg);
                } else {
                    event(c->idx, "reconnecting");
                }
            }
            if (c->state == C_READY && stop_at < 0 && !(o->max_ops && s.issued >= o->max_ops)) {
                if (!interval_us || now >= next_send) {
                    issue(c, o, &s);
                    flush_out(c, o, &s);
                    if (interval_us)
                        next_send = (next_send ? next_send : now) + interval_us;
                }
            }
            waiting += c->state == C_WAIT;
            alive += c->state != C_DEAD;
        }
        if ((stop_at >= 0 && !waiting) || !alive)
            break;

        int64_t wake = now + 1000000;
        if (stop_at < 0 && end_us < wake)
            wake = end_us;
        if (interval_us && stop_at < 0 && next_send < wake)
            wake = next_send;
        if (progress_us && stop_at < 0 && next_progress < wake)
            wake = next_progress;
        for (unsigned i = 0; i < o->conns; i++) {
            struct conn *c = &cs[i];
            pfd[i] = (struct pollfd){.fd = -1};
            if ((c->state == C_WAIT || c->state == C_CONNECTING) && c->deadline_us < wake)
                wake = c->deadline_us;
            if (c->state == C_DOWN && c->reconnect_at_us < wake)
                wake = c->reconnect_at_us;
            if (c->fd < 0)
                continue;
            pfd[i].fd = c->fd;
            pfd[i].events = POLLIN;
            if (c->state == C_CONNECTING || c->outoff < c->outlen)
                pfd[i].events |= POLLOUT;
        }
        int64_t wait = wake - now;
        int pr = poll(pfd, o->conns, wait <= 0 ? 0 : (int)((wait + 999) / 1000));
        if (pr < 0 && errno != EINTR) {
            perror("tandem-kvclient: poll");
            goto out;
        }
        for (unsigned i = 0; pr > 0 && i < o->conns; i++) {
            struct conn *c = &cs[i];
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    char msg[128];
                    snprintf(msg, sizeof(msg), "connect failed: %s", strerror(err));
                    conn_fail(c, o, &s, KVC_BROKEN, msg);
                } else if (pfd[i].revents & POLLOUT) {
                    c->state = C_READY;
                    event(c->idx, "connected");
                }
                continue;
            }
            if (pfd[i].revents & POLLOUT)
                flush_out(c, o, &s);
            if (c->fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                read_reply(c, o, &s);
        }
    }
    report(&s, (stop_at >= 0 ? stop_at : now_us()));
    ret = s.errors ? 1 : 0;
out:
    for (unsigned i = 0; cs && i < o->conns; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    free(pfd);
    free(s.lat);
    return ret;
}

/* ---- --check */

static int cmp_key(const void *a, const void *b)
{
    const struct kvc_op *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->send_us < y->send_us ? -1 : x->send_us > y->send_us;
}

/* Blocking line read with a deadline; returns the line length or -1. */
static int read_line(int fd, char *buf, size_t cap, size_t *have, char *line, size_t lcap,
                     int timeout_ms)
{
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        if (nl) {
            size_t len = (size_t)(nl - buf);
            size_t copy = len < lcap - 1 ? len : lcap - 1;
            memcpy(line, buf, copy);
            if (copy && line[copy - 1] == '\r')
                copy--;
            line[copy] = 0;
            memmove(buf, nl + 1, *have - len - 1);
            *have -= len + 1;
            return (int)copy;
        }
        if (*have >= cap)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = recv(fd, buf + *have, cap - *have, 0);
        if (n <= 0)
            return -1;
        *have += (size_t)n;
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int run_check(const struct options *o)
{
    struct kvc_op *ops = NULL;
    size_t n = 0, nkeys = 0, acknowledged = 0, lost = 0;
    char err[512];
    int fd = -1, ret = 2;
    size_t *starts = NULL;
    char **observed = NULL;

    if (kvc_history_load(o->check, &ops, &n, err, sizeof(err))) {
        fprintf(stderr, "tandem-kvclient: %s\n", err);
        return 2;
    }
    qsort(ops, n, sizeof(*ops), cmp_key);
    starts = calloc(n + 1, sizeof(*starts));
    observed = calloc(n + 1, sizeof(*observed));
    if (!starts || !observed)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(ops[i].key, ops[i - 1].key))
            starts[nkeys++] = i;
    starts[nkeys] = n;

    fd = socket(server_ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, server_ai->ai_addr, server_ai->ai_addrlen)) {
        fprintf(stderr, "tandem-kvclient: cannot connect to '%s': %s\n", o->server,
                strerror(errno));
        goto out;
    }
    char rbuf[8192], line[400], req[CHECK_BATCH * 80];
    size_t have = 0;
    for (size_t k = 0; k < nkeys; k += CHECK_BATCH) {
        size_t end = k + CHECK_BATCH < nkeys ? k + CHECK_BATCH : nkeys, len = 0;
        for (size_t j = k; j < end; j++)
            len += (size_t)snprintf(req + len, sizeof(req) - len, "GET %s\n", ops[starts[j]].key);
        if (write_all(fd, req, len)) {
            fprintf(stderr, "tandem-kvclient: sending to '%s': %s\n", o->server, strerror(errno));
            goto out;
        }
        for (size_t j = k; j < end; j++) {
            if (read_line(fd, rbuf, sizeof(rbuf), &have, line, sizeof(line), o->timeout_ms) < 0) {
                fprintf(stderr, "tandem-kvclient: no reply from '%s' to GET %s\n", o->server,
                        ops[starts[j]].key);
                goto out;
            }
            if (strncmp(line, "VALUE ", 6) == 0) {
                observed[j] = strdup(line + 6);
            } else if (strcmp(line, "NOTFOUND") != 0) {
                fprintf(stderr, "tandem-kvclient: GET %s answered '%s'\n", ops[starts[j]].key,
                        line);
                goto out;
            }
        }
    }
    for (size_t j = 0; j < nkeys; j++) {
        char why[1200];
        int r = kvc_check_key(ops + starts[j], starts[j + 1] - starts[j], observed[j], why,
                              sizeof(why));
        if (r < 0)
            continue;
        acknowledged++;
        if (r > 0) {
            lost++;
            printf("lost: %s: %s\n", ops[starts[j]].key, why);
        }
    }
    printf("acknowledged: %zu lost: %zu\n", acknowledged, lost);
    ret = lost ? 1 : 0;
out:
    if (fd >= 0)
        close(fd);
    for (size_t j = 0; observed && j < nkeys; j++)
        free(observed[j]);
    free(observed);
    free(starts);
    free(ops);
    return ret;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tandem-kvclient --server ADDR:PORT [options]     drive load\n"
            "       tandem-kvclient --check HISTORY --server ADDR:PORT  check for lost writes\n"
            "\n"
            "Load: N connections, each with one request in flight (closed loop), or a total\n"
            "rate shared by the connections (--rate; latency counts from the send, so a\n"
            "saturated server shows as a lower rate, not as queueing delay).\n"
            "  --conns N        connections (default 1)\n"
            "  --duration S     stop issuing after S seconds (default 10 unless --ops)\n"
            "  --ops N          stop after N requests\n"
            "  --rate OPS/S     total request rate (default: closed loop, as fast as replies)\n"
            "  --mix set=60,get=30,incr=5,del=5   operation weights (the default)\n"
            "  --keys N         keys k0..kN-1 for SET/GET/DEL and counters c0..cN-1 for INCR\n"
            "                   (default 100)\n"
            "  --history FILE   write every request: send and reply time (us since start),\n"
            "                   status (ack, broken, timeout) and the reply\n"
            "  --seed N         seed of the operation sequence (default 1); SET values are\n"
            "                   unique per run whatever the seed\n"
            "  --timeout MS     a request without a reply after MS ms, or a connect not done\n"
            "                   in MS ms, breaks its connection (default 5000)\n"
            "  --reconnect      reopen broken connections (after 100 ms) instead of dropping them\n"
            "  --quiet          no per-connection messages on stderr\n"
            "  --progress S     every S seconds print 'progress: t_s: T ops: N ops/s: X\n"
            "                   errors: E' for that interval (shows pauses such as a failover)\n"
            "Prints a power-of-two latency histogram and the summary line\n"
            "  ops: N ops/s: X errors: E p50_us: . p90_us: . p99_us: . max_us: . broken: .\n"
            "  timeouts: . err_replies: . connect_failures: .\n"
            "(one line) where ops counts acknowledged requests (not ERR) and errors is the\n"
            "sum of the last four. Exit 0 when errors is 0, else 1.\n"
            "\n"
            "Check: reads back every key with an acknowledged write in HISTORY (GET) and\n"
            "prints each key whose state loses an acknowledged write, then\n"
            "  acknowledged: N lost: M\n"
            "(N keys with an acknowledged write). Exit 0 iff M is 0; 2 on other failures.\n");
}

static int parse_mix(const char *s, unsigned mix[KVC_NOPS])
{
    char buf[128];
    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    memset(mix, 0, sizeof(unsigned) * KVC_NOPS);
    unsigned total = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq)
            return -1;
        *eq = 0;
        char *end;
        unsigned long v = strtoul(eq + 1, &end, 10);
        if (*end || eq[1] == 0 || v > 1000000)
            return -1;
        int found = 0;
        for (int i = 0; i < KVC_NOPS; i++) {
            char lower[8];
            const char *nm = kvc_op_name((enum kvc_opcode)i);
            size_t j = 0;
            for (; nm[j]; j++)
                lower[j] = (char)(nm[j] - 'A' + 'a');
            lower[j] = 0;
            if (strcmp(t, lower) == 0) {
                mix[i] = (unsigned)v;
                found = 1;
            }
        }
        if (!found)
            return -1;
        total += (unsigned)v;
    }
    return total ? 0 : -1;
}

static int parse_num(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "tandem-kvclient: --%s '%s' is not a number in %g..%g\n", opt, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {
        .conns = 1, .keys = 100, .seed = 1, .timeout_ms = 5000, .mix = {60, 30, 5, 5}};
    static const struct option lo[] = {
        {"server", required_argument, NULL, 's'},   {"conns", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'}, {"ops", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},     {"mix", required_argument, NULL, 'm'},
        {"keys", required_argument, NULL, 'k'},     {"history", required_argument, NULL, 'H'},
        {"seed", required_argument, NULL, 'S'},     {"timeout", required_argument, NULL, 't'},
        {"check", required_argument, NULL, 'C'},    {"reconnect", no_argument, NULL, 'R'},
        {"quiet", no_argument, NULL, 'q'},          {"progress", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int opt, ret;
    double v;
    int have_duration = 0;

    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (opt) {
        case 's':
            o.server = optarg;
            break;
        case 'c':
            if (parse_num("conns", optarg, 1, 10000, &v))
                return 2;
            o.conns = (unsigned)v;
            break;
        case 'd':
            if (parse_num("duration", optarg, 0.001, 1e6, &o.duration_s))
                return 2;
            have_duration = 1;
            break;
        case 'n':
            if (parse_num("ops", optarg, 1, 1e12, &v))
                return 2;
            o.max_ops = (uint64_t)v;
            break;
        case 'r':
            if (parse_num("rate", optarg, 0.001, 1e7, &o.rate))
                return 2;
            break;
        case 'm':
            if (parse_mix(optarg, o.mix)) {
                fprintf(stderr,
                        "tandem-kvclient: --mix '%s' is not like set=60,get=30,incr=5,"
                        "del=5 (names set, get, incr, del; weights not all 0)\n",
                        optarg);
                return 2;
            }
            break;
        case 'k':
            if (parse_num("keys", optarg, 1, 1e9, &v))
                return 2;
            o.keys = (unsigned)v;
            break;
        case 'H':
            o.history = optarg;
            break;
        case 'S':
            if (parse_num("seed", optarg, 0, 1e18, &v))
                return 2;
            o.seed = (uint64_t)v;
            break;
        case 't':
            if (parse_num("timeout", optarg, 1, 86400000, &v))
                return 2;
            o.timeout_ms = (int)v;
            break;
        case 'C':
            o.check = optarg;
            break;
        case 'R':
            o.reconnect = 1;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'P':
            if (parse_num("progress", optarg, 0.01, 3600, &o.progress_s))
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!o.server || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (kv_addr_resolve(o.server, 0, &server_ai)) {
        fprintf(stderr, "tandem-kvclient: --server '%s' is not ADDR:PORT\n", o.server);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    t0_us = 0;
    t0_us = now_us();
    connect_timeout_us = (int64_t)o.timeout_ms * 1000;
    if (o.check) {
        ret = run_check(&o);
        goto out;
    }
    if (!have_duration && !o.max_ops)
        o.duration_s = 10;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    run_id = (uint32_t)(rt.tv_nsec ^ (rt.tv_sec << 20) ^ ((uint64_t)getpid() << 8));
    if (o.history) {
        hist = fopen(o.history, "w");
        if (!hist) {
            fprintf(stderr, "tandem-kvclient: cannot write history '%s': %s\n", o.history,
                    strerror(errno));
            ret = 2;
            goto out;
        }
        fprintf(hist,
                "# tandem-kvclient history v1 start_unix_us=%lld server=%s conns=%u seed=%" PRIu64
                " run=%08x\n",
                (long long)rt.tv_sec * 1000000 + rt.tv_nsec / 1000, o.server, o.conns, o.seed,
                run_id);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ret = run_load(&o);
    if (hist && fclose(hist)) {
        fprintf(stderr, "tandem-kvclient: writing history '%s': %s\n", o.history, strerror(errno));
        ret = 2;
    }
out:
    freeaddrinfo(server_ai);
    return ret;
}
