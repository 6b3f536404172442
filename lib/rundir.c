/* Runtime directory: domid and name allocation under a lock, liveness of entries, reaping. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain_internal.h"

const char *tandem_rundir(void)
{
    static __thread char root[PATH_MAX];
    const char *env = getenv("TANDEM_RUNDIR");
    char cwd[PATH_MAX];

    /* Absolute, because the VMM is handed paths under it and runs in /. */
    if (env && env[0] && env[0] != '/' && getcwd(cwd, sizeof(cwd)) &&
        (size_t)snprintf(root, sizeof(root), "%s/%s", cwd, env) < sizeof(root))
        return root;
    snprintf(root, sizeof(root), "%s", env && env[0] ? env : "/run/tandem");
    return root;
}

int tdm_name_check(tandem_ctx *ctx, const char *name)
{
    size_t len, i;
    int digits = 1;

    if (!name || !name[0])
        return tandem_error(ctx, TANDEM_ERR_INVAL, "domain name is missing or empty");
    len = strlen(name);
    if (len > TDM_NAME_MAX)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "domain name '%.*s...' is too long (%zu characters, at most %d)", 16,
                            name, len, TDM_NAME_MAX);
    if (name[0] == '.' || name[0] == '-')
        return tandem_error(ctx, TANDEM_ERR_INVAL, "domain name '%s' must not start with '%c'",
                            name, name[0]);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isascii(c) || !(isalnum(c) || c == '_' || c == '.' || c == '-'))
            return tandem_error(ctx, TANDEM_ERR_INVAL,
                                "domain name '%s' has character '%c' at position %zu (allowed: "
                                "letters, digits, '_', '.', '-')",
                                name, isprint(c) ? c : '?', i + 1);
        if (!isdigit(c))
            digits = 0;
    }
    if (digits)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "domain name '%s' is all digits, which would read as a domain id",
                            name);
    return 0;
}

char *tdm_domain_path(const char *root, uint32_t domid, const char *file)
{
    char *p = NULL;
    int rc;

    if (file)
        rc = asprintf(&p, "%s/domains/%u/%s", root, domid, file);
    else
        rc = asprintf(&p, "%s/domains/%u", root, domid);
    return rc < 0 ? NULL : p;
}

static int mkdir_one(tandem_ctx *ctx, const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "runtime directory: cannot create '%s'",
                              path);
}

/* mkdir -p for the root itself (e.g. /run/tandem or a test's nested temp path). */
static int mkdir_parents(tandem_ctx *ctx, const char *root)
{
    char path[PATH_MAX];
    int rc = 0;

    if (snprintf(path, sizeof(path), "%s", root) >= (int)sizeof(path))
        return tandem_error(ctx, TANDEM_ERR_INVAL, "runtime directory '%s' is too long", root);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        rc = mkdir_one(ctx, path, 0755);
        *p = '/';
        if (rc)
            return rc;
    }
    return mkdir_one(ctx, path, 0755);
}

int tdm_rundir_init(tandem_ctx *ctx, const char *root)
{
    char path[PATH_MAX];
    int rc;

    rc = mkdir_parents(ctx, root);
    if (rc)
        goto out;
    snprintf(path, sizeof(path), "%s/domains", root);
    rc = mkdir_one(ctx, path, 0755);
    if (rc)
        goto out;
    snprintf(path, sizeof(path), "%s/names", root);
    rc = mkdir_one(ctx, path, 0755);
out:
    return rc;
}

int tdm_rundir_lock(tandem_ctx *ctx, const char *root, int *fd_out)
{
    char path[PATH_MAX];
    int fd = -1, rc;

    rc = tdm_rundir_init(ctx, root);
    if (rc)
        goto out;
    snprintf(path, sizeof(path), "%s/lock", root);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "runtime directory: cannot open '%s'",
                                path);
        goto out;
    }
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno,
                                    "runtime directory: cannot lock '%s'", path);
            close(fd);
            fd = -1;
            goto out;
        }
    }
    *fd_out = fd;
out:
    return rc;
}

void tdm_rundir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* drops the flock */
}

int tdm_read_file(tandem_ctx *ctx, const char *path, char **out)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return TANDEM_ERR_NOTFOUND;
        return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot open '%s'", path);
    }
    for (;;) {
        ssize_t n;
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) {
                rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory reading '%s'", path);
                goto out;
            }
            buf = nb;
            cap += 65536;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot read '%s'", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    while (len > 0 && buf[len - 1] == '\n')
        len--;
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int tdm_write_file(tandem_ctx *ctx, const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    size_t off = 0;
    int fd = -1, rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return tandem_error(ctx, TANDEM_ERR_INVAL, "path '%s' is too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot create '%s'", tmp);
        goto out;
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot write '%s'", tmp);
            goto out;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot write '%s'", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot rename '%s' to '%s'", tmp, path);
out:
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(tmp);
    return rc;
}

int tdm_pid_alive(pid_t pid)
{
    char path[64], buf[512], *p;
    ssize_t n;
    int fd;

    if (pid <= 0)
        return 0;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 0;
    /*
     * The VMM is double-forked, so its parent is init or a subreaper that
     * may never reap it: a zombie is as dead as a missing process.
     */
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : 1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 1;
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
        return 0;
    return 1;
}

/* 1 if DIR/creating is locked by a creator right now. */
static int creator_holds(const char *root, uint32_t domid)
{
    char *path = tdm_domain_path(root, domid, "creating");
    int fd, held = 0;

    if (!path)
        return 1; /* out of memory: err on the side of not reaping */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
            held = 1;
        close(fd);
    }
    free(path);
    return held;
}

static pid_t read_pid(const char *root, uint32_t domid)
{
    char *path = tdm_domain_path(root, domid, "vmm.pid"), *text = NULL, *end;
    long v;
    pid_t pid = 0;

    if (!path || tdm_read_file(NULL, path, &text))
        goto out;
    errno = 0;
    v = strtol(text, &end, 10);
    while (*end == ' ' || *end == '\n')
        end++;
    if (!errno && end != text && !*end && v > 0 && v <= INT_MAX)
        pid = (pid_t)v;
out:
    free(text);
    free(path);
    return pid;
}

enum tdm_dom_status tdm_domain_status(const char *root, uint32_t domid, pid_t *pid_out)
{
    enum tdm_dom_status st = TDM_DOM_DEAD;
    char *dir = tdm_domain_path(root, domid, NULL);
    struct stat sb;
    pid_t pid = 0;
    int fd;

    if (!dir)
        return TDM_DOM_CREATING; /* out of memory: never reap on a guess */
    if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        st = TDM_DOM_ABSENT;
        goto out;
    }
    if (creator_holds(root, domid)) {
        st = TDM_DOM_CREATING;
        pid = read_pid(root, domid);
        goto out;
    }
    pid = read_pid(root, domid);
    if (!tdm_pid_alive(pid))
        goto out; /* no pid file (exited, or creation died) or the pid is gone */
    /* The pid is alive: make sure it is still our VMM and not a recycled pid. */
    fd = tdm_control_connect(dir);
    if (fd >= 0) {
        close(fd);
        st = TDM_DOM_LIVE;
    } else if (fd != -ECONNREFUSED) {
        /* ENOENT: the VMM is between removing its socket and its pid file (exiting). */
        st = TDM_DOM_LIVE;
    }
out:
    if (pid_out)
        *pid_out = pid;
    free(dir);
    return st;
}

/* Remove every file in dir, then dir. ENOENT anywhere is fine. */
static int remove_tree(tandem_ctx *ctx, const char *dir)
{
    DIR *d = NULL;
    struct dirent *de;
    int rc = 0;

    /*
     * A VMM that is exiting may still drop a file (exit-status) after we
     * judged it gone, so a folder that refills is emptied a few times.
     */
    for (int pass = 0; pass < 5; pass++) {
        d = opendir(dir);
        if (!d) {
            if (errno == ENOENT)
                return 0;
            return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot open '%s'", dir);
        }
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno == ENOENT)
                continue;
            if (errno == EISDIR && unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0)
                continue;
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot remove '%s/%s'", dir,
                                    de->d_name);
            goto out;
        }
        closedir(d);
        d = NULL;
        if (rmdir(dir) == 0 || errno == ENOENT)
            goto out;
        if (errno != ENOTEMPTY && errno != EEXIST)
            break;
        usleep(10 * 1000);
    }
    rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot remove '%s'", dir);
out:
    if (d)
        closedir(d);
    return rc;
}

/* The domid a name link points at ("../domains/N"), or 0 if it is not such a link. */
static uint32_t link_target(const char *linkpath)
{
    char buf[64], *end;
    ssize_t n;
    unsigned long v;

    n = readlink(linkpath, buf, sizeof(buf) - 1);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (strncmp(buf, "../domains/", 11) || !isdigit((unsigned char)buf[11]))
        return 0;
    errno = 0;
    v = strtoul(buf + 11, &end, 10);
    if (errno || *end || v < 1 || v > TDM_DOMID_MAX)
        return 0;
    return (uint32_t)v;
}

int tdm_rundir_name_lookup(tandem_ctx *ctx, const char *root, const char *name, uint32_t *domid_out)
{
    char path[PATH_MAX];
    uint32_t domid;

    if (tdm_name_check(NULL, name))
        return TANDEM_ERR_NOTFOUND;
    snprintf(path, sizeof(path), "%s/names/%s", root, name);
    domid = link_target(path);
    if (!domid)
        return TANDEM_ERR_NOTFOUND;
    *domid_out = domid;
    return 0;
}

int tdm_rundir_release(tandem_ctx *ctx, const char *root, uint32_t domid)
{
    char path[PATH_MAX];
    char *name = NULL, *dir = NULL, *namefile = NULL;
    int rc = 0;

    dir = tdm_domain_path(root, domid, NULL);
    namefile = tdm_domain_path(root, domid, "name");
    if (!dir || !namefile) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* The name goes first so that a half-released entry never blocks its name. */
    if (tdm_read_file(NULL, namefile, &name) == 0 && !tdm_name_check(NULL, name)) {
        snprintf(path, sizeof(path), "%s/names/%s", root, name);
        if (link_target(path) == domid && unlink(path) < 0 && errno != ENOENT) {
            rc =
                tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot remove name link '%s'", path);
            goto out;
        }
    }
    rc = remove_tree(ctx, dir);
out:
    free(name);
    free(namefile);
    free(dir);
    return rc;
}

int tdm_rundir_remove(tandem_ctx *ctx, const char *root, uint32_t domid, const char *uuid_str)
{
    char *path = tdm_domain_path(root, domid, "uuid"), *uuid = NULL;
    int lock = -1, rc;

    if (!path)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    rc = tdm_rundir_lock(ctx, root, &lock);
    if (rc)
        goto out;
    if (tdm_read_file(NULL, path, &uuid) || strcmp(uuid, uuid_str) ||
        tdm_domain_status(root, domid, NULL) == TDM_DOM_LIVE)
        goto out; /* already reaped, or the domid belongs to another domain now */
    rc = tdm_rundir_release(ctx, root, domid);
out:
    tdm_rundir_unlock(lock);
    free(uuid);
    free(path);
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int tdm_rundir_ids(tandem_ctx *ctx, const char *root, uint32_t **ids_out, int *n_out)
{
    char path[PATH_MAX];
    uint32_t *ids = NULL;
    int n = 0, cap = 0, rc = 0;
    DIR *d;
    struct dirent *de;

    *ids_out = NULL;
    *n_out = 0;
    snprintf(path, sizeof(path), "%s/domains", root);
    d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "runtime directory: cannot open '%s'",
                                  path);
    }
    while ((de = readdir(d))) {
        char *end;
        unsigned long v;
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        errno = 0;
        v = strtoul(de->d_name, &end, 10);
        if (errno || *end || v < 1 || v > TDM_DOMID_MAX)
            continue;
        if (n == cap) {
            uint32_t *ni = realloc(ids, sizeof(*ids) * (size_t)(cap ? cap * 2 : 16));
            if (!ni) {
                rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory listing domains");
                goto out;
            }
            ids = ni;
            cap = cap ? cap * 2 : 16;
        }
        ids[n++] = (uint32_t)v;
    }
    if (n > 1)
        qsort(ids, (size_t)n, sizeof(*ids), cmp_u32);
    *ids_out = ids;
    *n_out = n;
    ids = NULL;
out:
    free(ids);
    closedir(d);
    return rc;
}

int tdm_rundir_reap(tandem_ctx *ctx, const char *root)
{
    char path[PATH_MAX];
    uint32_t *ids = NULL;
    int n = 0, reaped = 0, rc;
    DIR *d = NULL;
    struct dirent *de;

    rc = tdm_rundir_ids(ctx, root, &ids, &n);
    if (rc)
        goto out;
    for (int i = 0; i < n; i++) {
        if (tdm_domain_status(root, ids[i], NULL) != TDM_DOM_DEAD)
            continue;
        rc = tdm_rundir_release(ctx, root, ids[i]);
        if (rc)
            goto out;
        reaped++;
    }
    /* Name links left behind by a release that was interrupted. */
    snprintf(path, sizeof(path), "%s/names", root);
    d = opendir(path);
    if (!d)
        goto out;
    while ((de = readdir(d))) {
        char link[PATH_MAX];
        uint32_t target;
        struct stat sb;
        if (de->d_name[0] == '.')
            continue;
        snprintf(link, sizeof(link), "%s/names/%s", root, de->d_name);
        target = link_target(link);
        if (target && stat(link, &sb) == 0)
            continue;
        unlink(link);
    }
out:
    if (d)
        closedir(d);
    free(ids);
    return rc ? rc : reaped;
}

int tdm_rundir_reap_one(tandem_ctx *ctx, const char *root, uint32_t domid)
{
    int lock = -1, rc;

    rc = tdm_rundir_lock(ctx, root, &lock);
    if (rc)
        goto out;
    if (tdm_domain_status(root, domid, NULL) == TDM_DOM_DEAD) {
        rc = tdm_rundir_release(ctx, root, domid);
        if (!rc)
            rc = 1;
    }
out:
    tdm_rundir_unlock(lock);
    return rc;
}

int tdm_rundir_reserve(tandem_ctx *ctx, const char *root, const char *name, const char *uuid_str,
                       uint32_t *domid_out, int *creating_fd)
{
    char link[PATH_MAX], target[64];
    char *dir = NULL, *file = NULL;
    uint32_t domid, existing;
    int rc, cfd = -1, made_dir = 0;

    *creating_fd = -1;
    rc = tdm_name_check(ctx, name);
    if (rc)
        goto out;
    rc = tdm_rundir_reap(ctx, root);
    if (rc < 0)
        goto out;
    rc = 0;
    snprintf(link, sizeof(link), "%s/names/%s", root, name);
    /* Fail fast before taking a domid; the symlink below is the real test. */
    if (tdm_rundir_name_lookup(NULL, root, name, &existing) == 0) {
        rc = tandem_error(ctx, TANDEM_ERR_EXISTS, "a domain named '%s' already exists (id %u)",
                          name, existing);
        goto out;
    }
    for (domid = 1; domid <= TDM_DOMID_MAX; domid++) {
        free(dir);
        dir = tdm_domain_path(root, domid, NULL);
        if (!dir) {
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (mkdir(dir, 0700) == 0)
            break;
        if (errno != EEXIST) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno,
                                    "runtime directory: cannot create '%s'", dir);
            goto out;
        }
    }
    if (domid > TDM_DOMID_MAX) {
        rc = tandem_error(ctx, TANDEM_ERR_BUSY, "no free domain id for '%s': all %u ids are in use",
                          name, TDM_DOMID_MAX);
        goto out;
    }
    made_dir = 1;

    file = tdm_domain_path(root, domid, "creating");
    if (!file) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Blocking: a status check without the lock may hold LOCK_SH on it for an instant. */
    cfd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (cfd < 0 || flock(cfd, LOCK_EX) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot create and lock '%s'", file);
        goto out;
    }
    free(file);
    file = tdm_domain_path(root, domid, "name");
    if (!file) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tdm_write_file(ctx, file, name, strlen(name));
    if (rc)
        goto out;
    free(file);
    file = tdm_domain_path(root, domid, "uuid");
    if (!file) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tdm_write_file(ctx, file, uuid_str, strlen(uuid_str));
    if (rc)
        goto out;

    snprintf(target, sizeof(target), "../domains/%u", domid);
    if (symlink(target, link) < 0) {
        if (errno == EEXIST && tdm_rundir_name_lookup(NULL, root, name, &existing) == 0)
            rc = tandem_error(ctx, TANDEM_ERR_EXISTS, "a domain named '%s' already exists (id %u)",
                              name, existing);
        else
            rc = tandem_error_errno(ctx, errno == EEXIST ? TANDEM_ERR_EXISTS : TANDEM_ERR_IO, errno,
                                    "cannot create name link '%s'", link);
        goto out;
    }
    *domid_out = domid;
    *creating_fd = cfd;
    cfd = -1;
    made_dir = 0;
out:
    if (made_dir)
        remove_tree(NULL, dir);
    if (cfd >= 0)
        close(cfd);
    free(file);
    free(dir);
    return rc;
}

int tdm_rundir_allocate(tandem_ctx *ctx, const char *root, const char *name, const char *uuid_str,
                        uint32_t *domid_out, int *creating_fd)
{
    int lock = -1, rc;

    *creating_fd = -1;
    rc = tdm_rundir_lock(ctx, root, &lock);
    if (rc)
        goto out;
    rc = tdm_rundir_reserve(ctx, root, name, uuid_str, domid_out, creating_fd);
out:
    tdm_rundir_unlock(lock);
    return rc;
}

void tdm_rundir_created(const char *root, uint32_t domid, int creating_fd)
{
    char *file = tdm_domain_path(root, domid, "creating");

    /* Unlink before unlocking so no reaper sees an unlocked marker of a live domain. */
    if (file)
        unlink(file);
    free(file);
    if (creating_fd >= 0)
        close(creating_fd);
}

char *tdm_exit_summary(const char *root, uint32_t domid)
{
    char *path = tdm_domain_path(root, domid, "exit-status"), *text = NULL, *out = NULL;
    const char *reason, *msg;
    long long code;
    json_t *j = NULL;
    int has_msg, n = 0;

    if (!path || tdm_read_file(NULL, path, &text))
        goto out;
    j = json_loads(text, 0, NULL);
    if (!json_is_object(j)) {
        out = strdup(text); /* not JSON: show what the VMM wrote */
        goto out;
    }
    reason = json_string_value(json_object_get(j, "reason"));
    msg = json_string_value(json_object_get(j, "message"));
    code = json_integer_value(json_object_get(j, "code"));
    /* "crash, code -1: bad pointer ...", "poweroff, code 0" (a message equal to reason is noise) */
    has_msg = msg && msg[0] && (!reason || strcmp(msg, reason));
    if (reason && has_msg)
        n = asprintf(&out, "%s, code %lld: %s", reason, code, msg);
    else if (reason)
        n = asprintf(&out, "%s, code %lld", reason, code);
    else if (has_msg)
        n = asprintf(&out, "%s", msg);
    if (n < 0)
        out = NULL;
out:
    json_decref(j);
    free(text);
    free(path);
    return out;
}

int tdm_rundir_rename_begin(tandem_ctx *ctx, const char *root, uint32_t domid, const char *new_name)
{
    char link[PATH_MAX], target[64];
    uint32_t existing;
    int rc;

    rc = tdm_name_check(ctx, new_name);
    if (rc)
        return rc;
    snprintf(link, sizeof(link), "%s/names/%s", root, new_name);
    snprintf(target, sizeof(target), "../domains/%u", domid);
    if (symlink(target, link) == 0)
        return 0;
    if (errno == EEXIST && tdm_rundir_name_lookup(NULL, root, new_name, &existing) == 0)
        return tandem_error(ctx, TANDEM_ERR_EXISTS, "a domain named '%s' already exists (id %u)",
                            new_name, existing);
    return tandem_error_errno(ctx, errno == EEXIST ? TANDEM_ERR_EXISTS : TANDEM_ERR_IO, errno,
                              "cannot create name link '%s'", link);
}

int tdm_rundir_rename_commit(tandem_ctx *ctx, const char *root, uint32_t domid,
                             const char *old_name, const char *new_name)
{
    char link[PATH_MAX];
    char *file = tdm_domain_path(root, domid, "name");
    int rc;

    if (!file)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    rc = tdm_write_file(ctx, file, new_name, strlen(new_name));
    free(file);
    if (rc)
        return rc;
    if (old_name) {
        snprintf(link, sizeof(link), "%s/names/%s", root, old_name);
        if (link_target(link) == domid)
            unlink(link);
    }
    return 0;
}

void tdm_rundir_rename_abort(const char *root, const char *new_name)
{
    char link[PATH_MAX];

    snprintf(link, sizeof(link), "%s/names/%s", root, new_name);
    unlink(link);
}
