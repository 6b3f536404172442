/* Unit tests of the kvstore core: protocol, held replies, INCR, limits, replay, compaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_core.h"

/*
 * A memory disk with a volatile cache: write() lands in vol, flush() copies
 * vol to dur. A "crash" reopens a store on a copy of dur. With async set,
 * flush completions wait until complete_flush() is called.
 */
struct memdisk {
    struct kv_backend be;
    uint8_t *vol, *dur;
    size_t cap;
    int async;
    kv_flush_done_fn *pending_done;
    void *pending_arg;
    int flushes;
    int fail_flush;
};

static int md_read(void *o, uint64_t off, void *buf, size_t len)
{
    struct memdisk *m = o;
    assert_true(off % KV_SECTOR == 0 && len % KV_SECTOR == 0 && off + len <= m->cap);
    memcpy(buf, m->vol + off, len);
    return 0;
}

static int md_write(void *o, uint64_t off, const void *buf, size_t len)
{
    struct memdisk *m = o;
    assert_true(off % KV_SECTOR == 0 && len % KV_SECTOR == 0 && off + len <= m->cap);
    memcpy(m->vol + off, buf, len);
    return 0;
}

static int md_flush(void *o, kv_flush_done_fn *done, void *arg)
{
    struct memdisk *m = o;
    assert_null(m->pending_done); /* the core never has two flushes outstanding */
    m->flushes++;
    if (m->async) {
        m->pending_done = done;
        m->pending_arg = arg;
        return 0;
    }
    if (!m->fail_flush)
        memcpy(m->dur, m->vol, m->cap);
    done(arg, m->fail_flush ? -5 : 0);
    return 0;
}

static void complete_flush(struct memdisk *m)
{
    kv_flush_done_fn *d = m->pending_done;
    assert_non_null(d);
    m->pending_done = NULL;
    memcpy(m->dur, m->vol, m->cap);
    d(m->pending_arg, 0);
}

static struct memdisk *md_new(size_t cap)
{
    struct memdisk *m = calloc(1, sizeof(*m));
    m->cap = cap;
    m->vol = calloc(1, cap);
    m->dur = calloc(1, cap);
    m->be = (struct kv_backend){
        .opaque = m, .capacity = cap, .read = md_read, .write = md_write, .flush = md_flush};
    return m;
}

/* A disk whose cache holds exactly the durable bytes of m (what a crash leaves). */
static struct memdisk *md_crash_copy(const struct memdisk *m)
{
    struct memdisk *c = md_new(m->cap);
    memcpy(c->vol, m->dur, m->cap);
    memcpy(c->dur, m->dur, m->cap);
    return c;
}

static void md_free(struct memdisk *m)
{
    if (!m)
        return;
    free(m->vol);
    free(m->dur);
    free(m);
}

struct sink {
    char buf[1 << 16];
    size_t len;
};

static void sink_send(void *arg, const char *d, size_t n)
{
    struct sink *s = arg;
    assert_true(s->len + n < sizeof(s->buf));
    memcpy(s->buf + s->len, d, n);
    s->len += n;
    s->buf[s->len] = 0;
}

static struct kv_store *open_store(struct memdisk *m, uint32_t max_keys)
{
    struct kv_config cfg = {.max_keys = max_keys, .send = sink_send};
    struct kv_store *st = NULL;
    const char *err = NULL;
    int rc = kv_store_open(&cfg, &m->be, &st, &err);
    if (rc)
        fail_msg("kv_store_open: %d %s", rc, err);
    return st;
}

/* Send one chunk, commit, and return (and clear) everything the connection got. */
static const char *exchange(struct kv_store *st, struct kv_conn *c, struct sink *s, const char *in)
{
    static char got[1 << 16];
    kv_conn_input(c, in, strlen(in));
    kv_store_commit(st);
    memcpy(got, s->buf, s->len + 1);
    s->len = 0;
    s->buf[0] = 0;
    return got;
}

static void test_protocol_basics(void **state)
{
    struct memdisk *m = md_new(1 << 20);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);

    assert_string_equal(exchange(st, c, &s, "PING\n"), "PONG\n");
    assert_string_equal(exchange(st, c, &s, "GET a\n"), "NOTFOUND\n");
    assert_string_equal(exchange(st, c, &s, "SET a hello\n"), "OK\n");
    assert_string_equal(exchange(st, c, &s, "GET a\n"), "VALUE hello\n");
    assert_string_equal(exchange(st, c, &s, "  set   a   world  \r\n"), "OK\n");
    assert_string_equal(exchange(st, c, &s, "get a\r\n"), "VALUE world\n");
    assert_string_equal(exchange(st, c, &s, "DEL a\n"), "OK\n");
    assert_string_equal(exchange(st, c, &s, "DEL a\n"), "NOTFOUND\n");
    assert_string_equal(exchange(st, c, &s, "GET a\n"), "NOTFOUND\n");
    /* several commands in one chunk, answered in order */
    assert_string_equal(exchange(st, c, &s, "SET x 1\nINCR x\nGET x\nPING\n"),
                        "OK\nVALUE 2\nVALUE 2\nPONG\n");
    kv_store_close(st);
    md_free(m);
}

static void test_protocol_errors(void **state)
{
    struct memdisk *m = md_new(1 << 20);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    char line[600];

    assert_string_equal(exchange(st, c, &s, "FROB a\n"),
                        "ERR unknown command 'FROB' (expected SET, GET, DEL, INCR or PING)\n");
    assert_string_equal(exchange(st, c, &s, "\n"), "ERR empty command\n");
    assert_string_equal(exchange(st, c, &s, "   \r\n"), "ERR empty command\n");
    assert_string_equal(exchange(st, c, &s, "SET a\n"),
                        "ERR SET takes 2 arguments (SET key value), got 1\n");
    assert_string_equal(exchange(st, c, &s, "SET a b c\n"),
                        "ERR SET takes 2 arguments (SET key value), got 3\n");
    assert_string_equal(exchange(st, c, &s, "GET\n"),
                        "ERR GET takes 1 argument (GET key), got 0\n");
    assert_string_equal(exchange(st, c, &s, "PING x\n"),
                        "ERR PING takes 0 arguments (PING), got 1\n");
    assert_string_equal(exchange(st, c, &s, "SET k\tx v\n"),
                        "ERR key contains byte 0x09 (printable ASCII without spaces only)\n");

    /* key of exactly 64 bytes is fine, 65 is not */
    snprintf(line, sizeof(line), "SET %0*d v\n", 64, 7);
    assert_string_equal(exchange(st, c, &s, line), "OK\n");
    snprintf(line, sizeof(line), "SET %0*d v\n", 65, 7);
    assert_string_equal(exchange(st, c, &s, line), "ERR key is 65 bytes, longer than 64\n");
    snprintf(line, sizeof(line), "SET k %0*d\n", 256, 7);
    assert_string_equal(exchange(st, c, &s, line), "OK\n");
    snprintf(line, sizeof(line), "SET k %0*d\n", 257, 7);
    assert_string_equal(exchange(st, c, &s, line), "ERR value is 257 bytes, longer than 256\n");
    /* nothing invalid reached the store */
    snprintf(line, sizeof(line), "GET %0*d\n", 65, 7);
    assert_string_equal(exchange(st, c, &s, line), "ERR key is 65 bytes, longer than 64\n");
    kv_store_close(st);
    md_free(m);
}

static void test_partial_lines(void **state)
{
    struct memdisk *m = md_new(1 << 20);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    const char *script = "SET key1 value1\r\nGET key1\nINCR n\n";

    for (const char *p = script; *p; p++) {
        kv_conn_input(c, p, 1);
        kv_store_commit(st);
    }
    assert_string_equal(s.buf, "OK\nVALUE value1\nVALUE 1\n");
    s.len = 0;

    /* a second connection's partial line does not mix with the first's */
    struct sink s2 = {0};
    struct kv_conn *c2 = kv_conn_open(st, &s2);
    kv_conn_input(c, "GET ke", 6);
    kv_conn_input(c2, "PI", 2);
    kv_conn_input(c, "y1\n", 3);
    kv_conn_input(c2, "NG\n", 3);
    kv_store_commit(st);
    assert_string_equal(s.buf, "VALUE value1\n");
    assert_string_equal(s2.buf, "PONG\n");
    s.len = 0;

    /* an overlong line is refused once, skipped to its newline, and the next line works */
    char big[3000];
    memset(big, 'a', sizeof(big));
    kv_conn_input(c, "SET k ", 6);
    kv_conn_input(c, big, sizeof(big));
    kv_conn_input(c, big, sizeof(big));
    kv_conn_input(c, "\nPING\n", 6);
    assert_string_equal(s.buf, "ERR line too long (limit 1024 bytes)\nPONG\n");
    kv_store_close(st);
    md_free(m);
}

static void test_incr(void **state)
{
    struct memdisk *m = md_new(1 << 20);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);

    assert_string_equal(exchange(st, c, &s, "INCR n\n"), "VALUE 1\n");
    assert_string_equal(exchange(st, c, &s, "INCR n\n"), "VALUE 2\n");
    assert_string_equal(exchange(st, c, &s, "GET n\n"), "VALUE 2\n");
    assert_string_equal(exchange(st, c, &s, "SET n -5\nINCR n\n"), "OK\nVALUE -4\n");
    assert_string_equal(exchange(st, c, &s, "SET n abc\nINCR n\n"),
                        "OK\nERR value is not an integer\n");
    assert_string_equal(exchange(st, c, &s, "SET n 12x\nINCR n\n"),
                        "OK\nERR value is not an integer\n");
    assert_string_equal(exchange(st, c, &s, "SET n 99999999999999999999\nINCR n\n"),
                        "OK\nERR value is not an integer\n");
    assert_string_equal(exchange(st, c, &s, "SET n 9223372036854775807\nINCR n\n"),
                        "OK\nERR increment would overflow\n");
    assert_string_equal(exchange(st, c, &s, "SET n -9223372036854775808\nINCR n\n"),
                        "OK\nVALUE -9223372036854775807\n");
    assert_string_equal(exchange(st, c, &s, "GET n\n"), "VALUE -9223372036854775807\n");
    kv_store_close(st);
    md_free(m);
}

static void test_held_until_flush(void **state)
{
    struct memdisk *m = md_new(1 << 20);
    struct kv_store *st = open_store(m, 0);
    struct sink s1 = {0}, s2 = {0};
    m->async = 1;
    kv_store_commit(st); /* the fresh format */
    complete_flush(m);
    struct kv_conn *a = kv_conn_open(st, &s1), *b = kv_conn_open(st, &s2);

    /* a read with nothing pending is answered at once */
    kv_conn_input(b, "PING\n", 5);
    assert_string_equal(s2.buf, "PONG\n");
    s2.len = 0;
    s2.buf[0] = 0;

    kv_conn_input(a, "SET k v1\nPING\n", 14);
    assert_int_equal(s1.len, 0);
    /* b observes state that is not durable yet: its reply waits too */
    kv_conn_input(b, "GET k\n", 6);
    assert_int_equal(s2.len, 0);
    assert_int_equal(kv_conn_pending(a), 2);
    assert_int_equal(kv_conn_pending(b), 1);
    assert_true(kv_store_busy(st));
    kv_store_commit(st);
    assert_int_equal(s1.len, 0); /* written, flush outstanding */
    /* writes during the outstanding flush wait for the next one */
    kv_conn_input(b, "SET k v2\n", 9);
    kv_store_commit(st); /* no second flush while one is outstanding */
    assert_int_equal(m->flushes, 2);
    complete_flush(m);
    assert_string_equal(s1.buf, "OK\nPONG\n");
    assert_string_equal(s2.buf, "VALUE v1\n");
    assert_int_equal(m->flushes, 3); /* the completion started the next flush */
    complete_flush(m);
    assert_string_equal(s2.buf, "VALUE v1\nOK\n");
    assert_false(kv_store_busy(st));
    kv_store_close(st);
    md_free(m);
}

static void test_flush_failure(void **state)
{
    struct memdisk *m = md_new(1 << 20);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    assert_string_equal(exchange(st, c, &s, "SET a 1\n"), "OK\n");
    m->fail_flush = 1;
    /* a write whose flush failed is never answered OK */
    assert_string_equal(exchange(st, c, &s, "SET a 2\n"), "ERR storage failed\n");
    assert_string_equal(exchange(st, c, &s, "GET a\n"), "ERR storage failed\n");
    assert_string_equal(exchange(st, c, &s, "PING\n"), "PONG\n");
    kv_store_close(st);
    md_free(m);
}

static void test_key_limit(void **state)
{
    struct memdisk *m = md_new(1 << 20);
    struct kv_store *st = open_store(m, 3);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    assert_string_equal(exchange(st, c, &s, "SET a 1\nSET b 2\nSET c 3\n"), "OK\nOK\nOK\n");
    assert_string_equal(exchange(st, c, &s, "SET d 4\n"), "ERR too many keys (limit 3)\n");
    assert_string_equal(exchange(st, c, &s, "INCR e\n"), "ERR too many keys (limit 3)\n");
    assert_string_equal(exchange(st, c, &s, "SET a 9\nGET d\n"), "OK\nNOTFOUND\n");
    assert_string_equal(exchange(st, c, &s, "DEL b\nSET d 4\n"), "OK\nOK\n");
    kv_store_close(st);

    /* a log with more keys than a smaller limit allows is refused, not truncated */
    struct kv_config cfg = {.max_keys = 2, .send = sink_send};
    const char *err;
    assert_int_not_equal(kv_store_open(&cfg, &m->be, &st, &err), 0);
    assert_string_equal(err, "the log holds more keys than the key limit allows");
    md_free(m);
}

/* ---- replay */

#define NOPS 40

/* Operation i of the replay script and the state it leaves for key k<i%5>. */
static void script_line(int i, char *buf, size_t n)
{
    if (i % 7 == 3)
        snprintf(buf, n, "DEL k%d\n", i % 5);
    else if (i % 7 == 5)
        snprintf(buf, n, "INCR c\n");
    else
        snprintf(buf, n, "SET k%d v%d\n", i % 5, i);
}

/* Expected GET replies after the first `ops` script lines, as one string. */
static void expected_state(int ops, char *out, size_t n)
{
    char val[6][32];
    int present[6] = {0};
    long counter = 0;
    for (int i = 0; i < ops; i++) {
        if (i % 7 == 3)
            present[i % 5] = 0;
        else if (i % 7 == 5)
            counter++;
        else {
            present[i % 5] = 1;
            snprintf(val[i % 5], sizeof(val[0]), "v%d", i);
        }
    }
    size_t len = 0;
    for (int k = 0; k < 5; k++)
        len +=
            (size_t)snprintf(out + len, n - len, present[k] ? "VALUE %s\n" : "NOTFOUND\n", val[k]);
    if (counter)
        snprintf(out + len, n - len, "VALUE %ld\n", counter);
    else
        snprintf(out + len, n - len, "NOTFOUND\n");
}

static const char *dump(struct kv_store *st, struct kv_conn *c, struct sink *s)
{
    return exchange(st, c, s, "GET k0\nGET k1\nGET k2\nGET k3\nGET k4\nGET c\n");
}

/*
 * Run the script with one flush per operation, remembering where each record
 * ends; then cut the durable log at every byte from the first record to the
 * end (zeros or garbage after the cut) and check that replay restores exactly
 * the operations whose records are whole.
 */
static void test_replay_every_cut(void **state)
{
    struct memdisk *m = md_new(64 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    uint64_t rec_end[NOPS + 1];
    int nrec = 0, rec_op[NOPS + 1];
    struct kv_stats ks;
    char line[64], want[512], got[512];

    kv_store_stats(st, &ks);
    rec_end[0] = ks.log_bytes;
    rec_op[0] = 0;
    for (int i = 0; i < NOPS; i++) {
        script_line(i, line, sizeof(line));
        exchange(st, c, &s, line);
        kv_store_stats(st, &ks);
        if (ks.log_bytes != rec_end[nrec]) { /* DEL of a missing key writes nothing */
            nrec++;
            rec_end[nrec] = ks.log_bytes;
        }
        rec_op[nrec] = i + 1;
    }
    assert_true(nrec > 20);
    const uint64_t region = 1024; /* DATA_START: region 0 of generation 1 */

    for (uint64_t cut = 0; cut <= rec_end[nrec]; cut++) {
        for (int garbage = 0; garbage < 2; garbage++) {
            struct memdisk *cm = md_crash_copy(m);
            for (uint64_t b = region + cut; b < region + rec_end[nrec] + 64; b++)
                cm->vol[b] = garbage ? (uint8_t)(b * 37 + 11) : 0;
            int whole = 0;
            while (whole < nrec && rec_end[whole + 1] <= cut)
                whole++;
            struct kv_store *rs = open_store(cm, 0);
            struct sink rsink = {0};
            struct kv_conn *rc = kv_conn_open(rs, &rsink);
            kv_store_stats(rs, &ks);
            assert_int_equal(ks.replayed, (uint64_t)whole);
            expected_state(rec_op[whole], want, sizeof(want));
            const char *d = dump(rs, rc, &rsink);
            assert_true(strlen(d) < sizeof(got));
            memcpy(got, d, strlen(d) + 1);
            if (strcmp(got, want) != 0)
                fail_msg("cut at %llu (garbage %d): got\n%s\nwant\n%s", (unsigned long long)cut,
                         garbage, got, want);
            /* the store goes on appending after the cut, and that survives a crash too */
            assert_string_equal(exchange(rs, rc, &rsink, "SET after cut\n"), "OK\n");
            struct memdisk *cm2 = md_crash_copy(cm);
            struct kv_store *rs2 = open_store(cm2, 0);
            struct sink s3 = {0};
            struct kv_conn *c3 = kv_conn_open(rs2, &s3);
            assert_string_equal(exchange(rs2, c3, &s3, "GET after\n"), "VALUE cut\n");
            kv_store_close(rs2);
            md_free(cm2);
            kv_store_close(rs);
            md_free(cm);
        }
    }
    kv_store_close(st);
    md_free(m);
}

/* A flipped bit in record k ends the log at k: nothing after a corrupt record is applied. */
static void test_replay_corrupt_record(void **state)
{
    struct memdisk *m = md_new(64 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    struct kv_stats ks;
    uint64_t ends[4];
    for (int i = 0; i < 4; i++) {
        char line[32];
        snprintf(line, sizeof(line), "SET k%d v%d\n", i, i);
        exchange(st, c, &s, line);
        kv_store_stats(st, &ks);
        ends[i] = ks.log_bytes;
    }
    struct memdisk *cm = md_crash_copy(m);
    cm->vol[1024 + ends[1] + 30] ^= 0x01; /* inside record 2's payload */
    struct kv_store *rs = open_store(cm, 0);
    struct sink rs_s = {0};
    struct kv_conn *rc = kv_conn_open(rs, &rs_s);
    kv_store_stats(rs, &ks);
    assert_int_equal(ks.replayed, 2);
    assert_string_equal(exchange(rs, rc, &rs_s, "GET k1\nGET k2\nGET k3\n"),
                        "VALUE v1\nNOTFOUND\nNOTFOUND\n");
    kv_store_close(rs);
    md_free(cm);
    kv_store_close(st);
    md_free(m);
}

/*
 * Records of a crashed batch that lie beyond a torn record must not come back
 * once a newer record of the same size and sequence number was written over
 * the torn one (the CRC chain). Record 1 and 2 fill the first sector exactly,
 * so record 3 sits alone in the second sector and is not overwritten.
 */
static void test_replay_stale_tail(void **state)
{
    struct memdisk *m = md_new(64 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    char l1[300], l2[300], l2b[300];
    snprintf(l1, sizeof(l1), "SET a %0*d\n", 200, 1);  /* record of 24 + 206 bytes */
    snprintf(l2, sizeof(l2), "SET bb %0*d\n", 251, 2); /* record of 24 + 258 bytes */
    snprintf(l2b, sizeof(l2b), "SET bb %0*d\n", 251, 3);
    exchange(st, c, &s, l1);
    char batch[700];
    snprintf(batch, sizeof(batch), "%sSET c 3\n", l2);
    exchange(st, c, &s, batch); /* one batch: records 2 and 3 */
    struct memdisk *cm = md_crash_copy(m);
    cm->vol[1024 + 230 + 5] ^= 0xff; /* tear record 2; record 3 (at 512) stays intact */
    struct kv_store *rs = open_store(cm, 0);
    struct kv_stats ks;
    kv_store_stats(rs, &ks);
    assert_int_equal(ks.replayed, 1);
    struct sink s2 = {0};
    struct kv_conn *c2 = kv_conn_open(rs, &s2);
    assert_string_equal(exchange(rs, c2, &s2, l2b), "OK\n");
    assert_int_equal(cm->dur[1024 + 512], 'K'); /* the stale record 3 is still on disk */
    struct memdisk *cm2 = md_crash_copy(cm);
    struct kv_store *rs2 = open_store(cm2, 0);
    kv_store_stats(rs2, &ks);
    assert_int_equal(ks.replayed, 2);
    struct sink s3 = {0};
    struct kv_conn *c3 = kv_conn_open(rs2, &s3);
    assert_string_equal(exchange(rs2, c3, &s3, "GET c\n"), "NOTFOUND\n");
    kv_store_close(rs2);
    md_free(cm2);
    kv_store_close(rs);
    md_free(cm);
    kv_store_close(st);
    md_free(m);
}

/* A full log region is compacted into the other one; the data survives reopening. */
static void test_compaction(void **state)
{
    struct memdisk *m = md_new(16 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    struct kv_stats ks;
    char line[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(line, sizeof(line), "SET key%d value%d\n", i % 10, i);
        assert_string_equal(exchange(st, c, &s, line), "OK\n");
        if (i % 3 == 0)
            assert_memory_equal(exchange(st, c, &s, "INCR n\n"), "VALUE ", 6);
    }
    kv_store_stats(st, &ks);
    assert_true(ks.compactions >= 5);
    assert_true(ks.generation >= 6);
    struct memdisk *cm = md_crash_copy(m);
    struct kv_store *rs = open_store(cm, 0);
    struct sink s2 = {0};
    struct kv_conn *c2 = kv_conn_open(rs, &s2);
    for (int k = 0; k < 10; k++) {
        char want[64];
        snprintf(line, sizeof(line), "GET key%d\n", k);
        snprintf(want, sizeof(want), "VALUE value%d\n", 1990 + k);
        assert_string_equal(exchange(rs, c2, &s2, line), want);
    }
    assert_string_equal(exchange(rs, c2, &s2, "GET n\n"), "VALUE 667\n");
    kv_store_close(rs);
    md_free(cm);
    kv_store_close(st);
    md_free(m);
}

/* A crash between the snapshot and its superblock keeps the old region in use. */
static void test_compaction_crash(void **state)
{
    struct memdisk *m = md_new(16 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    struct kv_stats ks;
    char line[64];
    m->async = 1;
    kv_store_commit(st);
    complete_flush(m);
    for (int i = 0;; i++) {
        snprintf(line, sizeof(line), "SET key%d value%d\n", i % 10, i);
        kv_conn_input(c, line, strlen(line));
        kv_store_commit(st);
        kv_store_stats(st, &ks);
        if (ks.compactions == 1)
            break;
        complete_flush(m);
        assert_int_equal(s.len, 3 * (size_t)(i + 1));
    }
    /* snapshot written, its flush outstanding: crash with only the previous durable state */
    struct memdisk *cm = md_crash_copy(m);
    struct kv_store *rs = open_store(cm, 0);
    kv_store_stats(rs, &ks);
    assert_int_equal(ks.generation, 1);
    kv_store_close(rs);
    md_free(cm);
    complete_flush(m); /* snapshot durable, superblock written */
    assert_int_equal(s.len % 3, 0);
    size_t before = s.len;
    cm = md_crash_copy(m); /* crash before the superblock flush: still generation 1 */
    rs = open_store(cm, 0);
    kv_store_stats(rs, &ks);
    assert_int_equal(ks.generation, 1);
    kv_store_close(rs);
    md_free(cm);
    complete_flush(m);
    assert_int_equal(s.len, before + 3); /* the write that triggered compaction is answered */
    cm = md_crash_copy(m);
    rs = open_store(cm, 0);
    kv_store_stats(rs, &ks);
    assert_int_equal(ks.generation, 2);
    kv_store_close(rs);
    md_free(cm);
    kv_store_close(st);
    md_free(m);
}

static void test_disk_full(void **state)
{
    struct memdisk *m = md_new(16 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    char line[400], val[201];
    memset(val, 'x', 200);
    val[200] = 0;
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof(line), "SET key%d %s\n", i, val);
        const char *r = exchange(st, c, &s, line);
        if (strcmp(r, "OK\n") == 0) {
            ok++;
            continue;
        }
        assert_string_equal(r, "ERR disk full\n");
    }
    /* the refused writes never happened; accepted ones survive a crash */
    struct memdisk *cm = md_crash_copy(m);
    struct kv_store *rs = open_store(cm, 0);
    struct kv_stats ks;
    kv_store_stats(rs, &ks);
    assert_int_equal(ks.keys, (uint64_t)ok);
    kv_store_close(rs);
    md_free(cm);
    /* deleting makes room again */
    assert_string_equal(exchange(st, c, &s, "DEL key0\nDEL key1\nDEL key2\n"), "OK\nOK\nOK\n");
    snprintf(line, sizeof(line), "SET again %s\n", val);
    assert_string_equal(exchange(st, c, &s, line), "OK\n");
    kv_store_close(st);
    md_free(m);
}

static void test_open_errors(void **state)
{
    struct kv_config cfg = {.send = sink_send};
    struct kv_store *st;
    const char *err;
    struct memdisk *m = md_new(8 * 1024);
    assert_int_not_equal(kv_store_open(&cfg, &m->be, &st, &err), 0);
    assert_string_equal(err, "log capacity must be a multiple of 512 bytes and at least 16 KiB");
    md_free(m);

    /* a log made for another size is refused rather than reformatted */
    m = md_new(64 * 1024);
    st = open_store(m, 0);
    kv_store_commit(st);
    kv_store_close(st);
    struct memdisk *big = md_new(128 * 1024);
    memcpy(big->vol, m->dur, m->cap);
    assert_int_not_equal(kv_store_open(&cfg, &big->be, &st, &err), 0);
    assert_string_equal(err, "the log was formatted for a different capacity");
    md_free(big);
    md_free(m);
}

/* The bytes of a record and a superblock, as docs/kvstore-protocol.md specifies them. */
static void test_on_disk_bytes(void **state)
{
    struct memdisk *m = md_new(64 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    exchange(st, c, &s, "SET a b\n");
    const uint8_t *sb = m->dur + 512; /* generation 1 lives in sector 1 */
    assert_memory_equal(sb, "TDMKVSB1", 8);
    assert_int_equal(sb[8], 1); /* version */
    assert_int_equal(sb[12] | sb[13] << 8, 512);
    assert_int_equal(sb[16] | sb[17] << 8 | sb[18] << 16, 64 * 1024);
    assert_int_equal(sb[24], 1); /* generation */
    assert_int_equal(sb[28], 0); /* region */
    assert_int_equal(sb[32], 1); /* first sequence number */
    uint32_t crc =
        (uint32_t)sb[40] | (uint32_t)sb[41] << 8 | (uint32_t)sb[42] << 16 | (uint32_t)sb[43] << 24;
    assert_int_equal(crc, kv_crc32(0, sb, 40));
    const uint8_t *r = m->dur + 1024;
    static const uint8_t hdr[20] = {'K', 'V', 'R', '1', 1, 0, 0, 0, 1, 0,
                                    0,   0,   0,   0,   0, 0, 7, 0, 0, 0};
    assert_memory_equal(r, hdr, 20);
    assert_memory_equal(r + 24, "SET a b", 7);
    uint8_t g[4] = {1, 0, 0, 0};
    uint32_t want = kv_crc32(kv_crc32(kv_crc32(0, g, 4), r + 4, 16), r + 24, 7);
    uint32_t got =
        (uint32_t)r[20] | (uint32_t)r[21] << 8 | (uint32_t)r[22] << 16 | (uint32_t)r[23] << 24;
    assert_int_equal(got, want);
    assert_int_equal(kv_crc32(0, "123456789", 9), 0xcbf43926u); /* the standard check value */
    kv_store_close(st);
    md_free(m);
}

static uint64_t rng_state = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Random lines in random chunks: every line gets exactly one well-formed reply, nothing crashes. */
static void test_random_input(void **state)
{
    struct memdisk *m = md_new(256 * 1024);
    struct kv_store *st = open_store(m, 64);
    static const char *const words[] = {"SET ", "GET ", "DEL ", "INCR ", "PING", "set ", ""};
    static const char alphabet[] = "ab01 -9\r\t\x01\xff";
    char *in = malloc(1 << 20);
    size_t len = 0, lines = 0;
    for (int l = 0; l < 3000; l++) {
        const char *w = words[rnd(7)];
        memcpy(in + len, w, strlen(w));
        len += strlen(w);
        uint32_t n = rnd(10) == 0 ? rnd(1200) : rnd(12);
        for (uint32_t i = 0; i < n; i++)
            in[len++] = alphabet[rnd(sizeof(alphabet) - 1)];
        in[len++] = '\n';
        lines++;
    }
    struct sink *s = calloc(1, sizeof(*s));
    struct kv_conn *c = kv_conn_open(st, s);
    size_t replies = 0;
    for (size_t off = 0; off < len;) {
        size_t chunk = 1 + rnd(700);
        if (chunk > len - off)
            chunk = len - off;
        kv_conn_input(c, in + off, chunk);
        off += chunk;
        kv_store_commit(st);
        for (char *p = s->buf; (p = strchr(p, '\n')); p++) {
            replies++;
        }
        /* every reply line is one of the protocol's */
        for (char *p = s->buf; *p;) {
            assert_true(strncmp(p, "OK\n", 3) == 0 || strncmp(p, "VALUE ", 6) == 0 ||
                        strncmp(p, "NOTFOUND\n", 9) == 0 || strncmp(p, "PONG\n", 5) == 0 ||
                        strncmp(p, "ERR ", 4) == 0);
            p = strchr(p, '\n') + 1;
        }
        s->len = 0;
        s->buf[0] = 0;
    }
    assert_int_equal(replies, lines);
    free(s);
    free(in);
    kv_store_close(st);
    md_free(m);
}

/* Random damage anywhere in the metadata and log: open either works or reports why; no crash. */
static void test_random_corruption(void **state)
{
    struct memdisk *m = md_new(32 * 1024);
    struct kv_store *st = open_store(m, 0);
    struct sink s = {0};
    struct kv_conn *c = kv_conn_open(st, &s);
    char line[64];
    for (int i = 0; i < 300; i++) {
        snprintf(line, sizeof(line), i % 4 ? "SET k%d v%d\n" : "DEL k%d\n", i % 17, i);
        exchange(st, c, &s, line);
    }
    kv_store_close(st);
    int opened = 0;
    for (int t = 0; t < 300; t++) {
        struct memdisk *cm = md_crash_copy(m);
        int hits = 1 + (int)rnd(8);
        for (int h = 0; h < hits; h++)
            cm->vol[rnd(12 * 1024)] ^= (uint8_t)(1 + rnd(255));
        struct kv_config cfg = {.send = sink_send};
        const char *err = NULL;
        struct kv_store *rs = NULL;
        if (kv_store_open(&cfg, &cm->be, &rs, &err) == 0) {
            opened++;
            struct sink rsink = {0};
            struct kv_conn *rc = kv_conn_open(rs, &rsink);
            assert_string_equal(exchange(rs, rc, &rsink, "SET fresh 1\nGET fresh\n"),
                                "OK\nVALUE 1\n");
            kv_store_close(rs);
        } else {
            assert_non_null(err);
            assert_true(strlen(err) > 0);
        }
        md_free(cm);
    }
    assert_true(opened > 0);
    md_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_basics),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_partial_lines),
        cmocka_unit_test(test_incr),
        cmocka_unit_test(test_held_until_flush),
        cmocka_unit_test(test_flush_failure),
        cmocka_unit_test(test_key_limit),
        cmocka_unit_test(test_replay_every_cut),
        cmocka_unit_test(test_replay_corrupt_record),
        cmocka_unit_test(test_replay_stale_tail),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_compaction_crash),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_on_disk_bytes),
        cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
