/* Remus in the library: start protection through the VMM, its status, and the backup's receiver. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "domain_internal.h"
#include "internal.h"
#include "migrate_internal.h"
#include "tandem.h"
#include "tandem_remus.h"

#define PREAMBLE_MAGIC "TANDEM-REMUS 1\n"
#define PREAMBLE_MAX (16u << 20)
#define START_TIMEOUT_MS (10 * 60 * 1000) /* the initial sync copies all of RAM and the disks */

/* The fds the backup VMM gets (fixed numbers after the spawn). */
#define B_STREAM_FD 3
#define B_ACK_FD 4
#define B_READY_FD 5

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 1 : -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int info_int(int v, int dflt)
{
    return v > 0 ? v : dflt;
}

int tandem_domain_remus_start(tandem_ctx *ctx, const tandem_remus_info *info, uint32_t domid,
                              int send_fd, int recv_fd, unsigned how)
{
    tandem_domain_config cfg;
    char *cfg_json = NULL, *pre = NULL, lenbuf[32];
    json_t *extra = NULL, *pj = NULL;
    int fds[2], nfds = 0, rc;
    bool unsafe = tandem_defbool_val(info->allow_unsafe, false);
    bool blackhole = tandem_defbool_val(info->blackhole, false);
    bool netbuf = tandem_defbool_val(info->netbuf, true);
    bool diskbuf = tandem_defbool_val(info->diskbuf, true);
    int interval = info_int(info->interval_ms, TANDEM_REMUS_DEFAULT_INTERVAL_MS);
    int heartbeat = info_int(info->heartbeat_ms, TANDEM_REMUS_DEFAULT_HEARTBEAT_MS);
    int timeout = info_int(info->failover_timeout_ms, TANDEM_REMUS_DEFAULT_TIMEOUT_MS);

    tandem_domain_config_init(&cfg);
    if (how != 0)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "remus: unknown flags 0x%x", how);
    if (!unsafe && (blackhole || !netbuf || !diskbuf))
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "remus: %s gives up the guarantee that nothing a client saw is lost; "
                            "ask for it explicitly (allow_unsafe, tandem remus -F)",
                            blackhole ? "blackhole (no backup)"
                            : !netbuf ? "turning network buffering off"
                                      : "turning disk replication off");
    if (interval > 60000 || heartbeat > 60000 || timeout > 600000)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "remus: interval %d ms, heartbeat %d ms or failover timeout %d ms is "
                            "out of range (at most 60000, 60000, 600000)",
                            interval, heartbeat, timeout);
    if (!blackhole && (send_fd < 0 || recv_fd < 0))
        return tandem_error(ctx, TANDEM_ERR_INVAL, "remus: no stream or ACK descriptor given");

    if (!blackhole) {
        /* Preamble: what the receiver needs before it can start a backup VMM. */
        rc = tandem_domain_get_config(ctx, domid, &cfg);
        if (rc)
            goto out;
        cfg_json = tandem_domain_config_to_json(&cfg);
        pj = json_pack("{s:s,s:i,s:i}", "config", cfg_json ? cfg_json : "", "heartbeat_ms",
                       heartbeat, "failover_timeout_ms", timeout);
        pre = pj ? json_dumps(pj, JSON_COMPACT) : NULL;
        if (!cfg_json || !pre) {
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
        snprintf(lenbuf, sizeof(lenbuf), "%zu\n", strlen(pre));
        if (write_all(send_fd, PREAMBLE_MAGIC, strlen(PREAMBLE_MAGIC)) < 0 ||
            write_all(send_fd, lenbuf, strlen(lenbuf)) < 0 ||
            write_all(send_fd, pre, strlen(pre)) < 0) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno,
                                    "remus: cannot reach the backup (writing the preamble)");
            goto out;
        }
        fds[nfds++] = send_fd;
        if (recv_fd != send_fd)
            fds[nfds++] = recv_fd;
    }
    extra = json_pack("{s:i,s:i,s:i,s:b,s:b,s:b,s:s}", "interval_ms", interval, "heartbeat_ms",
                      heartbeat, "failover_timeout_ms", timeout, "netbuf", netbuf, "diskbuf",
                      diskbuf, "blackhole", blackhole, "compression",
                      tandem_defbool_val(info->compression, false) ? "lz4" : "none");
    if (!extra) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tdm_domain_request_ex(ctx, tandem_rundir(), domid, "remus", extra, fds, nfds,
                               START_TIMEOUT_MS, NULL);
out:
    json_decref(extra);
    json_decref(pj);
    free(pre);
    free(cfg_json);
    tandem_domain_config_dispose(&cfg);
    return rc;
}

int tandem_domain_remus_status(tandem_ctx *ctx, uint32_t domid, char **json_out)
{
    json_t *reply = NULL;
    int rc;

    *json_out = NULL;
    rc = tdm_domain_request(ctx, tandem_rundir(), domid, "remus-status", NULL, &reply);
    if (!rc) {
        *json_out =
            json_dumps(json_object_get(reply, "remus"), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!*json_out)
            rc = tandem_error(ctx, TANDEM_ERR_PROTO, "remus-status: malformed reply from the VMM");
    }
    json_decref(reply);
    return rc;
}

/* ---- following the epochs ---------------------------------------------------------------- */

#define FOLLOW_MSG_MAX 65536

static uint64_t follow_u64(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));

    return v > 0 ? (uint64_t)v : 0;
}

/*
 * One remus_step message: the callback of its step (and the telemetry
 * after checkpoint). Returns 1 to go on, 0 when the checkpoint callback
 * said finish, or the first negative callback return.
 */
static int follow_step(tandem_ctx *ctx, uint32_t domid,
                       const struct tandem_checkpoint_callbacks *cb,
                       tandem_remus_epoch_cb *telemetry, void *opaque, json_t *st)
{
    const char *step = json_string_value(json_object_get(st, "step"));
    struct tandem_remus_epoch e = {
        .epoch = follow_u64(st, "epoch"),
        .pause_us = follow_u64(st, "pause_us"),
        .dirty_pages = follow_u64(st, "dirty_pages"),
        .bytes = follow_u64(st, "bytes"),
        .frames_held = follow_u64(st, "frames_held"),
        .send_ms = json_number_value(json_object_get(st, "send_ms")),
        .ack_ms = json_number_value(json_object_get(st, "ack_ms")),
    };
    int rc = 1;

    if (!step)
        return 1; /* a newer VMM's message: ignore it */
    if (strcmp(step, "suspend") == 0) {
        if (cb->suspend && (rc = cb->suspend(ctx, domid, cb->opaque)) >= 0)
            rc = 1;
    } else if (strcmp(step, "postcopy") == 0) {
        if (cb->postcopy && (rc = cb->postcopy(ctx, domid, cb->opaque)) >= 0)
            rc = 1;
    } else if (strcmp(step, "checkpoint") == 0) {
        if (cb->checkpoint)
            rc = cb->checkpoint(ctx, domid, e.epoch, cb->opaque);
        if (rc >= 0 && telemetry)
            telemetry(&e, opaque);
    }
    return rc;
}

int tandem_domain_remus_follow(tandem_ctx *ctx, uint32_t domid,
                               const struct tandem_checkpoint_callbacks *cb,
                               tandem_remus_epoch_cb *telemetry, void *opaque)
{
    static const struct tandem_checkpoint_callbacks none;
    const char *root = tandem_rundir(), *req = "{\"cmd\":\"remus-follow\"}";
    char *label = NULL, *dir = NULL, *buf = NULL;
    enum tdm_dom_status st;
    json_t *msg = NULL, *j;
    int s = -1, rc = 0;
    bool attached = false;

    if (!cb)
        cb = &none;
    label = tdm_domain_label(root, domid);
    dir = tdm_domain_path(root, domid, NULL);
    buf = malloc(FOLLOW_MSG_MAX + 1);
    if (!label || !dir || !buf) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    st = tdm_domain_status(root, domid, NULL);
    if (st != TDM_DOM_LIVE) {
        rc = tandem_error(ctx, st == TDM_DOM_CREATING ? TANDEM_ERR_BUSY : TANDEM_ERR_NOTFOUND,
                          "remus-follow: %s %s", label,
                          st == TDM_DOM_CREATING ? "is still being created" : "does not exist");
        goto out;
    }
    s = tdm_control_connect(dir);
    if (s < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_NOTFOUND, -s,
                                "remus-follow: cannot reach the VMM of %s", label);
        goto out;
    }
    if (send(s, req, strlen(req), MSG_NOSIGNAL) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno,
                                "remus-follow: cannot send the request to %s", label);
        goto out;
    }
    /*
     * No timeout: epochs may be far apart (a long interval, a slow backup);
     * the VMM ends the stream with remus_end, or its death closes it.
     */
    for (;;) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "remus-follow: poll");
            goto out;
        }
        n = recv(s, buf, FOLLOW_MSG_MAX, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            rc = tandem_error(ctx, TANDEM_ERR_IO,
                              attached ? "remus-follow: the connection to the VMM of %s ended "
                                         "without a word on protection (the VMM died, or this "
                                         "caller fell behind and was dropped)"
                                       : "remus-follow: the VMM of %s closed the connection "
                                         "before it answered",
                              label);
            goto out;
        }
        buf[n] = '\0';
        json_decref(msg);
        msg = json_loadb(buf, (size_t)n, 0, NULL);
        if (!json_is_object(msg)) {
            rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                              "remus-follow: malformed message from %s: %.200s", label, buf);
            goto out;
        }
        if (!attached) {
            const char *e = json_string_value(json_object_get(msg, "error"));
            if (!json_is_true(json_object_get(msg, "ok"))) {
                rc = tandem_error(ctx, TANDEM_ERR_FAIL, "%s: %s", label,
                                  e ? e : "the VMM refused remus-follow without saying why");
                goto out;
            }
            attached = true;
            continue;
        }
        if ((j = json_object_get(msg, "remus_step"))) {
            rc = follow_step(ctx, domid, cb, telemetry, opaque, j);
            if (rc <= 0)
                goto out; /* 0: the caller is done following; protection goes on */
            rc = 0;
            continue;
        }
        if ((j = json_object_get(msg, "remus_end"))) {
            const char *state = json_string_value(json_object_get(j, "state"));
            const char *why = json_string_value(json_object_get(j, "reason"));
            if (state && strcmp(state, "unprotected") == 0)
                rc = tandem_error(ctx, TANDEM_ERR_FAIL,
                                  "%s is UNPROTECTED after epoch %llu: %s (it runs on here, RPO "
                                  "is no longer 0)",
                                  label, (unsigned long long)follow_u64(j, "acked"),
                                  why ? why : "the backup was lost");
            else
                rc = 0;
            goto out;
        }
        /* Anything else is a message of a newer VMM: ignore it. */
    }
out:
    if (s >= 0)
        close(s);
    json_decref(msg);
    free(buf);
    free(dir);
    free(label);
    return rc;
}

/* ---- receiver ------------------------------------------------------------------------------ */

static void logf_(tandem_remus_log_cb *log, void *opaque, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(tandem_remus_log_cb *log, void *opaque, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log(opaque, line);
}

static int read_preamble(tandem_ctx *ctx, int rfd, json_t **out)
{
    char magic[sizeof(PREAMBLE_MAGIC) - 1], lenbuf[24];
    size_t i = 0, len;
    char *text;
    json_error_t jerr;

    if (read_all(rfd, magic, sizeof(magic)) != 0 || memcmp(magic, PREAMBLE_MAGIC, sizeof(magic)))
        return tandem_error(ctx, TANDEM_ERR_PROTO,
                            "remus-receive: the input does not start with a Remus preamble "
                            "(\"TANDEM-REMUS 1\"); is the sender `tandem remus`?");
    for (;;) {
        if (i + 1 >= sizeof(lenbuf) || read_all(rfd, &lenbuf[i], 1) != 0)
            return tandem_error(ctx, TANDEM_ERR_PROTO, "remus-receive: bad preamble length");
        if (lenbuf[i] == '\n')
            break;
        i++;
    }
    lenbuf[i] = '\0';
    len = strtoul(lenbuf, NULL, 10);
    if (len == 0 || len > PREAMBLE_MAX)
        return tandem_error(ctx, TANDEM_ERR_PROTO, "remus-receive: preamble length '%s' is bad",
                            lenbuf);
    text = malloc(len + 1);
    if (!text)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    if (read_all(rfd, text, len) != 0) {
        free(text);
        return tandem_error(ctx, TANDEM_ERR_IO, "remus-receive: the preamble was cut short");
    }
    text[len] = '\0';
    *out = json_loads(text, 0, &jerr);
    free(text);
    if (!json_is_object(*out))
        return tandem_error(ctx, TANDEM_ERR_PROTO, "remus-receive: preamble is not JSON: %s",
                            jerr.text);
    return 0;
}

static int map_disks(tandem_ctx *ctx, tandem_domain_config *cfg, char *const disk_map[])
{
    for (int i = 0; disk_map && disk_map[i]; i++) {
        const char *eq = strchr(disk_map[i], '=');
        bool used = false;
        if (!eq || eq == disk_map[i] || !eq[1])
            return tandem_error(ctx, TANDEM_ERR_INVAL,
                                "remus-receive: disk map '%s' is not OLD=NEW", disk_map[i]);
        for (int d = 0; d < cfg->num_disks; d++) {
            char *p = cfg->disks[d].pdev_path;
            if (p && strlen(p) == (size_t)(eq - disk_map[i]) &&
                !strncmp(p, disk_map[i], (size_t)(eq - disk_map[i]))) {
                char *n = strdup(eq + 1);
                if (!n)
                    return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
                free(p);
                cfg->disks[d].pdev_path = n;
                used = true;
            }
        }
        if (!used)
            return tandem_error(ctx, TANDEM_ERR_INVAL,
                                "remus-receive: disk map '%s': the domain has no disk at '%.*s'",
                                disk_map[i], (int)(eq - disk_map[i]), disk_map[i]);
    }
    return 0;
}

int tandem_remus_receive(tandem_ctx *ctx, int rfd, int wfd, char *const disk_map[],
                         tandem_remus_log_cb *log, void *opaque, uint32_t *domid_out)
{
    tandem_domain_config cfg;
    json_t *pre = NULL;
    char uuid[TANDEM_UUID_STRLEN], *root = NULL, *dir = NULL, *logpath = NULL, *file = NULL;
    char *json = NULL, *vmm = NULL, domid_s[16], tmo[16], hb[16], line[4096];
    int ready[2] = {-1, -1}, creating_fd = -1, rc;
    uint32_t domid = 0;
    bool reserved = false;
    pid_t pid;
    ssize_t n;
    size_t got = 0;

    tandem_domain_config_init(&cfg);
    rc = read_preamble(ctx, rfd, &pre);
    if (rc)
        goto out;
    rc = tandem_domain_config_from_json(ctx, &cfg,
                                        json_string_value(json_object_get(pre, "config")) ?: "");
    if (rc) {
        tandem_error_prefix(ctx, "remus-receive: the preamble's domain config");
        goto out;
    }
    rc = map_disks(ctx, &cfg, disk_map);
    if (rc)
        goto out;
    snprintf(tmo, sizeof(tmo), "%d",
             (int)json_integer_value(json_object_get(pre, "failover_timeout_ms")));
    snprintf(hb, sizeof(hb), "%d", (int)json_integer_value(json_object_get(pre, "heartbeat_ms")));
    rc = tdm_find_vmm(ctx, &vmm);
    if (rc)
        goto out;
    root = strdup(tandem_rundir());
    json = tandem_domain_config_to_json(&cfg);
    if (!root || !json) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    tandem_uuid_format(cfg.c_info.uuid, uuid);
    rc = tdm_rundir_init(ctx, root);
    if (!rc)
        rc = tdm_rundir_allocate(ctx, root, cfg.c_info.name, uuid, &domid, &creating_fd);
    if (rc)
        goto out;
    reserved = true;
    file = tdm_domain_path(root, domid, "config.json");
    dir = tdm_domain_path(root, domid, NULL);
    logpath = tdm_domain_path(root, domid, "vmm.log");
    if (!file || !dir || !logpath) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tdm_write_file(ctx, file, json, strlen(json));
    if (rc)
        goto out;
    if (pipe2(ready, O_CLOEXEC) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "remus-receive: pipe");
        goto out;
    }
    snprintf(domid_s, sizeof(domid_s), "%u", domid);
    pid = fork();
    if (pid < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "remus-receive: fork");
        goto out;
    }
    if (pid == 0) {
        char rs[8], as[8], rd[8];
        int fd, s = dup(rfd), a = dup(wfd), r = dup(ready[1]);
        setsid();
        fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s < 0 || a < 0 || r < 0 || fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
            dup2(s, B_STREAM_FD) < 0 || dup2(a, B_ACK_FD) < 0 || dup2(r, B_READY_FD) < 0)
            _exit(126);
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0 && fd != 0) {
            dup2(fd, 0);
            close(fd);
        }
        close_range(B_READY_FD + 1, ~0u, 0);
        snprintf(rs, sizeof(rs), "%d", B_STREAM_FD);
        snprintf(as, sizeof(as), "%d", B_ACK_FD);
        snprintf(rd, sizeof(rd), "%d", B_READY_FD);
        execl(vmm, vmm, "--domain-dir", dir, "--domid", domid_s, "--restore-fd", rs,
              "--remus-ack-fd", as, "--ready-fd", rd, "--remus-timeout", tmo, "--remus-heartbeat",
              hb, (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    ready[1] = -1;
    /* Only the VMM may hold the channel now: its death must be seen by the primary. */
    close(rfd);
    close(wfd);
    logf_(log, opaque,
          "remus-receive: backup of '%s' is domain %u here (pid %d); failover after %s ms of "
          "silence",
          cfg.c_info.name, domid, (int)pid, tmo);
    while (got + 1 < sizeof(line) &&
           (n = read(ready[0], line + got, sizeof(line) - 1 - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += (size_t)n;
        if (memchr(line, '\n', got))
            break;
    }
    line[got] = '\0';
    if (strstr(line, "\"ok\":true")) {
        tdm_rundir_created(root, domid, creating_fd);
        creating_fd = -1;
        reserved = false;
        *domid_out = domid;
        logf_(log, opaque, "remus-receive: FAILOVER done: domain '%s' (%u) runs here now",
              cfg.c_info.name, domid);
        rc = 0;
    } else {
        int status = 0;
        char why[64];
        waitpid(pid, &status, 0);
        snprintf(why, sizeof(why), "its VMM exited (status %d) without a word",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        rc = tandem_error(ctx, TANDEM_ERR_FAIL,
                          "remus-receive: the backup of '%s' ended without taking over: %s",
                          cfg.c_info.name, got ? line : why);
    }
out:
    if (reserved)
        tdm_rundir_remove(NULL, root, domid, uuid);
    if (creating_fd >= 0)
        close(creating_fd);
    if (ready[0] >= 0)
        close(ready[0]);
    if (ready[1] >= 0)
        close(ready[1]);
    json_decref(pre);
    tandem_domain_config_dispose(&cfg);
    free(root);
    free(dir);
    free(logpath);
    free(file);
    free(json);
    free(vmm);
    return rc;
}

void tandem_remus_conn_fds(tandem_migrate_conn *conn, int *rfd, int *wfd)
{
    *rfd = conn->rfd;
    *wfd = conn->wfd;
}
