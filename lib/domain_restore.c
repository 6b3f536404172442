/* Restore: validate the image, reserve the domain, run tandem-vmm --restore-fd, wait. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "domain_internal.h"
#include "tandem_checkpoint.h"
#include "tandem_stream.h"

/* Fixed fd numbers in the VMM, passed as --ready-fd and --restore-fd. */
#define READY_FD 3
#define STREAM_FD 4
#define RESTORE_TIMEOUT_MS 600000

/* One restore, step by step; each step records what it made for rollback. */
struct restore {
    tandem_ctx *ctx;
    const char *root;
    const char *name;
    tandem_domain_config cfg;
    char uuid[TANDEM_UUID_STRLEN];
    char *json, *vmm_path, *dir, *logpath;
    char domid_s[16], ready_s[16], stream_s[16];
    char *argv[12];
    uint32_t domid;
    int reserved, creating_fd, ready_fd, stream_fd;
    pid_t vmm;
};

/*
 * Double fork (as tandem_domain_create): the VMM ends up in its own
 * session with stdin on /dev/null, stdout/stderr on DIR/vmm.log, the
 * ready pipe on READY_FD and the stream on STREAM_FD, nothing else.
 */
static int spawn(struct restore *r, int ready_w)
{
    int pidpipe[2], status = 0, w;
    pid_t child, vmm = 0;
    ssize_t n;

    if (pipe2(pidpipe, O_CLOEXEC) < 0)
        return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot create a pipe");
    child = fork();
    if (child < 0) {
        close(pidpipe[0]);
        close(pidpipe[1]);
        return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot fork the VMM");
    }
    if (child == 0) {
        int fd, s;

        tdm_daemon_child(pidpipe[1]);
        /* Move the two fds out of the way of 0..4 first, then into place. */
        s = fcntl(r->stream_fd, F_DUPFD, 10);
        w = fcntl(ready_w, F_DUPFD, 10);
        if (s < 0 || w < 0)
            _exit(126);
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0 && fd != 0) {
            dup2(fd, 0);
            close(fd);
        }
        fd = open(r->logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
        if (dup2(w, READY_FD) < 0 || dup2(s, STREAM_FD) < 0)
            _exit(126);
        if (close_range(STREAM_FD + 1, ~0u, 0) < 0)
            for (fd = STREAM_FD + 1; fd < 1024; fd++)
                close(fd);
        execv(r->argv[0], r->argv);
        dprintf(READY_FD, "{\"ok\":false,\"error\":\"cannot execute tandem-vmm: %s\"}\n",
                strerror(errno));
        _exit(127);
    }
    close(pidpipe[1]);
    do
        w = waitpid(child, &status, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        status = 0;
    do
        n = read(pidpipe[0], &vmm, sizeof(vmm));
    while (n < 0 && errno == EINTR);
    close(pidpipe[0]);
    if (n != sizeof(vmm) || vmm <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return tandem_error(r->ctx, TANDEM_ERR_IO, "cannot fork the VMM (second fork failed)");
    r->vmm = vmm;
    return 0;
}

/* The VMM's one ready line, or an error (timeout, death without a word). */
static int await_ready(struct restore *r, int timeout_ms)
{
    char *line = NULL;
    json_t *j = NULL, *err;
    int rc = tdm_read_ready_line(r->ready_fd, timeout_ms, &line);

    if (rc == TANDEM_ERR_TIMEOUT) {
        rc = tandem_error(r->ctx, TANDEM_ERR_TIMEOUT,
                          "restore of '%s': the VMM (pid %d) did not finish reading the "
                          "stream within %d ms; killed it",
                          r->name, (int)r->vmm, timeout_ms);
        goto out;
    }
    if (rc) {
        rc = tandem_error(r->ctx, rc, "restore of '%s': out of memory", r->name);
        goto out;
    }
    if (!line) {
        char *why;
        tdm_wait_pid_gone(r->vmm, 5000);
        why = tdm_exit_summary(r->root, r->domid);
        rc = tandem_error(r->ctx, TANDEM_ERR_FAIL,
                          "restore of '%s': the VMM exited while reading the stream (%s)", r->name,
                          why ? why : "see its vmm.log");
        free(why);
        goto out;
    }
    j = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
    err = json_object_get(j, "error");
    if (json_is_false(json_object_get(j, "ok")))
        rc = tandem_error(r->ctx, TANDEM_ERR_FAIL, "restore of '%s': %s", r->name,
                          json_is_string(err) ? json_string_value(err) : "the VMM refused");
    else if (!json_is_true(json_object_get(j, "ok")))
        rc = tandem_error(r->ctx, TANDEM_ERR_PROTO,
                          "restore of '%s': the VMM sent a malformed ready line: %.200s", r->name,
                          line);
out:
    json_decref(j);
    free(line);
    return rc;
}

static int restore_prepare(struct restore *r, const tandem_domain_config *in)
{
    int rc;

    r->name = in->c_info.name;
    if (!r->name || !r->name[0])
        return tandem_error(r->ctx, TANDEM_ERR_INVAL, "restore: the configuration has no name");
    rc = tdm_name_check(r->ctx, r->name);
    if (rc)
        return rc;
    if (tandem_domain_config_copy(&r->cfg, in))
        return tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
    if (tandem_uuid_is_zero(r->cfg.c_info.uuid) && tandem_uuid_generate(r->cfg.c_info.uuid))
        return tandem_error(r->ctx, TANDEM_ERR_IO, "restore of '%s': cannot generate a uuid",
                            r->name);
    tandem_uuid_format(r->cfg.c_info.uuid, r->uuid);
    r->json = tandem_domain_config_to_json(&r->cfg);
    if (!r->json)
        return tandem_error(r->ctx, TANDEM_ERR_INVAL,
                            "restore of '%s': the configuration cannot be written as JSON",
                            r->name);
    return tdm_find_vmm(r->ctx, &r->vmm_path);
}

/* Take a domid and the name (refused if a domain has it), write config.json. */
static int restore_reserve(struct restore *r)
{
    char *file;
    int rc;

    rc = tdm_rundir_allocate(r->ctx, r->root, r->name, r->uuid, &r->domid, &r->creating_fd);
    if (rc)
        return rc;
    r->reserved = 1;
    file = tdm_domain_path(r->root, r->domid, "config.json");
    rc = file ? tdm_write_file(r->ctx, file, r->json, strlen(r->json))
              : tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
    free(file);
    return rc;
}

static int restore_spawn(struct restore *r)
{
    int ready[2], rc, i = 0;

    r->dir = tdm_domain_path(r->root, r->domid, NULL);
    r->logpath = tdm_domain_path(r->root, r->domid, "vmm.log");
    if (!r->dir || !r->logpath)
        return tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
    snprintf(r->domid_s, sizeof(r->domid_s), "%u", r->domid);
    snprintf(r->ready_s, sizeof(r->ready_s), "%d", READY_FD);
    snprintf(r->stream_s, sizeof(r->stream_s), "%d", STREAM_FD);
    r->argv[i++] = r->vmm_path;
    r->argv[i++] = "--domain-dir";
    r->argv[i++] = r->dir;
    r->argv[i++] = "--domid";
    r->argv[i++] = r->domid_s;
    r->argv[i++] = "--ready-fd";
    r->argv[i++] = r->ready_s;
    r->argv[i++] = "--restore-fd";
    r->argv[i++] = r->stream_s;
    r->argv[i] = NULL;
    if (pipe2(ready, O_CLOEXEC) < 0)
        return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot create a pipe");
    r->ready_fd = ready[0];
    rc = spawn(r, ready[1]);
    close(ready[1]);
    return rc;
}

static void restore_rollback(struct restore *r)
{
    if (r->vmm > 0 && !tdm_wait_pid_gone(r->vmm, 5000)) {
        kill(r->vmm, SIGKILL);
        tdm_wait_pid_gone(r->vmm, 2000);
    }
    if (r->reserved)
        tdm_rundir_remove(NULL, r->root, r->domid, r->uuid);
    if (r->creating_fd >= 0)
        close(r->creating_fd);
    r->creating_fd = -1;
}

int tandem_domain_restore_stream(tandem_ctx *ctx, int fd, const tandem_domain_config *cfg,
                                 unsigned flags, int timeout_ms, uint32_t *domid_out)
{
    struct restore r = {.ctx = ctx, .creating_fd = -1, .ready_fd = -1, .stream_fd = fd};
    int rc;

    tandem_domain_config_init(&r.cfg);
    r.root = tandem_rundir();
    if (!cfg || fd < 0)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "restore: no configuration or stream given");
    if (timeout_ms <= 0)
        timeout_ms = tdm_env_ms("TANDEM_RESTORE_TIMEOUT_MS", RESTORE_TIMEOUT_MS);
    rc = restore_prepare(&r, cfg);
    if (!rc)
        rc = restore_reserve(&r);
    if (!rc)
        rc = restore_spawn(&r);
    if (!rc)
        rc = await_ready(&r, timeout_ms);
    if (rc) {
        restore_rollback(&r);
    } else {
        tdm_rundir_created(r.root, r.domid, r.creating_fd); /* LIVE, paused */
        r.creating_fd = -1;
        if (!(flags & TANDEM_RESTORE_PAUSED) && (rc = tandem_domain_unpause(ctx, r.domid))) {
            tandem_error_prefix(ctx,
                                "restore of '%s': the domain was restored but could not "
                                "be unpaused; destroyed it",
                                r.name);
            tandem_domain_destroy(NULL, r.domid);
        }
        if (!rc)
            *domid_out = r.domid;
    }
    if (r.ready_fd >= 0)
        close(r.ready_fd);
    tandem_domain_config_dispose(&r.cfg);
    free(r.json);
    free(r.vmm_path);
    free(r.dir);
    free(r.logpath);
    return rc;
}

static void report(tandem_progress_cb cb, void *opaque, const char *phase, uint64_t bytes)
{
    struct tandem_save_progress p = {.phase = phase, .bytes = bytes};

    if (cb)
        cb(&p, opaque);
}

int tandem_domain_restore(tandem_ctx *ctx, int fd, const char *config_path, unsigned flags,
                          uint32_t *domid_out, tandem_progress_cb progress, void *opaque)
{
    struct tandem_stream_summary sum = {0};
    tandem_domain_config cfg;
    struct stat sb;
    int rc;

    tandem_domain_config_init(&cfg);
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "restore: the image must be a regular file (streams from pipes or "
                            "sockets go through tandem_domain_restore_stream)");
    /* The whole image first: nothing is created for an image that would fail half-way. */
    report(progress, opaque, "validate", 0);
    if (lseek(fd, 0, SEEK_SET) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "restore: cannot seek in the image");
        goto out;
    }
    rc = tandem_stream_validate(ctx, fd, &sum);
    if (rc) {
        tandem_error_prefix(ctx, "restore: the image is not valid");
        goto out;
    }
    if ((sum.header.flags & TANDEM_STREAM_F_KIND_MASK) == TANDEM_STREAM_CHECKPOINTED) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                          "restore: the image is a checkpointed (Remus) stream, not a saved "
                          "domain");
        goto out;
    }
    if (config_path)
        rc = tandem_domain_config_load(ctx, config_path, 0, NULL, &cfg);
    else
        rc = tandem_domain_config_from_json(ctx, &cfg, sum.config_json);
    if (rc) {
        tandem_error_prefix(ctx, "restore: %s",
                            config_path ? config_path : "the image's DOMAIN_CONFIG");
        goto out;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "restore: cannot seek in the image");
        goto out;
    }
    report(progress, opaque, "restore", sum.bytes);
    rc = tandem_domain_restore_stream(ctx, fd, &cfg, flags, 0, domid_out);
out:
    tandem_stream_summary_dispose(&sum);
    tandem_domain_config_dispose(&cfg);
    return rc;
}
