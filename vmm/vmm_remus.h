/* Internal header of the VMM's Remus parts: epoch engine, backup, output and disk buffers
 * (docs/remus.md). */
#ifndef TANDEM_VMM_REMUS_H
#define TANDEM_VMM_REMUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tandem_stream.h"
#include "vmm.h"

/*
 * The ACK channel (backup -> primary, docs/remus.md "ACK channel"): fixed
 * 24-byte little-endian messages {u32 magic "TRAK", u32 type, u64 value,
 * u64 sender CLOCK_MONOTONIC ns}. ACK's value is the epoch the backup has
 * committed; HEARTBEAT's a sequence number.
 */
#define VMM_REMUS_ACK_MAGIC 0x4b415254u /* "TRAK" */
#define VMM_REMUS_MSG_ACK 1u
#define VMM_REMUS_MSG_HEARTBEAT 2u
#define VMM_REMUS_MSG_LEN 24u

/* Encode/decode one ACK-channel message; decode returns -1 for a bad magic or type. */
void vmm_remus_msg_encode(uint8_t out[VMM_REMUS_MSG_LEN], uint32_t type, uint64_t value,
                          uint64_t mono_ns);
int vmm_remus_msg_decode(const uint8_t in[VMM_REMUS_MSG_LEN], uint32_t *type, uint64_t *value,
                         uint64_t *mono_ns);

/*
 * Per-device Remus hooks: the optional behaviour of an epoch as an ops
 * table (STYLE.md rule 5). The engine calls, for every device that has
 * ops: setup once when protection starts (error in err naming the device),
 * postsuspend with the vCPU and I/O thread stopped, right after epoch's
 * state was captured (what the device did so far belongs to epoch),
 * preresume before the guest runs again, commit when the backup
 * acknowledged epoch, and teardown once when protection ends (release:
 * let everything held go out, as the backup is gone or protection stops).
 */
struct vmm_remus_dev_ops {
    const char *name;
    int (*setup)(struct vmm *vm, struct vmm_dev *d, char *err, size_t errlen);
    void (*postsuspend)(struct vmm *vm, struct vmm_dev *d, uint64_t epoch);
    void (*preresume)(struct vmm *vm, struct vmm_dev *d);
    void (*commit)(struct vmm *vm, struct vmm_dev *d, uint64_t epoch);
    void (*teardown)(struct vmm *vm, struct vmm_dev *d, bool release);
};

/* ---- vmm_netbuf.c: a vif's output held per epoch until the backup's ACK. */
extern const struct vmm_remus_dev_ops vmm_netbuf_ops;
/* Bytes a vif may hold (all unacknowledged epochs); beyond it TX returns EAGAIN. */
#define VMM_NETBUF_CAP (8u << 20)
/* Called (from the sending thread) when a buffer fills up: end the epoch early. */
extern void (*vmm_netbuf_full_hook)(struct vmm *vm);
struct vmm_netbuf_stats {
    uint64_t held_frames, held_bytes; /* now */
    uint64_t released_frames, stalls, release_drops;
};
/* Counters of d's buffer (zeros when it has none). */
void vmm_netbuf_stats(struct vmm_dev *d, struct vmm_netbuf_stats *s);

/* ---- vmm_diskbuf.c: disk writes of an epoch. */
/*
 * Primary: every write the guest makes is done at once and also kept,
 * stamped with the epoch it happened in (block ops' setup attaches the
 * capture); the engine sends an epoch's writes with its checkpoint.
 */
extern const struct vmm_remus_dev_ops vmm_diskbuf_ops;
/* Past this many bytes of unsent writes the engine is asked to end the epoch early. */
#define VMM_DISKBUF_SOFT_CAP (16u << 20)
extern void (*vmm_diskbuf_full_hook)(struct vmm *vm);
/*
 * Write the held writes stamped <= epoch as DISK_WRITES records (disk
 * index = position among the domain's disks) and drop them. 0, or -1 with
 * the stream library's message in ctx.
 */
int vmm_diskbuf_send(struct vmm_dev *d, unsigned disk_index, uint64_t epoch,
                     tandem_stream_writer *w);
/* Bytes of writes held now on d. */
uint64_t vmm_diskbuf_held(struct vmm_dev *d);
/*
 * The initial disk copy: read d's whole image now (the capture already
 * runs, so writes racing the copy are sent again after it); the next
 * vmm_diskbuf_send writes it ahead of the captured writes. -1 with err.
 * The copy is held in memory until then (a streamed copy would need
 * pre-images of writes racing it to keep checkpoint 1 consistent), so
 * protection refuses domains whose replicated disks add up to more than
 * VMM_DISKBUF_IMAGE_MAX (checked before anything is read or allocated).
 */
#define VMM_DISKBUF_IMAGE_MAX (1ull << 30)
int vmm_diskbuf_snapshot_image(struct vmm_dev *d, char *err, size_t errlen);

/*
 * Backup: DISK_WRITES of the state being received are held in memory and
 * written to the disk images only when its CHECKPOINT arrives. direct:
 * write at once instead (the first state, which carries the initial disk
 * copy: before the first commit there is no failover, so nothing needs
 * the image's old contents and the copy is not held in memory); the next
 * commit makes those writes durable too.
 */
int vmm_diskhold_add(struct vmm *vm, uint32_t disk, uint32_t sector_size,
                     const struct tandem_stream_extent *e, bool direct, char *err, size_t errlen);
/* Write what is held to the images (in stream order); -1 with err on an I/O error. */
int vmm_diskhold_commit(struct vmm *vm, char *err, size_t errlen);
/* Drop what is held (a partial state at failover). Returns the bytes dropped. */
uint64_t vmm_diskhold_discard(void);

/* ---- vmm_remus.c: the primary's epoch engine. */
/*
 * The `remus` control command (docs/control.md): fds are the stream (to
 * the backup) and the ACK channel (from it); one fd serves both when it is
 * a socket; no fd at all with "blackhole": true. Runs the initial sync on
 * the main thread, then leaves a thread checkpointing every interval and
 * replies once the first checkpoint is acknowledged (or with the error;
 * the domain then runs on, unprotected, as before).
 */
json_t *vmm_remus_request(struct vmm *vm, int client, json_t *req, const int *fds, int nfds);
/*
 * The `remus-follow` request on control connection client: NULL once the
 * reply {"ok":true} was sent and the connection attached; from then on the
 * epoch thread sends remus_step messages (suspend, postcopy, checkpoint
 * with telemetry) for every epoch and a last remus_end when protection
 * ends (docs/remus.md "Following the epochs"). Else the error reply.
 */
json_t *vmm_remus_follow(struct vmm *vm, int client);
/* The `remus-status` reply (docs/remus.md "Status"). */
json_t *vmm_remus_status(struct vmm *vm);
/* Stop protecting (the domain is being destroyed): END to the backup, buffers released. */
void vmm_remus_shutdown(struct vmm *vm);
/* Whether the domain is protected now (for `info`). */
bool vmm_remus_protected(void);
/* Whether a protection is syncing or running (it owns dirty logging then). */
bool vmm_remus_active(void);

/* ---- vmm_remus_backup.c: the backup. */
/*
 * Set up a Remus backup before vmm_restore(): stream_fd carries the
 * checkpointed stream, ack_fd gets ACKs and heartbeats. A relay thread
 * watches the stream for silence longer than timeout_ms; *restore_fd is
 * what vmm_restore must read instead of stream_fd. -1 with err.
 */
int vmm_remus_backup_start(struct vmm *vm, int stream_fd, int ack_fd, unsigned timeout_ms,
                           unsigned heartbeat_ms, int *restore_fd, char *err, size_t errlen);
/* After vmm_restore returned 0: true when the domain must run now (failover), false after END. */
bool vmm_remus_backup_failed_over(void);
/* Stop the relay and heartbeat threads (idempotent). */
void vmm_remus_backup_stop(void);

#endif
