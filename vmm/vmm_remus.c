/* Remus primary: the epoch engine (pause, capture, resume, send, await ACK, release output)
 * (docs/remus.md). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tandem.h"
#include "vmm_remus.h"

#define PAGE_SIZE 4096u
#define DEFAULT_INTERVAL_MS 25u
#define DEFAULT_HEARTBEAT_MS 100u
#define DEFAULT_TIMEOUT_MS 1000u
#define FIRST_ACK_TIMEOUT_MS 60000u /* the first checkpoint carries all of RAM and the disks */
#define TELEMETRY 256u              /* epochs kept for remus-status */
#define CONFIG_MAX (16u << 20)
#define FOLLOWERS_MAX 4u /* remus-follow connections at a time */

enum remus_state { R_SYNC, R_PROTECTED, R_UNPROTECTED, R_STOPPED };
static const char *const state_names[] = {"syncing", "protected", "unprotected", "stopped"};

struct epoch_stat {
    uint64_t epoch, t_ns, pause_us, dirty, bytes, send_us, ack_us, held_frames;
    uint64_t stop_us, capture_us; /* parts of pause_us: guest and I/O stopped; state copied */
    uint64_t kick_us;             /* part of stop_us: the vCPU out of guest code */
};

/* Device state the receiver needs to hook a ring up again (same layout as vmm_save.c's). */
struct ring_state {
    uint32_t version; /* 1 */
    uint32_t has_ring;
    uint64_t gpa;
    uint64_t size;
};

struct remus {
    struct vmm *vm;
    int send_fd, recv_fd;
    bool blackhole, netbuf, diskbuf;
    unsigned interval_ms, heartbeat_ms, timeout_ms;
    int compression;
    tandem_ctx *ctx;
    tandem_stream_writer *w;
    struct vmm_dirty dirty;
    const struct vmm_remus_dev_ops *dops[TANDEM_ABI_MAX_DEVICES];
    pthread_t thread, ack_thread;
    bool thread_started, ack_started;

    /* protected by lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum remus_state state;
    bool stop, early, backup_lost;
    uint64_t epoch, acked, hb_seq;
    uint64_t last_heard_ns;
    char why[VMM_ERRLEN]; /* why unprotected */
    struct epoch_stat tel[TELEMETRY];
    uint64_t ntel, total_bytes, early_ends;
    uint64_t t_protected_ns;

    /* the epoch's capture (engine thread only) */
    uint64_t *pfns;
    uint8_t *pages;
    const void **ptrs;
    size_t npages, cap;
    struct vmm_vcpu_state st;
    struct tandem_stream_clock clk;
    struct ring_state rings[TANDEM_ABI_MAX_DEVICES];
    uint64_t con_total;
    char err[VMM_ERRLEN];

    /* remus-follow connections (dups of control connections), protected by flock */
    pthread_mutex_t flock;
    int followers[FOLLOWERS_MAX];
    unsigned nfollowers;
};

static struct remus *g_remus; /* one protection per VMM at a time */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vmm_remus_msg_encode(uint8_t out[VMM_REMUS_MSG_LEN], uint32_t type, uint64_t value,
                          uint64_t mono)
{
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(VMM_REMUS_ACK_MAGIC >> (8 * i));
        out[4 + i] = (uint8_t)(type >> (8 * i));
    }
    for (int i = 0; i < 8; i++) {
        out[8 + i] = (uint8_t)(value >> (8 * i));
        out[16 + i] = (uint8_t)(mono >> (8 * i));
    }
}

int vmm_remus_msg_decode(const uint8_t in[VMM_REMUS_MSG_LEN], uint32_t *type, uint64_t *value,
                         uint64_t *mono)
{
    uint32_t magic = 0, t = 0;
    uint64_t v = 0, m = 0;

    for (int i = 0; i < 4; i++) {
        magic |= (uint32_t)in[i] << (8 * i);
        t |= (uint32_t)in[4 + i] << (8 * i);
    }
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)in[8 + i] << (8 * i);
        m |= (uint64_t)in[16 + i] << (8 * i);
    }
    if (magic != VMM_REMUS_ACK_MAGIC || (t != VMM_REMUS_MSG_ACK && t != VMM_REMUS_MSG_HEARTBEAT))
        return -1;
    *type = t;
    *value = v;
    *mono = m;
    return 0;
}

/* ---- devices ------------------------------------------------------------------------------- */

/* Which Remus hooks a device gets: the ops table, chosen once by kind and options. */
static const struct vmm_remus_dev_ops *dev_ops_for(struct remus *r, struct vmm_dev *d)
{
    if (d->abi.type == TANDEM_DEVICE_VIF && r->netbuf)
        return &vmm_netbuf_ops;
    if (d->abi.type == TANDEM_DEVICE_DISK && r->diskbuf)
        return &vmm_diskbuf_ops;
    return NULL;
}

/* Call the teardown of every device with hooks (guest suspended by the caller). */
static void devs_teardown(struct remus *r, bool release)
{
    for (unsigned k = 0; k < r->vm->num_devs; k++) {
        if (r->dops[k] && r->dops[k]->teardown)
            r->dops[k]->teardown(r->vm, &r->vm->devs[k], release);
        r->dops[k] = NULL;
    }
}

static void early_end(struct vmm *vm)
{
    struct remus *r = g_remus;

    (void)vm;
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    if (!r->early)
        r->early_ends++;
    r->early = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* ---- pause / resume ---------------------------------------------------------------------------
 */

static uint64_t last_kick_ns; /* how long the last suspend waited for the vCPU (telemetry) */

/*
 * Stop the vCPU and the I/O thread for an epoch: an engine hold, not a
 * user pause (vmm_run_hold), so `info` does not show it and a user pause
 * landing meanwhile survives resume(). False when the vCPU has finished.
 * Every suspend is paired with one resume, whatever suspend returned.
 */
static bool suspend(struct vmm *vm)
{
    uint64_t t0;
    bool done;

    t0 = mono_ns();
    vmm_run_hold(vm);
    last_kick_ns = mono_ns() - t0;
    vmm_io_suspend(vm);
    pthread_mutex_lock(&vm->lock);
    done = vm->vcpu_done;
    pthread_mutex_unlock(&vm->lock);
    return !done;
}

/* End the hold: the guest runs again unless the user paused it (it may stay paused, protected). */
static void resume(struct vmm *vm)
{
    vmm_io_resume(vm);
    vmm_run_release(vm);
}

/* ---- capture and send ----------------------------------------------------------------------- */

static int grow(struct remus *r, size_t need)
{
    size_t cap = r->cap ? r->cap : 1024;
    void *a, *b, *c;

    while (cap < need)
        cap *= 2;
    if (cap == r->cap)
        return 0;
    a = realloc(r->pfns, cap * sizeof(*r->pfns));
    if (a)
        r->pfns = a;
    b = realloc(r->ptrs, cap * sizeof(*r->ptrs));
    if (b)
        r->ptrs = b;
    c = realloc(r->pages, cap * PAGE_SIZE);
    if (c)
        r->pages = c;
    if (!a || !b || !c)
        return -1;
    r->cap = cap;
    return 0;
}

/* With the guest suspended: dirty pages into staging, vCPU, clock and ring state. */
static int capture(struct remus *r, uint64_t *dirty)
{
    struct vmm *vm = r->vm;
    struct timespec ts;
    int64_t n;
    size_t k = 0;

    n = vmm_dirty_harvest(vm, &r->dirty, r->err, sizeof(r->err));
    if (n < 0)
        return -1;
    *dirty = (uint64_t)n;
    if (grow(r, (size_t)n) < 0) {
        snprintf(r->err, sizeof(r->err), "out of memory staging %lld pages", (long long)n);
        return -1;
    }
    for (uint64_t i = 0; i < r->dirty.words; i++) {
        uint64_t w = r->dirty.merged[i];
        r->dirty.merged[i] = 0;
        while (w) {
            uint64_t pfn = i * 64 + (uint64_t)__builtin_ctzll(w);
            w &= w - 1;
            r->pfns[k] = pfn;
            memcpy(r->pages + k * PAGE_SIZE, vm->mem.base + pfn * PAGE_SIZE, PAGE_SIZE);
            r->ptrs[k] = r->pages + k * PAGE_SIZE;
            k++;
        }
    }
    r->npages = k;
    if (vmm_state_get(vm, &r->st, r->err, sizeof(r->err)) < 0)
        return -1;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->clk.guest_ns = vmm_clock_guest_ns(vm);
    r->clk.tsc_khz = vm->tsc_khz;
    r->clk.generation = vm->clock.generation;
    r->clk.wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    r->con_total = vm->con.total;
    for (unsigned d = 0; d < vm->num_devs; d++) {
        r->rings[d] = (struct ring_state){.version = 1};
        r->rings[d].has_ring = vmm_io_ring_where(&vm->devs[d], &r->rings[d].gpa, &r->rings[d].size);
    }
    return 0;
}

static int stream_fail(struct remus *r)
{
    snprintf(r->err, sizeof(r->err), "%s", tandem_ctx_error(r->ctx));
    return -1;
}

/* The captured state as one state of the checkpointed stream, ending in CHECKPOINT epoch. */
static int send_state(struct remus *r, uint64_t epoch)
{
    struct vmm *vm = r->vm;
    struct tandem_stream_block blocks[9];
    struct tandem_stream_device dev;
    unsigned disk_index = 0;
    size_t nb, off;
    int rc;

    for (off = 0; off < r->npages; off += TANDEM_STREAM_WRITE_BATCH) {
        size_t n = r->npages - off < TANDEM_STREAM_WRITE_BATCH ? r->npages - off
                                                               : TANDEM_STREAM_WRITE_BATCH;
        if (tandem_stream_write_pages(r->w, r->pfns + off, r->ptrs + off, n) < 0)
            return stream_fail(r);
    }
    nb = vmm_state_blocks(&r->st, blocks);
    rc = tandem_stream_write_vcpu(r->w, 0, blocks, nb);
    vmm_state_free(&r->st);
    if (rc < 0)
        return stream_fail(r);
    if (tandem_stream_write_clock(r->w, &r->clk) < 0)
        return stream_fail(r);
    dev = (struct tandem_stream_device){TANDEM_DEVICE_CONSOLE, 0, &r->con_total,
                                        sizeof(r->con_total)};
    if (tandem_stream_write_device(r->w, &dev) < 0)
        return stream_fail(r);
    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_dev *d = &vm->devs[k];
        dev.kind = d->abi.type == TANDEM_DEVICE_DISK ? TANDEM_DEVICE_BLOCK : TANDEM_DEVICE_NET;
        dev.id = (uint32_t)d->devid;
        dev.data = &r->rings[k];
        dev.len = sizeof(r->rings[k]);
        if (tandem_stream_write_device(r->w, &dev) < 0)
            return stream_fail(r);
    }
    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_dev *d = &vm->devs[k];
        if (d->abi.type != TANDEM_DEVICE_DISK)
            continue;
        if (r->dops[k] == &vmm_diskbuf_ops && vmm_diskbuf_send(d, disk_index, epoch, r->w) < 0)
            return stream_fail(r);
        disk_index++;
    }
    if (tandem_stream_write_checkpoint(r->w, epoch) < 0 || tandem_stream_flush(r->w) < 0)
        return stream_fail(r);
    return 0;
}

/* ---- ACK channel -------------------------------------------------------------------------- */

static void *ack_main(void *arg)
{
    struct remus *r = arg;
    uint8_t msg[VMM_REMUS_MSG_LEN];
    char why[256] = "";

    for (;;) {
        size_t got = 0;
        uint32_t type;
        uint64_t value, mono;

        while (got < sizeof(msg)) {
            struct pollfd p = {.fd = r->recv_fd, .events = POLLIN};
            ssize_t n;
            bool stop;

            /* Poll so that a stop is seen even while a live backup says nothing. */
            if (poll(&p, 1, 100) == 0) {
                pthread_mutex_lock(&r->lock);
                stop = r->stop || r->state == R_UNPROTECTED || r->state == R_STOPPED;
                pthread_mutex_unlock(&r->lock);
                if (stop)
                    return NULL;
                continue;
            }
            n = read(r->recv_fd, msg + got, sizeof(msg) - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                snprintf(why, sizeof(why), "the ACK channel %s",
                         n == 0 ? "was closed by the backup" : strerror(errno));
                goto lost;
            }
            got += (size_t)n;
        }
        if (vmm_remus_msg_decode(msg, &type, &value, &mono) < 0) {
            snprintf(why, sizeof(why), "a malformed message on the ACK channel");
            goto lost;
        }
        pthread_mutex_lock(&r->lock);
        r->last_heard_ns = mono_ns();
        if (type == VMM_REMUS_MSG_ACK && value > r->acked)
            r->acked = value;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
lost:
    pthread_mutex_lock(&r->lock);
    if (!r->backup_lost && !r->stop) {
        r->backup_lost = true;
        snprintf(r->why, sizeof(r->why), "%s", why);
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/*
 * Wait until the backup acknowledged epoch. It is lost when the channel
 * breaks or nothing at all (ACK or heartbeat) came for timeout_ms.
 */
static bool await_ack(struct remus *r, uint64_t epoch, unsigned timeout_ms)
{
    bool ok;

    if (r->blackhole) {
        pthread_mutex_lock(&r->lock);
        r->acked = epoch;
        pthread_mutex_unlock(&r->lock);
        return true;
    }
    pthread_mutex_lock(&r->lock);
    while (r->acked < epoch && !r->backup_lost && !r->stop) {
        uint64_t due = r->last_heard_ns + (uint64_t)timeout_ms * 1000000ull;
        uint64_t hb = mono_ns() + (uint64_t)r->heartbeat_ms * 1000000ull, until;
        struct timespec ts;
        if (mono_ns() >= due) {
            r->backup_lost = true;
            snprintf(r->why, sizeof(r->why),
                     "no ACK or heartbeat from the backup for %u ms (epoch %llu unacknowledged)",
                     timeout_ms, (unsigned long long)epoch);
            break;
        }
        until = hb < due ? hb : due;
        ts.tv_sec = (time_t)(until / 1000000000ull);
        ts.tv_nsec = (long)(until % 1000000000ull);
        if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT && until == hb &&
            r->acked < epoch) {
            /* A slow backup (its disk sync) must not take our wait for silence. */
            uint64_t seq = ++r->hb_seq;
            pthread_mutex_unlock(&r->lock);
            if (tandem_stream_write_heartbeat(r->w, seq, mono_ns()) < 0 ||
                tandem_stream_flush(r->w) < 0) {
                pthread_mutex_lock(&r->lock);
                r->backup_lost = true;
                snprintf(r->why, sizeof(r->why), "heartbeat to the backup: %s",
                         tandem_ctx_error(r->ctx));
                break;
            }
            pthread_mutex_lock(&r->lock);
        }
    }
    ok = r->acked >= epoch;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

/* ---- followers (remus-follow) --------------------------------------------------------------- */

/*
 * Send one message to every follower. Never blocks the engine: a follower
 * whose socket is full (it stopped reading) or gone is dropped (closed),
 * so it sees the connection end without a remus_end and knows it missed
 * messages.
 */
static void followers_send(struct remus *r, const char *msg, bool last)
{
    size_t len = strlen(msg);

    pthread_mutex_lock(&r->flock);
    for (unsigned i = 0; i < r->nfollowers;) {
        if (send(r->followers[i], msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len || last) {
            if (!last)
                vmm_log("remus: a follower fell behind or left; dropped it");
            close(r->followers[i]);
            r->followers[i] = r->followers[--r->nfollowers];
            continue;
        }
        i++;
    }
    pthread_mutex_unlock(&r->flock);
}

static bool have_followers(struct remus *r)
{
    bool any;

    pthread_mutex_lock(&r->flock);
    any = r->nfollowers > 0;
    pthread_mutex_unlock(&r->flock);
    return any;
}

/* The steps of an epoch's pause, reported once it has ended (so they do not lengthen it). */
static void followers_pause(struct remus *r, uint64_t epoch, uint64_t t_suspend, uint64_t t_resume)
{
    char msg[256];

    if (!have_followers(r))
        return;
    snprintf(msg, sizeof(msg),
             "{\"remus_step\":{\"step\":\"suspend\",\"epoch\":%llu,\"t_ns\":%llu}}",
             (unsigned long long)epoch, (unsigned long long)t_suspend);
    followers_send(r, msg, false);
    snprintf(msg, sizeof(msg),
             "{\"remus_step\":{\"step\":\"postcopy\",\"epoch\":%llu,\"t_ns\":%llu,"
             "\"pause_us\":%llu}}",
             (unsigned long long)epoch, (unsigned long long)t_resume,
             (unsigned long long)((t_resume - t_suspend) / 1000));
    followers_send(r, msg, false);
}

/* The epoch's checkpoint is acknowledged and committed: its telemetry. */
static void followers_checkpoint(struct remus *r, const struct epoch_stat *e)
{
    char msg[512];

    if (!have_followers(r))
        return;
    snprintf(msg, sizeof(msg),
             "{\"remus_step\":{\"step\":\"checkpoint\",\"epoch\":%llu,\"pause_us\":%llu,"
             "\"dirty_pages\":%llu,\"bytes\":%llu,\"send_ms\":%.3f,\"ack_ms\":%.3f,"
             "\"frames_held\":%llu}}",
             (unsigned long long)e->epoch, (unsigned long long)e->pause_us,
             (unsigned long long)e->dirty, (unsigned long long)e->bytes, e->send_us / 1000.0,
             e->ack_us / 1000.0, (unsigned long long)e->held_frames);
    followers_send(r, msg, false);
}

/* Protection ended (r->state and r->why set): tell the followers and let them go. */
static void followers_end(struct remus *r)
{
    json_t *j;
    char *text;

    pthread_mutex_lock(&r->lock);
    j = json_pack("{s:{s:s,s:s,s:I}}", "remus_end", "state", state_names[r->state], "reason",
                  r->why[0] ? r->why : "stopped", "acked", (json_int_t)r->acked);
    pthread_mutex_unlock(&r->lock);
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    followers_send(r, text ? text : "{\"remus_end\":{\"state\":\"stopped\"}}", true);
    free(text);
}

/* ---- the engine ------------------------------------------------------------------------------ */

/* Backup gone (or protection stopped): let every held frame out, stop capturing. */
static void end_protection(struct remus *r, enum remus_state to, bool send_end)
{
    struct vmm *vm = r->vm;

    suspend(vm); /* a finished vCPU is fine here: the hooks still come off */
    devs_teardown(r, true);
    vmm_dirty_stop(vm, &r->dirty);
    resume(vm);
    if (send_end && r->w && tandem_stream_write_end(r->w) < 0)
        vmm_log("remus: could not send END to the backup: %s", tandem_ctx_error(r->ctx));
    pthread_mutex_lock(&r->lock);
    r->state = to;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    followers_end(r);
    if (to == R_UNPROTECTED)
        vmm_log("remus: UNPROTECTED after epoch %llu: %s; the domain keeps running here, its "
                "held output was released (RPO is no longer 0)",
                (unsigned long long)r->acked, r->why);
    else
        vmm_log("remus: protection ended after epoch %llu (%s)", (unsigned long long)r->acked,
                r->why[0] ? r->why : "stopped");
}

/* Sleep until the next epoch is due, sending heartbeats when the interval is longer. */
static bool wait_next(struct remus *r, uint64_t due)
{
    bool go_on;

    pthread_mutex_lock(&r->lock);
    while (!r->stop && !r->early && !r->backup_lost && mono_ns() < due) {
        uint64_t until = due, hb = mono_ns() + (uint64_t)r->heartbeat_ms * 1000000ull;
        struct timespec ts;
        if (hb < until)
            until = hb;
        ts.tv_sec = (time_t)(until / 1000000000ull);
        ts.tv_nsec = (long)(until % 1000000000ull);
        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
        if (until == hb && mono_ns() < due && !r->stop) {
            uint64_t seq = ++r->hb_seq;
            pthread_mutex_unlock(&r->lock);
            if (tandem_stream_write_heartbeat(r->w, seq, mono_ns()) < 0 ||
                tandem_stream_flush(r->w) < 0) {
                pthread_mutex_lock(&r->lock);
                r->backup_lost = true;
                snprintf(r->why, sizeof(r->why), "heartbeat to the backup: %s",
                         tandem_ctx_error(r->ctx));
                break;
            }
            pthread_mutex_lock(&r->lock);
        }
    }
    r->early = false;
    go_on = !r->stop && !r->backup_lost;
    pthread_mutex_unlock(&r->lock);
    return go_on;
}

/* One epoch: pause, capture, resume, send, await ACK, commit. False when protection ended. */
static bool run_epoch(struct remus *r)
{
    struct vmm *vm = r->vm;
    struct epoch_stat es = {0};
    struct vmm_netbuf_stats ns;
    uint64_t t0, t1, t2, t3, ts, tc, bytes0, epoch;
    bool first;

    t0 = mono_ns();
    if (!suspend(vm)) {
        resume(vm);
        snprintf(r->why, sizeof(r->why), "the guest stopped (%s)", vmm_halt_name(vm->halt));
        end_protection(r, R_STOPPED, true);
        return false;
    }
    ts = mono_ns();
    if (capture(r, &es.dirty) < 0) {
        resume(vm);
        snprintf(r->why, sizeof(r->why), "capturing the state failed: %.400s", r->err);
        end_protection(r, R_UNPROTECTED, false);
        return false;
    }
    tc = mono_ns();
    pthread_mutex_lock(&r->lock);
    epoch = ++r->epoch;
    first = r->state == R_SYNC;
    pthread_mutex_unlock(&r->lock);
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (r->dops[k] && r->dops[k]->postsuspend)
            r->dops[k]->postsuspend(vm, &vm->devs[k], epoch);
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (r->dops[k] && r->dops[k]->preresume)
            r->dops[k]->preresume(vm, &vm->devs[k]);
    resume(vm);
    t1 = mono_ns();
    followers_pause(r, epoch, ts, t1);

    bytes0 = tandem_stream_bytes(r->w);
    if (send_state(r, epoch) < 0) {
        pthread_mutex_lock(&r->lock);
        if (!r->why[0] || !r->backup_lost)
            snprintf(r->why, sizeof(r->why), "sending epoch %llu: %.400s",
                     (unsigned long long)epoch, r->err);
        r->backup_lost = true;
        pthread_mutex_unlock(&r->lock);
        end_protection(r, R_UNPROTECTED, false);
        return false;
    }
    t2 = mono_ns();
    if (!await_ack(r, epoch, first ? FIRST_ACK_TIMEOUT_MS : r->timeout_ms)) {
        bool stopping;
        pthread_mutex_lock(&r->lock);
        stopping = r->stop;
        pthread_mutex_unlock(&r->lock);
        end_protection(r, stopping ? R_STOPPED : R_UNPROTECTED, stopping);
        return false;
    }
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (r->dops[k] && r->dops[k]->commit)
            r->dops[k]->commit(vm, &vm->devs[k], epoch);
    t3 = mono_ns();

    es.epoch = epoch;
    es.t_ns = t0;
    es.pause_us = (t1 - t0) / 1000;
    es.stop_us = (ts - t0) / 1000;
    es.kick_us = last_kick_ns / 1000;
    es.capture_us = (tc - ts) / 1000;
    es.bytes = tandem_stream_bytes(r->w) - bytes0;
    es.send_us = (t2 - t1) / 1000;
    es.ack_us = (t3 - t2) / 1000;
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (r->dops[k] == &vmm_netbuf_ops) {
            vmm_netbuf_stats(&vm->devs[k], &ns);
            es.held_frames += ns.held_frames;
        }
    pthread_mutex_lock(&r->lock);
    r->tel[r->ntel % TELEMETRY] = es;
    r->ntel++;
    r->total_bytes += es.bytes;
    if (first) {
        r->state = R_PROTECTED;
        r->t_protected_ns = t3;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    followers_checkpoint(r, &es);
    if (first)
        vmm_log("remus: PROTECTED: first checkpoint (epoch %llu, %llu bytes) acknowledged after "
                "%llu ms",
                (unsigned long long)epoch, (unsigned long long)es.bytes,
                (unsigned long long)((t3 - t0) / 1000000));
    return true;
}

static void *engine_main(void *arg)
{
    struct remus *r = arg;
    uint64_t due = mono_ns();

    for (;;) {
        uint64_t t0;
        if (!wait_next(r, due)) {
            bool stopping;
            pthread_mutex_lock(&r->lock);
            stopping = r->stop;
            pthread_mutex_unlock(&r->lock);
            end_protection(r, stopping ? R_STOPPED : R_UNPROTECTED, stopping);
            break;
        }
        t0 = mono_ns();
        if (!run_epoch(r))
            break;
        due = t0 + (uint64_t)r->interval_ms * 1000000ull;
    }
    return NULL;
}

/* ---- initial sync --------------------------------------------------------------------------- */

static char *read_config(struct vmm *vm, size_t *len, char *err, size_t errlen)
{
    char path[4096], *buf;
    size_t got = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/config.json", vm->dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %.300s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(CONFIG_MAX);
    while (buf && (n = read(fd, buf + got, CONFIG_MAX - got)) > 0)
        got += (size_t)n;
    close(fd);
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
        got--;
    if (!buf || got == 0 || got == CONFIG_MAX) {
        snprintf(err, errlen, "%.300s: %s", path, buf ? "empty or too large" : "out of memory");
        free(buf);
        return NULL;
    }
    *len = got;
    return buf;
}

/*
 * The initial sync: device hooks and dirty logging on (in one short
 * pause, so nothing the guest does afterwards escapes them), then every
 * touched page and two rounds of re-dirtied pages while the guest runs,
 * then the disk images. The first epoch completes the first state.
 */
static int initial_sync(struct remus *r)
{
    struct vmm *vm = r->vm;
    struct tandem_stream_params sp = {
        .page_size = PAGE_SIZE,
        .kind = TANDEM_STREAM_CHECKPOINTED,
        .compression = (uint32_t)r->compression,
    };
    uint64_t pages = vm->mem.size / PAGE_SIZE;
    uint8_t *copy = NULL;
    uint64_t pfns[TANDEM_STREAM_WRITE_BATCH];
    const void *ptrs[TANDEM_STREAM_WRITE_BATCH];
    size_t nb = 0;
    char *json;
    size_t len;
    int rc = -1;

    if (tandem_ctx_alloc(&r->ctx) < 0 ||
        tandem_stream_writer_open(r->ctx, r->send_fd, &sp, &r->w) < 0) {
        snprintf(r->err, sizeof(r->err), "opening the stream: %s",
                 r->ctx ? tandem_ctx_error(r->ctx) : "out of memory");
        return -1;
    }
    json = read_config(vm, &len, r->err, sizeof(r->err));
    if (!json)
        return -1;
    rc = tandem_stream_write_config(r->w, json, len);
    free(json);
    if (rc < 0)
        return stream_fail(r);
    rc = -1;

    if (!suspend(vm)) {
        resume(vm);
        snprintf(r->err, sizeof(r->err), "the domain has stopped (%s)", vmm_halt_name(vm->halt));
        return -1;
    }
    for (unsigned k = 0; k < vm->num_devs; k++) {
        const struct vmm_remus_dev_ops *o = dev_ops_for(r, &vm->devs[k]);
        if (o && o->setup && o->setup(vm, &vm->devs[k], r->err, sizeof(r->err)) < 0) {
            devs_teardown(r, true);
            resume(vm);
            return -1;
        }
        r->dops[k] = o;
    }
    if (vmm_dirty_start(vm, &r->dirty, r->err, sizeof(r->err)) < 0) {
        devs_teardown(r, true);
        resume(vm);
        return -1;
    }
    resume(vm);

    /* Refuse before copying anything: the initial disk copy is held in memory. */
    {
        uint64_t total = 0;
        for (unsigned k = 0; k < vm->num_devs; k++)
            if (r->dops[k] == &vmm_diskbuf_ops)
                total += vm->devs[k].blk.capacity;
        if (total > VMM_DISKBUF_IMAGE_MAX) {
            snprintf(r->err, sizeof(r->err),
                     "the domain's disks add up to %llu MiB; the initial disk copy is held in "
                     "memory and limited to %llu MiB (docs/remus.md \"Limits\"); protect it "
                     "without disk replication (-F -d) over disks made identical beforehand, "
                     "or with smaller disks",
                     (unsigned long long)(total >> 20),
                     (unsigned long long)(VMM_DISKBUF_IMAGE_MAX >> 20));
            goto out;
        }
    }
    copy = malloc((size_t)TANDEM_STREAM_WRITE_BATCH * PAGE_SIZE);
    if (!copy) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        goto out;
    }
    /* Round 1: every non-zero page (the receiver starts from zeros), copied before checksumming. */
    for (uint64_t pfn = 0; pfn <= pages; pfn++) {
        if (pfn < pages) {
            static const uint8_t zero[PAGE_SIZE];
            const uint8_t *p = vm->mem.base + pfn * PAGE_SIZE;
            if (memcmp(p, zero, PAGE_SIZE) == 0)
                continue;
            memcpy(copy + nb * PAGE_SIZE, p, PAGE_SIZE);
            pfns[nb] = pfn;
            ptrs[nb] = copy + nb * PAGE_SIZE;
            nb++;
        }
        if (nb && (nb == TANDEM_STREAM_WRITE_BATCH || pfn == pages)) {
            if (tandem_stream_write_pages(r->w, pfns, ptrs, nb) < 0) {
                stream_fail(r);
                goto out;
            }
            nb = 0;
        }
    }
    /* Rounds 2 and 3: what the guest dirtied meanwhile (the first epoch sends the rest). */
    for (int round = 0; round < 2; round++) {
        int64_t n = vmm_dirty_harvest(vm, &r->dirty, r->err, sizeof(r->err));
        if (n < 0)
            goto out;
        /* Copied after the harvest re-protected them: a later write is logged again. */
        for (uint64_t i = 0; i < r->dirty.words; i++) {
            uint64_t w = r->dirty.merged[i];
            r->dirty.merged[i] = 0;
            while (w) {
                uint64_t pfn = i * 64 + (uint64_t)__builtin_ctzll(w);
                w &= w - 1;
                memcpy(copy + nb * PAGE_SIZE, vm->mem.base + pfn * PAGE_SIZE, PAGE_SIZE);
                pfns[nb] = pfn;
                ptrs[nb] = copy + nb * PAGE_SIZE;
                if (++nb == TANDEM_STREAM_WRITE_BATCH) {
                    if (tandem_stream_write_pages(r->w, pfns, ptrs, nb) < 0) {
                        stream_fail(r);
                        goto out;
                    }
                    nb = 0;
                }
            }
        }
        if (nb && tandem_stream_write_pages(r->w, pfns, ptrs, nb) < 0) {
            stream_fail(r);
            goto out;
        }
        nb = 0;
    }
    /* The disk images go out as the first DISK_WRITES of the first state (send_state). */
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (r->dops[k] == &vmm_diskbuf_ops &&
            vmm_diskbuf_snapshot_image(&vm->devs[k], r->err, sizeof(r->err)) < 0)
            goto out;
    rc = 0;
out:
    free(copy);
    return rc;
}

/* ---- control commands --------------------------------------------------------------------- */

static json_t *errj(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *errj(const char *fmt, ...)
{
    char msg[VMM_ERRLEN + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

static int get_uint(json_t *req, const char *key, unsigned lo, unsigned hi, unsigned *out,
                    char *err, size_t errlen)
{
    json_t *v = json_object_get(req, key);

    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "remus: \"%s\" must be an integer %u..%u", key, lo, hi);
        return -1;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int get_bool(json_t *req, const char *key, bool *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(req, key);

    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "remus: \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static void remus_free(struct remus *r)
{
    if (!r)
        return;
    tandem_stream_writer_free(r->w);
    tandem_ctx_free(r->ctx);
    if (r->send_fd >= 0)
        close(r->send_fd);
    if (r->recv_fd >= 0 && r->recv_fd != r->send_fd)
        close(r->recv_fd);
    vmm_state_free(&r->st);
    for (unsigned i = 0; i < r->nfollowers; i++)
        close(r->followers[i]);
    pthread_mutex_destroy(&r->flock);
    free(r->pfns);
    free(r->ptrs);
    free(r->pages);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

/* Join the threads of a finished (or stopping) protection and free it. */
static void reap(struct remus *r)
{
    if (r->thread_started)
        pthread_join(r->thread, NULL);
    if (r->ack_started) {
        /* The ACK reader polls and sees the protection has ended. */
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->ack_thread, NULL);
    }
    remus_free(r);
}

json_t *vmm_remus_request(struct vmm *vm, int client, json_t *req, const int *fds, int nfds)
{
    struct remus *r;
    char err[VMM_ERRLEN] = "";
    json_t *reply = NULL;
    const char *comp;
    enum vmm_state st;
    enum remus_state rs;
    struct stat sb;

    (void)client;
    pthread_mutex_lock(&g_lock);
    r = g_remus;
    pthread_mutex_unlock(&g_lock);
    if (r) {
        pthread_mutex_lock(&r->lock);
        rs = r->state;
        pthread_mutex_unlock(&r->lock);
        if (rs == R_PROTECTED || rs == R_SYNC)
            return errj("remus: domain '%s' is already protected", vm->p.name);
        /* A finished protection: collect it before starting again. */
        pthread_mutex_lock(&g_lock);
        g_remus = NULL;
        pthread_mutex_unlock(&g_lock);
        reap(r);
    }
    if (!vm->dir)
        return errj("remus: only a daemon-mode VMM can be protected");
    pthread_mutex_lock(&vm->lock);
    st = vm->state;
    pthread_mutex_unlock(&vm->lock);
    if (st == VMM_STATE_SHUTDOWN || st == VMM_STATE_CRASHED)
        return errj("remus: domain '%s' has shut down or crashed; nothing to protect", vm->p.name);

    r = calloc(1, sizeof(*r));
    if (!r)
        return errj("remus: out of memory");
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->flock, NULL);
    {
        /* Every timed wait here computes CLOCK_MONOTONIC deadlines. */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    r->vm = vm;
    r->send_fd = r->recv_fd = -1;
    r->interval_ms = DEFAULT_INTERVAL_MS;
    r->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    r->timeout_ms = DEFAULT_TIMEOUT_MS;
    r->netbuf = r->diskbuf = true;
    r->compression = TANDEM_COMPRESS_NONE;
    if (get_uint(req, "interval_ms", 1, 60000, &r->interval_ms, err, sizeof(err)) < 0 ||
        get_uint(req, "heartbeat_ms", 1, 60000, &r->heartbeat_ms, err, sizeof(err)) < 0 ||
        get_uint(req, "failover_timeout_ms", 1, 600000, &r->timeout_ms, err, sizeof(err)) < 0 ||
        get_bool(req, "netbuf", &r->netbuf, err, sizeof(err)) < 0 ||
        get_bool(req, "diskbuf", &r->diskbuf, err, sizeof(err)) < 0 ||
        get_bool(req, "blackhole", &r->blackhole, err, sizeof(err)) < 0) {
        reply = errj("%s", err);
        goto fail;
    }
    comp = json_string_value(json_object_get(req, "compression"));
    if (json_object_get(req, "compression") && !comp) {
        reply = errj("remus: \"compression\" must be a string");
        goto fail;
    }
    if (!comp || strcmp(comp, "none") == 0) {
        r->compression = TANDEM_COMPRESS_NONE;
    } else if (strcmp(comp, "lz4") == 0) {
        r->compression = TANDEM_COMPRESS_LZ4;
    } else if (strcmp(comp, "zstd") == 0) {
        r->compression = TANDEM_COMPRESS_ZSTD;
    } else {
        reply = errj("remus: unknown compression '%.40s' (none, lz4, zstd)", comp);
        goto fail;
    }
    if (r->blackhole) {
        if (nfds != 0) {
            reply = errj("remus: a blackhole run takes no file descriptor");
            goto fail;
        }
        r->send_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    } else if (nfds == 1 && fstat(fds[0], &sb) == 0 && S_ISSOCK(sb.st_mode)) {
        r->send_fd = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
        r->recv_fd = r->send_fd;
    } else if (nfds == 2) {
        r->send_fd = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
        r->recv_fd = fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
    } else {
        reply = errj("remus: attach the stream and the ACK channel (two file descriptors, or one "
                     "socket for both) with SCM_RIGHTS");
        goto fail;
    }
    if (r->send_fd < 0 || (!r->blackhole && r->recv_fd < 0)) {
        reply = errj("remus: cannot take the file descriptors: %s", strerror(errno));
        goto fail;
    }
    vmm_log("remus: starting: every %u ms, heartbeat %u ms, failover timeout %u ms, netbuf %s, "
            "diskbuf %s%s",
            r->interval_ms, r->heartbeat_ms, r->timeout_ms, r->netbuf ? "on" : "OFF",
            r->diskbuf ? "on" : "OFF", r->blackhole ? ", BLACKHOLE (no backup)" : "");
    pthread_mutex_lock(&g_lock);
    g_remus = r;
    pthread_mutex_unlock(&g_lock);
    vmm_netbuf_full_hook = early_end;
    vmm_diskbuf_full_hook = early_end;

    if (initial_sync(r) < 0) {
        reply = errj("remus: initial sync failed: %s (the domain runs on, unprotected)", r->err);
        goto fail_synced;
    }
    r->last_heard_ns = mono_ns();
    if (!r->blackhole) {
        if (pthread_create(&r->ack_thread, NULL, ack_main, r) != 0) {
            reply = errj("remus: cannot start the ACK reader");
            goto fail_synced;
        }
        r->ack_started = true;
    }
    if (pthread_create(&r->thread, NULL, engine_main, r) != 0) {
        reply = errj("remus: cannot start the epoch thread");
        goto fail_synced;
    }
    r->thread_started = true;
    pthread_mutex_lock(&r->lock);
    while (r->state == R_SYNC)
        pthread_cond_wait(&r->cond, &r->lock);
    rs = r->state;
    pthread_mutex_unlock(&r->lock);
    if (rs != R_PROTECTED)
        return errj("remus: the first checkpoint was not acknowledged: %s (the domain runs on, "
                    "unprotected)",
                    r->why);
    return json_pack("{s:b,s:I}", "ok", 1, "epoch", (json_int_t)r->acked);

fail_synced : {
    suspend(vm);
    devs_teardown(r, true);
    vmm_dirty_stop(vm, &r->dirty);
    resume(vm);
}
    pthread_mutex_lock(&g_lock);
    g_remus = NULL;
    pthread_mutex_unlock(&g_lock);
    vmm_log("%s", json_string_value(json_object_get(reply, "error")));
    reap(r);
    return reply;
fail:
    remus_free(r);
    return reply;
}

json_t *vmm_remus_follow(struct vmm *vm, int client)
{
    const char *ok = "{\"ok\":true}";
    json_t *reply = NULL;
    struct remus *r;
    int fd;

    pthread_mutex_lock(&g_lock);
    r = g_remus;
    if (!r) {
        reply = errj("remus-follow: domain '%s' is not protected", vm->p.name);
        goto out;
    }
    pthread_mutex_lock(&r->lock);
    if (r->state != R_PROTECTED && r->state != R_SYNC)
        reply = errj("remus-follow: protection of '%s' has ended (%s): %s", vm->p.name,
                     state_names[r->state], r->why[0] ? r->why : "stopped");
    pthread_mutex_unlock(&r->lock);
    if (reply)
        goto out;
    pthread_mutex_lock(&r->flock);
    if (r->nfollowers == FOLLOWERS_MAX) {
        pthread_mutex_unlock(&r->flock);
        reply = errj("remus-follow: %u followers already", FOLLOWERS_MAX);
        goto out;
    }
    fd = fcntl(client, F_DUPFD_CLOEXEC, 3);
    /* The reply goes first, under flock: no step can overtake it. */
    if (fd < 0 || send(fd, ok, strlen(ok), MSG_NOSIGNAL) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        pthread_mutex_unlock(&r->flock);
        reply = errj("remus-follow: %s", strerror(e));
        goto out;
    }
    r->followers[r->nfollowers++] = fd;
    pthread_mutex_unlock(&r->flock);
out:
    pthread_mutex_unlock(&g_lock);
    return reply;
}

bool vmm_remus_protected(void)
{
    struct remus *r;
    bool p = false;

    pthread_mutex_lock(&g_lock);
    r = g_remus;
    if (r) {
        pthread_mutex_lock(&r->lock);
        p = r->state == R_PROTECTED;
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_unlock(&g_lock);
    return p;
}

bool vmm_remus_active(void)
{
    struct remus *r;
    bool p = false;

    pthread_mutex_lock(&g_lock);
    r = g_remus;
    if (r) {
        pthread_mutex_lock(&r->lock);
        p = r->state == R_PROTECTED || r->state == R_SYNC;
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_unlock(&g_lock);
    return p;
}

json_t *vmm_remus_status(struct vmm *vm)
{
    struct remus *r;
    json_t *s, *epochs;
    uint64_t now = mono_ns(), n1s = 0, w_pause = 0, w_pause_max = 0, w_dirty = 0, w_bytes = 0,
             w_send = 0, w_ack = 0, w_stop = 0, w_capture = 0, w_kick = 0;
    json_t *w;

    pthread_mutex_lock(&g_lock);
    r = g_remus;
    if (!r) {
        pthread_mutex_unlock(&g_lock);
        return json_pack("{s:b,s:{s:s,s:b,s:s}}", "ok", 1, "remus", "state", "off", "rpo_zero", 0,
                         "domain", vm->p.name);
    }
    pthread_mutex_lock(&r->lock);
    epochs = json_array();
    for (uint64_t i = r->ntel > 20 ? r->ntel - 20 : 0; i < r->ntel; i++) {
        struct epoch_stat *e = &r->tel[i % TELEMETRY];
        json_array_append_new(
            epochs,
            json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:I}", "epoch", (json_int_t)e->epoch, "pause_us",
                      (json_int_t)e->pause_us, "dirty_pages", (json_int_t)e->dirty, "bytes",
                      (json_int_t)e->bytes, "send_ms", e->send_us / 1000.0, "ack_ms",
                      e->ack_us / 1000.0, "frames_held", (json_int_t)e->held_frames));
    }
    /* The last second: the achieved rate and averages over its epochs. */
    for (uint64_t i = r->ntel > TELEMETRY ? r->ntel - TELEMETRY : 0; i < r->ntel; i++) {
        struct epoch_stat *e = &r->tel[i % TELEMETRY];
        if (now - e->t_ns > 1000000000ull)
            continue;
        n1s++;
        w_pause += e->pause_us;
        w_dirty += e->dirty;
        w_bytes += e->bytes;
        w_send += e->send_us;
        w_ack += e->ack_us;
        w_stop += e->stop_us;
        w_capture += e->capture_us;
        w_kick += e->kick_us;
        if (e->pause_us > w_pause_max)
            w_pause_max = e->pause_us;
    }
    s = json_pack("{s:s,s:s,s:b,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:b,s:b,s:b,s:I,s:o}", "domain",
                  vm->p.name, "state", state_names[r->state], "rpo_zero", r->state == R_PROTECTED,
                  "interval_ms", (json_int_t)r->interval_ms, "configured_hz",
                  (json_int_t)(1000 / r->interval_ms), "achieved_hz", (double)n1s, "epoch",
                  (json_int_t)r->epoch, "acked", (json_int_t)r->acked, "total_bytes",
                  (json_int_t)r->total_bytes, "early_ends", (json_int_t)r->early_ends, "netbuf",
                  r->netbuf, "diskbuf", r->diskbuf, "blackhole", r->blackhole, "timeout_ms",
                  (json_int_t)r->timeout_ms, "recent", epochs);
    if (s && r->why[0] && r->state != R_PROTECTED)
        json_object_set_new(s, "reason", json_string(r->why));
    w = n1s ? json_pack("{s:I,s:f,s:I,s:f,s:f,s:f,s:f}", "epochs", (json_int_t)n1s, "pause_us_avg",
                        (double)w_pause / (double)n1s, "pause_us_max", (json_int_t)w_pause_max,
                        "dirty_pages_avg", (double)w_dirty / (double)n1s, "bytes_avg",
                        (double)w_bytes / (double)n1s, "send_ms_avg",
                        (double)w_send / 1000.0 / (double)n1s, "ack_ms_avg",
                        (double)w_ack / 1000.0 / (double)n1s)
            : json_object();
    if (n1s && w) {
        json_object_set_new(w, "stop_us_avg", json_real((double)w_stop / (double)n1s));
        json_object_set_new(w, "capture_us_avg", json_real((double)w_capture / (double)n1s));
        json_object_set_new(w, "kick_us_avg", json_real((double)w_kick / (double)n1s));
    }
    if (s && w)
        json_object_set_new(s, "last_second", w);
    if (s)
        json_object_set_new(s, "summary",
                            json_string(r->state == R_PROTECTED ? "PROTECTED (RPO = 0)"
                                        : r->state == R_SYNC    ? "SYNCING (not yet protected)"
                                                                : "UNPROTECTED (RPO != 0)"));
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&g_lock);
    return s ? json_pack("{s:b,s:o}", "ok", 1, "remus", s) : errj("remus-status: out of memory");
}

void vmm_remus_shutdown(struct vmm *vm)
{
    struct remus *r;

    (void)vm;
    pthread_mutex_lock(&g_lock);
    r = g_remus;
    g_remus = NULL;
    pthread_mutex_unlock(&g_lock);
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    if (!r->why[0])
        snprintf(r->why, sizeof(r->why), "the domain is being destroyed");
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    reap(r);
}
