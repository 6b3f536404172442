/* Unit tests of the migration interlock: frames, tampering, PSK handshake, command line, keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate_internal.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void pair(struct tdm_mig_chan *s, struct tdm_mig_chan *r, int auth)
{
    tdm_mig_chan_init(s, TDM_MIG_DIR_SENDER);
    tdm_mig_chan_init(r, TDM_MIG_DIR_RECEIVER);
    if (auth) {
        s->auth = r->auth = 1;
        memset(s->key, 0x5a, 32);
        memset(r->key, 0x5a, 32);
    }
}

static void frame_bytes(void **state)
{
    struct tdm_mig_chan s, r;
    tandem_ctx *ctx;
    json_t *m = json_pack("{s:s}", "msg", "go"), *got = NULL;
    uint8_t *f;
    size_t len;
    const char body[] = "{\"msg\":\"go\"}";

    (void)state;
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    pair(&s, &r, 0);
    s.tx_seq = 7;
    r.rx_seq = 7;
    assert_int_equal(tdm_mig_encode(ctx, &s, m, &f, &len), 0);
    assert_int_equal(len, 16 + strlen(body));
    assert_memory_equal(f, "TDMI", 4);
    assert_int_equal(le32(f + 4), strlen(body));
    assert_int_equal(le32(f + 8), 7);
    assert_int_equal(le32(f + 12), 0);
    assert_memory_equal(f + 16, body, strlen(body));
    assert_int_equal(s.tx_seq, 8);
    assert_int_equal(tdm_mig_decode(ctx, &r, f, len, &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "msg")), "go");
    json_decref(got);
    /* The same frame again is a replay. */
    assert_int_equal(tdm_mig_decode(ctx, &r, f, len, &got), TANDEM_ERR_PROTO);
    assert_non_null(strstr(tandem_ctx_error(ctx), "sequence number 7, expected 8"));
    free(f);
    json_decref(m);
    tandem_ctx_free(ctx);
}

static void frame_auth(void **state)
{
    struct tdm_mig_chan s, r, s2;
    tandem_ctx *ctx;
    json_t *m = json_pack("{s:s,s:i}", "msg", "have-state", "domid", 3), *got = NULL;
    uint8_t *f, *f2;
    size_t len, len2;

    (void)state;
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    pair(&s, &r, 1);
    assert_int_equal(tdm_mig_encode(ctx, &s, m, &f, &len), 0);
    assert_int_equal(le32(f + 12), 1);
    assert_int_equal(len, 16 + le32(f + 4) + 32);

    /* Every single flipped byte is refused (header, body or tag) and rx_seq does not move. */
    for (size_t i = 0; i < len; i++) {
        f[i] ^= 0x01;
        assert_int_not_equal(tdm_mig_decode(ctx, &r, f, len, &got), 0);
        assert_null(got);
        assert_int_equal(r.rx_seq, 0);
        f[i] ^= 0x01;
    }
    f[20] ^= 0x40; /* inside the body */
    assert_int_equal(tdm_mig_decode(ctx, &r, f, len, &got), TANDEM_ERR_PERM);
    assert_non_null(strstr(tandem_ctx_error(ctx), "failed authentication"));
    f[20] ^= 0x40;

    /* A frame with a forged sequence number (tag recomputed with a wrong key) is refused. */
    s2 = s;
    memset(s2.key, 0x11, 32);
    s2.tx_seq = 0;
    assert_int_equal(tdm_mig_encode(ctx, &s2, m, &f2, &len2), 0);
    assert_int_equal(tdm_mig_decode(ctx, &r, f2, len2, &got), TANDEM_ERR_PERM);
    free(f2);

    /* Reflection: the sender's own frame fed back to a sender channel fails (direction byte). */
    {
        struct tdm_mig_chan back = s;
        back.rx_seq = 0;
        assert_int_equal(tdm_mig_decode(ctx, &back, f, len, &got), TANDEM_ERR_PERM);
    }

    assert_int_equal(tdm_mig_decode(ctx, &r, f, len, &got), 0);
    assert_int_equal(json_integer_value(json_object_get(got, "domid")), 3);
    json_decref(got);
    /* Replayed authenticated frame: the tag is right but the sequence is old. */
    assert_int_equal(tdm_mig_decode(ctx, &r, f, len, &got), TANDEM_ERR_PROTO);
    assert_non_null(strstr(tandem_ctx_error(ctx), "replayed"));

    /* An unauthenticated frame where an authenticated one is due. */
    {
        struct tdm_mig_chan plain;
        tdm_mig_chan_init(&plain, TDM_MIG_DIR_SENDER);
        plain.tx_seq = 1;
        assert_int_equal(tdm_mig_encode(ctx, &plain, m, &f2, &len2), 0);
        assert_int_equal(tdm_mig_decode(ctx, &r, f2, len2, &got), TANDEM_ERR_PROTO);
        assert_non_null(strstr(tandem_ctx_error(ctx), "flags"));
        free(f2);
    }
    free(f);
    json_decref(m);
    tandem_ctx_free(ctx);
}

static void frame_garbage(void **state)
{
    struct tdm_mig_chan s, r;
    tandem_ctx *ctx;
    json_t *got = NULL;
    const char junk[] = "bash: tandem: command not found\n";
    uint8_t f[64];
    size_t flen;

    (void)state;
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    pair(&s, &r, 0);
    assert_int_equal(tdm_mig_header(ctx, &r, (const uint8_t *)junk, &flen), TANDEM_ERR_PROTO);
    assert_non_null(strstr(tandem_ctx_error(ctx), "bash: tandem: co"));
    /* Length 0 and a length beyond the limit. */
    memcpy(f, "TDMI", 4);
    memset(f + 4, 0, 12);
    assert_int_equal(tdm_mig_header(ctx, &r, f, &flen), TANDEM_ERR_PROTO);
    f[4] = 0xff;
    f[5] = 0xff;
    f[6] = 0xff;
    assert_int_equal(tdm_mig_header(ctx, &r, f, &flen), TANDEM_ERR_PROTO);
    /* A well-framed body that is not a JSON object with "msg". */
    memset(f, 0, sizeof(f));
    memcpy(f, "TDMI", 4);
    f[4] = 3;
    memcpy(f + 16, "[1]", 3);
    assert_int_equal(tdm_mig_decode(ctx, &r, f, 19, &got), TANDEM_ERR_PROTO);
    memcpy(f + 16, "{x}", 3);
    assert_int_equal(tdm_mig_decode(ctx, &r, f, 19, &got), TANDEM_ERR_PROTO);
    assert_non_null(strstr(tandem_ctx_error(ctx), "not JSON"));
    /* Truncated: shorter than the header says. */
    assert_int_equal(tdm_mig_decode(ctx, &r, f, 18, &got), TANDEM_ERR_PROTO);
    assert_int_equal(r.rx_seq, 0);
    tandem_ctx_free(ctx);
}

/* ---- handshake over a socketpair, the receiver half in a thread */

struct side {
    tandem_migrate_conn *conn;
    uint8_t key[32];
    int use_key;
    int rc;
    char err[1024];
};

static void *receiver_thread(void *arg)
{
    struct side *sd = arg;
    tandem_ctx *ctx;
    json_t *m = NULL;

    tandem_ctx_alloc(&ctx);
    sd->rc = tdm_mig_handshake_receiver(ctx, sd->conn, sd->use_key ? sd->key : NULL);
    if (sd->rc == 0) {
        /* One authenticated round trip after the handshake. */
        sd->rc = tdm_mig_recv(ctx, sd->conn, 5000, "ping", &m);
        json_decref(m);
        if (sd->rc == 0) {
            m = json_pack("{s:s}", "msg", "pong");
            sd->rc = tdm_mig_send(ctx, sd->conn, m);
            json_decref(m);
        }
    }
    snprintf(sd->err, sizeof(sd->err), "%s", tandem_ctx_error(ctx));
    tandem_ctx_free(ctx);
    return NULL;
}

static void run_handshake(struct side *snd, struct side *rcv)
{
    int sv[2];
    pthread_t t;
    tandem_ctx *ctx;
    json_t *m;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(
        tdm_mig_conn_new(NULL, sv[0], sv[0], TDM_MIG_DIR_SENDER, "the receiver", &snd->conn), 0);
    assert_int_equal(
        tdm_mig_conn_new(NULL, sv[1], sv[1], TDM_MIG_DIR_RECEIVER, "the sender", &rcv->conn), 0);
    assert_int_equal(pthread_create(&t, NULL, receiver_thread, rcv), 0);
    tandem_ctx_alloc(&ctx);
    snd->rc = tdm_mig_handshake_sender(ctx, snd->conn, snd->use_key ? snd->key : NULL);
    if (snd->rc == 0) {
        m = json_pack("{s:s}", "msg", "ping");
        snd->rc = tdm_mig_send(ctx, snd->conn, m);
        json_decref(m);
        if (snd->rc == 0) {
            snd->rc = tdm_mig_recv(ctx, snd->conn, 5000, "pong", &m);
            json_decref(m);
        }
    } else {
        /* What a failing sender does: hang up, so the receiver is not left waiting. */
        shutdown(sv[0], SHUT_RDWR);
    }
    snprintf(snd->err, sizeof(snd->err), "%s", tandem_ctx_error(ctx));
    tandem_ctx_free(ctx);
    pthread_join(t, NULL);
}

static void handshake_ok(void **state)
{
    struct side s = {.use_key = 1}, r = {.use_key = 1};

    (void)state;
    memset(s.key, 7, 32);
    memset(r.key, 7, 32);
    run_handshake(&s, &r);
    assert_int_equal(s.rc, 0);
    assert_int_equal(r.rc, 0);
    assert_true(s.conn->chan.auth && r.conn->chan.auth);
    assert_memory_equal(s.conn->chan.key, r.conn->chan.key, 32);
    /* The session key is not the PSK. */
    assert_memory_not_equal(s.conn->chan.key, s.key, 32);
    tandem_migrate_conn_close(s.conn);
    tandem_migrate_conn_close(r.conn);
}

static void handshake_wrong_key(void **state)
{
    struct side s = {.use_key = 1}, r = {.use_key = 1};

    (void)state;
    memset(s.key, 7, 32);
    memset(r.key, 8, 32);
    run_handshake(&s, &r);
    assert_int_equal(s.rc, TANDEM_ERR_PERM);
    assert_int_equal(r.rc, TANDEM_ERR_PERM);
    assert_non_null(strstr(s.err, "key does not match"));
    assert_non_null(strstr(r.err, "does not know our key"));
    assert_false(s.conn->chan.auth);
    assert_false(r.conn->chan.auth);
    tandem_migrate_conn_close(s.conn);
    tandem_migrate_conn_close(r.conn);
}

static void handshake_no_key(void **state)
{
    struct side s = {.use_key = 0}, r = {.use_key = 1};
    struct side s2 = {.use_key = 1}, r2 = {.use_key = 0};

    (void)state;
    memset(r.key, 7, 32);
    run_handshake(&s, &r);
    /* A sender without a key is refused by a keyed receiver; neither side goes on. */
    assert_int_equal(s.rc, TANDEM_ERR_PERM);
    assert_non_null(strstr(s.err, "requires key authentication"));
    assert_int_not_equal(r.rc, 0);
    tandem_migrate_conn_close(s.conn);
    tandem_migrate_conn_close(r.conn);

    /* A keyed sender refuses a receiver that does not authenticate. */
    memset(s2.key, 7, 32);
    run_handshake(&s2, &r2);
    assert_int_equal(s2.rc, TANDEM_ERR_PERM);
    assert_non_null(strstr(s2.err, "does not authenticate"));
    assert_int_not_equal(r2.rc, 0);
    tandem_migrate_conn_close(s2.conn);
    tandem_migrate_conn_close(r2.conn);
}

static void handshake_plain(void **state)
{
    struct side s = {.use_key = 0}, r = {.use_key = 0};

    (void)state;
    run_handshake(&s, &r);
    assert_int_equal(s.rc, 0);
    assert_int_equal(r.rc, 0);
    assert_false(s.conn->chan.auth);
    tandem_migrate_conn_close(s.conn);
    tandem_migrate_conn_close(r.conn);
}

static void proofs_differ(void **state)
{
    uint8_t psk[32], a[32], b[32], p1[32], p2[32];

    (void)state;
    memset(psk, 1, 32);
    memset(a, 2, 32);
    memset(b, 3, 32);
    /* The receiver's proof is not the sender's with the nonces swapped (no reflection). */
    tdm_mig_proof(psk, TDM_MIG_DIR_SENDER, a, b, p1);
    tdm_mig_proof(psk, TDM_MIG_DIR_RECEIVER, a, b, p2);
    assert_memory_not_equal(p1, p2, 32);
    tdm_mig_proof(psk, TDM_MIG_DIR_SENDER, b, a, p2);
    assert_memory_not_equal(p1, p2, 32);
}

static void shell_argv(void **state)
{
    char **v;
    char *extra[] = {"-p", NULL};

    (void)state;
    assert_int_equal(tandem_migrate_shell_argv(NULL, NULL, "backup", NULL, NULL, &v), 0);
    assert_string_equal(v[0], "ssh");
    assert_string_equal(v[1], "backup");
    assert_string_equal(v[2], "tandem");
    assert_string_equal(v[3], "migrate-receive");
    assert_null(v[4]);
    tandem_migrate_argv_free(v);
    assert_int_equal(tandem_migrate_shell_argv(NULL, " ip netns exec  ns-b env TANDEM_RUNDIR=/r ",
                                               "", "/b/tandem migrate-receive", extra, &v),
                     0);
    assert_string_equal(v[0], "ip");
    assert_string_equal(v[3], "ns-b");
    assert_string_equal(v[5], "TANDEM_RUNDIR=/r");
    assert_string_equal(v[6], "/b/tandem");
    assert_string_equal(v[7], "migrate-receive");
    assert_string_equal(v[8], "-p");
    assert_null(v[9]);
    tandem_migrate_argv_free(v);
    /* -s '': the host words are the command (xl). */
    assert_int_equal(tandem_migrate_shell_argv(NULL, "", "sh -c", "x", NULL, &v), 0);
    assert_string_equal(v[0], "sh");
    assert_string_equal(v[1], "-c");
    assert_string_equal(v[2], "x");
    assert_null(v[3]);
    tandem_migrate_argv_free(v);
    assert_int_equal(tandem_migrate_shell_argv(NULL, "", "", "", NULL, &v), TANDEM_ERR_INVAL);
}

static void key_files(void **state)
{
    char dir[] = "/tmp/tdm-migkey-XXXXXX", path[64];
    uint8_t k1[32], k2[32];
    tandem_ctx *ctx;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key", dir);
    tandem_ctx_alloc(&ctx);
    assert_int_equal(tandem_migrate_key_load(ctx, path, k1), TANDEM_ERR_NOTFOUND);
    assert_non_null(strstr(tandem_ctx_error(ctx), path));
    f = fopen(path, "w");
    fputs("short", f);
    fclose(f);
    chmod(path, 0600);
    assert_int_equal(tandem_migrate_key_load(ctx, path, k1), TANDEM_ERR_INVAL);
    assert_non_null(strstr(tandem_ctx_error(ctx), "at least 16"));
    f = fopen(path, "w");
    fputs("0123456789abcdef0123456789abcdef", f);
    fclose(f);
    chmod(path, 0644);
    assert_int_equal(tandem_migrate_key_load(ctx, path, k1), TANDEM_ERR_PERM);
    assert_non_null(strstr(tandem_ctx_error(ctx), "chmod 600"));
    chmod(path, 0600);
    assert_int_equal(tandem_migrate_key_load(ctx, path, k1), 0);
    assert_int_equal(tandem_migrate_key_load(ctx, path, k2), 0);
    assert_memory_equal(k1, k2, 32);
    f = fopen(path, "a");
    fputs("x", f);
    fclose(f);
    assert_int_equal(tandem_migrate_key_load(ctx, path, k2), 0);
    assert_memory_not_equal(k1, k2, 32);
    unlink(path);
    rmdir(dir);
    tandem_ctx_free(ctx);
}

static void disk_samples(void **state)
{
    char dir[] = "/tmp/tdm-migdisk-XXXXXX", a[64], b[64], ha[65], hb[65], ia[160], ib[160];
    uint64_t sa, sb;
    tandem_ctx *ctx;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    tandem_ctx_alloc(&ctx);
    assert_int_equal(truncate(a, 0), -1); /* not there yet */
    f = fopen(a, "w");
    fclose(f);
    assert_int_equal(truncate(a, 8 << 20), 0);
    f = fopen(b, "w");
    fclose(f);
    assert_int_equal(truncate(b, 8 << 20), 0);
    assert_int_equal(tdm_mig_disk_sample(ctx, a, &sa, ha), 0);
    assert_int_equal(tdm_mig_disk_sample(ctx, b, &sb, hb), 0);
    assert_int_equal(sa, 8 << 20);
    assert_string_equal(ha, hb);
    /* A byte in a sampled block (block 3 starts at 3 * 8 MiB / 64) changes the sample. */
    f = fopen(b, "r+");
    fseek(f, 3 * (8 << 20) / 64 + 100, SEEK_SET);
    fputc('x', f);
    fclose(f);
    assert_int_equal(tdm_mig_disk_sample(ctx, b, &sb, hb), 0);
    assert_string_not_equal(ha, hb);
    /* So does the last block, and the size. */
    assert_int_equal(truncate(b, 8 << 20), 0);
    f = fopen(a, "r+");
    fseek(f, (8 << 20) - 1, SEEK_SET);
    fputc('y', f);
    fclose(f);
    assert_int_equal(tdm_mig_disk_sample(ctx, a, &sa, ha), 0);
    assert_int_equal(truncate(b, 9 << 20), 0);
    assert_int_equal(tdm_mig_disk_sample(ctx, b, &sb, hb), 0);
    assert_int_not_equal(sa, sb);
    /* Identity: the same file twice, two files differ, a missing file fails. */
    assert_int_equal(tdm_mig_disk_identity(a, ia), 0);
    assert_int_equal(tdm_mig_disk_identity(b, ib), 0);
    assert_string_not_equal(ia, ib);
    assert_int_equal(tdm_mig_disk_identity(a, ib), 0);
    assert_string_equal(ia, ib);
    unlink(a);
    unlink(b);
    assert_int_equal(tdm_mig_disk_identity(a, ia), -1);
    assert_int_equal(tdm_mig_disk_sample(ctx, a, &sa, ha), TANDEM_ERR_NOTFOUND);
    assert_non_null(strstr(tandem_ctx_error(ctx), a));
    rmdir(dir);
    tandem_ctx_free(ctx);
}

/* ---- --encrypt relays: seal on one side, open on the other, with the bytes in between in hand */

struct feed {
    int fd;
    const uint8_t *data;
    size_t len;
};

static void *feed_main(void *arg)
{
    struct feed *f = arg;
    size_t done = 0;
    while (done < f->len) {
        ssize_t n = write(f->fd, f->data + done, f->len - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(f->fd);
    return NULL;
}

/* Seal len bytes of data: returns the ciphertext as it went over the wire (malloc'd). */
static uint8_t *seal_bytes(const uint8_t *data, size_t len, const uint8_t key[32], size_t *clen)
{
    tandem_migrate_conn *c;
    struct tdm_mig_relay *relay;
    struct feed f = {.data = data, .len = len};
    size_t cap = len + (1 << 20), have = 0;
    uint8_t *ct = malloc(cap);
    pthread_t t;
    int sv[2], vfd;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(tdm_mig_conn_new(NULL, sv[0], sv[0], TDM_MIG_DIR_SENDER, "r", &c), 0);
    c->chan.auth = 1;
    memcpy(c->chan.key, key, 32);
    assert_int_equal(tdm_mig_relay_start(NULL, c, 1, &relay, &vfd), 0);
    f.fd = vfd;
    pthread_create(&t, NULL, feed_main, &f);
    for (;;) {
        struct pollfd p = {.fd = sv[1], .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 500) <= 0)
            break;
        n = read(sv[1], ct + have, cap - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    pthread_join(t, NULL);
    assert_int_equal(tdm_mig_relay_finish(NULL, relay, 0), 0);
    close(sv[1]);
    tandem_migrate_conn_close(c);
    *clen = have;
    return ct;
}

/* Open ciphertext: 0 and the plaintext in out (malloc'd), or the relay's error. */
static int open_bytes(const uint8_t *ct, size_t clen, const uint8_t key[32], uint8_t **out,
                      size_t *len, char *err, size_t errlen)
{
    tandem_migrate_conn *c;
    struct tdm_mig_relay *relay;
    struct feed f = {.data = ct, .len = clen};
    size_t cap = clen, have = 0;
    uint8_t *pt = malloc(cap);
    tandem_ctx *ctx;
    pthread_t t;
    int sv[2], vfd, rc;

    tandem_ctx_alloc(&ctx);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(tdm_mig_conn_new(NULL, sv[0], sv[0], TDM_MIG_DIR_RECEIVER, "s", &c), 0);
    c->chan.auth = 1;
    memcpy(c->chan.key, key, 32);
    assert_int_equal(tdm_mig_relay_start(NULL, c, 0, &relay, &vfd), 0);
    f.fd = sv[1];
    pthread_create(&t, NULL, feed_main, &f);
    for (;;) {
        ssize_t n = read(vfd, pt + have, cap - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(vfd);
    rc = tdm_mig_relay_finish(ctx, relay, 0);
    snprintf(err, errlen, "%s", tandem_ctx_error(ctx));
    /* A relay that refused the stream stops reading: closing its side ends the feeder. */
    tandem_migrate_conn_close(c);
    pthread_join(t, NULL); /* it closed sv[1] */
    tandem_ctx_free(ctx);
    *out = pt;
    *len = have;
    return rc;
}

/* Offsets of the sealed chunks after the 24-byte header (each: u32 length, then that many bytes).
 */
static size_t chunks(const uint8_t *ct, size_t clen, size_t *off, size_t max)
{
    size_t n = 0, o = 24;
    while (o + 4 <= clen && n < max) {
        off[n++] = o;
        o += 4 + le32(ct + o);
    }
    assert_int_equal(o, clen);
    return n;
}

static void stream_encryption(void **state)
{
    size_t len = 3 * (1 << 20) + 12345, clen, plen, off[4096], n, sum = 0;
    uint8_t *data = malloc(len), *ct, *pt, key[32], other[32];
    char err[256];

    (void)state;
    randombytes_buf(data, len);
    memset(key, 3, sizeof(key));
    memset(other, 4, sizeof(other));
    ct = seal_bytes(data, len, key, &clen);
    /* Header, then chunks of at most 1 MiB (+17 bytes of tag), the last one FINAL and empty. */
    n = chunks(ct, clen, off, 4096);
    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        assert_true(le32(ct + off[i]) >= 17 && le32(ct + off[i]) <= (1 << 20) + 17);
        sum += le32(ct + off[i]) - 17;
    }
    assert_int_equal(sum, len);
    assert_int_equal(le32(ct + off[n - 1]), 17);
    assert_memory_not_equal(ct + off[0] + 4, data, 64); /* not in the clear */

    assert_int_equal(open_bytes(ct, clen, key, &pt, &plen, err, sizeof(err)), 0);
    assert_int_equal(plen, len);
    assert_memory_equal(pt, data, len);
    free(pt);

    /* A flipped byte in the second chunk: refused; only the first chunk got through. */
    ct[off[1] + 4 + 3] ^= 1;
    assert_int_equal(open_bytes(ct, clen, key, &pt, &plen, err, sizeof(err)), TANDEM_ERR_PERM);
    assert_non_null(strstr(err, "failed authentication"));
    assert_int_equal(plen, le32(ct + off[0]) - 17);
    free(pt);
    ct[off[1] + 4 + 3] ^= 1;

    /* Cut before FINAL: an early end, not a complete stream. */
    assert_int_equal(open_bytes(ct, off[n - 1], key, &pt, &plen, err, sizeof(err)), TANDEM_ERR_IO);
    assert_non_null(strstr(err, "ended early"));
    free(pt);

    /* The first chunk replayed in place of the second: refused. */
    {
        size_t c0 = off[1] - off[0], rest = clen - off[2];
        uint8_t *re = malloc(24 + 2 * c0 + rest);
        memcpy(re, ct, 24 + c0);
        memcpy(re + 24 + c0, ct + off[0], c0);
        memcpy(re + 24 + 2 * c0, ct + off[2], rest);
        assert_int_equal(open_bytes(re, 24 + 2 * c0 + rest, key, &pt, &plen, err, sizeof(err)),
                         TANDEM_ERR_PERM);
        free(pt);
        free(re);
    }

    /* Another session key: nothing opens. */
    assert_int_equal(open_bytes(ct, clen, other, &pt, &plen, err, sizeof(err)), TANDEM_ERR_PERM);
    assert_int_equal(plen, 0);
    free(pt);
    free(ct);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_bytes),         cmocka_unit_test(frame_auth),
        cmocka_unit_test(frame_garbage),       cmocka_unit_test(handshake_ok),
        cmocka_unit_test(handshake_wrong_key), cmocka_unit_test(handshake_no_key),
        cmocka_unit_test(handshake_plain),     cmocka_unit_test(proofs_differ),
        cmocka_unit_test(shell_argv),          cmocka_unit_test(key_files),
        cmocka_unit_test(disk_samples),        cmocka_unit_test(stream_encryption),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
