/* Internal header of live migration: connection, frame codec, handshake, guard, storage. */
#ifndef TANDEM_LIB_MIGRATE_INTERNAL_H
#define TANDEM_LIB_MIGRATE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"
#include "tandem_migrate.h"

/* Interlock frame layout (docs/migration.md "Frames"). */
#define TDM_MIG_MAGIC "TDMI"
#define TDM_MIG_HDR 16u
#define TDM_MIG_TAG 32u /* crypto_auth_hmacsha512256_BYTES */
#define TDM_MIG_BODY_MAX (1u << 20)
#define TDM_MIG_NONCE 32u
/* Frame direction bytes, mixed into each tag so a frame cannot be reflected back. */
#define TDM_MIG_DIR_SENDER 'S'
#define TDM_MIG_DIR_RECEIVER 'R'

/*
 * One direction pair of the interlock: sequence numbers and, once the
 * TCP handshake is done, the session key. Kept apart from the fds so
 * the codec can be tested on memory buffers.
 */
struct tdm_mig_chan {
    int auth; /* frames carry a tag (after the PSK handshake) */
    uint8_t key[32];
    uint32_t tx_seq, rx_seq;
    char tx_dir, rx_dir; /* TDM_MIG_DIR_* of frames we send / expect */
};

struct tandem_migrate_conn {
    int rfd, wfd;   /* the same socket for TCP; pipes for the remote shell */
    pid_t child;    /* remote shell, 0 if none */
    char peer[128]; /* "the receiver (ssh ...)" / "the sender at 10.99.0.1:4711", for messages */
    struct tdm_mig_chan chan;
};

/* Set up chan for role TDM_MIG_DIR_SENDER or _RECEIVER, unauthenticated, sequences at 0. */
void tdm_mig_chan_init(struct tdm_mig_chan *chan, char role);

/*
 * Encode msg (a JSON object) as one frame with chan's next tx sequence
 * (and tag when chan->auth); *out malloc'd. Advances tx_seq.
 * TANDEM_ERR_INVAL if the body exceeds TDM_MIG_BODY_MAX.
 */
int tdm_mig_encode(tandem_ctx *ctx, struct tdm_mig_chan *chan, const json_t *msg, uint8_t **out,
                   size_t *len);

/*
 * Parse a 16-byte frame header: magic and length. *frame_len is the
 * whole frame (header, body and tag when chan->auth). TANDEM_ERR_PROTO
 * naming what was wrong (not an interlock frame: the bytes are quoted).
 */
int tdm_mig_header(tandem_ctx *ctx, const struct tdm_mig_chan *chan, const uint8_t *hdr,
                   size_t *frame_len);

/*
 * Check and decode one whole frame: magic, length, sequence (must be
 * chan->rx_seq: a replayed, dropped or reordered frame is refused), tag
 * (when chan->auth: a modified frame is refused) and JSON object body.
 * Advances rx_seq only on success. TANDEM_ERR_PROTO / TANDEM_ERR_PERM
 * (bad tag) with a message.
 */
int tdm_mig_decode(tandem_ctx *ctx, struct tdm_mig_chan *chan, const uint8_t *buf, size_t len,
                   json_t **msg);

/* Send msg (not consumed) on conn. TANDEM_ERR_IO if the peer has gone. */
int tdm_mig_send(tandem_ctx *ctx, tandem_migrate_conn *conn, const json_t *msg);

/*
 * Receive one message within timeout_ms (<= 0: forever). If expect is not
 * NULL the message's "msg" must equal it; an {"msg":"error"} from the
 * peer becomes TANDEM_ERR_FAIL with "<peer>: <its error>". EOF gives
 * TANDEM_ERR_IO ("<peer> closed the connection"). Reads exactly one frame,
 * never beyond it (the stream may follow on the same fd).
 */
int tdm_mig_recv(tandem_ctx *ctx, tandem_migrate_conn *conn, int timeout_ms, const char *expect,
                 json_t **msg);

/* Send {"msg":"error","phase":phase,"error":text}; best effort, errors ignored. */
void tdm_mig_send_error(tandem_migrate_conn *conn, const char *phase, const char *text);

/* ---- PSK handshake (lib/migrate_transport.c), docs/migration.md "Authentication" ---- */

/* proof = HMAC-SHA512-256(psk, label || first || second), label "tandem-migrate sender|receiver
 * proof". */
void tdm_mig_proof(const uint8_t psk[32], char role, const uint8_t first[TDM_MIG_NONCE],
                   const uint8_t second[TDM_MIG_NONCE], uint8_t out[TDM_MIG_TAG]);
/* session key = BLAKE2b-256 keyed with psk over "tandem-migrate session" || n_receiver || n_sender.
 */
void tdm_mig_session_key(const uint8_t psk[32], const uint8_t n_recv[TDM_MIG_NONCE],
                         const uint8_t n_send[TDM_MIG_NONCE], uint8_t out[32]);

/*
 * The two halves of the handshake on an open conn (banner included).
 * Exposed for the unit tests, which run them over a socketpair.
 */
int tdm_mig_handshake_sender(tandem_ctx *ctx, tandem_migrate_conn *conn, const uint8_t *psk);
int tdm_mig_handshake_receiver(tandem_ctx *ctx, tandem_migrate_conn *conn, const uint8_t *psk);

/* Wrap existing fds in a conn of the given role (no handshake). */
int tdm_mig_conn_new(tandem_ctx *ctx, int rfd, int wfd, char role, const char *peer,
                     tandem_migrate_conn **out);

/* Write all of buf to fd, polling a non-blocking fd; -errno on failure. */
int tdm_mig_write_all(int fd, const void *buf, size_t len);

/* Hex helpers for the handshake's JSON fields. 0 or -1 (wrong length / not hex). */
void tdm_mig_hex(const uint8_t *in, size_t n, char *out);
int tdm_mig_unhex(const char *in, uint8_t *out, size_t n);

/* ---- guard process (lib/migrate_guard.c) ---- */

/*
 * Runs in the guard child when the parent died while the guard was armed;
 * kept_fd is the guard's copy of keep_fd (or -1). It may use the library
 * with a fresh context; it must not print.
 */
typedef void tdm_mig_guard_fn(void *arg, int kept_fd);

struct tdm_mig_guard {
    pid_t pid;
    int fd; /* write end of the pipe the child waits on */
};

/*
 * Arm a guard: fork a child (own session, SIGINT/SIGHUP ignored, every fd
 * closed but its pipe and keep_fd) that waits on a pipe. If the parent
 * disarms it, the child exits; if the parent dies first (the pipe hits
 * EOF), the child calls fn(arg, kept_fd) and exits. The child holds no
 * migration connection, so the peer still sees the parent's death.
 */
int tdm_mig_guard_start(tandem_ctx *ctx, struct tdm_mig_guard *g, tdm_mig_guard_fn *fn, void *arg,
                        int keep_fd);
/* The guard closes its copy of keep_fd now; fn then gets -1. */
void tdm_mig_guard_release_fd(struct tdm_mig_guard *g);
/* Tell the guard to exit without acting and reap it. Idempotent. */
void tdm_mig_guard_disarm(struct tdm_mig_guard *g);

/* ---- storage checks (lib/migrate_proto.c) ---- */

/*
 * Size and sampled checksum of a disk image: BLAKE2b-256 over 64 blocks of
 * 4 KiB at offsets i*size/64 (rounded down to 4 KiB) and the last 4 KiB,
 * each prefixed with its offset. hex gets 65 bytes. Messages name path.
 */
int tdm_mig_disk_sample(tandem_ctx *ctx, const char *path, uint64_t *size, char hex[65]);

/*
 * Fault-test hook: if $TANDEM_MIGRATE_TEST_STOP is "ROLE:PHASE" (ROLE
 * "send" or "recv") and matches, the process stops itself (SIGSTOP) at
 * the start of that phase, so a test can SIGKILL it at an exact point.
 */
void tdm_mig_test_stop(const char *role, const char *phase);

/* Read exactly len raw bytes that follow a frame (disk data). TANDEM_ERR_IO on EOF. */
int tdm_mig_read_raw(tandem_ctx *ctx, tandem_migrate_conn *conn, void *buf, size_t len,
                     int timeout_ms);

/*
 * "BOOT_ID:DEV:INO" of path: the same string on both sides means the
 * same file on the same running kernel (shared storage on one machine,
 * as the test hosts are). -1 if path cannot be stat'ed.
 */
int tdm_mig_disk_identity(const char *path, char out[160]);

/* ---- stream encryption (lib/migrate_crypt.c), docs/migration.md "Encryption" ---- */

struct tdm_mig_relay;

/*
 * Put a libsodium secretstream (XChaCha20-Poly1305, key derived from the
 * session key) between the VMM and an authenticated TCP conn: *vmm_fd is
 * the end to hand to the VMM (the caller closes its copy when the VMM is
 * done with it). sealing 1 (sender): a thread encrypts what the VMM
 * writes until it closes its end, then sends a FINAL chunk. sealing 0
 * (receiver): a thread reads chunks, checks and decrypts them into
 * *vmm_fd and stops after FINAL. TANDEM_ERR_INVAL without authentication.
 */
int tdm_mig_relay_start(tandem_ctx *ctx, tandem_migrate_conn *conn, int sealing,
                        struct tdm_mig_relay **out, int *vmm_fd);
/*
 * Wait for the relay thread and free it. abort: the stream failed anyway;
 * the connection is shut down to end the thread and 0 is returned.
 * Otherwise the thread's error (a chunk that fails authentication is
 * TANDEM_ERR_PERM, an early end TANDEM_ERR_IO). NULL is fine.
 */
int tdm_mig_relay_finish(tandem_ctx *ctx, struct tdm_mig_relay *r, int abort);

/* Milliseconds since an arbitrary start (CLOCK_MONOTONIC). */
int64_t tdm_mig_now_ms(void);

#endif
