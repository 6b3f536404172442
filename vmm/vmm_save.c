/* The checkpoint engine's sender: save / live pre-copy as explicit steps (docs/checkpoint.md). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tandem.h"
#include "tandem_stream.h"
#include "vmm.h"

#define PAGE_SIZE 4096u
#define PROGRESS_INTERVAL_NS 100000000ull /* at most 10 progress messages a second */
#define DEFAULT_MAX_ITERS 30u
#define DEFAULT_DOWNTIME_MS 300u
#define CONFIG_MAX (16u << 20)

/* What the `save` request asked for (docs/control.md). */
struct save_opts {
    bool live;
    unsigned max_iters;
    unsigned downtime_ms;
    unsigned bandwidth_mbps; /* MB/s (10^6 bytes per second), 0 = unlimited */
    int compression;         /* enum tandem_stream_compression */
    bool leave_running;
    char
        *config; /* DOMAIN_CONFIG to write instead of DIR/config.json (xl save's CONFIG), or NULL */
};

/*
 * One run of the engine. The steps, in the order they happen:
 * ckpt_open -> [live: ckpt_precopy] -> ckpt_suspend -> ckpt_capture ->
 * ckpt_checkpoint -> ckpt_postcopy. Remus (issue 7) repeats
 * suspend -> capture -> postcopy -> checkpoint per epoch on the same struct.
 */
struct ckpt {
    struct vmm *vm;
    int client; /* control connection for progress, -1 for none */
    struct save_opts o;
    tandem_ctx *ctx;
    tandem_stream_writer *w;
    int file_fd;     /* the stream fd when it is a regular file, else -1 */
    uint64_t synced; /* stream bytes handed to writeback so far */
    struct vmm_dirty dirty;
    const char *phase; /* for error messages and progress */
    bool was_running, suspended, io_held;
    bool client_gone; /* a progress message failed: stop sending them (the save goes on) */
    uint64_t epoch;
    /* statistics */
    uint64_t t_start, t_suspend, t_done, t_last_progress, t_window;
    uint64_t bytes_window;
    uint64_t pages_sent, pages_total, iterations, dirty_now;
    uint64_t pages_all; /* page entries written over all rounds */
    /* page batch being collected */
    uint64_t pfns[TANDEM_STREAM_WRITE_BATCH];
    const void *ptrs[TANDEM_STREAM_WRITE_BATCH];
    size_t nbatch;
    /*
     * While the guest runs (pre-copy) pages are copied here first: the
     * stream checksums a page and then writes it, and a page the guest
     * changes in between would be sent with a wrong checksum. Once the
     * guest is suspended pages go out straight from guest memory.
     */
    uint8_t *copy;
    char err[VMM_ERRLEN];
};

static uint64_t epoch_counter; /* CHECKPOINT epochs strictly increase within a VMM's life */
static bool cancel_requested;  /* vmm_save_cancel(): the domain is being destroyed */

static bool cancelled(void)
{
    return __atomic_load_n(&cancel_requested, __ATOMIC_ACQUIRE);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t bytes_now(struct ckpt *c)
{
    return c->w ? tandem_stream_bytes(c->w) : 0;
}

/* Record the first error (message from the stream library when rc came from it). */
static int fail(struct ckpt *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ckpt *c, const char *fmt, ...)
{
    va_list ap;

    if (c->err[0])
        return -1;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return -1;
}

static int stream_fail(struct ckpt *c)
{
    return fail(c, "%s", tandem_ctx_error(c->ctx));
}

static void send_json(struct ckpt *c, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    /* Never block the engine on a slow reader: a progress message may be dropped. */
    if (text && c->client >= 0 && !c->client_gone &&
        send(c->client, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
        vmm_log("save: progress message: %s (no more progress messages)", strerror(errno));
        c->client_gone = true;
    }
    free(text);
    json_decref(j);
}

/* A progress message (rate-limited unless force); step names an engine step when not NULL. */
static void progress(struct ckpt *c, bool force, const char *step)
{
    uint64_t now = mono_ns(), bytes = bytes_now(c);
    double secs = (double)(now - c->t_window) / 1e9;
    double rate = secs > 0 ? (double)(bytes - c->bytes_window) / secs / 1e6 : 0;
    json_t *p;

    if (!force && now - c->t_last_progress < PROGRESS_INTERVAL_NS)
        return;
    c->t_last_progress = now;
    p = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:f}", "phase", c->phase, "iter",
                  (json_int_t)c->iterations, "pages_sent", (json_int_t)c->pages_sent, "pages_total",
                  (json_int_t)c->pages_total, "dirty", (json_int_t)c->dirty_now, "bytes",
                  (json_int_t)bytes, "rate_mbps", rate);
    if (p && step) {
        json_object_set_new(p, "step", json_string(step));
        json_object_set_new(p, "epoch", json_integer((json_int_t)c->epoch));
    }
    send_json(c, p ? json_pack("{s:o}", "progress", p) : NULL);
}

/* Sleep as needed to keep the stream at or under the bandwidth limit. */
static void throttle(struct ckpt *c)
{
    uint64_t bytes, now, due;

    if (!c->o.bandwidth_mbps)
        return;
    bytes = bytes_now(c) - c->bytes_window;
    now = mono_ns();
    due = c->t_window + bytes * 1000ull / c->o.bandwidth_mbps; /* ns at which bytes are "allowed" */
    /* In slices, so a destroy does not wait for a slow cap. */
    while (due > now && !cancelled()) {
        uint64_t ns = due - now < 100000000ull ? due - now : 100000000ull;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};
        nanosleep(&ts, NULL);
        now = mono_ns();
    }
}

/*
 * Whoever asked for the save went away (its control connection closed):
 * nobody will destroy or resume the domain afterwards, so stop and let
 * postcopy resume it. A killed `tandem save` or migration sender thus
 * leaves the domain running, never paused for good.
 */
static bool requester_gone(struct ckpt *c)
{
    struct pollfd p = {.fd = c->client, .events = POLLRDHUP};

    return c->client >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

/* Stop reasons checked between batches and before the state is closed. */
static int check_stop(struct ckpt *c)
{
    if (cancelled())
        return fail(c, "cancelled: the domain is being destroyed");
    if (requester_gone(c))
        return fail(c, "cancelled: the requester closed its control connection");
    return 0;
}

static int flush_batch(struct ckpt *c)
{
    if (check_stop(c) < 0)
        return -1;
    if (!c->nbatch)
        return 0;
    if (tandem_stream_write_pages(c->w, c->pfns, c->ptrs, c->nbatch) < 0)
        return stream_fail(c);
    c->pages_sent += c->nbatch;
    c->pages_all += c->nbatch;
    c->nbatch = 0;
    /*
     * Into a file: start writeback every 64 MiB instead of letting dirty
     * pages pile up until the kernel throttles us and the caller's fsync
     * has all of it to wait for.
     */
    if (c->file_fd >= 0 && bytes_now(c) - c->synced >= (64u << 20)) {
        (void)sync_file_range(c->file_fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint */
        c->synced = bytes_now(c);
    }
    throttle(c);
    progress(c, false, NULL);
    return 0;
}

static int add_page(struct ckpt *c, uint64_t pfn)
{
    const uint8_t *page = c->vm->mem.base + (pfn << 12);

    c->pfns[c->nbatch] = pfn;
    if (!c->suspended) {
        if (!c->copy && !(c->copy = malloc((size_t)TANDEM_STREAM_WRITE_BATCH * PAGE_SIZE)))
            return fail(c, "out of memory for the pre-copy buffer");
        memcpy(c->copy + c->nbatch * PAGE_SIZE, page, PAGE_SIZE);
        page = c->copy + c->nbatch * PAGE_SIZE;
    }
    c->ptrs[c->nbatch] = page;
    if (++c->nbatch == TANDEM_STREAM_WRITE_BATCH)
        return flush_batch(c);
    return 0;
}

static bool page_is_zero(const uint8_t *p)
{
    static const uint8_t zero[PAGE_SIZE];

    return memcmp(p, zero, PAGE_SIZE) == 0;
}

/*
 * First round: every page that was ever touched. The receiver starts from
 * zeroed memory, so all-zero pages are left out entirely: an idle 1 GiB
 * guest's image holds only the pages it used. Zero pages are found by
 * reading RAM through the memfd in 1 MiB pieces: through the mapping,
 * every page the VMM never touched costs a page fault (an idle 1 GiB
 * guest took 0.57 s to scan that way, 0.085 s through the fd).
 */
#define SCAN_CHUNK (1u << 20)

static int send_touched(struct ckpt *c)
{
    struct vmm_mem *m = &c->vm->mem;
    uint64_t pages = m->size / PAGE_SIZE, words = (pages + 63) / 64, off, i;
    uint64_t *touched = calloc(words ? words : 1, sizeof(uint64_t));
    uint8_t *buf = malloc(SCAN_CHUNK);
    int rc = -1;

    c->pages_total = 0;
    c->pages_sent = 0;
    if (!touched || !buf) {
        fail(c, "out of memory for the page scan");
        goto out;
    }
    for (off = 0; off < m->size; off += SCAN_CHUNK) {
        size_t len = m->size - off < SCAN_CHUNK ? (size_t)(m->size - off) : SCAN_CHUNK;
        ssize_t n = pread(m->fd, buf, len, (off_t)off);

        if (n != (ssize_t)len) {
            fail(c, "reading guest memory at 0x%llx: %s", (unsigned long long)off,
                 n < 0 ? strerror(errno) : "short read");
            goto out;
        }
        for (size_t p = 0; p < len; p += PAGE_SIZE)
            if (!page_is_zero(buf + p)) {
                uint64_t pfn = (off + p) / PAGE_SIZE;
                touched[pfn / 64] |= 1ull << (pfn % 64);
                c->pages_total++;
            }
    }
    progress(c, true, NULL); /* the round's size is known now */
    for (i = 0; i < words; i++) {
        uint64_t w = touched[i];
        while (w) {
            int b = __builtin_ctzll(w);
            w &= w - 1;
            if (add_page(c, i * 64 + (uint64_t)b) < 0)
                goto out;
        }
    }
    if (flush_batch(c) < 0)
        goto out;
    progress(c, true, NULL); /* round complete */
    rc = 0;
out:
    free(touched);
    free(buf);
    return rc;
}

/* Every page in the merged dirty bitmap, zero or not (it may have been cleared since). */
static int send_dirty(struct ckpt *c)
{
    uint64_t i;

    for (i = 0; i < c->dirty.words; i++) {
        uint64_t w = c->dirty.merged[i];
        c->dirty.merged[i] = 0;
        while (w) {
            int b = __builtin_ctzll(w);
            w &= w - 1;
            if (add_page(c, i * 64 + (uint64_t)b) < 0)
                return -1;
        }
    }
    if (flush_batch(c) < 0)
        return -1;
    progress(c, true, NULL); /* round complete */
    return 0;
}

static int parse_opts(json_t *req, struct save_opts *o, char *err, size_t errlen)
{
    json_t *v;
    const char *comp;

    memset(o, 0, sizeof(*o));
    o->max_iters = DEFAULT_MAX_ITERS;
    o->downtime_ms = DEFAULT_DOWNTIME_MS;
    if ((v = json_object_get(req, "live")) && !json_is_boolean(v))
        goto bad_live;
    o->live = json_is_true(v);
    if ((v = json_object_get(req, "leave_running")) && !json_is_boolean(v)) {
        snprintf(err, errlen, "save: \"leave_running\" must be true or false");
        return -1;
    }
    o->leave_running = json_is_true(v);
#define UINT_ARG(key, field, max)                                                                  \
    if ((v = json_object_get(req, key))) {                                                         \
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (max)) {   \
            snprintf(err, errlen, "save: \"%s\" must be an integer 0..%u", key, (unsigned)(max));  \
            return -1;                                                                             \
        }                                                                                          \
        o->field = (unsigned)json_integer_value(v);                                                \
    }
    UINT_ARG("max_iters", max_iters, 1000000u)
    UINT_ARG("downtime_ms", downtime_ms, 3600000u)
    UINT_ARG("bandwidth_mbps", bandwidth_mbps, 1000000u)
#undef UINT_ARG
    if ((v = json_object_get(req, "config"))) {
        if (!json_is_object(v) || !(o->config = json_dumps(v, JSON_COMPACT))) {
            snprintf(err, errlen, "save: \"config\" must be a domain configuration object");
            return -1;
        }
    }
    comp = json_string_value(json_object_get(req, "compression"));
    if (json_object_get(req, "compression") && !comp) {
        snprintf(err, errlen, "save: \"compression\" must be a string");
        return -1;
    }
    if (!comp || strcmp(comp, "none") == 0) {
        o->compression = TANDEM_COMPRESS_NONE;
    } else if (strcmp(comp, "lz4") == 0) {
        o->compression = TANDEM_COMPRESS_LZ4;
    } else if (strcmp(comp, "zstd") == 0) {
        o->compression = TANDEM_COMPRESS_ZSTD;
    } else {
        snprintf(err, errlen, "save: unknown compression '%.40s' (none, lz4, zstd)", comp);
        return -1;
    }
    return 0;
bad_live:
    snprintf(err, errlen, "save: \"live\" must be true or false");
    return -1;
}

static char *read_config(struct vmm *vm, size_t *len, char *err, size_t errlen)
{
    char path[4096], *buf = NULL;
    ssize_t n;
    size_t got = 0;
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
    if (!buf || got == 0 || got == CONFIG_MAX) {
        snprintf(err, errlen, "%.300s: %s", path, buf ? "empty or too large" : "out of memory");
        free(buf);
        return NULL;
    }
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
        got--;
    *len = got;
    return buf;
}

/* ---- the steps ------------------------------------------------------------------------------ */

/* Start the stream: header and DOMAIN_CONFIG. */
static int ckpt_open(struct ckpt *c, int fd)
{
    struct stat sb;
    struct tandem_stream_params sp = {
        .page_size = PAGE_SIZE,
        .kind = c->o.live ? TANDEM_STREAM_LIVE : TANDEM_STREAM_SAVE,
        .compression = (uint32_t)c->o.compression,
    };
    char *json;
    size_t len;
    int rc;

    c->phase = "open";
    c->file_fd = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? fd : -1;
    if (tandem_ctx_alloc(&c->ctx) < 0)
        return fail(c, "out of memory");
    if (tandem_stream_writer_open(c->ctx, fd, &sp, &c->w) < 0)
        return stream_fail(c);
    if (c->o.config) {
        json = c->o.config;
        c->o.config = NULL;
        len = strlen(json);
    } else if (!(json = read_config(c->vm, &len, c->err, sizeof(c->err)))) {
        return -1;
    }
    rc = tandem_stream_write_config(c->w, json, len);
    free(json);
    return rc < 0 ? stream_fail(c) : 0;
}

/*
 * Live pre-copy: dirty logging on, every touched page, then rounds of the
 * pages dirtied meanwhile until the rest would fit in the downtime target,
 * the dirty set stops shrinking, or max_iters rounds have run.
 */
static int ckpt_precopy(struct ckpt *c)
{
    uint64_t prev_dirty = UINT64_MAX;
    int64_t n;

    c->phase = "precopy";
    if (vmm_dirty_start(c->vm, &c->dirty, c->err, sizeof(c->err)) < 0)
        return -1;
    c->iterations = 1;
    if (send_touched(c) < 0)
        return -1;
    for (;;) {
        uint64_t est_ms;
        double bytes_per_ms;

        n = vmm_dirty_harvest(c->vm, &c->dirty, c->err, sizeof(c->err));
        if (n < 0)
            return -1;
        c->dirty_now = (uint64_t)n;
        /* Rate of the whole pre-copy so far; unknown (0) means "assume fast". */
        bytes_per_ms = (double)(bytes_now(c) - c->bytes_window) /
                       ((double)(mono_ns() - c->t_window) / 1e6 + 1e-3);
        est_ms = bytes_per_ms > 0 ? (uint64_t)((double)n * PAGE_SIZE / bytes_per_ms) : 0;
        progress(c, true, NULL);
        if (est_ms <= c->o.downtime_ms || c->iterations >= c->o.max_iters ||
            (c->iterations >= 3 && (uint64_t)n >= prev_dirty)) {
            vmm_log("save: pre-copy done after %llu rounds: %lld dirty pages, about %llu ms to "
                    "send",
                    (unsigned long long)c->iterations, (long long)n, (unsigned long long)est_ms);
            /* These pages stay marked: the final copy sends them with whatever comes next. */
            return 0;
        }
        prev_dirty = (uint64_t)n;
        c->iterations++;
        c->pages_total = (uint64_t)n;
        c->pages_sent = 0;
        if (send_dirty(c) < 0)
            return -1;
    }
}

/* Stop the guest and everything that writes guest memory. */
static int ckpt_suspend(struct ckpt *c)
{
    struct vmm *vm = c->vm;
    bool done;

    c->phase = "suspend";
    vmm_run_pause(vm);
    vmm_io_suspend(vm);
    c->io_held = true;
    c->suspended = true;
    c->t_suspend = mono_ns();
    pthread_mutex_lock(&vm->lock);
    done = vm->vcpu_done;
    pthread_mutex_unlock(&vm->lock);
    if (done)
        return fail(c, "the guest stopped (%s) during the save", vmm_halt_name(vm->halt));
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (vm->devs[k].ops->postsuspend && vm->devs[k].ops->postsuspend(vm, &vm->devs[k]) < 0)
            return fail(c, "%s %u: postsuspend failed", vm->devs[k].ops->kind,
                        vm->devs[k].abi.handle);
    progress(c, true, "suspend");
    return 0;
}

struct ring_state {
    uint32_t version; /* 1 */
    uint32_t has_ring;
    uint64_t gpa;
    uint64_t size;
};

/* Everything of the consistent state: last pages, vCPU, clock, devices. */
static int ckpt_capture(struct ckpt *c)
{
    struct vmm *vm = c->vm;
    struct tandem_stream_block blocks[9];
    struct vmm_vcpu_state st;
    struct tandem_stream_clock clk;
    struct tandem_stream_device dev;
    struct timespec ts;
    uint64_t total;
    size_t nb;
    int rc;

    c->phase = "final";
    if (c->o.live) {
        int64_t n = vmm_dirty_harvest(vm, &c->dirty, c->err, sizeof(c->err));
        if (n < 0)
            return -1;
        c->iterations++;
        c->dirty_now = c->pages_total = (uint64_t)n;
        c->pages_sent = 0;
        progress(c, true, NULL);
        if (send_dirty(c) < 0)
            return -1;
    } else {
        c->iterations = 1;
        if (send_touched(c) < 0)
            return -1;
    }
    if (vmm_state_get(vm, &st, c->err, sizeof(c->err)) < 0)
        return -1;
    nb = vmm_state_blocks(&st, blocks);
    rc = tandem_stream_write_vcpu(c->w, 0, blocks, nb);
    vmm_state_free(&st);
    if (rc < 0)
        return stream_fail(c);

    clock_gettime(CLOCK_REALTIME, &ts);
    clk.guest_ns = vmm_clock_guest_ns(vm);
    clk.tsc_khz = vm->tsc_khz;
    clk.generation = vm->clock.generation;
    clk.wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (tandem_stream_write_clock(c->w, &clk) < 0)
        return stream_fail(c);

    /* Console: bytes written so far (informational; the log stays with the host). */
    total = vm->con.total;
    dev = (struct tandem_stream_device){TANDEM_DEVICE_CONSOLE, 0, &total, sizeof(total)};
    if (tandem_stream_write_device(c->w, &dev) < 0)
        return stream_fail(c);
    /* Disks and vifs: where the guest put its ring, so the receiver can hook it up again. */
    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_dev *d = &vm->devs[k];
        struct ring_state rs = {.version = 1};
        rs.has_ring = vmm_io_ring_where(d, &rs.gpa, &rs.size);
        dev.kind = d->abi.type == TANDEM_DEVICE_DISK ? TANDEM_DEVICE_BLOCK : TANDEM_DEVICE_NET;
        dev.id = (uint32_t)d->devid;
        dev.data = &rs;
        dev.len = sizeof(rs);
        if (tandem_stream_write_device(c->w, &dev) < 0)
            return stream_fail(c);
    }
    return 0;
}

/* The state is complete: CHECKPOINT, then END (a save or migration stream has one state). */
static int ckpt_checkpoint(struct ckpt *c, bool end)
{
    c->phase = "checkpoint";
    if (check_stop(c) < 0)
        return -1;
    c->epoch = ++epoch_counter;
    if (tandem_stream_write_checkpoint(c->w, c->epoch) < 0)
        return stream_fail(c);
    if (end ? tandem_stream_write_end(c->w) < 0 : tandem_stream_flush(c->w) < 0)
        return stream_fail(c);
    c->t_done = mono_ns();
    progress(c, true, "checkpoint");
    return 0;
}

/*
 * After the capture ("postcopy" in Remus terms): the I/O thread goes back
 * to work, logging stops, and the guest runs again if asked (or if the
 * save failed and it was running); else it stays paused for the caller.
 */
static void ckpt_postcopy(struct ckpt *c, bool ok)
{
    struct vmm *vm = c->vm;
    bool run = c->was_running && (!ok || c->o.leave_running);

    if (c->suspended)
        for (unsigned k = 0; k < vm->num_devs; k++)
            if (vm->devs[k].ops->preresume && vm->devs[k].ops->preresume(vm, &vm->devs[k]) < 0)
                vmm_log("%s %u: preresume failed", vm->devs[k].ops->kind, vm->devs[k].abi.handle);
    if (c->io_held)
        vmm_io_resume(vm);
    c->io_held = false;
    vmm_dirty_stop(vm, &c->dirty);
    if (run)
        vmm_run_unpause(vm);
    if (ok)
        progress(c, true, "postcopy");
}

json_t *vmm_save_request(struct vmm *vm, int client, json_t *req, const int *fds, int nfds)
{
    struct ckpt *c = calloc(1, sizeof(*c));
    json_t *reply = NULL;
    char perr[VMM_ERRLEN];
    bool ok = false;
    int rc = -1;

    if (!c)
        return json_pack("{s:b,s:s}", "ok", 0, "error", "save: out of memory");
    c->vm = vm;
    c->client = client;
    c->t_start = c->t_window = mono_ns();
    c->phase = "start";
    if (parse_opts(req, &c->o, perr, sizeof(perr)) < 0) {
        reply = json_pack("{s:b,s:s}", "ok", 0, "error", perr);
        goto out;
    }
    if (nfds != 1) {
        reply = json_pack("{s:b,s:s}", "ok", 0, "error",
                          "save: attach exactly one file descriptor (the stream) with SCM_RIGHTS");
        goto out;
    }
    if (!vm->dir) {
        reply = json_pack("{s:b,s:s}", "ok", 0, "error", "save: only a daemon-mode VMM can save");
        goto out;
    }
    pthread_mutex_lock(&vm->lock);
    c->was_running = vm->state == VMM_STATE_RUNNING;
    if (vm->state == VMM_STATE_SHUTDOWN || vm->state == VMM_STATE_CRASHED || vm->vcpu_done) {
        pthread_mutex_unlock(&vm->lock);
        reply = json_pack("{s:b,s:s}", "ok", 0, "error",
                          "save: the domain has shut down or crashed; nothing to save");
        goto out;
    }
    pthread_mutex_unlock(&vm->lock);
    vmm_log("save: %s%s, compression %d, downtime %u ms, max %u rounds, %u MB/s",
            c->o.live ? "live" : "non-live", c->o.leave_running ? ", leave running" : "",
            c->o.compression, c->o.downtime_ms, c->o.max_iters, c->o.bandwidth_mbps);

    /* The engine's steps in order. A non-live save suspends before sending anything. */
    if (ckpt_open(c, fds[0]) < 0)
        goto done;
    if (c->o.live && ckpt_precopy(c) < 0)
        goto done;
    if (ckpt_suspend(c) < 0)
        goto done;
    if (ckpt_capture(c) < 0)
        goto done;
    if (ckpt_checkpoint(c, true) < 0)
        goto done;
    ok = true;
done:
    ckpt_postcopy(c, ok);
    if (ok) {
        uint64_t down = c->t_done - c->t_suspend;
        reply = json_pack("{s:b,s:{s:I,s:I,s:I,s:I,s:I}}", "ok", 1, "stats", "total_ms",
                          (json_int_t)((c->t_done - c->t_start) / 1000000), "downtime_ms",
                          (json_int_t)(down / 1000000), "bytes", (json_int_t)bytes_now(c), "pages",
                          (json_int_t)c->pages_all, "iterations", (json_int_t)c->iterations);
        json_object_set_new(json_object_get(reply, "stats"), "downtime_us",
                            json_integer((json_int_t)(down / 1000)));
        vmm_log("save: done, %llu bytes in %llu ms (downtime %llu us), %llu rounds",
                (unsigned long long)bytes_now(c),
                (unsigned long long)((c->t_done - c->t_start) / 1000000),
                (unsigned long long)(down / 1000), (unsigned long long)c->iterations);
        rc = 0;
    } else {
        char msg[VMM_ERRLEN + 128];
        snprintf(msg, sizeof(msg), "save failed in phase %s after %llu bytes of stream: %s%s",
                 c->phase, (unsigned long long)bytes_now(c), c->err,
                 c->was_running ? " (the domain was resumed)" : "");
        vmm_log("%s", msg);
        reply = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
    }
out:
    (void)rc;
    tandem_stream_writer_free(c->w);
    tandem_ctx_free(c->ctx);
    free(c->copy);
    free(c->o.config);
    free(c);
    return reply;
}

/* ---- the save job: one at a time, on its own thread, so the control loop keeps answering ---- */

static struct {
    bool active; /* started and not yet collected by vmm_save_finish */
    pthread_t thread;
    struct vmm *vm;
    int client, stream_fd, done_fd, nfds;
    json_t *req, *reply;
} job = {.client = -1, .stream_fd = -1, .done_fd = -1};

static void *job_main(void *opaque)
{
    uint64_t one = 1;

    (void)opaque;
    job.reply = vmm_save_request(job.vm, job.client, job.req, &job.stream_fd, job.nfds);
    if (write(job.done_fd, &one, sizeof(one)) < 0)
        vmm_log("save: cannot signal the main thread: %s", strerror(errno));
    return NULL;
}

json_t *vmm_save_start(struct vmm *vm, int client, json_t *req, const int *fds, int nfds)
{
    sigset_t all, old;
    int rc;

    if (job.active)
        return json_pack("{s:b,s:s}", "ok", 0, "error",
                         "save: another save of this domain is in progress");
    if (job.done_fd < 0 && (job.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return json_pack("{s:b,s:s}", "ok", 0, "error", "save: eventfd failed");
    /* The request's fds are closed by the caller: keep our own copy of the stream. */
    job.nfds = nfds;
    job.stream_fd = nfds >= 1 ? fcntl(fds[0], F_DUPFD_CLOEXEC, 3) : -1;
    if (nfds >= 1 && job.stream_fd < 0)
        return json_pack("{s:b,s:s}", "ok", 0, "error", "save: cannot duplicate the stream fd");
    job.vm = vm;
    job.client = client;
    job.req = json_incref(req);
    job.reply = NULL;
    __atomic_store_n(&cancel_requested, false, __ATOMIC_RELEASE);
    /* Signals stay with the main thread (signalfd) and the vCPU thread (kick). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&job.thread, NULL, job_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        if (job.stream_fd >= 0)
            close(job.stream_fd);
        job.stream_fd = -1;
        json_decref(job.req);
        job.req = NULL;
        return json_pack("{s:b,s:s}", "ok", 0, "error", "save: cannot start the save thread");
    }
    job.active = true;
    return NULL;
}

bool vmm_save_busy(void)
{
    return job.active;
}

int vmm_save_client(void)
{
    return job.active ? job.client : -1;
}

int vmm_save_wait_fd(void)
{
    return job.active ? job.done_fd : -1;
}

void vmm_save_cancel(void)
{
    __atomic_store_n(&cancel_requested, true, __ATOMIC_RELEASE);
}

json_t *vmm_save_finish(int *client)
{
    uint64_t v;
    json_t *reply;

    *client = -1;
    if (!job.active)
        return NULL;
    pthread_join(job.thread, NULL);
    if (read(job.done_fd, &v, sizeof(v)) < 0) {
        /* already drained */
    }
    reply = job.reply;
    *client = job.client;
    if (job.stream_fd >= 0)
        close(job.stream_fd);
    json_decref(job.req);
    job.req = NULL;
    job.reply = NULL;
    job.stream_fd = -1;
    job.client = -1;
    job.active = false;
    return reply ? reply : json_pack("{s:b,s:s}", "ok", 0, "error", "save: out of memory");
}
