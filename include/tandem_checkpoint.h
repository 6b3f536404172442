/* Save, restore and the checkpoint callbacks shared with migration and Remus (docs/checkpoint.md).
 */
#ifndef TANDEM_CHECKPOINT_H
#define TANDEM_CHECKPOINT_H

#include <stdint.h>

#include "tandem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- progress ---------------------------------------------------------------------------- */

/* One progress report of a save (the VMM's progress message, docs/control.md). */
struct tandem_save_progress {
    const char *phase; /* "precopy", "suspend", "final", "checkpoint" */
    const char *step;  /* NULL, or the engine step just done: "suspend", "checkpoint", "postcopy" */
    uint64_t iter;     /* round, from 1 */
    uint64_t pages_sent, pages_total; /* within the current round */
    uint64_t dirty;                   /* last harvested dirty set (pages) */
    uint64_t bytes;                   /* stream bytes so far */
    double rate_mbps;                 /* MB/s (10^6 bytes/s) since the start */
    uint64_t epoch;                   /* with step: the checkpoint's epoch */
};
/* Called on the caller's thread, at most ~10 times a second plus once per phase/step. */
typedef void (*tandem_progress_cb)(const struct tandem_save_progress *p, void *opaque);

/* Final statistics of a save. */
struct tandem_save_stats {
    uint64_t total_ms;
    uint64_t downtime_ms; /* guest paused until END was written */
    uint64_t downtime_us;
    uint64_t bytes;
    uint64_t pages; /* page entries over all rounds */
    uint64_t iterations;
};

/* ---- checkpoint callbacks ---------------------------------------------------------------- */

/*
 * The steps of one checkpoint, in the order the save path calls them
 * (libxl_domain_checkpoint's model; the VMM's engine, vmm/vmm_save.c,
 * does the work and reports each step, the library then calls):
 *
 *   suspend    the guest's vCPU and the VMM's I/O are stopped; the state
 *              being captured is fixed from here on.
 *   postcopy   the capture is complete and the VMM has done its "resume"
 *              step: the guest runs again if it was asked to
 *              (TANDEM_SAVE_LEAVE_RUNNING, or Remus), else stays paused.
 *   checkpoint the CHECKPOINT record of epoch `epoch` is on the stream:
 *              everything before it is one consistent state. Return 0 to
 *              finish (save, migration), 1 to ask for another epoch.
 *
 * Remus delivers the same sequence once per epoch through
 * tandem_domain_remus_follow (tandem_remus.h): there the VMM's epoch
 * engine runs on its own and the callbacks observe each step after the
 * fact (checkpoint = the backup acknowledged the epoch); 1 keeps
 * following, 0 stops following (protection goes on).
 *
 * A negative return from any callback makes the call fail with that
 * code once the VMM has finished the current step (the VMM is not
 * interrupted mid-stream). Any member may be NULL: the default
 * (tandem_checkpoint_default_callbacks) does nothing and finishes after
 * one checkpoint.
 */
struct tandem_checkpoint_callbacks {
    int (*suspend)(tandem_ctx *ctx, uint32_t domid, void *opaque);
    int (*postcopy)(tandem_ctx *ctx, uint32_t domid, void *opaque);
    int (*checkpoint)(tandem_ctx *ctx, uint32_t domid, uint64_t epoch, void *opaque);
    void *opaque;
};
extern const struct tandem_checkpoint_callbacks tandem_checkpoint_default_callbacks;

/* ---- save -------------------------------------------------------------------------------- */

#define TANDEM_SAVE_LIVE 0x1u          /* pre-copy while the guest runs (live stream) */
#define TANDEM_SAVE_LEAVE_RUNNING 0x2u /* resume the guest after success (xl save -c) */
#define TANDEM_SAVE_LZ4 0x4u           /* compress page data with lz4 */
#define TANDEM_SAVE_ZSTD 0x8u          /* ... or zstd */

struct tandem_save_params {
    unsigned flags;          /* TANDEM_SAVE_* */
    unsigned max_iters;      /* live: rounds at most (0 = VMM default 30) */
    unsigned downtime_ms;    /* live: target for the final copy (0 = VMM default 300) */
    unsigned bandwidth_mbps; /* MB/s cap, 0 = unlimited */
    int timeout_ms; /* longest silence from the VMM (0 = 60 s, env TANDEM_SAVE_TIMEOUT_MS) */
    /* Configuration to store in the image instead of the domain's own (xl save's CONFIG), or NULL.
     */
    const tandem_domain_config *config;
};

/*
 * One checkpoint of domain domid onto fd (a file, pipe or socket open for
 * writing; not closed): the VMM writes the stream (docs/stream-format.md)
 * and reports progress and steps, which are passed to progress (may be
 * NULL) and cb (may be NULL = defaults). On success the domain is left
 * PAUSED (TANDEM_SAVE_LEAVE_RUNNING: running) and *stats (may be NULL) is
 * filled; the caller destroys or resumes it. On failure the VMM has
 * resumed the domain if it was running and the message names the phase
 * and how much of the stream was written; the stream must be discarded.
 * Errors: TANDEM_ERR_NOTFOUND (no such domain), TANDEM_ERR_BUSY (still
 * being created), TANDEM_ERR_FAIL (the VMM's error), TANDEM_ERR_TIMEOUT,
 * TANDEM_ERR_PROTO, TANDEM_ERR_IO.
 */
int tandem_domain_checkpoint(tandem_ctx *ctx, uint32_t domid, int fd,
                             const struct tandem_save_params *params,
                             const struct tandem_checkpoint_callbacks *cb,
                             tandem_progress_cb progress, void *opaque,
                             struct tandem_save_stats *stats);

/* tandem_domain_checkpoint with default callbacks and VMM defaults; flags TANDEM_SAVE_*. */
int tandem_domain_save(tandem_ctx *ctx, uint32_t domid, int fd, unsigned flags,
                       tandem_progress_cb progress, void *opaque);

/* ---- restore ----------------------------------------------------------------------------- */

#define TANDEM_RESTORE_PAUSED 0x1u /* leave the restored domain paused */

/*
 * Restore a saved image from fd (a regular file positioned anywhere; it
 * is read from offset 0). The WHOLE image is validated first
 * (tandem_stream_validate: every checksum, payload and order rule);
 * nothing is created unless it passes. config_path (may be NULL) is an
 * xl.cfg file that replaces the embedded configuration (xl restore's
 * [CONFIG]); its memory size must match the image. Restoring under a
 * name that a domain already has is refused (TANDEM_ERR_EXISTS). The
 * domain runs afterwards unless TANDEM_RESTORE_PAUSED. progress (may be
 * NULL) hears "validate" and "restore" phases. On any failure nothing is
 * left behind (no VMM, no runtime-directory entry).
 */
int tandem_domain_restore(tandem_ctx *ctx, int fd, const char *config_path, unsigned flags,
                          uint32_t *domid_out, tandem_progress_cb progress, void *opaque);

/*
 * The receiver's half for migration: create domain cfg from a stream
 * arriving on fd (any readable fd, e.g. a socket, positioned at the
 * stream header), without validating it first: the VMM checks every
 * record as it reads and applies only a complete state, so a broken or
 * cut stream ends with an error naming stream offset and record, and
 * nothing left behind. Returns once the VMM has read END and applied
 * the state (it reads with the stream reader, see
 * tandem_stream_reader_open for what it may buffer past END on a
 * socket), with the domain PAUSED if flags has TANDEM_RESTORE_PAUSED,
 * else running. timeout_ms bounds the whole stream (0: 10 minutes, env
 * TANDEM_RESTORE_TIMEOUT_MS).
 */
int tandem_domain_restore_stream(tandem_ctx *ctx, int fd, const tandem_domain_config *cfg,
                                 unsigned flags, int timeout_ms, uint32_t *domid_out);

#ifdef __cplusplus
}
#endif

#endif
