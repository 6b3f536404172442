/* Migration sender: the interlock in chronological order, one function per phase. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain_internal.h"
#include "migrate_internal.h"

/* How long the sender waits for each receiver answer (docs/migration.md "Timeouts"). */
#define CONFIG_TIMEOUT_MS 60000
#define HAVE_STATE_TIMEOUT_MS 120000
#define RUNNING_TIMEOUT_MS 60000
/* Silence from the VMM during `save` after which the sender gives up. */
#define SAVE_SILENCE_MS 120000
#define SAVE_MSG_MAX (64 * 1024)
/* --copy-storage chunk (docs/migration.md "Storage"). */
#define DISK_CHUNK (1u << 20)
/* Live disk rounds: at most this many, and stop once a round re-sent at most this many blocks. */
#define DISK_ROUNDS_MAX 8
#define DISK_ROUNDS_ENOUGH 16
/* --copy-storage copies at most this many disks (a domain has at most 16 devices). */
#define MIG_MAX_DISKS 16

struct msend {
    tandem_ctx *ctx;
    uint32_t domid;
    tandem_migrate_conn *conn;
    const struct tandem_migrate_params *params;
    tandem_migrate_progress_cb *progress;
    void *opaque;
    struct tandem_migrate_stats *stats;

    const char *root;
    char *label;
    tandem_domain_config cfg;
    int ctl;       /* control connection of the running save, -1 */
    int stream_fd; /* what the VMM writes the stream to: the connection or the relay */
    struct tdm_mig_relay *relay; /* --encrypt */
    struct tdm_mig_guard guard;  /* resumes the source if we die before `go` */
    int source_paused;           /* the save finished: the source waits for us */
    int was_running;             /* else it was paused before: it stays paused whatever happens */
    int64_t t_paused;
    /* --copy-storage: the disks open for reading, and whether the VMM tracks their writes. */
    int disk_fd[MIG_MAX_DISKS];
    uint64_t disk_size[MIG_MAX_DISKS];
    int tracking;
};

static void report(struct msend *m, const char *phase)
{
    struct tandem_migrate_progress p = {.phase = phase};
    tdm_mig_test_stop("send", phase);
    if (m->progress)
        m->progress(m->opaque, &p);
}

/* ---- the guard's action: the sender died before `go`, so the source must run again */

struct guard_arg {
    uint32_t domid;
};
static struct guard_arg guard_arg;

static void guard_resume_source(void *arg, int ctl)
{
    struct guard_arg *a = arg;
    tandem_ctx *ctx = NULL;
    char buf[SAVE_MSG_MAX];

    /* Let a save still in progress finish first: it leaves the domain paused. */
    if (ctl >= 0) {
        for (;;) {
            struct pollfd p = {.fd = ctl, .events = POLLIN};
            ssize_t n;
            if (poll(&p, 1, 600000) <= 0)
                break;
            n = recv(ctl, buf, sizeof(buf) - 1, 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                break;
            buf[n] = '\0';
            if (strstr(buf, "\"ok\""))
                break;
        }
    }
    if (tandem_ctx_alloc(&ctx) != 0)
        return;
    for (int i = 0; i < 60; i++) {
        int rc = tandem_domain_unpause(ctx, a->domid);
        if (rc == 0 || rc == TANDEM_ERR_NOTFOUND)
            break;
        sleep(1);
    }
    tandem_ctx_free(ctx);
}

/* ---- phases, in order */

/* 1. Banner and version (and, for TCP, authentication — already done by connect). */
static int phase_hello(struct msend *m)
{
    report(m, "hello");
    if (m->conn->chan.rx_seq > 0)
        return 0;
    return tdm_mig_handshake_sender(m->ctx, m->conn, NULL);
}

/* 2. Config: the receiver checks name, kernel, bridges and disks before anything is sent. */
static int phase_config(struct msend *m)
{
    json_t *msg = NULL, *disks = NULL, *reply = NULL, *cfgj = NULL;
    tandem_dominfo info;
    int rc;

    report(m, "config");
    tandem_dominfo_init(&info);
    rc = tandem_domain_info(m->ctx, m->domid, &info);
    if (rc)
        goto out;
    if (info.state != TANDEM_DOMAIN_STATE_RUNNING && info.state != TANDEM_DOMAIN_STATE_PAUSED) {
        rc = tandem_error(m->ctx, TANDEM_ERR_BUSY,
                          "%s is %s; only a running or paused domain "
                          "can be migrated",
                          m->label, tandem_domain_state_to_string(info.state));
        goto out;
    }
    m->was_running = info.state == TANDEM_DOMAIN_STATE_RUNNING;
    m->stats->source_was_running = m->was_running;
    rc = tandem_domain_get_config(m->ctx, m->domid, &m->cfg);
    if (rc)
        goto out;
    cfgj = tandem_domain_config_gen_json(&m->cfg);
    disks = json_array();
    if (!cfgj || !disks) {
        rc = tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot encode the configuration");
        goto out;
    }
    for (int i = 0; i < m->cfg.num_disks; i++) {
        const tandem_device_disk *d = &m->cfg.disks[i];
        uint64_t size = 0;
        char hex[65];
        if (!d->pdev_path || !d->pdev_path[0])
            continue;
        rc = tdm_mig_disk_sample(m->ctx, d->pdev_path, &size, hex);
        if (rc)
            goto out;
        char ident[160] = "";
        (void)tdm_mig_disk_identity(d->pdev_path, ident);
        json_array_append_new(disks,
                              json_pack("{s:s,s:s,s:I,s:s}", "vdev", d->vdev ? d->vdev : "", "path",
                                        d->pdev_path, "size", (json_int_t)size, "identity", ident));
    }
    msg = json_pack("{s:s,s:O,s:O,s:b,s:b}", "msg", "config", "config", cfgj, "disks", disks,
                    "copy_storage", m->params->copy_storage, "encrypt", m->params->encrypt);
    if (!msg) {
        rc = tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot encode the configuration");
        goto out;
    }
    rc = tdm_mig_send(m->ctx, m->conn, msg);
    if (rc)
        goto out;
    rc = tdm_mig_recv(m->ctx, m->conn, CONFIG_TIMEOUT_MS, "config-ok", &reply);
out:
    tandem_dominfo_dispose(&info);
    json_decref(msg);
    json_decref(disks);
    json_decref(cfgj);
    json_decref(reply);
    return rc;
}

/* 3. Receiver ready: its VMM is about to read the stream. */
static int phase_ready(struct msend *m)
{
    json_t *reply = NULL;
    int rc;

    report(m, "ready");
    rc = tdm_mig_recv(m->ctx, m->conn, CONFIG_TIMEOUT_MS, "ready", &reply);
    json_decref(reply);
    return rc;
}

static int send_save_request(struct msend *m)
{
    const struct tandem_migrate_params *pp = m->params;
    char *dir = tdm_domain_path(m->root, m->domid, NULL), *text = NULL;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {0};
    struct iovec iov;
    struct cmsghdr *cm;
    json_t *req;
    int rc = 0, fd = -1;

    req = json_pack("{s:s,s:b,s:i,s:i,s:i,s:s,s:b}", "cmd", "save", "live", 1, "max_iters",
                    (int)(pp->max_iters ? pp->max_iters : 30), "downtime_ms",
                    (int)(pp->downtime_ms ? pp->downtime_ms : 5), "bandwidth_mbps",
                    (int)pp->bandwidth_mbps, "compression",
                    pp->compression ? pp->compression : "none", "leave_running", 0);
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (!dir || !text) {
        rc = tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot build the save request");
        goto out;
    }
    for (int tries = 0; tries < 100; tries++) {
        fd = tdm_control_connect(dir);
        if (fd != -EAGAIN)
            break;
        usleep(10000);
    }
    if (fd < 0) {
        rc = tandem_error_errno(m->ctx, TANDEM_ERR_NOTFOUND, -fd, "%s: cannot reach its VMM",
                                m->label);
        goto out;
    }
    iov.iov_base = text;
    iov.iov_len = strlen(text);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &m->stream_fd, sizeof(int));
    for (;;) {
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            (void)poll(&p, 1, 1000);
            continue;
        }
        rc = tandem_error_errno(m->ctx, TANDEM_ERR_IO, errno, "%s: cannot send save", m->label);
        goto out;
    }
    m->ctl = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    json_decref(req);
    free(text);
    free(dir);
    return rc;
}

static uint64_t jint(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return (uint64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0)
        return (uint64_t)json_real_value(v);
    return 0;
}

/* Read progress messages until the save's final reply. */
static int await_save(struct msend *m)
{
    char *buf = malloc(SAVE_MSG_MAX + 1);
    json_t *j = NULL;
    int rc = 0;

    if (!buf)
        return tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot receive save progress");
    for (;;) {
        struct pollfd p = {.fd = m->ctl, .events = POLLIN};
        json_t *prog;
        ssize_t n;
        int pr = poll(&p, 1, SAVE_SILENCE_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            rc = tandem_error(m->ctx, TANDEM_ERR_TIMEOUT,
                              "%s: its VMM sent nothing for %d s during save", m->label,
                              SAVE_SILENCE_MS / 1000);
            goto out;
        }
        n = recv(m->ctl, buf, SAVE_MSG_MAX, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            rc = tandem_error(m->ctx, TANDEM_ERR_IO,
                              "%s: its VMM closed the control connection during save (it died?)",
                              m->label);
            goto out;
        }
        buf[n] = '\0';
        json_decref(j);
        j = json_loads(buf, 0, NULL);
        if (!j)
            continue;
        prog = json_object_get(j, "progress");
        if (prog) {
            struct tandem_migrate_progress pg = {
                .phase = json_string_value(json_object_get(prog, "phase")),
                .iter = jint(prog, "iter"),
                .pages_sent = jint(prog, "pages_sent"),
                .pages_total = jint(prog, "pages_total"),
                .dirty = jint(prog, "dirty"),
                .bytes = jint(prog, "bytes"),
                .rate_mbps = json_number_value(json_object_get(prog, "rate_mbps")),
            };
            if (!pg.phase)
                pg.phase = "precopy";
            if (m->progress)
                m->progress(m->opaque, &pg);
            continue;
        }
        if (json_is_true(json_object_get(j, "ok"))) {
            json_t *st = json_object_get(j, "stats");
            m->stats->total_ms = jint(st, "total_ms");
            m->stats->downtime_ms = jint(st, "downtime_ms");
            m->stats->downtime_us = jint(st, "downtime_us");
            m->stats->bytes = jint(st, "bytes");
            m->stats->pages = jint(st, "pages");
            m->stats->iterations = jint(st, "iterations");
            goto out;
        }
        {
            const char *e = json_string_value(json_object_get(j, "error"));
            rc = tandem_error(m->ctx, TANDEM_ERR_FAIL, "%s: %s", m->label,
                              e ? e : "save failed without a message");
            goto out;
        }
    }
out:
    json_decref(j);
    free(buf);
    return rc;
}

/*
 * 4+5. Pre-copy and final copy: the VMM writes the live stream straight
 * onto the connection and leaves the domain paused. On failure the VMM
 * has resumed it; we hang up so the receiver's VMM sees the stream end.
 */
static int phase_stream(struct msend *m)
{
    int rc;

    report(m, "stream");
    m->stream_fd = m->conn->wfd;
    if (m->params->encrypt &&
        (rc = tdm_mig_relay_start(m->ctx, m->conn, 1, &m->relay, &m->stream_fd)))
        return rc;
    rc = send_save_request(m);
    if (rc)
        goto fail;
    guard_arg.domid = m->domid;
    if (m->was_running &&
        (rc = tdm_mig_guard_start(m->ctx, &m->guard, guard_resume_source, &guard_arg, m->ctl)))
        goto fail;
    rc = await_save(m);
    if (rc)
        goto fail;
    /* The save is over: should we die now, the guard unpauses at once. */
    tdm_mig_guard_release_fd(&m->guard);
    m->source_paused = 1;
    m->t_paused = tdm_mig_now_ms();
    if (m->relay) {
        /* The VMM has closed its end: the relay sends what is left and the FINAL chunk. */
        close(m->stream_fd);
        rc = tdm_mig_relay_finish(m->ctx, m->relay, 0);
        m->relay = NULL;
        return rc; /* on failure the caller resumes the (paused) source */
    }
    return 0;
fail:
    if (m->relay) {
        close(m->stream_fd);
        tdm_mig_relay_finish(m->ctx, m->relay, 1);
        m->relay = NULL;
    }
    shutdown(m->conn->wfd, SHUT_WR);
    if (m->conn->wfd != m->conn->rfd)
        close(m->conn->wfd), m->conn->wfd = -1;
    return rc;
}

/* All-zero chunks are not sent: the receiver's new file is sparse. */
static int all_zero(const uint8_t *b, size_t n)
{
    return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

/*
 * One disk-data frame for disk i: read [off, off+len) (clipped to the
 * disk's size) and send it with its BLAKE2b-256 inside the frame, so the
 * authenticated frame vouches for the raw bytes that follow. With
 * skip_zero an all-zero piece is not sent (the first pass: the receiver's
 * file is sparse); a re-sent dirty block is always sent, zeros included.
 */
static int send_piece(struct msend *m, int i, uint64_t off, uint64_t len, uint8_t *buf,
                      int skip_zero)
{
    const char *path = m->cfg.disks[i].pdev_path;
    uint8_t digest[32];
    char hex[65];
    size_t got = 0;
    json_t *f;
    int rc, e;

    if (off >= m->disk_size[i])
        return 0;
    if (len > m->disk_size[i] - off)
        len = m->disk_size[i] - off;
    while (got < len) {
        ssize_t n = pread(m->disk_fd[i], buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return tandem_error_errno(m->ctx, TANDEM_ERR_IO, errno, "disk %s: read at %llu", path,
                                      (unsigned long long)(off + got));
        if (n == 0)
            break; /* shrank under us: the sample check after the copy says so */
        got += (size_t)n;
    }
    if (got == 0 || (skip_zero && all_zero(buf, got)))
        return 0;
    crypto_generichash(digest, sizeof(digest), buf, got, NULL, 0);
    tdm_mig_hex(digest, sizeof(digest), hex);
    f = json_pack("{s:s,s:i,s:I,s:i,s:s}", "msg", "disk-data", "disk", i, "offset", (json_int_t)off,
                  "len", (int)got, "hash", hex);
    rc = f ? tdm_mig_send(m->ctx, m->conn, f)
           : tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot copy the disks");
    json_decref(f);
    if (rc)
        return rc;
    e = tdm_mig_write_all(m->conn->wfd, buf, got);
    if (e < 0)
        return tandem_error_errno(m->ctx, TANDEM_ERR_IO, -e, "cannot send to %s", m->conn->peer);
    m->stats->storage_bytes += got;
    return 0;
}

/* The disk of our config at path, or -1. */
static int disk_index(const struct msend *m, const char *path)
{
    for (int i = 0; i < m->cfg.num_disks && i < MIG_MAX_DISKS; i++)
        if (path && m->cfg.disks[i].pdev_path && strcmp(m->cfg.disks[i].pdev_path, path) == 0)
            return i;
    return -1;
}

/* {"cmd":"disk-dirty","op":op} to the source's VMM (docs/control.md). */
static int disk_dirty(struct msend *m, const char *op, json_t **reply)
{
    json_t *extra = json_pack("{s:s}", "op", op);
    int rc = extra ? tdm_domain_request(m->ctx, m->root, m->domid, "disk-dirty", extra, reply)
                   : tandem_error(m->ctx, TANDEM_ERR_NOMEM, "out of memory");
    json_decref(extra);
    return rc;
}

/* Stop the VMM's tracking (a failed or finished --copy-storage); errors are not ours to report. */
static void disk_dirty_stop(struct msend *m)
{
    tandem_ctx *c2 = NULL;
    json_t *r = NULL;

    if (!m->tracking || tandem_ctx_alloc(&c2) != 0)
        return;
    tandem_ctx *keep = m->ctx;
    m->ctx = c2;
    (void)disk_dirty(m, "stop", &r);
    m->ctx = keep;
    m->tracking = 0;
    json_decref(r);
    tandem_ctx_free(c2);
}

/*
 * Fetch the dirty blocks (clearing them in the VMM) and re-send them, in
 * pieces of at most DISK_CHUNK. *blocks gets how many there were. Repeats
 * while the VMM says its reply could not hold them all.
 */
static int send_dirty(struct msend *m, uint64_t *blocks)
{
    uint8_t *buf = malloc(DISK_CHUNK);
    json_t *reply = NULL;
    int rc = 0, more = 1;

    *blocks = 0;
    if (!buf)
        return tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot copy the disks");
    while (more) {
        json_t *d;
        size_t k;
        uint64_t bs;

        json_decref(reply);
        reply = NULL;
        rc = disk_dirty(m, "fetch", &reply);
        if (rc)
            goto out;
        bs = jint(reply, "block_size");
        more = json_is_true(json_object_get(reply, "more"));
        if (bs == 0 || bs > DISK_CHUNK || DISK_CHUNK % bs) {
            rc = tandem_error(m->ctx, TANDEM_ERR_PROTO,
                              "%s: its VMM tracks dirty disk blocks of %llu bytes", m->label,
                              (unsigned long long)bs);
            goto out;
        }
        json_array_foreach(json_object_get(reply, "disks"), k, d)
        {
            const char *path = json_string_value(json_object_get(d, "path"));
            int i = disk_index(m, path);
            json_t *r;
            size_t j;
            if (i < 0 || m->disk_fd[i] < 0)
                continue; /* a disk not in the migrated config (read-only ones are never dirty) */
            json_array_foreach(json_object_get(d, "ranges"), j, r)
            {
                uint64_t first = (uint64_t)json_integer_value(json_array_get(r, 0));
                uint64_t count = (uint64_t)json_integer_value(json_array_get(r, 1));
                *blocks += count;
                for (uint64_t off = first * bs, end = (first + count) * bs; off < end;
                     off += DISK_CHUNK) {
                    uint64_t len = end - off < DISK_CHUNK ? end - off : DISK_CHUNK;
                    rc = send_piece(m, i, off, len, buf, 0);
                    if (rc)
                        goto out;
                }
            }
        }
    }
out:
    json_decref(reply);
    free(buf);
    return rc;
}

/*
 * 2b. --copy-storage, while the guest runs: the VMM starts tracking
 * writes, every non-zero chunk of every disk goes across, then the blocks
 * written meanwhile, in rounds while that set shrinks; `disk-copy-done`
 * ends the phase. Tracking goes on through the memory pre-copy: what is
 * dirty at the end goes in phase 6 with the source paused.
 */
static int phase_disk_copy(struct msend *m)
{
    json_t *reply = NULL, *d, *done = NULL;
    uint8_t *buf = NULL;
    uint64_t prev = UINT64_MAX, blocks = 0;
    size_t k;
    int rc;

    if (!m->params->copy_storage)
        return 0;
    report(m, "disk-copy");
    for (int i = 0; i < m->cfg.num_disks; i++) {
        const char *path = m->cfg.disks[i].pdev_path;
        struct stat st;
        if (!path || !path[0])
            continue;
        if (i >= MIG_MAX_DISKS)
            return tandem_error(m->ctx, TANDEM_ERR_INVAL,
                                "%s has more than %d disks; --copy-storage copies at most %d",
                                m->label, MIG_MAX_DISKS, MIG_MAX_DISKS);
        m->disk_fd[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (m->disk_fd[i] < 0 || fstat(m->disk_fd[i], &st) < 0)
            return tandem_error_errno(m->ctx, TANDEM_ERR_IO, errno, "disk %s", path);
        m->disk_size[i] = (uint64_t)st.st_size;
    }
    /* Tracking first: a write after this is either read by the first pass or marked. */
    rc = disk_dirty(m, "start", &reply);
    if (rc)
        goto out;
    m->tracking = 1;
    for (int i = 0; i < m->cfg.num_disks && i < MIG_MAX_DISKS; i++) {
        int found = 0;
        if (m->disk_fd[i] < 0)
            continue;
        json_array_foreach(json_object_get(reply, "disks"), k, d) found |=
            disk_index(m, json_string_value(json_object_get(d, "path"))) == i;
        if (!found && m->cfg.disks[i].readwrite) {
            rc = tandem_error(m->ctx, TANDEM_ERR_FAIL,
                              "%s: its VMM does not track disk %s; cannot copy it live", m->label,
                              m->cfg.disks[i].pdev_path);
            goto out;
        }
    }
    buf = malloc(DISK_CHUNK);
    if (!buf) {
        rc = tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot copy the disks");
        goto out;
    }
    for (int i = 0; i < m->cfg.num_disks && i < MIG_MAX_DISKS; i++)
        for (uint64_t off = 0; m->disk_fd[i] >= 0 && off < m->disk_size[i]; off += DISK_CHUNK)
            if ((rc = send_piece(m, i, off, DISK_CHUNK, buf, 1)))
                goto out;
    /* Rounds of what was written meanwhile, while that shrinks. */
    for (unsigned round = 1; round <= DISK_ROUNDS_MAX; round++) {
        rc = send_dirty(m, &blocks);
        if (rc)
            goto out;
        m->stats->storage_rounds = round;
        m->stats->storage_dirty_blocks += blocks;
        if (blocks <= DISK_ROUNDS_ENOUGH || blocks >= prev)
            break;
        prev = blocks;
    }
    done = json_pack("{s:s,s:I,s:I}", "msg", "disk-copy-done", "rounds",
                     (json_int_t)m->stats->storage_rounds, "bytes",
                     (json_int_t)m->stats->storage_bytes);
    rc = done ? tdm_mig_send(m->ctx, m->conn, done)
              : tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot encode disk-copy-done");
out:
    free(buf);
    json_decref(reply);
    json_decref(done);
    if (rc)
        tandem_error_prefix(m->ctx, "copying the disks");
    return rc;
}

/* 6. The receiver has the whole state (and the disks match, checked now that they are quiet). */
static int phase_have_state(struct msend *m)
{
    json_t *msg = NULL, *disks = json_array(), *reply = NULL;
    int rc = 0;

    report(m, "have-state");
    if (!disks)
        return tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot list the disks");
    if (m->params->copy_storage) {
        /* The source is paused: what it wrote since the last round is all that is left. */
        uint64_t t0 = tdm_mig_now_ms(), before = m->stats->storage_bytes, blocks;
        report(m, "storage");
        rc = send_dirty(m, &blocks);
        disk_dirty_stop(m);
        if (rc) {
            tandem_error_prefix(m->ctx, "copying the last dirty disk blocks");
            goto out;
        }
        m->stats->storage_final_bytes = m->stats->storage_bytes - before;
        m->stats->storage_final_ms = (uint64_t)(tdm_mig_now_ms() - (int64_t)t0);
    }
    for (int i = 0; i < m->cfg.num_disks; i++) {
        const tandem_device_disk *d = &m->cfg.disks[i];
        uint64_t size = 0;
        char hex[65];
        if (!d->pdev_path || !d->pdev_path[0])
            continue;
        rc = tdm_mig_disk_sample(m->ctx, d->pdev_path, &size, hex);
        if (rc)
            goto out;
        json_array_append_new(disks,
                              json_pack("{s:s,s:s,s:I,s:s}", "vdev", d->vdev ? d->vdev : "", "path",
                                        d->pdev_path, "size", (json_int_t)size, "sample", hex));
    }
    msg = json_pack("{s:s,s:O}", "msg", "storage", "disks", disks);
    if (!msg) {
        rc = tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot encode the storage check");
        goto out;
    }
    rc = tdm_mig_send(m->ctx, m->conn, msg);
    if (rc)
        goto out;
    rc = tdm_mig_recv(m->ctx, m->conn, HAVE_STATE_TIMEOUT_MS, "have-state", &reply);
    if (rc)
        goto out;
    m->stats->remote_domid = (uint32_t)jint(reply, "domid");
out:
    json_decref(msg);
    json_decref(disks);
    json_decref(reply);
    return rc;
}

/* 7. Tell the receiver to run. From here on the source must not resume on its own. */
static int phase_go(struct msend *m)
{
    json_t *msg =
        json_pack("{s:s,s:b}", "msg", "go", "paused", m->params->leave_paused || !m->was_running);
    int rc;

    report(m, "go");
    tdm_mig_guard_disarm(&m->guard);
    rc = msg ? tdm_mig_send(m->ctx, m->conn, msg)
             : tandem_error(m->ctx, TANDEM_ERR_NOMEM, "cannot encode go");
    json_decref(msg);
    return rc;
}

/* 8. The receiver confirms the domain runs there. */
static int phase_running(struct msend *m)
{
    json_t *reply = NULL;
    int rc;

    report(m, "running");
    rc = tdm_mig_recv(m->ctx, m->conn, RUNNING_TIMEOUT_MS, "running", &reply);
    json_decref(reply);
    if (rc == 0)
        m->stats->handover_ms = (uint64_t)(tdm_mig_now_ms() - m->t_paused);
    return rc;
}

/* The guard's action once the receiver runs the domain: the source must go. */
static void guard_destroy_source(void *arg, int unused)
{
    struct guard_arg *a = arg;
    tandem_ctx *ctx = NULL;

    (void)unused;
    if (tandem_ctx_alloc(&ctx) != 0)
        return;
    (void)tandem_domain_destroy(ctx, a->domid);
    tandem_ctx_free(ctx);
}

/* 9. Destroy the source and say goodbye. */
static int phase_destroy(struct msend *m)
{
    json_t *msg;
    int rc;

    /* The receiver runs it: if we die before destroying ours, the guard does. */
    if (tdm_mig_guard_start(m->ctx, &m->guard, guard_destroy_source, &guard_arg, -1))
        tandem_ctx_clear_error(m->ctx);
    report(m, "destroy");
    rc = tandem_domain_destroy(m->ctx, m->domid);
    if (rc == TANDEM_ERR_TIMEOUT)
        rc = 0; /* gone all the same (the message says it was killed) */
    msg = json_pack("{s:s,s:b}", "msg", "done", "source_destroyed", rc == 0);
    if (msg)
        (void)tdm_mig_send(NULL, m->conn, msg);
    json_decref(msg);
    return rc;
}

int tandem_domain_migrate_send(tandem_ctx *ctx, uint32_t domid, tandem_migrate_conn *conn,
                               const struct tandem_migrate_params *params,
                               tandem_migrate_progress_cb *progress, void *opaque,
                               struct tandem_migrate_stats *stats)
{
    struct tandem_migrate_params defaults = {0};
    struct tandem_migrate_stats scratch;
    struct msend m = {
        .ctx = ctx,
        .domid = domid,
        .conn = conn,
        .params = params ? params : &defaults,
        .progress = progress,
        .opaque = opaque,
        .stats = stats ? stats : &scratch,
        .ctl = -1,
        .guard = {.fd = -1},
    };
    const char *phase = "hello";
    int rc;

    for (int i = 0; i < MIG_MAX_DISKS; i++)
        m.disk_fd[i] = -1;
    memset(m.stats, 0, sizeof(*m.stats));
    tandem_domain_config_init(&m.cfg);
    m.root = tandem_rundir();
    m.stats->source_was_running = 1; /* until phase_config knows better */
    m.label = tdm_domain_label(m.root, domid);
    if (!m.label) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot label domain %u", domid);
        goto out;
    }
    /* Before the stream: a failure leaves the source untouched. */
    if ((rc = phase_hello(&m)) || (phase = "config", rc = phase_config(&m)) ||
        (phase = "disk-copy", rc = phase_disk_copy(&m)) ||
        (phase = "ready", rc = phase_ready(&m)) || (phase = "stream", rc = phase_stream(&m)))
        goto fail_resume; /* resumes only if the save had finished (source_paused) */
    /* Source paused, receiver restoring: resume the source unless the receiver has it all. */
    phase = "have-state";
    if ((rc = phase_have_state(&m)))
        goto fail_resume;
    phase = "go";
    if ((rc = phase_go(&m)))
        goto fail_resume;
    phase = "running";
    rc = phase_running(&m);
    if (rc == TANDEM_ERR_FAIL) {
        /* The receiver answered with an error: it destroyed its copy, so ours runs again. */
        goto fail_resume;
    }
    if (rc) {
        tandem_error_prefix(ctx,
                            "%s is left PAUSED here: it may be running on the receiver; "
                            "check there, then `tandem unpause` or `tandem destroy` it here",
                            m.label);
        rc = TANDEM_ERR_BUSY;
        m.stats->in_doubt = 1;
        goto out;
    }
    phase = "destroy";
    rc = phase_destroy(&m);
    goto out;

fail_resume:
    if (m.source_paused && m.was_running) {
        tandem_ctx *c2 = NULL;
        if (tandem_ctx_alloc(&c2) == 0) {
            if (tandem_domain_unpause(c2, domid) == 0)
                tandem_error_prefix(ctx, "%s resumed here", m.label);
            else
                tandem_error_prefix(ctx, "%s could not be resumed here (%s)", m.label,
                                    tandem_ctx_error(c2));
            tandem_ctx_free(c2);
        }
    }
    tandem_error_prefix(ctx, "migration failed in phase %s", phase);
    tdm_mig_send_error(conn, phase, tandem_ctx_error(ctx));
out:
    disk_dirty_stop(&m);
    for (int i = 0; i < MIG_MAX_DISKS; i++)
        if (m.disk_fd[i] >= 0)
            close(m.disk_fd[i]);
    tdm_mig_guard_disarm(&m.guard);
    if (m.ctl >= 0)
        close(m.ctl);
    tandem_domain_config_dispose(&m.cfg);
    free(m.label);
    return rc;
}

int tandem_domain_migrate_resolve(tandem_ctx *ctx, uint32_t domid, const char *name,
                                  const struct tandem_migrate_stats *stats,
                                  tandem_migrate_conn *conn, int *outcome)
{
    json_t *q = NULL, *a = NULL;
    const char *st;
    int rc;

    *outcome = 0;
    rc = tdm_mig_handshake_sender(ctx, conn, NULL);
    if (rc)
        goto out;
    q = json_pack("{s:s,s:s}", "msg", "query", "name", name);
    rc = q ? tdm_mig_send(ctx, conn, q) : tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    if (rc)
        goto out;
    rc = tdm_mig_recv(ctx, conn, CONFIG_TIMEOUT_MS, "query-result", &a);
    if (rc)
        goto out;
    st = json_string_value(json_object_get(a, "state"));
    if (st && strcmp(st, "running") == 0) {
        rc = tandem_domain_destroy(ctx, domid);
        if (rc == TANDEM_ERR_TIMEOUT)
            rc = 0;
        if (rc == 0)
            *outcome = TANDEM_MIGRATE_RESOLVED_THERE;
    } else if (st && (strcmp(st, "none") == 0 || strcmp(st, "incoming") == 0)) {
        rc = stats->source_was_running ? tandem_domain_unpause(ctx, domid) : 0;
        if (rc == 0)
            *outcome = TANDEM_MIGRATE_RESOLVED_HERE;
    } else {
        rc = tandem_error(ctx, TANDEM_ERR_BUSY,
                          "'%s' is %s on the receiver and paused here: decide which to run", name,
                          st ? st : "in an unknown state");
    }
out:
    if (rc && rc != TANDEM_ERR_BUSY)
        tandem_error_prefix(ctx, "cannot settle the migration of '%s'", name);
    json_decref(q);
    json_decref(a);
    return rc;
}
