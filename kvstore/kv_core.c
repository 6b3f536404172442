/* kvstore core: protocol parser, hash table, durable log, group commit, replay, compaction. */
#include "kv_core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* On-disk layout; docs/kvstore-protocol.md is the specification. */
#define SB_MAGIC "TDMKVSB1"
#define SB_VERSION 1u
#define SB_SIZE 44u
#define REC_MAGIC 0x3152564bu /* "KVR1" little-endian */
#define REC_HDR 24u
#define DATA_START (2u * KV_SECTOR)
#define MIN_CAPACITY (16u * 1024u)
#define REPLAY_CHUNK (64u * 1024u)

enum compact_state { COMPACT_IDLE, COMPACT_DATA, COMPACT_SUPER };

struct kv_entry {
    struct kv_entry *next;
    uint32_t hash;
    uint16_t klen, vlen;
    char *val;
    char key[]; /* klen bytes + NUL, then the value lives in val */
};

struct kv_reply {
    struct kv_reply *next;
    uint64_t need; /* mutations that must be durable before this reply may go */
    size_t len;
    char text[];
};

struct kv_conn {
    struct kv_store *st;
    void *arg;
    struct kv_conn *prev, *next;
    char in[KV_LINE_MAX + 1];
    size_t inlen;
    int skipping; /* discarding the rest of an overlong line */
    struct kv_reply *qhead, *qtail;
    size_t qlen;
    char *out; /* replies collected for one send call */
    size_t outlen, outcap;
};

struct kv_store {
    struct kv_config cfg;
    const struct kv_backend *be;
    struct kv_entry **buckets;
    uint32_t nbuckets, nkeys;
    uint64_t snap_bytes; /* size of a snapshot of the live keys */
    struct kv_conn *conns;

    /* layout */
    uint64_t capacity, region_size;

    /* committed superblock */
    uint32_t gen;
    uint32_t region;

    /* append position: where the next record goes (during compaction, the new region) */
    uint32_t app_gen;
    uint64_t app_start, app_end; /* bounds of the region being appended to */
    uint64_t next_seq;
    uint32_t prev_crc;
    uint8_t *wbuf; /* bytes from sector-aligned wbuf_off up to the append position */
    size_t wlen, wcap;
    uint64_t wbuf_off;
    size_t wflushed;  /* bytes of wbuf already written to the backend */
    int want_compact; /* a record did not fit: stop appending, snapshot next */
    int meta_dirty;   /* a superblock or format write waits for a flush */

    uint64_t applied, durable, flush_covers;
    int flush_inflight;
    enum compact_state compact;
    uint64_t compact_covers;
    uint32_t compact_gen, compact_region;
    uint64_t compact_base;

    int failed;
    uint64_t fail_durable;
    struct kv_stats stats;
};

/* ---- little helpers */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

uint32_t kv_crc32(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    static int ready;
    const uint8_t *p = data;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* Seed of the record CRC chain of a region written under generation gen. */
static uint32_t chain_seed(uint32_t gen)
{
    uint8_t b[4];
    put32(b, gen);
    return kv_crc32(0, b, 4);
}

static uint32_t hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (n--) {
        h ^= (uint8_t)*k++;
        h *= 16777619u;
    }
    return h;
}

static uint64_t snap_rec_size(size_t klen, size_t vlen)
{
    return REC_HDR + 4 + klen + 1 + vlen; /* "SET k v" */
}

/* ---- hash table */

static struct kv_entry *find(struct kv_store *st, const char *k, size_t klen, uint32_t h,
                             struct kv_entry ***link)
{
    struct kv_entry **pp = &st->buckets[h & (st->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        struct kv_entry *e = *pp;
        if (e->hash == h && e->klen == klen && memcmp(e->key, k, klen) == 0) {
            if (link)
                *link = pp;
            return e;
        }
    }
    if (link)
        *link = pp;
    return NULL;
}

/* Set k to v; -ENOSPC when the key is new and the table is full, -ENOMEM. */
static int table_set(struct kv_store *st, const char *k, size_t klen, const char *v, size_t vlen)
{
    uint32_t h = hash_key(k, klen);
    struct kv_entry **link;
    struct kv_entry *e = find(st, k, klen, h, &link);
    char *nv = malloc(vlen + 1);

    if (!nv)
        return -ENOMEM;
    memcpy(nv, v, vlen);
    nv[vlen] = 0;
    if (e) {
        st->snap_bytes -= snap_rec_size(e->klen, e->vlen);
        free(e->val);
    } else {
        if (st->nkeys >= st->cfg.max_keys) {
            free(nv);
            return -ENOSPC;
        }
        e = malloc(sizeof(*e) + klen + 1);
        if (!e) {
            free(nv);
            return -ENOMEM;
        }
        e->next = NULL;
        e->hash = h;
        e->klen = (uint16_t)klen;
        memcpy(e->key, k, klen);
        e->key[klen] = 0;
        *link = e;
        st->nkeys++;
    }
    e->val = nv;
    e->vlen = (uint16_t)vlen;
    st->snap_bytes += snap_rec_size(klen, vlen);
    return 0;
}

/* Delete k; returns 1 when it existed. */
static int table_del(struct kv_store *st, const char *k, size_t klen)
{
    struct kv_entry **link;
    struct kv_entry *e = find(st, k, klen, hash_key(k, klen), &link);
    if (!e)
        return 0;
    *link = e->next;
    st->snap_bytes -= snap_rec_size(e->klen, e->vlen);
    st->nkeys--;
    free(e->val);
    free(e);
    return 1;
}

/* ---- log writing */

static int wbuf_reserve(struct kv_store *st, size_t extra)
{
    size_t need = st->wlen + extra + KV_SECTOR;
    if (need <= st->wcap)
        return 0;
    size_t cap = st->wcap ? st->wcap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *nb = realloc(st->wbuf, cap);
    if (!nb)
        return -ENOMEM;
    st->wbuf = nb;
    st->wcap = cap;
    return 0;
}

/* Append one record with payload p to wbuf; the caller checked that it fits. */
static int append_record(struct kv_store *st, const char *p, size_t plen)
{
    int rc = wbuf_reserve(st, REC_HDR + plen);
    if (rc)
        return rc;
    uint8_t *r = st->wbuf + st->wlen;
    put32(r, REC_MAGIC);
    put32(r + 4, st->app_gen);
    put64(r + 8, st->next_seq);
    put16(r + 16, (uint16_t)plen);
    put16(r + 18, 0);
    memcpy(r + REC_HDR, p, plen);
    uint32_t crc = kv_crc32(st->prev_crc, r + 4, 16);
    crc = kv_crc32(crc, r + REC_HDR, plen);
    put32(r + 20, crc);
    st->prev_crc = crc;
    st->next_seq++;
    st->wlen += REC_HDR + plen;
    return 0;
}

static uint64_t append_pos(const struct kv_store *st)
{
    return st->wbuf_off + st->wlen;
}

/*
 * Write the unwritten part of wbuf (whole sectors, zero padded) and keep only
 * the partial last sector in it.
 */
static int write_out(struct kv_store *st)
{
    if (st->wlen == st->wflushed)
        return 0;
    size_t start = st->wflushed / KV_SECTOR * KV_SECTOR;
    size_t end = (st->wlen + KV_SECTOR - 1) / KV_SECTOR * KV_SECTOR;
    memset(st->wbuf + st->wlen, 0, end - st->wlen); /* wbuf_reserve keeps a sector spare */
    int rc = st->be->write(st->be->opaque, st->wbuf_off + start, st->wbuf + start, end - start);
    if (rc)
        return rc;
    size_t keep_from = st->wlen / KV_SECTOR * KV_SECTOR;
    memmove(st->wbuf, st->wbuf + keep_from, st->wlen - keep_from);
    st->wbuf_off += keep_from;
    st->wlen -= keep_from;
    st->wflushed = st->wlen;
    return 0;
}

static void encode_super(uint8_t *s, uint64_t capacity, uint32_t gen, uint32_t region,
                         uint64_t base)
{
    memset(s, 0, KV_SECTOR);
    memcpy(s, SB_MAGIC, 8);
    put32(s + 8, SB_VERSION);
    put32(s + 12, KV_SECTOR);
    put64(s + 16, capacity);
    put32(s + 24, gen);
    put32(s + 28, region);
    put64(s + 32, base);
    put32(s + 40, kv_crc32(0, s, 40));
}

static int write_super(struct kv_store *st, uint32_t gen, uint32_t region, uint64_t base)
{
    uint8_t s[KV_SECTOR];
    encode_super(s, st->capacity, gen, region, base);
    return st->be->write(st->be->opaque, (uint64_t)(gen % 2) * KV_SECTOR, s, KV_SECTOR);
}

static uint64_t region_start(const struct kv_store *st, uint32_t r)
{
    return DATA_START + (uint64_t)r * st->region_size;
}

/* Point the append position at the start of region r under generation gen. */
static void append_reset(struct kv_store *st, uint32_t r, uint32_t gen, uint64_t base_seq)
{
    st->app_gen = gen;
    st->app_start = region_start(st, r);
    st->app_end = st->app_start + st->region_size;
    st->next_seq = base_seq;
    st->prev_crc = chain_seed(gen);
    st->wbuf_off = st->app_start;
    st->wlen = 0;
    st->wflushed = 0;
}

/* ---- replies */

static int out_add(struct kv_conn *c, const char *s, size_t n)
{
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 256;
        while (cap < c->outlen + n)
            cap *= 2;
        char *nb = realloc(c->out, cap);
        if (!nb)
            return -ENOMEM;
        c->out = nb;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, s, n);
    c->outlen += n;
    return 0;
}

static void out_send(struct kv_conn *c)
{
    if (c->outlen) {
        c->st->cfg.send(c->arg, c->out, c->outlen);
        c->outlen = 0;
    }
}

static int releasable(const struct kv_store *st, uint64_t need)
{
    return need <= st->durable || st->failed;
}

/* Move every reply whose dependencies are durable to the connection's output, in order. */
static void release_conn(struct kv_conn *c)
{
    struct kv_store *st = c->st;
    static const char failed_msg[] = "ERR storage failed\n";
    while (c->qhead && releasable(st, c->qhead->need)) {
        struct kv_reply *r = c->qhead;
        if (st->failed && r->need > st->fail_durable)
            out_add(c, failed_msg, sizeof(failed_msg) - 1);
        else
            out_add(c, r->text, r->len);
        c->qhead = r->next;
        if (!c->qhead)
            c->qtail = NULL;
        c->qlen--;
        free(r);
    }
    out_send(c);
}

static void release_all(struct kv_store *st)
{
    for (struct kv_conn *c = st->conns; c; c = c->next)
        release_conn(c);
}

/* Queue (or stage, when nothing is held before it) one reply line. */
static void reply(struct kv_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct kv_conn *c, const char *fmt, ...)
{
    struct kv_store *st = c->st;
    char line[KV_VALUE_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    line[n] = 0;
    uint64_t need = st->applied;
    if (!c->qhead && releasable(st, need)) {
        out_add(c, line, (size_t)n);
        return;
    }
    struct kv_reply *r = malloc(sizeof(*r) + (size_t)n);
    if (!r)
        return; /* out of memory: the reply is lost and the client times out */
    r->next = NULL;
    r->need = need;
    r->len = (size_t)n;
    memcpy(r->text, line, (size_t)n);
    if (c->qtail)
        c->qtail->next = r;
    else
        c->qhead = r;
    c->qtail = r;
    c->qlen++;
}

/* ---- commands */

static int check_token(struct kv_conn *c, const char *what, const char *t, size_t n, size_t max)
{
    if (n > max) {
        reply(c, "ERR %s is %zu bytes, longer than %zu", what, n, max);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch < 0x21 || ch > 0x7e) {
            reply(c, "ERR %s contains byte 0x%02x (printable ASCII without spaces only)", what, ch);
            return -1;
        }
    }
    return 0;
}

/*
 * Log a mutation whose effect on the snapshot size is snap_delta. Returns 0
 * when the record went to the log (or will be covered by the next snapshot),
 * -ENOSPC when it cannot be stored at all ("disk full").
 */
static int log_check(struct kv_store *st, size_t plen, int64_t snap_delta)
{
    if (st->failed)
        return -EIO;
    /* Live data is kept under 3/4 of a region, so a compaction always frees a quarter. */
    if (snap_delta > 0 && st->snap_bytes + (uint64_t)snap_delta > st->region_size / 4 * 3)
        return -ENOSPC;
    if (!st->want_compact && append_pos(st) + REC_HDR + plen <= st->app_end)
        return 0;
    return 1;
}

static int log_append(struct kv_store *st, int fits, const char *p, size_t plen)
{
    st->applied++;
    st->stats.mutations++;
    if (fits == 0)
        return append_record(st, p, plen);
    st->want_compact = 1;
    return 0;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;
    if (n && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n || n > 20)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_C(9223372036854775808) - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (!neg && v > INT64_MAX)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static void storage_error(struct kv_conn *c, int rc)
{
    if (rc == -ENOSPC)
        reply(c, "ERR disk full");
    else if (rc == -ENOMEM)
        reply(c, "ERR out of memory");
    else
        reply(c, "ERR storage failed");
}

/* Store k = v durably; replies with an error and returns -1 when it cannot. */
static int do_set(struct kv_conn *c, const char *k, size_t kl, const char *v, size_t vl)
{
    struct kv_store *st = c->st;
    char p[KV_LINE_MAX];
    struct kv_entry *e = find(st, k, kl, hash_key(k, kl), NULL);
    int64_t delta = (int64_t)snap_rec_size(kl, vl) - (e ? (int64_t)snap_rec_size(kl, e->vlen) : 0);
    if (!e && st->nkeys >= st->cfg.max_keys) {
        reply(c, "ERR too many keys (limit %u)", st->cfg.max_keys);
        return -1;
    }
    int plen = snprintf(p, sizeof(p), "SET %.*s %.*s", (int)kl, k, (int)vl, v);
    int fits = log_check(st, (size_t)plen, delta);
    int rc = fits < 0 ? fits : table_set(st, k, kl, v, vl);
    if (rc == 0)
        rc = log_append(st, fits, p, (size_t)plen);
    if (rc) {
        storage_error(c, rc);
        return -1;
    }
    return 0;
}

static void cmd_set(struct kv_conn *c, const char *k, size_t kl, const char *v, size_t vl)
{
    if (do_set(c, k, kl, v, vl) == 0)
        reply(c, "OK");
}

static void cmd_get(struct kv_conn *c, const char *k, size_t kl)
{
    struct kv_entry *e = find(c->st, k, kl, hash_key(k, kl), NULL);
    if (e)
        reply(c, "VALUE %s", e->val);
    else
        reply(c, "NOTFOUND");
}

static void cmd_del(struct kv_conn *c, const char *k, size_t kl)
{
    struct kv_store *st = c->st;
    char p[KV_LINE_MAX];
    if (!find(st, k, kl, hash_key(k, kl), NULL)) {
        reply(c, "NOTFOUND");
        return;
    }
    int plen = snprintf(p, sizeof(p), "DEL %.*s", (int)kl, k);
    int fits = log_check(st, (size_t)plen, -1);
    int rc = fits;
    if (fits >= 0) {
        table_del(st, k, kl);
        rc = log_append(st, fits, p, (size_t)plen);
    }
    if (rc)
        storage_error(c, rc);
    else
        reply(c, "OK");
}

/* INCR is logged as the SET of its result, so replay never depends on the old value. */
static void cmd_incr(struct kv_conn *c, const char *k, size_t kl)
{
    struct kv_entry *e = find(c->st, k, kl, hash_key(k, kl), NULL);
    int64_t v = 0;
    char num[24];
    if (e && parse_i64(e->val, e->vlen, &v) != 0) {
        reply(c, "ERR value is not an integer");
        return;
    }
    if (v == INT64_MAX) {
        reply(c, "ERR increment would overflow");
        return;
    }
    v++;
    int nl = snprintf(num, sizeof(num), "%lld", (long long)v);
    if (do_set(c, k, kl, num, (size_t)nl) == 0)
        reply(c, "VALUE %s", num);
}

static int tok_eq(const char *t, size_t n, const char *word)
{
    size_t wl = strlen(word);
    if (n != wl)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        if (ch != word[i])
            return 0;
    }
    return 1;
}

static void execute(struct kv_conn *c, char *line, size_t len)
{
    const char *tok[4];
    size_t tl[4];
    int nt = 0;
    size_t i = 0;

    if (len && line[len - 1] == '\r')
        len--;
    while (i < len) {
        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t s = i;
        while (i < len && line[i] != ' ')
            i++;
        if (nt < 4) {
            tok[nt] = line + s;
            tl[nt] = i - s;
        }
        nt++;
    }
    if (nt == 0) {
        reply(c, "ERR empty command");
        return;
    }
    struct {
        const char *name;
        int args;
        const char *usage;
    } cmds[] = {
        {"SET", 2, "SET key value"}, {"GET", 1, "GET key"}, {"DEL", 1, "DEL key"},
        {"INCR", 1, "INCR key"},     {"PING", 0, "PING"},
    };
    for (size_t ci = 0; ci < sizeof(cmds) / sizeof(cmds[0]); ci++) {
        if (!tok_eq(tok[0], tl[0], cmds[ci].name))
            continue;
        if (nt - 1 != cmds[ci].args) {
            reply(c, "ERR %s takes %d argument%s (%s), got %d", cmds[ci].name, cmds[ci].args,
                  cmds[ci].args == 1 ? "" : "s", cmds[ci].usage, nt - 1);
            return;
        }
        if (nt >= 2 && check_token(c, "key", tok[1], tl[1], KV_KEY_MAX))
            return;
        if (nt >= 3 && check_token(c, "value", tok[2], tl[2], KV_VALUE_MAX))
            return;
        if (c->st->failed && ci != 4) {
            reply(c, "ERR storage failed");
            return;
        }
        switch (ci) {
        case 0:
            cmd_set(c, tok[1], tl[1], tok[2], tl[2]);
            break;
        case 1:
            cmd_get(c, tok[1], tl[1]);
            break;
        case 2:
            cmd_del(c, tok[1], tl[1]);
            break;
        case 3:
            cmd_incr(c, tok[1], tl[1]);
            break;
        default:
            reply(c, "PONG");
            break;
        }
        return;
    }
    size_t shown = tl[0] > 32 ? 32 : tl[0];
    char name[33];
    for (size_t k = 0; k < shown; k++) {
        unsigned char ch = (unsigned char)tok[0][k];
        name[k] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    name[shown] = 0;
    reply(c, "ERR unknown command '%s' (expected SET, GET, DEL, INCR or PING)", name);
}

/* ---- connections */

struct kv_conn *kv_conn_open(struct kv_store *st, void *conn_arg)
{
    struct kv_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->st = st;
    c->arg = conn_arg;
    c->next = st->conns;
    if (st->conns)
        st->conns->prev = c;
    st->conns = c;
    return c;
}

void kv_conn_input(struct kv_conn *c, const char *data, size_t len)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (c->skipping) {
            if (nl)
                c->skipping = 0;
        } else if (c->inlen + take > KV_LINE_MAX) {
            reply(c, "ERR line too long (limit %u bytes)", KV_LINE_MAX);
            c->inlen = 0;
            c->skipping = nl == NULL;
        } else {
            memcpy(c->in + c->inlen, data, take);
            c->inlen += take;
            if (nl) {
                execute(c, c->in, c->inlen);
                c->inlen = 0;
            }
        }
        if (!nl)
            break;
        data = nl + 1;
        len -= take + 1;
    }
    out_send(c);
}

size_t kv_conn_pending(const struct kv_conn *c)
{
    return c->qlen;
}

void kv_conn_close(struct kv_conn *c)
{
    if (!c)
        return;
    struct kv_store *st = c->st;
    if (c->prev)
        c->prev->next = c->next;
    else
        st->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    while (c->qhead) {
        struct kv_reply *r = c->qhead;
        c->qhead = r->next;
        free(r);
    }
    free(c->out);
    free(c);
}

/* ---- flush and compaction */

static void fail(struct kv_store *st)
{
    if (!st->failed) {
        st->failed = 1;
        st->fail_durable = st->durable;
    }
    release_all(st);
}

static void flush_done(void *arg, int rc);

static void start_flush(struct kv_store *st, uint64_t covers)
{
    st->flush_inflight = 1;
    st->flush_covers = covers;
    st->meta_dirty = 0;
    st->stats.flushes++;
    int rc = st->be->flush(st->be->opaque, flush_done, st);
    if (rc) {
        st->flush_inflight = 0;
        fail(st);
    }
}

/* Write a snapshot of every live key at the start of the other region. */
static void start_compaction(struct kv_store *st)
{
    uint32_t ngen = st->gen + 1, nreg = 1 - st->region;
    uint64_t base = st->next_seq;
    char p[KV_LINE_MAX];

    append_reset(st, nreg, ngen, base);
    st->want_compact = 0;
    for (uint32_t b = 0; b < st->nbuckets; b++) {
        for (struct kv_entry *e = st->buckets[b]; e; e = e->next) {
            int plen = snprintf(p, sizeof(p), "SET %s %s", e->key, e->val);
            if (append_record(st, p, (size_t)plen)) {
                fail(st);
                return;
            }
        }
    }
    /* An empty snapshot writes nothing: stale records of older generations never replay. */
    if (write_out(st)) {
        fail(st);
        return;
    }
    st->compact = COMPACT_DATA;
    st->compact_covers = st->applied;
    st->compact_gen = ngen;
    st->compact_region = nreg;
    st->compact_base = base;
    st->stats.compactions++;
    start_flush(st, st->durable);
}

void kv_store_commit(struct kv_store *st)
{
    if (st->flush_inflight || st->failed || st->compact != COMPACT_IDLE)
        return;
    if (st->want_compact) {
        start_compaction(st);
        return;
    }
    if (st->wlen == st->wflushed && !st->meta_dirty && st->applied == st->durable)
        return;
    if (write_out(st)) {
        fail(st);
        return;
    }
    start_flush(st, st->applied);
}

static void flush_done(void *arg, int rc)
{
    struct kv_store *st = arg;
    st->flush_inflight = 0;
    if (rc) {
        fail(st);
        return;
    }
    switch (st->compact) {
    case COMPACT_DATA:
        if (write_super(st, st->compact_gen, st->compact_region, st->compact_base)) {
            fail(st);
            return;
        }
        st->compact = COMPACT_SUPER;
        start_flush(st, st->durable);
        return;
    case COMPACT_SUPER:
        st->gen = st->compact_gen;
        st->region = st->compact_region;
        st->compact = COMPACT_IDLE;
        if (st->compact_covers > st->durable)
            st->durable = st->compact_covers;
        break;
    case COMPACT_IDLE:
        if (st->flush_covers > st->durable)
            st->durable = st->flush_covers;
        break;
    }
    release_all(st);
    if (st->applied > st->durable || st->want_compact || st->wlen != st->wflushed)
        kv_store_commit(st);
}

int kv_store_busy(const struct kv_store *st)
{
    return st->flush_inflight || st->compact != COMPACT_IDLE || st->applied > st->durable ||
           st->meta_dirty;
}

/* ---- open and replay */

static int parse_super(const uint8_t *s, uint64_t capacity, uint32_t *gen, uint32_t *region,
                       uint64_t *base)
{
    if (memcmp(s, SB_MAGIC, 8) != 0 || get32(s + 8) != SB_VERSION || get32(s + 12) != KV_SECTOR)
        return -1;
    if (get32(s + 40) != kv_crc32(0, s, 40) || get32(s + 28) > 1)
        return -1;
    if (get64(s + 16) != capacity)
        return -2;
    *gen = get32(s + 24);
    *region = get32(s + 28);
    *base = get64(s + 32);
    return 0;
}

/* Apply a logged payload during replay; -1 when it is not a valid record payload. */
static int replay_apply(struct kv_store *st, const char *p, size_t n)
{
    char buf[KV_LINE_MAX + 1];
    memcpy(buf, p, n);
    buf[n] = 0;
    char *sp1 = memchr(buf, ' ', n);
    if (!sp1)
        return -1;
    char *k = sp1 + 1;
    size_t rest = n - (size_t)(k - buf);
    if (n >= 4 && memcmp(buf, "SET ", 4) == 0) {
        char *sp2 = memchr(k, ' ', rest);
        if (!sp2 || sp2 == k)
            return -1;
        size_t kl = (size_t)(sp2 - k), vl = rest - kl - 1;
        if (kl > KV_KEY_MAX || vl > KV_VALUE_MAX || vl == 0)
            return -1;
        return table_set(st, k, kl, sp2 + 1, vl) ? -2 : 0;
    }
    if (n >= 4 && memcmp(buf, "DEL ", 4) == 0) {
        if (rest == 0 || rest > KV_KEY_MAX)
            return -1;
        table_del(st, k, rest);
        return 0;
    }
    return -1;
}

/*
 * Replay the active region: records must carry the generation, consecutive
 * sequence numbers from base and an unbroken CRC chain. The first record that
 * does not is the end of the log. Leaves the append position after the last
 * good record.
 */
static int replay(struct kv_store *st, uint64_t base, const char **err)
{
    uint64_t pos = region_start(st, st->region), end = pos + st->region_size;
    uint64_t seq = base;
    uint32_t crc = chain_seed(st->gen);
    size_t bufcap = REPLAY_CHUNK + REC_HDR + KV_LINE_MAX + KV_SECTOR;
    uint8_t *buf = malloc(bufcap);
    uint64_t buf_off = pos; /* disk offset of buf[0], sector aligned */
    size_t have = 0;
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    for (;;) {
        size_t at = (size_t)(pos - buf_off);
        if (have - at < REC_HDR + KV_LINE_MAX && buf_off + have < end) {
            /* Slide the window: keep from the sector holding pos, read more. */
            size_t keep = at / KV_SECTOR * KV_SECTOR;
            memmove(buf, buf + keep, have - keep);
            have -= keep;
            buf_off += keep;
            at -= keep;
            uint64_t want = REPLAY_CHUNK;
            if (buf_off + have + want > end)
                want = end - (buf_off + have);
            rc = st->be->read(st->be->opaque, buf_off + have, buf + have, (size_t)want);
            if (rc) {
                *err = "reading the log failed";
                goto out;
            }
            have += (size_t)want;
        }
        if (have - at < REC_HDR)
            break;
        const uint8_t *r = buf + at;
        size_t plen = get16(r + 16);
        if (get32(r) != REC_MAGIC || get32(r + 4) != st->gen || get64(r + 8) != seq || plen == 0 ||
            plen > KV_LINE_MAX || get16(r + 18) != 0 || have - at < REC_HDR + plen)
            break;
        uint32_t c = kv_crc32(crc, r + 4, 16);
        c = kv_crc32(c, r + REC_HDR, plen);
        if (c != get32(r + 20))
            break;
        int ar = replay_apply(st, (const char *)r + REC_HDR, plen);
        if (ar == -1)
            break;
        if (ar == -2) {
            *err = "the log holds more keys than the key limit allows";
            rc = -ENOSPC;
            goto out;
        }
        crc = c;
        seq++;
        pos += REC_HDR + plen;
        st->stats.replayed++;
    }
    /* Resume appending at pos: reload its partial sector into wbuf. */
    st->app_gen = st->gen;
    st->app_start = region_start(st, st->region);
    st->app_end = end;
    st->next_seq = seq;
    st->prev_crc = crc;
    st->wbuf_off = pos / KV_SECTOR * KV_SECTOR;
    st->wlen = (size_t)(pos - st->wbuf_off);
    st->wflushed = st->wlen;
    rc = wbuf_reserve(st, KV_SECTOR);
    if (rc)
        goto out;
    if (st->wlen)
        memcpy(st->wbuf, buf + (st->wbuf_off - buf_off), st->wlen);
out:
    free(buf);
    return rc;
}

int kv_store_open(const struct kv_config *cfg, const struct kv_backend *be, struct kv_store **out,
                  const char **err)
{
    static const char *dummy;
    struct kv_store *st = NULL;
    uint8_t sb[2][KV_SECTOR];
    int rc;

    if (!err)
        err = &dummy;
    *err = "";
    *out = NULL;
    if (!cfg->send) {
        *err = "no send callback";
        return -EINVAL;
    }
    if (be->capacity < MIN_CAPACITY || be->capacity % KV_SECTOR) {
        *err = "log capacity must be a multiple of 512 bytes and at least 16 KiB";
        return -EINVAL;
    }
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->cfg = *cfg;
    if (!st->cfg.max_keys)
        st->cfg.max_keys = KV_DEFAULT_MAX_KEYS;
    st->be = be;
    st->capacity = be->capacity;
    st->region_size = (be->capacity - DATA_START) / 2 / KV_SECTOR * KV_SECTOR;
    st->nbuckets = 16;
    while (st->nbuckets < st->cfg.max_keys)
        st->nbuckets *= 2;
    st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
    if (!st->buckets) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = be->read(be->opaque, 0, sb, sizeof(sb));
    if (rc) {
        *err = "reading the superblocks failed";
        goto fail;
    }
    uint32_t g[2], r[2];
    uint64_t b[2];
    int p0 = parse_super(sb[0], st->capacity, &g[0], &r[0], &b[0]);
    int p1 = parse_super(sb[1], st->capacity, &g[1], &r[1], &b[1]);
    int ok0 = p0 == 0, ok1 = p1 == 0;
    if (p0 == -2 || p1 == -2) {
        /* Never reformat a log that was made for another size: that would drop its data. */
        *err = "the log was formatted for a different capacity";
        rc = -EINVAL;
        goto fail;
    }
    if (!ok0 && !ok1) {
        /* Fresh disk: generation 1 in region 0, region start zeroed against stale records. */
        uint8_t zero[KV_SECTOR] = {0};
        st->gen = 1;
        st->region = 0;
        rc = be->write(be->opaque, region_start(st, 0), zero, KV_SECTOR);
        if (!rc)
            rc = write_super(st, 1, 0, 1);
        if (rc) {
            *err = "writing the superblock failed";
            goto fail;
        }
        st->meta_dirty = 1;
        append_reset(st, 0, 1, 1);
        rc = wbuf_reserve(st, KV_SECTOR);
        if (rc)
            goto fail;
    } else {
        int pick = ok0 && (!ok1 || g[0] > g[1]) ? 0 : 1;
        st->gen = g[pick];
        st->region = r[pick];
        rc = replay(st, b[pick], err);
        if (rc)
            goto fail;
    }
    *out = st;
    return 0;
fail:
    kv_store_close(st);
    return rc;
}

void kv_store_close(struct kv_store *st)
{
    if (!st)
        return;
    while (st->conns)
        kv_conn_close(st->conns);
    if (st->buckets) {
        for (uint32_t i = 0; i < st->nbuckets; i++) {
            struct kv_entry *e = st->buckets[i];
            while (e) {
                struct kv_entry *n = e->next;
                free(e->val);
                free(e);
                e = n;
            }
        }
    }
    free(st->buckets);
    free(st->wbuf);
    free(st);
}

void kv_store_stats(const struct kv_store *st, struct kv_stats *out)
{
    *out = st->stats;
    out->keys = st->nkeys;
    out->durable = st->durable;
    out->log_bytes = append_pos(st) - st->app_start;
    out->log_capacity = st->region_size;
    out->generation = st->gen;
}
