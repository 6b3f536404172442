/* One checkpoint from the library: stream fd to the VMM's `save`, progress and steps back. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "domain_internal.h"
#include "tandem_checkpoint.h"

#define MSG_MAX (64 * 1024)
#define SAVE_SILENCE_MS 60000

const struct tandem_checkpoint_callbacks tandem_checkpoint_default_callbacks = {
    NULL,
    NULL,
    NULL,
    NULL,
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send req with fd attached on the non-blocking control socket s. */
static int send_with_fd(int s, const char *text, int fd, int timeout_ms)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *cm;

    memset(cbuf, 0, sizeof(cbuf));
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    for (;;) {
        struct pollfd p = {.fd = s, .events = POLLOUT};
        if (sendmsg(s, &mh, MSG_NOSIGNAL) >= 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        if (poll(&p, 1, timeout_ms) == 0)
            return -ETIMEDOUT;
    }
}

static uint64_t u64_of(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* Call the callback of a reported step; keeps the first failure in *cb_rc. */
static void run_step(tandem_ctx *ctx, uint32_t domid, const struct tandem_checkpoint_callbacks *cb,
                     const struct tandem_save_progress *p, int *cb_rc)
{
    int rc = 0;

    if (strcmp(p->step, "suspend") == 0 && cb->suspend)
        rc = cb->suspend(ctx, domid, cb->opaque);
    else if (strcmp(p->step, "postcopy") == 0 && cb->postcopy)
        rc = cb->postcopy(ctx, domid, cb->opaque);
    else if (strcmp(p->step, "checkpoint") == 0 && cb->checkpoint) {
        rc = cb->checkpoint(ctx, domid, p->epoch, cb->opaque);
        if (rc > 0)
            rc = tandem_error(ctx, TANDEM_ERR_UNSUPP,
                              "the checkpoint callback asked for another epoch, but the VMM's "
                              "save writes one checkpoint (continuous checkpoints: issue 7)");
    }
    if (rc < 0 && *cb_rc == 0)
        *cb_rc = rc;
}

int tandem_domain_checkpoint(tandem_ctx *ctx, uint32_t domid, int fd,
                             const struct tandem_save_params *params,
                             const struct tandem_checkpoint_callbacks *cb,
                             tandem_progress_cb progress, void *opaque,
                             struct tandem_save_stats *stats)
{
    static const struct tandem_save_params defaults;
    const char *root = tandem_rundir();
    char *label = NULL, *dir = NULL, *text = NULL, *buf = NULL;
    enum tdm_dom_status st;
    json_t *req = NULL, *msg = NULL;
    int s = -1, rc = 0, cb_rc = 0, silence;

    if (!params)
        params = &defaults;
    if (!cb)
        cb = &tandem_checkpoint_default_callbacks;
    silence = params->timeout_ms > 0 ? params->timeout_ms
                                     : tdm_env_ms("TANDEM_SAVE_TIMEOUT_MS", SAVE_SILENCE_MS);
    if (fd < 0)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "save: no stream file descriptor given");
    label = tdm_domain_label(root, domid);
    dir = tdm_domain_path(root, domid, NULL);
    buf = malloc(MSG_MAX + 1);
    if (!label || !dir || !buf) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    st = tdm_domain_status(root, domid, NULL);
    if (st == TDM_DOM_ABSENT) {
        rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "save: no domain with id %u", domid);
        goto out;
    }
    if (st == TDM_DOM_CREATING) {
        rc = tandem_error(ctx, TANDEM_ERR_BUSY, "save: %s is still being created", label);
        goto out;
    }
    if (st == TDM_DOM_DEAD) {
        tdm_rundir_reap_one(NULL, root, domid);
        rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "save: %s has gone (its VMM exited)", label);
        goto out;
    }

    req = json_pack("{s:s,s:b,s:b,s:s}", "cmd", "save", "live",
                    (params->flags & TANDEM_SAVE_LIVE) != 0, "leave_running",
                    (params->flags & TANDEM_SAVE_LEAVE_RUNNING) != 0, "compression",
                    (params->flags & TANDEM_SAVE_ZSTD)  ? "zstd"
                    : (params->flags & TANDEM_SAVE_LZ4) ? "lz4"
                                                        : "none");
    if (req && params->max_iters)
        json_object_set_new(req, "max_iters", json_integer(params->max_iters));
    if (req && params->downtime_ms)
        json_object_set_new(req, "downtime_ms", json_integer(params->downtime_ms));
    if (req && params->bandwidth_mbps)
        json_object_set_new(req, "bandwidth_mbps", json_integer(params->bandwidth_mbps));
    if (req && params->config) {
        char *cj = tandem_domain_config_to_json(params->config);
        json_t *cfg = cj ? json_loads(cj, 0, NULL) : NULL;
        free(cj);
        if (!cfg) {
            rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                              "save: the configuration to store cannot be written as JSON");
            goto out;
        }
        json_object_set_new(req, "config", cfg);
    }
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (!text) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    s = tdm_control_connect(dir);
    if (s < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_NOTFOUND, -s, "save: cannot reach the VMM of %s",
                                label);
        goto out;
    }
    rc = send_with_fd(s, text, fd, silence);
    if (rc < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, -rc, "save: cannot send the request to %s",
                                label);
        goto out;
    }

    /* Progress messages until the one reply. */
    for (;;) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        int64_t deadline = now_ms() + silence;
        ssize_t n;
        json_t *prog, *ok;
        int pr;

        do
            pr = poll(&p, 1, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0));
        while (pr < 0 && errno == EINTR);
        if (pr == 0) {
            rc = tandem_error(ctx, TANDEM_ERR_TIMEOUT,
                              "save: the VMM of %s said nothing for %d ms; the stream is "
                              "incomplete",
                              label, silence);
            goto out;
        }
        n = recv(s, buf, MSG_MAX, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            rc = tandem_error(ctx, TANDEM_ERR_IO,
                              "save: the VMM of %s closed the connection before it answered "
                              "(did it die?); the stream is incomplete",
                              label);
            goto out;
        }
        buf[n] = '\0';
        json_decref(msg);
        msg = json_loadb(buf, (size_t)n, 0, NULL);
        if (!json_is_object(msg)) {
            rc = tandem_error(ctx, TANDEM_ERR_PROTO, "save: malformed message from %s: %.200s",
                              label, buf);
            goto out;
        }
        if ((prog = json_object_get(msg, "progress"))) {
            struct tandem_save_progress pr_ = {
                .phase = json_string_value(json_object_get(prog, "phase")),
                .step = json_string_value(json_object_get(prog, "step")),
                .iter = u64_of(prog, "iter"),
                .pages_sent = u64_of(prog, "pages_sent"),
                .pages_total = u64_of(prog, "pages_total"),
                .dirty = u64_of(prog, "dirty"),
                .bytes = u64_of(prog, "bytes"),
                .rate_mbps = json_number_value(json_object_get(prog, "rate_mbps")),
                .epoch = u64_of(prog, "epoch"),
            };
            if (!pr_.phase)
                pr_.phase = "";
            if (pr_.step)
                run_step(ctx, domid, cb, &pr_, &cb_rc);
            if (progress)
                progress(&pr_, opaque);
            continue;
        }
        ok = json_object_get(msg, "ok");
        if (json_is_true(ok)) {
            json_t *j = json_object_get(msg, "stats");
            if (stats) {
                stats->total_ms = u64_of(j, "total_ms");
                stats->downtime_ms = u64_of(j, "downtime_ms");
                stats->downtime_us = u64_of(j, "downtime_us");
                stats->bytes = u64_of(j, "bytes");
                stats->pages = u64_of(j, "pages");
                stats->iterations = u64_of(j, "iterations");
            }
            rc = cb_rc;
            goto out;
        }
        if (json_is_false(ok)) {
            const char *e = json_string_value(json_object_get(msg, "error"));
            rc = tandem_error(ctx, TANDEM_ERR_FAIL, "%s: %s", label,
                              e ? e : "the VMM refused to save without saying why");
            goto out;
        }
        /* Anything else is a message of a newer VMM: ignore it. */
    }
out:
    if (s >= 0)
        close(s);
    json_decref(msg);
    json_decref(req);
    free(text);
    free(buf);
    free(dir);
    free(label);
    return rc;
}
