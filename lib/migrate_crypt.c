/* Migration stream encryption (--encrypt): secretstream relays between the VMM and TCP. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate_internal.h"

#define CHUNK (1u << 20)
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define HBYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES

struct tdm_mig_relay {
    tandem_migrate_conn *conn;
    int local;   /* our end of the socketpair with the VMM */
    int sealing; /* 1: VMM -> seal -> conn (sender); 0: conn -> open -> VMM (receiver) */
    uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    pthread_t thread;
    int started;
    int rc;
    char err[256];
};

/* The stream key: BLAKE2b-256 keyed with the session key over a label (never the frame key itself).
 */
static void stream_key(const tandem_migrate_conn *conn, uint8_t *out)
{
    static const char label[] = "tandem-migrate stream";
    crypto_generichash(out, crypto_secretstream_xchacha20poly1305_KEYBYTES, (const uint8_t *)label,
                       sizeof(label) - 1, conn->chan.key, sizeof(conn->chan.key));
}

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (uint8_t *)buf + got, len - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            (void)poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0)
            return n == 0 ? (got ? -EPIPE : 1) : -errno;
        got += (size_t)n;
    }
    return 0;
}

/* Sender: whatever the VMM writes, until it closes its end, in sealed chunks; then a FINAL chunk.
 */
static void *seal_main(void *arg)
{
    struct tdm_mig_relay *r = arg;
    crypto_secretstream_xchacha20poly1305_state st;
    uint8_t hdr[HBYTES], *plain = malloc(CHUNK), *out = malloc(4 + CHUNK + ABYTES);
    int e;

    if (!plain || !out) {
        r->rc = TANDEM_ERR_NOMEM;
        goto out;
    }
    crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, r->key);
    if ((e = tdm_mig_write_all(r->conn->wfd, hdr, sizeof(hdr))) < 0)
        goto io;
    for (;;) {
        ssize_t n = read(r->local, plain, CHUNK);
        unsigned long long clen;
        uint8_t tag = n == 0 ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = -errno;
            goto io;
        }
        crypto_secretstream_xchacha20poly1305_push(&st, out + 4, &clen, plain, (size_t)n, NULL, 0,
                                                   tag);
        out[0] = (uint8_t)clen;
        out[1] = (uint8_t)(clen >> 8);
        out[2] = (uint8_t)(clen >> 16);
        out[3] = (uint8_t)(clen >> 24);
        if ((e = tdm_mig_write_all(r->conn->wfd, out, 4 + (size_t)clen)) < 0)
            goto io;
        if (n == 0)
            break;
    }
    goto out;
io:
    r->rc = TANDEM_ERR_IO;
    snprintf(r->err, sizeof(r->err), "encrypted stream to %s: %s", r->conn->peer, strerror(-e));
out:
    /* A relay that stops must not leave the VMM blocked on a full socketpair: its save fails. */
    if (r->rc)
        shutdown(r->local, SHUT_RDWR);
    free(plain);
    free(out);
    return NULL;
}

/* Receiver: sealed chunks from the connection, opened, to the VMM; stops at the FINAL chunk. */
static void *open_main(void *arg)
{
    struct tdm_mig_relay *r = arg;
    crypto_secretstream_xchacha20poly1305_state st;
    uint8_t hdr[HBYTES], len4[4], *in = malloc(CHUNK + ABYTES), *plain = malloc(CHUNK);
    const char *why = NULL;
    int e;

    if (!in || !plain) {
        r->rc = TANDEM_ERR_NOMEM;
        goto out;
    }
    if ((e = read_full(r->conn->rfd, hdr, sizeof(hdr))) != 0)
        goto eof;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, hdr, r->key) != 0) {
        why = "bad stream header";
        goto bad;
    }
    for (;;) {
        unsigned long long plen;
        uint32_t clen;
        uint8_t tag;
        if ((e = read_full(r->conn->rfd, len4, 4)) != 0)
            goto eof;
        clen = (uint32_t)len4[0] | (uint32_t)len4[1] << 8 | (uint32_t)len4[2] << 16 |
               (uint32_t)len4[3] << 24;
        if (clen < ABYTES || clen > CHUNK + ABYTES) {
            why = "chunk length out of range";
            goto bad;
        }
        if ((e = read_full(r->conn->rfd, in, clen)) != 0)
            goto eof;
        if (crypto_secretstream_xchacha20poly1305_pull(&st, plain, &plen, &tag, in, clen, NULL,
                                                       0) != 0) {
            why = "a chunk failed authentication (modified, replayed or reordered)";
            goto bad;
        }
        for (size_t done = 0; done < plen;) {
            ssize_t n = send(r->local, plain + done, (size_t)plen - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                r->rc = TANDEM_ERR_IO;
                snprintf(r->err, sizeof(r->err), "the VMM stopped reading the stream: %s",
                         strerror(errno));
                goto out;
            }
            done += (size_t)n;
        }
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
            break;
    }
    goto out;
eof:
    r->rc = TANDEM_ERR_IO;
    snprintf(r->err, sizeof(r->err), "encrypted stream from %s ended early%s%s", r->conn->peer,
             e < 0 ? ": " : "", e < 0 ? strerror(-e) : "");
    goto out;
bad:
    r->rc = TANDEM_ERR_PERM;
    snprintf(r->err, sizeof(r->err), "encrypted stream from %s: %s", r->conn->peer, why);
out:
    /* The VMM sees the end of its input either way. */
    shutdown(r->local, SHUT_WR);
    free(in);
    free(plain);
    return NULL;
}

int tdm_mig_relay_start(tandem_ctx *ctx, tandem_migrate_conn *conn, int sealing,
                        struct tdm_mig_relay **out, int *vmm_fd)
{
    struct tdm_mig_relay *r;
    int sv[2], rc;

    *out = NULL;
    *vmm_fd = -1;
    if (!conn->chan.auth)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "stream encryption needs the authenticated TCP transport");
    r = calloc(1, sizeof(*r));
    if (!r)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot create a socketpair");
        free(r);
        return rc;
    }
    r->conn = conn;
    r->local = sv[1];
    r->sealing = sealing;
    stream_key(conn, r->key);
    if (pthread_create(&r->thread, NULL, sealing ? seal_main : open_main, r) != 0) {
        close(sv[0]);
        close(sv[1]);
        sodium_memzero(r->key, sizeof(r->key));
        free(r);
        return tandem_error(ctx, TANDEM_ERR_FAIL, "cannot start the stream encryption thread");
    }
    r->started = 1;
    *out = r;
    *vmm_fd = sv[0];
    return 0;
}

int tdm_mig_relay_finish(tandem_ctx *ctx, struct tdm_mig_relay *r, int abort)
{
    int rc;

    if (!r)
        return 0;
    /* On abort the thread may sit in a read: end it by shutting the sockets. */
    if (abort) {
        shutdown(r->local, SHUT_RDWR);
        /* The receiver keeps its write side: its error message still reaches the sender. */
        if (r->sealing)
            shutdown(r->conn->wfd, SHUT_WR);
        else
            shutdown(r->conn->rfd, SHUT_RD);
    }
    if (r->started)
        pthread_join(r->thread, NULL);
    rc = r->rc;
    if (rc && !abort)
        tandem_error(ctx, rc, "%s", r->err);
    close(r->local);
    sodium_memzero(r->key, sizeof(r->key));
    free(r);
    return abort ? 0 : rc;
}
