/* Client side of a VMM's control socket: one JSON request, one JSON reply, fds by SCM_RIGHTS. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "domain_internal.h"

/* Largest message either side sends (docs/control.md). */
#define CONTROL_MSG_MAX (64 * 1024)
#define CONTROL_MAX_FDS 16

int tdm_env_ms(const char *name, int def)
{
    const char *v = getenv(name);
    char *end;
    long ms;

    if (!v || !v[0])
        return def;
    errno = 0;
    ms = strtol(v, &end, 10);
    if (errno || *end || ms <= 0 || ms > INT_MAX)
        return def;
    return (int)ms;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tdm_control_connect(const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, dfd = -1, rc;

    /* Non-blocking: a VMM that stopped accepting fills its backlog, and connect would block. */
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", dir) >=
        sizeof(sa.sun_path)) {
        /* sun_path holds 108 bytes; deep test directories go through the fd of DIR. */
        dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            rc = -errno;
            goto out;
        }
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/control.sock", dfd);
    }
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        rc = -errno;
        goto out;
    }
    rc = fd;
out:
    if (dfd >= 0)
        close(dfd);
    if (rc < 0)
        close(fd);
    return rc;
}

/* Wait for fd to become ready for events before deadline; 0, or TIMEOUT / IO. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int64_t left = deadline - now_ms();
        int n;
        if (left <= 0)
            return TANDEM_ERR_TIMEOUT;
        n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 0;
        if (n == 0)
            return TANDEM_ERR_TIMEOUT;
        if (errno != EINTR)
            return TANDEM_ERR_IO;
    }
}

int tdm_control_call_timeout(tandem_ctx *ctx, const char *dir, json_t *req, json_t **reply,
                             int *fds_in, int nfds, int timeout_ms)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)];
        struct cmsghdr align;
    } cmsg;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    int64_t deadline = now_ms() + timeout_ms;
    char *text = NULL, *buf = NULL;
    json_t *rep = NULL, *ok, *err;
    struct msghdr mh = {0};
    struct iovec iov;
    json_error_t jerr;
    ssize_t n;
    int fd = -1, rc = 0;

    if (reply)
        *reply = NULL;
    if (!cmd)
        cmd = "?";
    if (nfds < 0 || nfds > CONTROL_MAX_FDS) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "control request '%s': %d fds (at most %d)", cmd,
                          nfds, CONTROL_MAX_FDS);
        goto out;
    }
    text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
    buf = malloc(CONTROL_MSG_MAX + 1);
    if (!text || !buf) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (strlen(text) > CONTROL_MSG_MAX) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "control request '%s' is larger than %d bytes",
                          cmd, CONTROL_MSG_MAX);
        goto out;
    }
    while ((fd = tdm_control_connect(dir)) == -EAGAIN && now_ms() < deadline) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* backlog full: AF_UNIX connect cannot be polled, retry */
    }
    if (fd == -EAGAIN) {
        rc = tandem_error(ctx, TANDEM_ERR_TIMEOUT,
                          "control request '%s': the VMM at '%s' accepted no connection within "
                          "%d ms",
                          cmd, dir, timeout_ms);
        goto out;
    }
    if (fd < 0) {
        rc = tandem_error_errno(
            ctx, fd == -ENOENT || fd == -ECONNREFUSED ? TANDEM_ERR_NOTFOUND : TANDEM_ERR_IO, -fd,
            "control request '%s': cannot connect to '%s/control.sock'", cmd, dir);
        goto out;
    }
    iov.iov_base = text;
    iov.iov_len = strlen(text);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *c;
        memset(&cmsg, 0, sizeof(cmsg));
        mh.msg_control = cmsg.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds_in, sizeof(int) * (size_t)nfds);
    }
    for (;;) {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            rc = wait_fd(fd, POLLOUT, deadline);
            if (rc == 0)
                continue;
            if (rc == TANDEM_ERR_TIMEOUT)
                tandem_error(ctx, rc,
                             "control request '%s': the VMM at '%s' did not accept it within "
                             "%d ms",
                             cmd, dir, timeout_ms);
            else
                tandem_error(ctx, rc, "control request '%s' to '%s': poll failed", cmd, dir);
            goto out;
        }
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "control request '%s': send to '%s'",
                                cmd, dir);
        goto out;
    }

    for (;;) {
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc == TANDEM_ERR_TIMEOUT) {
            tandem_error(ctx, rc,
                         "control request '%s': no reply from the VMM at '%s' within %d ms", cmd,
                         dir, timeout_ms);
            goto out;
        }
        if (rc) {
            tandem_error(ctx, rc, "control request '%s' to '%s': poll failed", cmd, dir);
            goto out;
        }
        n = recv(fd, buf, CONTROL_MSG_MAX + 1, MSG_TRUNC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        break;
    }
    if (n < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno,
                                "control request '%s': receive from '%s'", cmd, dir);
        goto out;
    }
    if (n == 0) {
        rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                          "control request '%s': the VMM at '%s' closed the socket without a "
                          "reply",
                          cmd, dir);
        goto out;
    }
    if (n > CONTROL_MSG_MAX) {
        rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                          "control request '%s': reply from '%s' is larger than %d bytes", cmd, dir,
                          CONTROL_MSG_MAX);
        goto out;
    }
    rep = json_loadb(buf, (size_t)n, 0, &jerr);
    if (!json_is_object(rep)) {
        rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                          "control request '%s': reply from '%s' is not a JSON object (%s)", cmd,
                          dir, rep ? "another JSON value" : jerr.text);
        goto out;
    }
    ok = json_object_get(rep, "ok");
    if (!json_is_boolean(ok)) {
        rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                          "control request '%s': reply from '%s' has no boolean \"ok\"", cmd, dir);
        goto out;
    }
    if (!json_is_true(ok)) {
        err = json_object_get(rep, "error");
        rc = tandem_error(ctx, TANDEM_ERR_FAIL, "%s",
                          json_is_string(err) ? json_string_value(err) : "the VMM refused");
        goto out;
    }
    if (reply) {
        *reply = rep;
        rep = NULL;
    }
out:
    json_decref(rep);
    if (fd >= 0)
        close(fd);
    free(buf);
    free(text);
    return rc;
}

int tdm_control_call(tandem_ctx *ctx, const char *dir, json_t *req, json_t **reply, int *fds_in,
                     int nfds)
{
    return tdm_control_call_timeout(
        ctx, dir, req, reply, fds_in, nfds,
        tdm_env_ms("TANDEM_CONTROL_TIMEOUT_MS", TDM_CONTROL_TIMEOUT_MS));
}
