/* Remus: continuous checkpointing of a domain to a backup host, output commit and failover
 * (docs/remus.md). */
#ifndef TANDEM_REMUS_H
#define TANDEM_REMUS_H

#include <stdint.h>

#include "tandem_checkpoint.h"
#include "tandem_migrate.h"
#include "tandem_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults for remus_info fields left 0 (docs/remus.md). */
#define TANDEM_REMUS_DEFAULT_INTERVAL_MS 25
#define TANDEM_REMUS_DEFAULT_HEARTBEAT_MS 100
#define TANDEM_REMUS_DEFAULT_TIMEOUT_MS 1000

/*
 * Start protecting domain domid. Writes the preamble (the domain config and
 * the backup's timeouts, docs/remus.md "Preamble") on send_fd, then hands
 * send_fd (the checkpoint stream) and recv_fd (ACKs and heartbeats from
 * the backup; may equal send_fd for a socket) to the domain's VMM, which
 * runs the initial sync and then checkpoints every info->interval_ms.
 * Returns 0 once the backup acknowledged the first checkpoint (the domain
 * is PROTECTED); the caller may close its copies of the fds.
 * With info->blackhole true the fds are ignored (pass -1): checkpoints go
 * nowhere (for measuring) and every epoch counts as acknowledged.
 * Refused (TANDEM_ERR_INVAL, naming the option) when blackhole, netbuf
 * off or diskbuf off is asked for without allow_unsafe.
 * On failure the domain runs on as before, unprotected. how: 0 (reserved).
 */
int tandem_domain_remus_start(tandem_ctx *ctx, const tandem_remus_info *info, uint32_t domid,
                              int send_fd, int recv_fd, unsigned how);

/*
 * The VMM's remus-status object (docs/remus.md "Status") as JSON text
 * (malloc'd, caller frees): state (off, syncing, protected, unprotected,
 * stopped), rpo_zero, configured and achieved rate, recent epochs.
 */
int tandem_domain_remus_status(tandem_ctx *ctx, uint32_t domid, char **json_out);

/* One epoch's telemetry, as remus-status reports it (docs/remus.md "Status"). */
struct tandem_remus_epoch {
    uint64_t epoch;
    uint64_t pause_us;    /* guest stopped for the capture */
    uint64_t dirty_pages; /* pages in the checkpoint */
    uint64_t bytes;       /* stream bytes of the checkpoint */
    uint64_t frames_held; /* frames still buffered after its commit */
    double send_ms;       /* writing it to the backup */
    double ack_ms;        /* then waiting for the backup's ACK (and committing) */
};
typedef void tandem_remus_epoch_cb(const struct tandem_remus_epoch *e, void *opaque);

/*
 * Stay attached to protected domain domid and hear every epoch through the
 * save path's callbacks (tandem_checkpoint.h), in order: cb->suspend,
 * cb->postcopy, cb->checkpoint(epoch), each with cb->opaque, then
 * telemetry(e, opaque) (may be NULL). The VMM pushes each epoch's steps
 * on this control connection as it goes (suspend and postcopy right after
 * the pause ends, checkpoint once the backup acknowledged it); nothing
 * waits for the caller, so following never slows the guest. The
 * callbacks run on the caller's thread, after the fact: they observe,
 * they cannot hold the epoch. cb may be NULL (telemetry only).
 * Returns when protection ends: 0 when it stopped (the domain was
 * destroyed or stopped), TANDEM_ERR_FAIL naming the reason when the
 * backup was lost (the domain runs on unprotected). Also returns 0 when
 * cb->checkpoint returns 0 (stop following; 1 goes on), and a negative
 * callback return as is; protection goes on in both cases. Errors:
 * TANDEM_ERR_NOTFOUND, TANDEM_ERR_FAIL (not protected: the VMM's message),
 * TANDEM_ERR_IO (the VMM died, or the caller read so slowly that the VMM
 * dropped it rather than wait).
 */
int tandem_domain_remus_follow(tandem_ctx *ctx, uint32_t domid,
                               const struct tandem_checkpoint_callbacks *cb,
                               tandem_remus_epoch_cb *telemetry, void *opaque);

/* Receiver log callback: one line of what happens (the CLI prints it to stderr). */
typedef void tandem_remus_log_cb(void *opaque, const char *line);

/*
 * Backup side (`tandem remus-receive`): read the preamble from rfd, apply
 * disk_map ("OLD=NEW" pairs, NULL-terminated, may be NULL: the backup's
 * image for a disk whose path is OLD on the primary; hosts that share a
 * filesystem need it), reserve the domain in this host's runtime
 * directory and start a backup VMM reading checkpoints from rfd and
 * sending ACKs on wfd. Waits until the backup either takes over
 * (failover: returns 0, *domid_out is the running domain) or ends
 * (the primary ended protection, or died before the first complete
 * checkpoint: TANDEM_ERR_FAIL with the reason; nothing is left behind).
 */
int tandem_remus_receive(tandem_ctx *ctx, int rfd, int wfd, char *const disk_map[],
                         tandem_remus_log_cb *log, void *opaque, uint32_t *domid_out);

/*
 * The descriptors of a migration connection (tandem_migrate.h: remote
 * shell pipes, or one authenticated TCP socket for both), for the calls
 * above: *rfd reads from the peer, *wfd writes to it. They stay owned by
 * conn; pass dup()s where a call takes ownership (tandem_remus_receive).
 */
void tandem_remus_conn_fds(tandem_migrate_conn *conn, int *rfd, int *wfd);

#ifdef __cplusplus
}
#endif

#endif
