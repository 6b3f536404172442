/* Domain creation: reserve a domid and name, write the config, spawn the VMM, await ready. */
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

/* Fixed fd number of the ready pipe in the VMM (passed as --ready-fd). */
#define READY_FD 3
#define READY_LINE_MAX 4096

static int is_executable(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

int tdm_find_vmm(tandem_ctx *ctx, char **out)
{
    char self[PATH_MAX], cand[PATH_MAX + 32];
    const char *env = getenv("TANDEM_VMM"), *path;
    ssize_t n;

    if (env && env[0]) {
        if (!is_executable(env))
            return tandem_error(ctx, TANDEM_ERR_NOTFOUND,
                                "TANDEM_VMM is '%s', which is not an executable file", env);
        /* Absolute: the VMM is executed after chdir("/"). */
        *out = env[0] == '/' ? strdup(env) : realpath(env, NULL);
        goto done;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        char *slash;
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(cand, sizeof(cand), "%s/tandem-vmm", self);
            if (is_executable(cand)) {
                *out = strdup(cand);
                goto done;
            }
            snprintf(cand, sizeof(cand), "%s/../vmm/tandem-vmm", self); /* the build tree */
            if (is_executable(cand)) {
                *out = strdup(cand);
                goto done;
            }
        }
    }
    path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        if (len > 0 && len < PATH_MAX) {
            snprintf(cand, sizeof(cand), "%.*s/tandem-vmm", (int)len, path);
            if (is_executable(cand)) {
                *out = strdup(cand);
                goto done;
            }
        }
        path = colon ? colon + 1 : NULL;
    }
    return tandem_error(ctx, TANDEM_ERR_NOTFOUND,
                        "cannot find tandem-vmm (set TANDEM_VMM, or install it next to tandem "
                        "or on PATH)");
done:
    return *out ? 0 : tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tdm_daemon_child(int pid_fd)
{
    pid_t grand;
    sigset_t none;

    setsid();
    grand = fork();
    if (grand != 0) {
        if (grand > 0)
            (void)!write(pid_fd, &grand, sizeof(grand));
        _exit(grand > 0 ? 0 : 1);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    if (chdir("/") < 0)
        _exit(126);
}

/* Everything the VMM child needs, prepared before fork (no allocation after it). */
struct spawn {
    char *argv[10];
    char domid[16];
    char readyfd[16];
    char *dir;
    char *logpath;
    char *exec_fail; /* '{"ok":false,"error":"cannot execute ...: ' (strerror and '"}' follow) */
};

/*
 * Double fork: the VMM ends up in its own session, a child of init, with
 * stdin on /dev/null, stdout/stderr appended to DIR/vmm.log (so that even
 * a crash leaves a trace) and only the ready pipe open besides.
 * *pid_out is the VMM's pid (0 if it could not be learned).
 */
static int spawn_vmm(tandem_ctx *ctx, struct spawn *sp, int ready_w, pid_t *pid_out)
{
    int pidpipe[2] = {-1, -1}, rc = 0, status = 0, w;
    pid_t child, vmm = 0;
    ssize_t n;

    if (pipe2(pidpipe, O_CLOEXEC) < 0)
        return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot create a pipe");
    child = fork();
    if (child < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot fork the VMM");
        goto out;
    }
    if (child == 0) {
        int fd;

        tdm_daemon_child(pidpipe[1]);
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0 && fd != 0) {
            dup2(fd, 0);
            close(fd);
        }
        fd = open(sp->logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0)
            fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
        if (dup2(ready_w, READY_FD) < 0)
            _exit(126);
        if (close_range(READY_FD + 1, ~0u, 0) < 0)
            for (fd = READY_FD + 1; fd < 1024; fd++)
                close(fd);
        execv(sp->argv[0], sp->argv);
        {
            const char *e = strerror(errno);
            (void)!write(READY_FD, sp->exec_fail, strlen(sp->exec_fail));
            (void)!write(READY_FD, e, strlen(e));
            (void)!write(READY_FD, "\"}\n", 3);
        }
        _exit(127);
    }
    close(pidpipe[1]);
    pidpipe[1] = -1;
    do
        w = waitpid(child, &status, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        status = 0; /* ECHILD: the caller ignores SIGCHLD; the pid pipe still tells */
    do
        n = read(pidpipe[0], &vmm, sizeof(vmm));
    while (n < 0 && errno == EINTR);
    if (n != sizeof(vmm))
        vmm = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || vmm <= 0)
        rc = tandem_error(ctx, TANDEM_ERR_IO, "cannot fork the VMM (second fork failed)");
    *pid_out = vmm;
out:
    if (pidpipe[0] >= 0)
        close(pidpipe[0]);
    if (pidpipe[1] >= 0)
        close(pidpipe[1]);
    return rc;
}

int tdm_read_ready_line(int fd, int timeout_ms, char **line)
{
    int64_t deadline = now_ms() + timeout_ms;
    char *buf = malloc(READY_LINE_MAX + 1);
    size_t len = 0;
    int rc = 0;

    *line = NULL;
    if (!buf)
        return TANDEM_ERR_NOMEM;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        ssize_t n;
        int pr;
        if (left <= 0) {
            rc = TANDEM_ERR_TIMEOUT;
            goto out;
        }
        pr = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            rc = TANDEM_ERR_TIMEOUT;
            goto out;
        }
        n = read(fd, buf + len, READY_LINE_MAX - len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (memchr(buf, '\n', len) || len == READY_LINE_MAX)
            break;
    }
    if (len == 0)
        goto out;
    buf[len] = '\0';
    *line = buf;
    buf = NULL;
out:
    free(buf);
    return rc;
}

/* Last non-empty line of DIR/vmm.log (why a VMM died without a word), malloc'd or NULL. */
static char *log_tail(const char *root, uint32_t domid)
{
    char *path = tdm_domain_path(root, domid, "vmm.log"), *text = NULL, *out = NULL, *p;

    if (!path || tdm_read_file(NULL, path, &text))
        goto out;
    p = strrchr(text, '\n');
    out = strdup(p ? p + 1 : text);
out:
    free(text);
    free(path);
    return out && out[0] ? out : (free(out), NULL);
}

/* Make a relative kernel path absolute against our current directory (the VMM runs in /). */
static int absolute_kernel(tandem_ctx *ctx, tandem_domain_config *cfg)
{
    char cwd[PATH_MAX], *abs = NULL;

    if (!cfg->b_info.kernel || !cfg->b_info.kernel[0] || cfg->b_info.kernel[0] == '/')
        return 0;
    if (!getcwd(cwd, sizeof(cwd)))
        return tandem_error_errno(ctx, TANDEM_ERR_IO, errno,
                                  "kernel '%s' is relative and the current directory is unknown",
                                  cfg->b_info.kernel);
    if (asprintf(&abs, "%s/%s", cwd, cfg->b_info.kernel) < 0)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    free(cfg->b_info.kernel);
    cfg->b_info.kernel = abs;
    return 0;
}

/*
 * One create, step by step in the order they happen (docs/runtime-dir.md,
 * "Allocation"). Each step either succeeds or leaves what it made recorded
 * here for create_rollback.
 */
struct create {
    tandem_ctx *ctx;
    char *root;
    const char *name;
    tandem_domain_config cfg; /* the caller's, with a uuid and an absolute kernel */
    char uuid[TANDEM_UUID_STRLEN];
    char *json; /* cfg as written to config.json */
    char *vmm_path;
    uint32_t domid;
    int reserved;    /* the domid, folder and name are ours */
    int creating_fd; /* flock on DIR/creating while reserved */
    int ready_fd;    /* read end of the VMM's ready pipe */
    pid_t vmm;       /* > 0 once spawned */
    struct spawn sp;
};

/* Check the config and turn it into what config.json will hold; find the VMM. */
static int create_prepare(struct create *c, const tandem_domain_config *in)
{
    int rc;

    rc = tdm_name_check(c->ctx, c->name);
    if (rc)
        return rc;
    c->root = strdup(tandem_rundir());
    if (!c->root || tandem_domain_config_copy(&c->cfg, in))
        return tandem_error(c->ctx, TANDEM_ERR_NOMEM, "out of memory");
    if (tandem_uuid_is_zero(c->cfg.c_info.uuid) && tandem_uuid_generate(c->cfg.c_info.uuid))
        return tandem_error(c->ctx, TANDEM_ERR_IO, "domain '%s': cannot generate a uuid", c->name);
    tandem_uuid_format(c->cfg.c_info.uuid, c->uuid);
    rc = absolute_kernel(c->ctx, &c->cfg);
    if (rc)
        return rc;
    c->json = tandem_domain_config_to_json(&c->cfg);
    if (!c->json)
        return tandem_error(c->ctx, TANDEM_ERR_INVAL,
                            "domain '%s': the configuration cannot be written as JSON (a string "
                            "that is not UTF-8 or a value out of range)",
                            c->name);
    rc = tdm_find_vmm(c->ctx, &c->vmm_path);
    if (rc)
        tandem_error_prefix(c->ctx, "domain '%s'", c->name);
    return rc;
}

/* Take a domid and the name under the lock, then write config.json. */
static int create_reserve(struct create *c)
{
    char *file = NULL;
    int rc;

    rc = tdm_rundir_allocate(c->ctx, c->root, c->name, c->uuid, &c->domid, &c->creating_fd);
    if (rc)
        return rc;
    c->reserved = 1;
    file = tdm_domain_path(c->root, c->domid, "config.json");
    rc = file ? tdm_write_file(c->ctx, file, c->json, strlen(c->json))
              : tandem_error(c->ctx, TANDEM_ERR_NOMEM, "out of memory");
    free(file);
    return rc;
}

/* Prepare argv and messages (nothing may be allocated after fork), then spawn. */
static int create_spawn(struct create *c, unsigned flags)
{
    struct spawn *sp = &c->sp;
    char msg[PATH_MAX + 64];
    int ready[2], rc, i = 0;
    json_t *j;

    snprintf(msg, sizeof(msg), "cannot execute '%s': ", c->vmm_path);
    j = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
    sp->exec_fail = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (sp->exec_fail)
        sp->exec_fail[strlen(sp->exec_fail) - 2] = '\0'; /* drop '"}': strerror follows */
    sp->logpath = tdm_domain_path(c->root, c->domid, "vmm.log");
    sp->dir = tdm_domain_path(c->root, c->domid, NULL);
    if (!sp->exec_fail || !sp->logpath || !sp->dir)
        return tandem_error(c->ctx, TANDEM_ERR_NOMEM, "out of memory");
    snprintf(sp->domid, sizeof(sp->domid), "%u", c->domid);
    snprintf(sp->readyfd, sizeof(sp->readyfd), "%d", READY_FD);
    sp->argv[i++] = c->vmm_path;
    sp->argv[i++] = "--domain-dir";
    sp->argv[i++] = sp->dir;
    sp->argv[i++] = "--domid";
    sp->argv[i++] = sp->domid;
    if (flags & TANDEM_CREATE_PAUSED)
        sp->argv[i++] = "--paused";
    sp->argv[i++] = "--ready-fd";
    sp->argv[i++] = sp->readyfd;
    sp->argv[i] = NULL;

    if (pipe2(ready, O_CLOEXEC) < 0)
        return tandem_error_errno(c->ctx, TANDEM_ERR_IO, errno, "domain '%s': cannot create a pipe",
                                  c->name);
    c->ready_fd = ready[0];
    rc = spawn_vmm(c->ctx, sp, ready[1], &c->vmm);
    close(ready[1]);
    if (rc)
        tandem_error_prefix(c->ctx, "domain '%s'", c->name);
    return rc;
}

/* Wait for the VMM's one line: {"ok":true}, its refusal, or its death. */
static int create_await_ready(struct create *c)
{
    int timeout = tdm_env_ms("TANDEM_CREATE_TIMEOUT_MS", TDM_CREATE_TIMEOUT_MS);
    char *line = NULL, *why = NULL;
    json_t *j = NULL, *ok, *err;
    int rc;

    rc = tdm_read_ready_line(c->ready_fd, timeout, &line);
    if (rc == TANDEM_ERR_TIMEOUT) {
        rc = tandem_error(c->ctx, rc,
                          "domain '%s': the VMM (pid %d) did not report ready within %d ms; "
                          "killed it",
                          c->name, (int)c->vmm, timeout);
        goto out;
    }
    if (rc) {
        rc = tandem_error(c->ctx, rc, "out of memory");
        goto out;
    }
    if (!line) {
        /* EOF without a word: it died. Its exit-status or log says why. */
        tdm_wait_pid_gone(c->vmm, 5000);
        why = tdm_exit_summary(c->root, c->domid);
        if (!why)
            why = log_tail(c->root, c->domid);
        rc = tandem_error(c->ctx, TANDEM_ERR_FAIL,
                          "domain '%s': the VMM exited during start-up (%s)", c->name,
                          why ? why : "no message in vmm.log");
        goto out;
    }
    j = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
    ok = json_object_get(j, "ok");
    err = json_object_get(j, "error");
    if (json_is_false(ok))
        rc = tandem_error(c->ctx, TANDEM_ERR_FAIL, "domain '%s': %s", c->name,
                          json_is_string(err) ? json_string_value(err)
                                              : "the VMM refused to start it");
    else if (!json_is_true(ok))
        rc =
            tandem_error(c->ctx, TANDEM_ERR_PROTO,
                         "domain '%s': the VMM sent a malformed ready line: %.200s", c->name, line);
out:
    json_decref(j);
    free(why);
    free(line);
    return rc;
}

/* Undo whatever the steps made: no process, no folder, no name is left behind. */
static void create_rollback(struct create *c, int rc)
{
    if (c->vmm > 0 && !tdm_wait_pid_gone(c->vmm, rc == TANDEM_ERR_TIMEOUT ? 0 : 5000)) {
        /* It said no (and should exit by itself) or never said anything. */
        kill(c->vmm, SIGKILL);
        tdm_wait_pid_gone(c->vmm, 2000);
    }
    if (c->reserved)
        tdm_rundir_remove(NULL, c->root, c->domid, c->uuid);
    if (c->creating_fd >= 0)
        close(c->creating_fd);
    c->creating_fd = -1;
}

static void create_free(struct create *c)
{
    if (c->ready_fd >= 0)
        close(c->ready_fd);
    tandem_domain_config_dispose(&c->cfg);
    free(c->sp.exec_fail);
    free(c->sp.logpath);
    free(c->sp.dir);
    free(c->json);
    free(c->vmm_path);
    free(c->root);
}

int tandem_domain_create(tandem_ctx *ctx, const tandem_domain_config *cfg, unsigned flags,
                         uint32_t *domid_out)
{
    struct create c = {.ctx = ctx, .creating_fd = -1, .ready_fd = -1};
    int rc;

    tandem_domain_config_init(&c.cfg);
    if (!cfg)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "no domain configuration given");
    c.name = cfg->c_info.name;
    rc = create_prepare(&c, cfg);
    if (!rc)
        rc = create_reserve(&c);
    if (!rc)
        rc = create_spawn(&c, flags);
    if (!rc)
        rc = create_await_ready(&c);
    if (rc) {
        create_rollback(&c, rc);
    } else {
        tdm_rundir_created(c.root, c.domid, c.creating_fd); /* the domain is now LIVE */
        *domid_out = c.domid;
    }
    create_free(&c);
    return rc;
}
