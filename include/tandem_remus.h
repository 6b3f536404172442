/* Remus: continuous checkpointing of a domain to a backup host, output commit and failover
 * (docs/remus.md). */
#ifndef TANDEM_REMUS_H
#define TANDEM_REMUS_H

#include <stdint.h>

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
