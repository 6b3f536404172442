/* kvclient history: writing and parsing records, and the per-key loss checker. */
#include "kvc_history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[KVC_NOPS] = {"SET", "GET", "DEL", "INCR"};
static const char *const status_names[] = {"ack", "broken", "timeout"};

const char *kvc_op_name(enum kvc_opcode op)
{
    return op < KVC_NOPS ? op_names[op] : "?";
}

const char *kvc_status_name(enum kvc_status st)
{
    return st <= KVC_TIMEOUT ? status_names[st] : "?";
}

void kvc_history_write(FILE *f, const struct kvc_op *op)
{
    char rt[24] = "-";
    if (op->reply_us >= 0)
        snprintf(rt, sizeof(rt), "%" PRId64, op->reply_us);
    fprintf(f, "R %d %" PRIu64 " %" PRId64 " %s %s %s %s %s %s\n", op->conn, op->id, op->send_us,
            rt, kvc_status_name(op->status), kvc_op_name(op->op), op->key,
            op->arg[0] ? op->arg : "-", op->reply[0] ? op->reply : "-");
}

/* Next space-separated token of *p into out (at most cap-1 bytes); -1 when missing or too long. */
static int token(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    size_t n = strcspn(s, " \n");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = 0;
    *p = s + n;
    return 0;
}

static int to_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || end == s)
        return -1;
    *v = x;
    return 0;
}

int kvc_history_parse(const char *line, struct kvc_op *op)
{
    char t[300];
    const char *p = line;
    int64_t v;

    if (line[0] != 'R' || line[1] != ' ')
        return (line[0] == '#' || line[0] == 'E' || line[0] == '\n' || line[0] == 0) ? 0 : -1;
    p += 2;
    memset(op, 0, sizeof(*op));
    if (token(&p, t, sizeof(t)) || to_i64(t, &v) || v < 0 || v > 1000000)
        return -1;
    op->conn = (int)v;
    if (token(&p, t, sizeof(t)) || to_i64(t, &v) || v < 0)
        return -1;
    op->id = (uint64_t)v;
    if (token(&p, t, sizeof(t)) || to_i64(t, &op->send_us))
        return -1;
    if (token(&p, t, sizeof(t)))
        return -1;
    if (strcmp(t, "-") == 0)
        op->reply_us = -1;
    else if (to_i64(t, &op->reply_us))
        return -1;
    if (token(&p, t, sizeof(t)))
        return -1;
    if (strcmp(t, "ack") == 0)
        op->status = KVC_ACK;
    else if (strcmp(t, "broken") == 0)
        op->status = KVC_BROKEN;
    else if (strcmp(t, "timeout") == 0)
        op->status = KVC_TIMEOUT;
    else
        return -1;
    if (token(&p, t, sizeof(t)))
        return -1;
    op->op = KVC_NOPS;
    for (int i = 0; i < KVC_NOPS; i++)
        if (strcmp(t, op_names[i]) == 0)
            op->op = (enum kvc_opcode)i;
    if (op->op == KVC_NOPS)
        return -1;
    if (token(&p, op->key, sizeof(op->key)) || token(&p, op->arg, sizeof(op->arg)))
        return -1;
    if (strcmp(op->arg, "-") == 0)
        op->arg[0] = 0;
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\n");
    if (n == 0 || n >= sizeof(op->reply))
        return -1;
    memcpy(op->reply, p, n);
    op->reply[n] = 0;
    if (strcmp(op->reply, "-") == 0)
        op->reply[0] = 0;
    if ((op->status == KVC_ACK) != (op->reply_us >= 0 && op->reply[0]))
        return -1;
    return 1;
}

int kvc_history_load(const char *path, struct kvc_op **ops, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t cap = 0, lineno = 0;
    int rc = -1;

    *ops = NULL;
    *n = 0;
    if (!f) {
        snprintf(err, errlen, "cannot open history '%s': %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        struct kvc_op op;
        lineno++;
        int r = kvc_history_parse(line, &op);
        if (r < 0) {
            snprintf(err, errlen, "history '%s' line %zu is not a valid record", path, lineno);
            goto out;
        }
        if (r == 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct kvc_op *no = realloc(*ops, cap * sizeof(*no));
            if (!no) {
                snprintf(err, errlen, "out of memory reading history '%s'", path);
                goto out;
            }
            *ops = no;
        }
        (*ops)[(*n)++] = op;
    }
    rc = 0;
out:
    fclose(f);
    if (rc) {
        free(*ops);
        *ops = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- checker */

static int is_error_reply(const struct kvc_op *o)
{
    return o->status == KVC_ACK && strncmp(o->reply, "ERR", 3) == 0;
}

static int is_write(const struct kvc_op *o)
{
    return o->op != KVC_GET && !is_error_reply(o);
}

static int parse_int(const char *s, int64_t *v)
{
    if (!s || !*s)
        return -1;
    return to_i64(s, v);
}

static int check_counter(const struct kvc_op *ops, size_t n, const char *observed, char *why,
                         size_t whylen)
{
    int64_t max_acked = INT64_MIN, value = 0;
    const struct kvc_op *max_op = NULL;
    size_t unacked = 0;
    for (size_t i = 0; i < n; i++) {
        const struct kvc_op *o = &ops[i];
        int64_t r;
        if (!is_write(o))
            continue;
        if (o->status != KVC_ACK) {
            unacked++;
            continue;
        }
        if (strncmp(o->reply, "VALUE ", 6) != 0 || parse_int(o->reply + 6, &r))
            continue;
        if (r > max_acked) {
            max_acked = r;
            max_op = o;
        }
    }
    if (!max_op)
        return -1;
    if (observed && parse_int(observed, &value)) {
        snprintf(why, whylen, "counter holds '%s', not an integer (INCR acknowledged %" PRId64 ")",
                 observed, max_acked);
        return 1;
    }
    if (value < max_acked) {
        snprintf(why, whylen,
                 "counter is %s%" PRId64 " but INCR (conn %d id %" PRIu64 ") was acknowledged "
                 "with %" PRId64 " at %" PRId64 " us",
                 observed ? "" : "missing, i.e. ", value, max_op->conn, max_op->id, max_acked,
                 max_op->reply_us);
        return 1;
    }
    if ((uint64_t)(value - max_acked) > unacked) {
        snprintf(why, whylen,
                 "counter is %" PRId64 ", more than the acknowledged %" PRId64 " plus %zu "
                 "unacknowledged INCRs: increments were applied twice",
                 value, max_acked, unacked);
        return 1;
    }
    return 0;
}

/* Does write o explain the observed state? */
static int explains(const struct kvc_op *o, const char *observed)
{
    int64_t v;
    switch (o->op) {
    case KVC_SET:
        return observed && strcmp(observed, o->arg) == 0;
    case KVC_DEL:
        return observed == NULL;
    case KVC_INCR:
        if (o->status == KVC_ACK)
            return observed && strncmp(o->reply, "VALUE ", 6) == 0 &&
                   strcmp(o->reply + 6, observed) == 0;
        return observed && parse_int(observed, &v) == 0;
    default:
        return 0;
    }
}

static void describe(const struct kvc_op *o, int64_t acked_us, char *buf, size_t len)
{
    if (o->status == KVC_ACK)
        snprintf(buf, len,
                 "%s%s%s (conn %d id %" PRIu64 ", sent %" PRId64 " us, acknowledged %" PRId64
                 " us)",
                 kvc_op_name(o->op), o->arg[0] ? " " : "", o->arg, o->conn, o->id, o->send_us,
                 o->reply_us);
    else
        snprintf(buf, len,
                 "%s%s%s (conn %d id %" PRIu64 ", sent %" PRId64 " us, %s, but its value "
                 "was read at %" PRId64 " us)",
                 kvc_op_name(o->op), o->arg[0] ? " " : "", o->arg, o->conn, o->id, o->send_us,
                 kvc_status_name(o->status), acked_us);
}

/*
 * When a write certainly took effect, in client time: its reply, or the
 * reply of a GET that returned its (unique) value, whichever came first;
 * -1 when neither happened.
 */
static int64_t witnessed_at(const struct kvc_op *ops, size_t n, const struct kvc_op *w)
{
    int64_t t = w->status == KVC_ACK ? w->reply_us : -1;
    if (w->op != KVC_SET)
        return t;
    for (size_t i = 0; i < n; i++) {
        const struct kvc_op *g = &ops[i];
        if (g->op == KVC_GET && g->status == KVC_ACK && strncmp(g->reply, "VALUE ", 6) == 0 &&
            strcmp(g->reply + 6, w->arg) == 0 && (t < 0 || g->reply_us < t))
            t = g->reply_us;
    }
    return t;
}

int kvc_check_key(const struct kvc_op *ops, size_t n, const char *observed, char *why,
                  size_t whylen)
{
    int has_incr = 0, has_other = 0, has_acked = 0;
    int64_t *acked = malloc((n ? n : 1) * sizeof(*acked));
    int ret = 1;

    if (!acked) {
        snprintf(why, whylen, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        acked[i] = is_write(&ops[i]) ? witnessed_at(ops, n, &ops[i]) : -1;
        if (!is_write(&ops[i]))
            continue;
        if (ops[i].op == KVC_INCR)
            has_incr = 1;
        else
            has_other = 1;
        if (acked[i] >= 0)
            has_acked = 1;
    }
    if (!has_acked) {
        ret = -1;
        goto out;
    }
    if (has_incr && !has_other) {
        ret = check_counter(ops, n, observed, why, whylen);
        goto out;
    }

    /*
     * Register. A write W is certainly followed by write A when A was sent
     * after W certainly took effect (W acknowledged, or its value read) and A
     * certainly took effect too. The observed state is fine when some write
     * that explains it is not certainly followed by another; a write that
     * never certainly took effect may have landed at any time after it was sent.
     */
    const struct kvc_op *overtaker = NULL, *source = NULL;
    size_t src_i = 0;
    for (size_t i = 0; i < n; i++) {
        const struct kvc_op *w = &ops[i];
        if (!is_write(w) || !explains(w, observed))
            continue;
        const struct kvc_op *after = NULL;
        if (acked[i] >= 0) {
            for (size_t j = 0; j < n; j++) {
                const struct kvc_op *a = &ops[j];
                if (j != i && is_write(a) && acked[j] >= 0 && a->send_us > acked[i] &&
                    (!after || a->send_us > after->send_us))
                    after = a;
            }
        }
        if (!after) {
            ret = 0;
            goto out;
        }
        if (!source || after->send_us > overtaker->send_us) {
            source = w;
            src_i = i;
            overtaker = after;
        }
    }
    const struct kvc_op *last = NULL;
    size_t last_i = 0;
    for (size_t i = 0; i < n; i++)
        if (is_write(&ops[i]) && acked[i] >= 0 && (!last || ops[i].send_us > last->send_us)) {
            last = &ops[i];
            last_i = i;
        }
    char a[400], b[400];
    if (source) {
        describe(source, acked[src_i], a, sizeof(a));
        describe(overtaker, acked[overtaker - ops], b, sizeof(b));
        if (observed)
            snprintf(why, whylen, "server has '%s' from %s, but %s came after it", observed, a, b);
        else
            snprintf(why, whylen, "key is missing (from %s), but %s came after it", a, b);
    } else {
        describe(last, acked[last_i], b, sizeof(b));
        if (observed)
            snprintf(why, whylen,
                     "server has '%s', which no write of this history made; last "
                     "acknowledged write: %s",
                     observed, b);
        else
            snprintf(why, whylen,
                     "key is missing but no DEL of it was sent; last acknowledged "
                     "write: %s",
                     b);
    }
out:
    free(acked);
    return ret;
}
