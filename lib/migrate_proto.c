/* Migration interlock messages: frame codec (sequence, HMAC tag, JSON body) and their I/O. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate_internal.h"

int64_t tdm_mig_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void tdm_mig_hex(const uint8_t *in, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, in, n);
}

int tdm_mig_unhex(const char *in, uint8_t *out, size_t n)
{
    size_t got = 0;

    if (!in || strlen(in) != 2 * n)
        return -1;
    if (sodium_hex2bin(out, n, in, 2 * n, NULL, &got, NULL) != 0 || got != n)
        return -1;
    return 0;
}

void tdm_mig_chan_init(struct tdm_mig_chan *chan, char role)
{
    memset(chan, 0, sizeof(*chan));
    chan->tx_dir = role;
    chan->rx_dir = role == TDM_MIG_DIR_SENDER ? TDM_MIG_DIR_RECEIVER : TDM_MIG_DIR_SENDER;
}

/* Tag over direction byte, header and body: a frame cannot be replayed in the other direction. */
static void frame_tag(const struct tdm_mig_chan *chan, char dir, const uint8_t *frame,
                      size_t body_len, uint8_t tag[TDM_MIG_TAG])
{
    crypto_auth_hmacsha512256_state st;
    uint8_t d = (uint8_t)dir;

    crypto_auth_hmacsha512256_init(&st, chan->key, sizeof(chan->key));
    crypto_auth_hmacsha512256_update(&st, &d, 1);
    crypto_auth_hmacsha512256_update(&st, frame, TDM_MIG_HDR + body_len);
    crypto_auth_hmacsha512256_final(&st, tag);
}

int tdm_mig_encode(tandem_ctx *ctx, struct tdm_mig_chan *chan, const json_t *msg, uint8_t **out,
                   size_t *len)
{
    char *body = json_dumps(msg, JSON_COMPACT);
    size_t blen, flen;
    uint8_t *f = NULL;
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (!body)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot encode an interlock message");
    blen = strlen(body);
    if (blen == 0 || blen > TDM_MIG_BODY_MAX) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                          "interlock message of %zu bytes exceeds the limit of %u bytes", blen,
                          TDM_MIG_BODY_MAX);
        goto out;
    }
    flen = TDM_MIG_HDR + blen + (chan->auth ? TDM_MIG_TAG : 0);
    f = malloc(flen);
    if (!f) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot encode an interlock message");
        goto out;
    }
    memcpy(f, TDM_MIG_MAGIC, 4);
    put32(f + 4, (uint32_t)blen);
    put32(f + 8, chan->tx_seq);
    put32(f + 12, chan->auth ? 1u : 0u);
    memcpy(f + TDM_MIG_HDR, body, blen);
    if (chan->auth)
        frame_tag(chan, chan->tx_dir, f, blen, f + TDM_MIG_HDR + blen);
    chan->tx_seq++;
    *out = f;
    *len = flen;
    f = NULL;
out:
    free(f);
    free(body);
    return rc;
}

/* Printable rendering of bytes that should have been a frame ("bash: tandem: ..."). */
static void quote_bytes(const uint8_t *p, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outsz; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", p[i]);
    }
    out[o] = '\0';
}

int tdm_mig_header(tandem_ctx *ctx, const struct tdm_mig_chan *chan, const uint8_t *hdr,
                   size_t *frame_len)
{
    uint32_t blen = get32(hdr + 4), flags = get32(hdr + 12);

    if (memcmp(hdr, TDM_MIG_MAGIC, 4) != 0) {
        char q[100];
        quote_bytes(hdr, TDM_MIG_HDR, q, sizeof(q));
        return tandem_error(ctx, TANDEM_ERR_PROTO,
                            "expected an interlock message (magic TDMI), got \"%s\"", q);
    }
    if (blen == 0 || blen > TDM_MIG_BODY_MAX)
        return tandem_error(ctx, TANDEM_ERR_PROTO, "interlock message length %u is outside 1..%u",
                            blen, TDM_MIG_BODY_MAX);
    if (flags != (chan->auth ? 1u : 0u))
        return tandem_error(ctx, TANDEM_ERR_PROTO, "interlock message flags %u: expected %s frame",
                            flags, chan->auth ? "an authenticated" : "an unauthenticated");
    *frame_len = TDM_MIG_HDR + blen + (chan->auth ? TDM_MIG_TAG : 0);
    return 0;
}

int tdm_mig_decode(tandem_ctx *ctx, struct tdm_mig_chan *chan, const uint8_t *buf, size_t len,
                   json_t **msg)
{
    size_t flen, blen;
    uint32_t seq;
    json_error_t jerr;
    json_t *j;
    int rc;

    *msg = NULL;
    if (len < TDM_MIG_HDR)
        return tandem_error(ctx, TANDEM_ERR_PROTO, "interlock message truncated at %zu bytes", len);
    rc = tdm_mig_header(ctx, chan, buf, &flen);
    if (rc)
        return rc;
    if (len != flen)
        return tandem_error(ctx, TANDEM_ERR_PROTO,
                            "interlock message is %zu bytes, its header says %zu", len, flen);
    blen = get32(buf + 4);
    seq = get32(buf + 8);
    /* The tag first: a modified sequence number is a forgery, not a protocol slip. */
    if (chan->auth) {
        uint8_t want[TDM_MIG_TAG];
        frame_tag(chan, chan->rx_dir, buf, blen, want);
        if (sodium_memcmp(want, buf + TDM_MIG_HDR + blen, TDM_MIG_TAG) != 0)
            return tandem_error(ctx, TANDEM_ERR_PERM,
                                "interlock message %u failed authentication (modified, or not "
                                "from the authenticated peer)",
                                seq);
    }
    if (seq != chan->rx_seq)
        return tandem_error(ctx, TANDEM_ERR_PROTO,
                            "interlock message has sequence number %u, expected %u (replayed, "
                            "lost or reordered)",
                            seq, chan->rx_seq);
    j = json_loadb((const char *)buf + TDM_MIG_HDR, blen, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return tandem_error(ctx, TANDEM_ERR_PROTO, "interlock message %u is not JSON: %s", seq,
                            jerr.text);
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "msg"))) {
        json_decref(j);
        return tandem_error(ctx, TANDEM_ERR_PROTO,
                            "interlock message %u is not an object with a \"msg\" string", seq);
    }
    chan->rx_seq++;
    *msg = j;
    return 0;
}

int tdm_mig_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                (void)poll(&pf, 1, 1000);
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tdm_mig_send(tandem_ctx *ctx, tandem_migrate_conn *conn, const json_t *msg)
{
    uint8_t *f = NULL;
    size_t len;
    int rc, e;

    rc = tdm_mig_encode(ctx, &conn->chan, msg, &f, &len);
    if (rc)
        return rc;
    e = tdm_mig_write_all(conn->wfd, f, len);
    if (e < 0)
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, -e, "cannot send to %s", conn->peer);
    free(f);
    return rc;
}

void tdm_mig_send_error(tandem_migrate_conn *conn, const char *phase, const char *text)
{
    json_t *m = json_pack("{s:s,s:s,s:s}", "msg", "error", "phase", phase, "error",
                          text && text[0] ? text : "unknown error");
    if (m)
        (void)tdm_mig_send(NULL, conn, m);
    json_decref(m);
}

/*
 * Read exactly len bytes (never more: the stream may follow). 0, 1 on EOF
 * before the first byte, or a TANDEM_ERR_*.
 */
static int read_exact(tandem_ctx *ctx, tandem_migrate_conn *conn, uint8_t *buf, size_t len,
                      int64_t deadline, size_t *got_out)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = {.fd = conn->rfd, .events = POLLIN};
        int wait = -1, pr;
        ssize_t n;

        if (deadline > 0) {
            int64_t left = deadline - tdm_mig_now_ms();
            if (left <= 0)
                return tandem_error(ctx, TANDEM_ERR_TIMEOUT, "%s did not answer in time",
                                    conn->peer);
            wait = left > INT_MAX ? INT_MAX : (int)left;
        }
        pr = poll(&p, 1, wait);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot wait for %s", conn->peer);
        if (pr == 0)
            continue;
        n = read(conn->rfd, buf + got, len - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot read from %s", conn->peer);
        if (n == 0) {
            if (got_out)
                *got_out = got;
            return 1;
        }
        got += (size_t)n;
    }
    if (got_out)
        *got_out = got;
    return 0;
}

int tdm_mig_recv(tandem_ctx *ctx, tandem_migrate_conn *conn, int timeout_ms, const char *expect,
                 json_t **msg_out)
{
    int64_t deadline = timeout_ms > 0 ? tdm_mig_now_ms() + timeout_ms : 0;
    uint8_t hdr[TDM_MIG_HDR], *f = NULL;
    size_t flen, got = 0;
    json_t *msg = NULL;
    const char *type;
    int rc;

    *msg_out = NULL;
    rc = read_exact(ctx, conn, hdr, sizeof(hdr), deadline, &got);
    if (rc == 1 && got == 0) {
        rc = tandem_error(ctx, TANDEM_ERR_IO, "%s closed the connection", conn->peer);
        goto out;
    }
    if (rc == 1) {
        char q[100];
        quote_bytes(hdr, got, q, sizeof(q));
        rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                          "%s closed the connection after \"%s\" (not an interlock message)",
                          conn->peer, q);
        goto out;
    }
    if (rc)
        goto out;
    rc = tdm_mig_header(ctx, &conn->chan, hdr, &flen);
    if (rc) {
        tandem_error_prefix(ctx, "from %s", conn->peer);
        goto out;
    }
    f = malloc(flen);
    if (!f) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot receive an interlock message");
        goto out;
    }
    memcpy(f, hdr, TDM_MIG_HDR);
    rc = read_exact(ctx, conn, f + TDM_MIG_HDR, flen - TDM_MIG_HDR, deadline, NULL);
    if (rc == 1) {
        rc = tandem_error(ctx, TANDEM_ERR_IO,
                          "%s closed the connection in the middle of a "
                          "message",
                          conn->peer);
        goto out;
    }
    if (rc)
        goto out;
    rc = tdm_mig_decode(ctx, &conn->chan, f, flen, &msg);
    if (rc) {
        tandem_error_prefix(ctx, "from %s", conn->peer);
        goto out;
    }
    type = json_string_value(json_object_get(msg, "msg"));
    if (strcmp(type, "error") == 0) {
        const char *e = json_string_value(json_object_get(msg, "error"));
        const char *code = json_string_value(json_object_get(msg, "code"));
        rc =
            tandem_error(ctx, code && strcmp(code, "auth") == 0 ? TANDEM_ERR_PERM : TANDEM_ERR_FAIL,
                         "%s: %s", conn->peer, e ? e : "unknown error");
        goto out;
    }
    if (expect && strcmp(type, expect) != 0) {
        rc = tandem_error(ctx, TANDEM_ERR_PROTO, "%s sent \"%s\" where \"%s\" was expected",
                          conn->peer, type, expect);
        goto out;
    }
    *msg_out = msg;
    msg = NULL;
out:
    json_decref(msg);
    free(f);
    return rc;
}

int tdm_mig_disk_sample(tandem_ctx *ctx, const char *path, uint64_t *size, char hex[65])
{
    crypto_generichash_state st;
    uint8_t block[4096], digest[32];
    struct stat sb;
    uint64_t sz;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tandem_error_errno(ctx, errno == ENOENT ? TANDEM_ERR_NOTFOUND : TANDEM_ERR_IO, errno,
                                  "disk %s", path);
    if (fstat(fd, &sb) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "disk %s", path);
        goto out;
    }
    if (S_ISBLK(sb.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        sz = end > 0 ? (uint64_t)end : 0;
    } else {
        sz = (uint64_t)sb.st_size;
    }
    crypto_generichash_init(&st, NULL, 0, sizeof(digest));
    for (int i = 0; i <= 64 && sz > 0; i++) {
        uint64_t off = i < 64 ? (sz / 64 * (uint64_t)i) & ~4095ull
                              : (sz > sizeof(block) ? sz - sizeof(block) : 0);
        uint8_t offle[8];
        ssize_t n = pread(fd, block, sizeof(block), (off_t)off);
        if (n < 0) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "disk %s: cannot read at %llu", path,
                                    (unsigned long long)off);
            goto out;
        }
        for (int b = 0; b < 8; b++)
            offle[b] = (uint8_t)(off >> (8 * b));
        crypto_generichash_update(&st, offle, sizeof(offle));
        crypto_generichash_update(&st, block, (size_t)n);
    }
    crypto_generichash_final(&st, digest, sizeof(digest));
    tdm_mig_hex(digest, sizeof(digest), hex);
    *size = sz;
out:
    close(fd);
    return rc;
}

int tdm_mig_read_raw(tandem_ctx *ctx, tandem_migrate_conn *conn, void *buf, size_t len,
                     int timeout_ms)
{
    int64_t deadline = timeout_ms > 0 ? tdm_mig_now_ms() + timeout_ms : 0;
    int rc = read_exact(ctx, conn, buf, len, deadline, NULL);

    if (rc == 1)
        rc = tandem_error(ctx, TANDEM_ERR_IO, "%s closed the connection in the middle of data",
                          conn->peer);
    return rc;
}

int tdm_mig_disk_identity(const char *path, char out[160])
{
    char boot[64] = "";
    struct stat st;
    FILE *f;

    if (stat(path, &st) < 0)
        return -1;
    f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f) {
        if (!fgets(boot, sizeof(boot), f))
            boot[0] = '\0';
        fclose(f);
        boot[strcspn(boot, "\n")] = '\0';
    }
    snprintf(out, 160, "%s:%llu:%llu", boot, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    return 0;
}
