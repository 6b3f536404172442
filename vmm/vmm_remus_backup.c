/* Remus backup: watch the primary's stream, commit each checkpoint with its disk writes, ACK, fail
 * over. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm_remus.h"

/*
 * vmm_restore() does the staging (a checkpointed stream's pages wait for
 * their CHECKPOINT) and calls the hooks below. It reads the stream from a
 * pipe that the relay thread fills from the real stream fd: the relay is
 * what notices the primary falling silent, and closing the pipe turns
 * silence into the end of the stream, which vmm_restore() reports to
 * broken_hook with the last committed epoch.
 */
static struct {
    struct vmm *vm;
    int stream_fd, ack_fd, pipe_w;
    unsigned timeout_ms, heartbeat_ms;
    pthread_t relay, hb;
    bool relay_started, hb_started;
    pthread_mutex_t lock;  /* stop, cond */
    pthread_mutex_t wlock; /* ack_fd writes (may block while the primary is busy) */
    pthread_cond_t cond;
    bool stop, failed_over;
    uint64_t committed, hb_seq;
    char why[256];
} B = {.stream_fd = -1,
       .ack_fd = -1,
       .pipe_w = -1,
       .lock = PTHREAD_MUTEX_INITIALIZER,
       .wlock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * One message to the primary; false when it can no longer be reached.
 * ack_fd is non-blocking: a heartbeat the primary is too busy to take
 * (during the initial sync it reads nothing) is dropped, an ACK waits.
 */
static bool send_msg(uint32_t type, uint64_t value)
{
    uint8_t m[VMM_REMUS_MSG_LEN];
    size_t done = 0;
    bool ok = true;

    vmm_remus_msg_encode(m, type, value, mono_ns());
    pthread_mutex_lock(&B.wlock);
    while (B.ack_fd >= 0 && done < sizeof(m)) {
        ssize_t n = write(B.ack_fd, m + done, sizeof(m) - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = B.ack_fd, .events = POLLOUT};
            if (type == VMM_REMUS_MSG_HEARTBEAT && done == 0)
                break;
            if (__atomic_load_n(&B.stop, __ATOMIC_RELAXED)) {
                ok = false;
                break;
            }
            poll(&p, 1, 100);
            continue;
        }
        if (n <= 0) {
            ok = false;
            break;
        }
        done += (size_t)n;
    }
    pthread_mutex_unlock(&B.wlock);
    return ok;
}

static void *relay_main(void *arg)
{
    static uint8_t buf[1 << 16];

    (void)arg;
    for (;;) {
        struct pollfd p = {.fd = B.stream_fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)B.timeout_ms);
        ssize_t n;
        bool stop;

        pthread_mutex_lock(&B.lock);
        stop = B.stop;
        pthread_mutex_unlock(&B.lock);
        if (stop)
            break;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            snprintf(B.why, sizeof(B.why), "the primary was silent for %u ms", B.timeout_ms);
            break;
        }
        n = read(B.stream_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(B.why, sizeof(B.why), "the stream from the primary %s",
                     n == 0 ? "ended (closed)" : strerror(errno));
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(B.pipe_w, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out; /* the restore stopped reading (it failed or ended) */
            off += w;
        }
    }
out:
    close(B.pipe_w); /* vmm_restore sees the end of the stream */
    B.pipe_w = -1;
    return NULL;
}

static void *hb_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&B.lock);
    while (!B.stop) {
        uint64_t due = mono_ns() + (uint64_t)B.heartbeat_ms * 1000000ull;
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull),
                              .tv_nsec = (long)(due % 1000000000ull)};
        pthread_cond_timedwait(&B.cond, &B.lock, &ts);
        if (B.stop)
            break;
        pthread_mutex_unlock(&B.lock);
        send_msg(VMM_REMUS_MSG_HEARTBEAT, ++B.hb_seq); /* a failure shows up on the stream too */
        pthread_mutex_lock(&B.lock);
    }
    pthread_mutex_unlock(&B.lock);
    return NULL;
}

/* A checkpoint was applied to memory and vCPU: its disk writes now, then the ACK. */
static int ack_hook(struct vmm *vm, uint64_t epoch)
{
    char err[VMM_ERRLEN];

    if (vmm_diskhold_commit(vm, err, sizeof(err)) < 0) {
        vmm_log("remus: epoch %llu: %s", (unsigned long long)epoch, err);
        return -1;
    }
    if (B.committed == 0)
        vmm_log("remus: first checkpoint committed (epoch %llu): this backup can take over now",
                (unsigned long long)epoch);
    B.committed = epoch;
    if (!send_msg(VMM_REMUS_MSG_ACK, epoch))
        vmm_log("remus: cannot send the ACK of epoch %llu: %s", (unsigned long long)epoch,
                strerror(errno));
    return 0;
}

static int disk_hook(struct vmm *vm, uint32_t disk, uint32_t sector_size,
                     const struct tandem_stream_extent *e, char *err, size_t errlen)
{
    /* Before the first commit there is no failover: write through, hold nothing. */
    return vmm_diskhold_add(vm, disk, sector_size, e, B.committed == 0, err, errlen);
}

static int broken_hook(struct vmm *vm, uint64_t last_epoch, bool any, const char *what)
{
    uint64_t dropped;

    (void)vm;
    dropped = vmm_diskhold_discard();
    if (!any) {
        vmm_log("remus: the primary was lost (%s; %s) before the first complete checkpoint: "
                "NO FAILOVER, this backup holds no consistent state",
                B.why[0] ? B.why : "stream error", what);
        return -1;
    }
    B.failed_over = true;
    vmm_log("remus: FAILOVER: %s (%s); resuming from the last committed checkpoint, epoch %llu; "
            "the partial state after it is discarded (%llu bytes of disk writes)",
            B.why[0] ? B.why : "the stream broke", what, (unsigned long long)last_epoch,
            (unsigned long long)dropped);
    return 0;
}

int vmm_remus_backup_start(struct vmm *vm, int stream_fd, int ack_fd, unsigned timeout_ms,
                           unsigned heartbeat_ms, int *restore_fd, char *err, size_t errlen)
{
    int p[2];

    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "remus: pipe: %s", strerror(errno));
        return -1;
    }
    {
        /* hb_main's deadlines are CLOCK_MONOTONIC. */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&B.cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    fcntl(ack_fd, F_SETFL, fcntl(ack_fd, F_GETFL) | O_NONBLOCK);
    B.vm = vm;
    B.stream_fd = stream_fd;
    B.ack_fd = ack_fd;
    B.pipe_w = p[1];
    B.timeout_ms = timeout_ms ? timeout_ms : 1000;
    B.heartbeat_ms = heartbeat_ms ? heartbeat_ms : 100;
    vmm_restore_ack_hook = ack_hook;
    vmm_restore_disk_hook = disk_hook;
    vmm_restore_broken_hook = broken_hook;
    if (pthread_create(&B.relay, NULL, relay_main, NULL) != 0) {
        close(p[0]);
        close(p[1]);
        snprintf(err, errlen, "remus: cannot start the relay thread");
        return -1;
    }
    B.relay_started = true;
    if (pthread_create(&B.hb, NULL, hb_main, NULL) == 0)
        B.hb_started = true;
    vmm_log("remus: backup: waiting for checkpoints; failover after %u ms of silence, "
            "heartbeat every %u ms",
            B.timeout_ms, B.heartbeat_ms);
    *restore_fd = p[0];
    return 0;
}

bool vmm_remus_backup_failed_over(void)
{
    return B.failed_over;
}

void vmm_remus_backup_stop(void)
{
    pthread_mutex_lock(&B.lock);
    __atomic_store_n(&B.stop, true, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&B.cond);
    pthread_mutex_unlock(&B.lock);
    if (B.hb_started)
        pthread_join(B.hb, NULL);
    B.hb_started = false;
    if (B.relay_started) {
        /* The relay may sit in poll() on a live stream: shut it so poll returns. */
        shutdown(B.stream_fd, SHUT_RDWR);
        pthread_cancel(B.relay);
        pthread_join(B.relay, NULL);
    }
    B.relay_started = false;
    pthread_mutex_lock(&B.wlock);
    if (B.ack_fd >= 0)
        close(B.ack_fd);
    B.ack_fd = -1;
    pthread_mutex_unlock(&B.wlock);
    if (B.stream_fd >= 0)
        close(B.stream_fd);
    B.stream_fd = -1;
}
