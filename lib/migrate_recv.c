/* Migration receiver: checks, restore from the connection, hand-over, one function per phase. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include "domain_internal.h"
#include "migrate_internal.h"
#include "tandem_checkpoint.h"

#define CONFIG_TIMEOUT_MS 60000
#define STORAGE_TIMEOUT_MS 120000
#define GO_TIMEOUT_MS 60000
#define DONE_TIMEOUT_MS 30000
#define INCOMING_SUFFIX "--incoming"

struct mrecv {
    tandem_ctx *ctx;
    tandem_migrate_conn *conn;
    unsigned flags;
    tandem_migrate_log_cb *log;
    void *opaque;

    const char *root;
    tandem_domain_config cfg; /* as the sender sent it (final name) */
    char name[TDM_NAME_MAX + 1];
    char incoming[TDM_NAME_MAX + 1];
    int lock_fd;    /* ROOT/migrate-<name>.lock while we receive this name */
    uint32_t domid; /* the incoming domain, 0 until restored */
    struct tdm_mig_guard guard;
    json_t *disks; /* the sender's disk list (config phase) */
    int copy;      /* --copy-storage: we create and fill the disks */
    int encrypt;   /* --encrypt: the stream arrives sealed (lib/migrate_crypt.c) */
    int *disk_fd;  /* per disk of `disks`: the file we created, -1 */
    size_t ndisk;
};

#define DISK_CHUNK (1u << 20)

static void say(struct mrecv *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct mrecv *r, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!r->log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    r->log(r->opaque, line);
}

/* ---- the guard's action: the receiver died before running the domain, so drop the copy */

struct mrecv;
struct guard_arg {
    char incoming[TDM_NAME_MAX + 1];
    uint32_t domid;
    struct mrecv *r; /* the guard's copy (fork): the disk files created for --copy-storage */
};
static struct guard_arg guard_arg;
static void remove_disks(struct mrecv *r);

static void guard_discard(void *arg, int unused)
{
    struct guard_arg *a = arg;
    tandem_ctx *ctx = NULL;

    (void)unused;
    if (tandem_ctx_alloc(&ctx) != 0)
        return;
    /* The VMM may still be reading the stream (the domain is CREATING): wait for it. */
    for (int i = 0; i < 600; i++) {
        uint32_t id = a->domid;
        int rc = id ? 0 : tandem_domain_lookup(ctx, a->incoming, &id);
        if (rc == 0) {
            rc = tandem_domain_destroy(ctx, id);
            if (rc == 0 || rc == TANDEM_ERR_TIMEOUT || rc == TANDEM_ERR_NOTFOUND)
                break;
        } else if (i > 5 && rc == TANDEM_ERR_NOTFOUND && a->domid == 0) {
            /* Never created, or its VMM failed and cleaned up. Keep looking a little longer. */
            if (i > 30)
                break;
        }
        sleep(1);
    }
    if (a->r)
        remove_disks(a->r);
    tandem_ctx_free(ctx);
}

/* ---- checks of the config phase */

static int check_name(struct mrecv *r)
{
    uint32_t id;
    char path[4096];
    int rc;

    rc = tdm_name_check(r->ctx, r->name);
    if (rc)
        return rc;
    if (strlen(r->name) + strlen(INCOMING_SUFFIX) <= TDM_NAME_MAX)
        snprintf(r->incoming, sizeof(r->incoming), "%s" INCOMING_SUFFIX, r->name);
    else
        snprintf(r->incoming, sizeof(r->incoming), "incoming-%d" INCOMING_SUFFIX, (int)getpid());
    rc = tandem_domain_lookup(r->ctx, r->name, &id);
    if (rc == 0)
        return tandem_error(r->ctx, TANDEM_ERR_EXISTS,
                            "a domain named '%s' already exists on this host (id %u)", r->name, id);
    tandem_ctx_clear_error(r->ctx);
    /* One receiver per name: a lock that dies with us, so a stale copy can be told apart. */
    rc = tdm_rundir_init(r->ctx, r->root);
    if (rc)
        return rc;
    snprintf(path, sizeof(path), "%s/migrate-%s.lock", r->root, r->name);
    r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (r->lock_fd < 0)
        return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot open %s", path);
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return tandem_error(r->ctx, TANDEM_ERR_BUSY,
                            "another migration of '%s' is arriving on this host", r->name);
    if (tandem_domain_lookup(r->ctx, r->incoming, &id) == 0) {
        say(r, "discarding '%s' (id %u), left by a receiver that died", r->incoming, id);
        (void)tandem_domain_destroy(r->ctx, id);
    }
    tandem_ctx_clear_error(r->ctx);
    return 0;
}

static int check_kernel(struct mrecv *r)
{
    const char *k = r->cfg.b_info.kernel;
    struct stat st;

    if (!k || !k[0])
        return tandem_error(r->ctx, TANDEM_ERR_INVAL, "the configuration names no kernel");
    if (stat(k, &st) < 0 || !S_ISREG(st.st_mode))
        return tandem_error(r->ctx, TANDEM_ERR_NOTFOUND,
                            "kernel %s does not exist on this host (it must be at the same path)",
                            k);
    return 0;
}

static int check_bridges(struct mrecv *r)
{
    for (int i = 0; i < r->cfg.num_nics; i++) {
        const char *br = r->cfg.nics[i].bridge;
        char path[512];
        struct stat st;
        if (!br || !br[0])
            continue;
        snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", br);
        if (strchr(br, '/') || stat(path, &st) < 0)
            return tandem_error(r->ctx, TANDEM_ERR_NOTFOUND,
                                "bridge '%s' (vif %d) does not exist on this host", br, i);
    }
    return 0;
}

/* Shared disks: same path, same size (the sampled checksum follows once the source is paused). */
static int check_disks(struct mrecv *r, const json_t *disks)
{
    size_t i;
    json_t *d;

    json_array_foreach(disks, i, d)
    {
        const char *path = json_string_value(json_object_get(d, "path"));
        const char *vdev = json_string_value(json_object_get(d, "vdev"));
        json_int_t size = json_integer_value(json_object_get(d, "size"));
        struct stat st;
        if (!path)
            return tandem_error(r->ctx, TANDEM_ERR_PROTO, "disk %zu has no path", i);
        if (stat(path, &st) < 0)
            return tandem_error(r->ctx, TANDEM_ERR_NOTFOUND,
                                "disk %s (%s) does not exist on this host: disks must be on "
                                "storage both hosts see",
                                path, vdev ? vdev : "?");
        if (S_ISREG(st.st_mode) && (json_int_t)st.st_size != size)
            return tandem_error(r->ctx, TANDEM_ERR_INVAL,
                                "disk %s (%s) is %lld bytes here but %lld bytes on the sender: "
                                "not the same storage",
                                path, vdev ? vdev : "?", (long long)st.st_size, (long long)size);
    }
    return 0;
}

/*
 * --copy-storage: create every disk file, empty and of the sender's size,
 * before the VMM opens it. A file that exists is never overwritten, and
 * the sender's own file (shared storage, or the same machine) is refused.
 */
static int create_disks(struct mrecv *r)
{
    size_t i;
    json_t *d;

    r->ndisk = json_array_size(r->disks);
    r->disk_fd = calloc(r->ndisk ? r->ndisk : 1, sizeof(int));
    if (!r->disk_fd)
        return tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
    for (i = 0; i < r->ndisk; i++)
        r->disk_fd[i] = -1;
    json_array_foreach(r->disks, i, d)
    {
        const char *path = json_string_value(json_object_get(d, "path"));
        const char *ident = json_string_value(json_object_get(d, "identity"));
        json_int_t size = json_integer_value(json_object_get(d, "size"));
        char mine[160];
        if (!path || size < 0)
            return tandem_error(r->ctx, TANDEM_ERR_PROTO, "disk %zu has no path or size", i);
        if (tdm_mig_disk_identity(path, mine) == 0) {
            if (ident && strcmp(ident, mine) == 0)
                return tandem_error(r->ctx, TANDEM_ERR_INVAL,
                                    "disk %s is the sender's own file (shared storage): "
                                    "migrate without --copy-storage",
                                    path);
            return tandem_error(r->ctx, TANDEM_ERR_EXISTS,
                                "disk %s already exists on this host; --copy-storage does not "
                                "overwrite it",
                                path);
        }
        r->disk_fd[i] = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (r->disk_fd[i] < 0)
            return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot create disk %s", path);
        if (ftruncate(r->disk_fd[i], (off_t)size) < 0)
            return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot size disk %s", path);
        say(r, "created disk %s (%lld bytes) for --copy-storage", path, (long long)size);
    }
    return 0;
}

/* Remove the disk files we created (a failed --copy-storage migration). */
static void remove_disks(struct mrecv *r)
{
    for (size_t i = 0; i < r->ndisk; i++) {
        const char *path = json_string_value(json_object_get(json_array_get(r->disks, i), "path"));
        if (r->disk_fd[i] < 0)
            continue;
        close(r->disk_fd[i]); /* in the guard already closed: harmless */
        r->disk_fd[i] = -1;
        if (path)
            unlink(path);
    }
}

/* One disk-data frame: check where it goes and its hash, then write the raw bytes after it. */
static int take_disk_data(struct mrecv *r, const json_t *msg, uint8_t *buf)
{
    json_int_t i = json_integer_value(json_object_get(msg, "disk"));
    json_int_t off = json_integer_value(json_object_get(msg, "offset"));
    json_int_t len = json_integer_value(json_object_get(msg, "len"));
    const char *want = json_string_value(json_object_get(msg, "hash"));
    const json_t *d = json_array_get(r->disks, (size_t)i);
    json_int_t size = json_integer_value(json_object_get(d, "size"));
    uint8_t digest[32];
    char hex[65];
    int rc;

    if (!r->copy || i < 0 || (size_t)i >= r->ndisk || r->disk_fd[i] < 0 || len <= 0 ||
        len > DISK_CHUNK || off < 0 || off > size - len || !want)
        return tandem_error(r->ctx, TANDEM_ERR_PROTO,
                            "disk-data for disk %lld at %lld (+%lld) does not fit what was "
                            "agreed",
                            (long long)i, (long long)off, (long long)len);
    rc = tdm_mig_read_raw(r->ctx, r->conn, buf, (size_t)len, STORAGE_TIMEOUT_MS);
    if (rc)
        return rc;
    crypto_generichash(digest, sizeof(digest), buf, (size_t)len, NULL, 0);
    tdm_mig_hex(digest, sizeof(digest), hex);
    if (strcmp(hex, want) != 0)
        return tandem_error(r->ctx, TANDEM_ERR_PROTO,
                            "disk-data for disk %lld at %lld: the bytes do not match their hash",
                            (long long)i, (long long)off);
    for (json_int_t done = 0; done < len;) {
        ssize_t n = pwrite(r->disk_fd[i], buf + done, (size_t)(len - done), (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot write disk %s",
                                      json_string_value(json_object_get(d, "path")));
        done += n;
    }
    return 0;
}

/* ---- phases, in order */

/* 1. Banner and version (TCP: authentication already done by accept). */
static int phase_hello(struct mrecv *r)
{
    if (r->conn->chan.tx_seq > 0)
        return 0;
    return tdm_mig_handshake_receiver(r->ctx, r->conn, NULL);
}

/* 2. Config: everything that would make the restore fail is checked before the stream. */
static int phase_config(struct mrecv *r)
{
    json_t *msg = NULL, *reply = NULL;
    const char *name;
    int rc;

    rc = tdm_mig_recv(r->ctx, r->conn, CONFIG_TIMEOUT_MS, "config", &msg);
    if (rc)
        goto out;
    r->copy = json_is_true(json_object_get(msg, "copy_storage"));
    r->encrypt = json_is_true(json_object_get(msg, "encrypt"));
    if (r->encrypt && !r->conn->chan.auth) {
        rc = tandem_error(r->ctx, TANDEM_ERR_INVAL,
                          "stream encryption needs the authenticated TCP transport");
        goto out;
    }
    r->disks = json_incref(json_object_get(msg, "disks"));
    if (!json_is_array(r->disks)) {
        rc = tandem_error(r->ctx, TANDEM_ERR_PROTO, "the config message lists no disks");
        goto out;
    }
    rc = tandem_domain_config_parse_json(r->ctx, &r->cfg, json_object_get(msg, "config"));
    if (rc) {
        tandem_error_prefix(r->ctx, "the sender's configuration");
        goto out;
    }
    name = r->cfg.c_info.name;
    if (!name || strlen(name) > TDM_NAME_MAX) {
        rc = tandem_error(r->ctx, TANDEM_ERR_INVAL, "the sender's configuration has no valid name");
        goto out;
    }
    snprintf(r->name, sizeof(r->name), "%s", name);
    say(r, "incoming domain '%s' from %s", r->name, r->conn->peer);
    if ((rc = check_name(r)) || (rc = check_kernel(r)) || (rc = check_bridges(r)) ||
        (rc = r->copy ? create_disks(r) : check_disks(r, r->disks)))
        goto out;
    reply = json_pack("{s:s}", "msg", "config-ok");
    rc = reply ? tdm_mig_send(r->ctx, r->conn, reply)
               : tandem_error(r->ctx, TANDEM_ERR_NOMEM, "cannot encode config-ok");
out:
    json_decref(msg);
    json_decref(reply);
    return rc;
}

/*
 * 2b. --copy-storage: the disks' contents while the source runs (its
 * first pass and rounds of re-written blocks), up to `disk-copy-done`.
 * Our VMM does not exist yet, so nobody else has the files open.
 */
static int phase_disk_copy(struct mrecv *r)
{
    json_t *msg = NULL;
    uint8_t *buf = NULL;
    int rc = 0;

    if (!r->copy)
        return 0;
    buf = malloc(DISK_CHUNK);
    if (!buf)
        return tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
    for (;;) {
        const char *what;
        json_decref(msg);
        msg = NULL;
        rc = tdm_mig_recv(r->ctx, r->conn, STORAGE_TIMEOUT_MS, NULL, &msg);
        if (rc)
            break;
        what = json_string_value(json_object_get(msg, "msg"));
        if (strcmp(what, "disk-copy-done") == 0) {
            say(r, "disks copied while the source ran: %lld bytes, %lld round(s) of dirty blocks",
                (long long)json_integer_value(json_object_get(msg, "bytes")),
                (long long)json_integer_value(json_object_get(msg, "rounds")));
            /* Flush now, while the source runs: the fsync before have-state is then short. */
            for (size_t k = 0; k < r->ndisk; k++)
                if (r->disk_fd[k] >= 0 && fdatasync(r->disk_fd[k]) < 0) {
                    rc = tandem_error_errno(
                        r->ctx, TANDEM_ERR_IO, errno, "cannot flush disk %s",
                        json_string_value(json_object_get(json_array_get(r->disks, k), "path")));
                    break;
                }
            break;
        }
        if (strcmp(what, "disk-data") != 0) {
            rc = tandem_error(r->ctx, TANDEM_ERR_PROTO,
                              "%s sent \"%s\" where \"disk-data\" or \"disk-copy-done\" was "
                              "expected",
                              r->conn->peer, what);
            break;
        }
        rc = take_disk_data(r, msg, buf);
        if (rc)
            break;
    }
    json_decref(msg);
    free(buf);
    return rc;
}

/* 3. Ready: from here the sender writes the stream. */
static int phase_ready(struct mrecv *r)
{
    json_t *m = json_pack("{s:s}", "msg", "ready");
    int rc = m ? tdm_mig_send(r->ctx, r->conn, m)
               : tandem_error(r->ctx, TANDEM_ERR_NOMEM, "cannot encode ready");
    json_decref(m);
    return rc;
}

/*
 * 4+5. Pre-copy and final copy: a VMM restores the domain, paused, from
 * the connection, under the incoming name. The guard destroys it if we die.
 */
static int phase_stream(struct mrecv *r)
{
    struct tdm_mig_relay *relay = NULL;
    tandem_domain_config cfg;
    int rc, fd = r->conn->rfd;

    tandem_domain_config_init(&cfg);
    snprintf(guard_arg.incoming, sizeof(guard_arg.incoming), "%s", r->incoming);
    guard_arg.domid = 0;
    guard_arg.r = r->copy ? r : NULL;
    rc = tdm_mig_guard_start(r->ctx, &r->guard, guard_discard, &guard_arg, -1);
    if (rc)
        goto out;
    if (tandem_domain_config_copy(&cfg, &r->cfg)) {
        rc = tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    free(cfg.c_info.name);
    cfg.c_info.name = strdup(r->incoming);
    if (!cfg.c_info.name) {
        rc = tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    /*
     * No FDB clean-up here: the restoring VMM (--restore-fd) treats its vifs
     * as incoming, so a MAC the bridge learned from the source does not block it.
     */
    say(r, "receiving the state of '%s' as '%s'", r->name, r->incoming);
    if (r->encrypt && (rc = tdm_mig_relay_start(r->ctx, r->conn, 0, &relay, &fd)))
        goto out;
    rc = tandem_domain_restore_stream(r->ctx, fd, &cfg, TANDEM_RESTORE_PAUSED, 0, &r->domid);
    if (relay) {
        int rrc;
        close(fd); /* the VMM has its own copy, and is done with it */
        rrc = tdm_mig_relay_finish(r->ctx, relay, rc != 0);
        if (!rc && rrc) {
            rc = rrc;
            tandem_domain_destroy(NULL, r->domid); /* restored, but the stream was not sound */
            r->domid = 0;
        }
    }
    if (rc)
        tandem_error_prefix(r->ctx, "restoring '%s' from the stream", r->name);
out:
    tandem_domain_config_dispose(&cfg);
    return rc;
}

/* 6. Storage check with the source paused, then confirm the whole state is here. */
static int phase_have_state(struct mrecv *r)
{
    json_t *msg = NULL, *reply = NULL, *d;
    uint8_t *buf = NULL;
    size_t i;
    int rc;

    for (;;) {
        json_decref(msg);
        msg = NULL;
        rc = tdm_mig_recv(r->ctx, r->conn, STORAGE_TIMEOUT_MS, NULL, &msg);
        if (rc)
            goto out;
        if (strcmp(json_string_value(json_object_get(msg, "msg")), "disk-data") != 0)
            break;
        if (!buf && !(buf = malloc(DISK_CHUNK))) {
            rc = tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = take_disk_data(r, msg, buf);
        if (rc)
            goto out;
    }
    if (strcmp(json_string_value(json_object_get(msg, "msg")), "storage") != 0) {
        rc = tandem_error(r->ctx, TANDEM_ERR_PROTO, "%s sent \"%s\" where \"storage\" was expected",
                          r->conn->peer, json_string_value(json_object_get(msg, "msg")));
        goto out;
    }
    for (size_t k = 0; k < r->ndisk; k++)
        if (r->disk_fd[k] >= 0 && fsync(r->disk_fd[k]) < 0) {
            rc = tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno, "cannot flush disk %zu", k);
            goto out;
        }
    json_array_foreach(json_object_get(msg, "disks"), i, d)
    {
        const char *path = json_string_value(json_object_get(d, "path"));
        const char *want = json_string_value(json_object_get(d, "sample"));
        uint64_t size;
        char hex[65];
        if (!path || !want) {
            rc =
                tandem_error(r->ctx, TANDEM_ERR_PROTO, "storage check %zu lacks path or sample", i);
            goto out;
        }
        rc = tdm_mig_disk_sample(r->ctx, path, &size, hex);
        if (rc)
            goto out;
        if (strcmp(hex, want) != 0 ||
            (json_int_t)size != json_integer_value(json_object_get(d, "size"))) {
            rc = tandem_error(r->ctx, TANDEM_ERR_INVAL,
                              "disk %s differs between the hosts (size or sampled checksum): "
                              "it is not shared storage",
                              path);
            goto out;
        }
    }
    reply = json_pack("{s:s,s:i}", "msg", "have-state", "domid", (int)r->domid);
    rc = reply ? tdm_mig_send(r->ctx, r->conn, reply)
               : tandem_error(r->ctx, TANDEM_ERR_NOMEM, "cannot encode have-state");
out:
    free(buf);
    json_decref(msg);
    json_decref(reply);
    return rc;
}

/* 7. Wait for the sender's go. */
static int phase_go(struct mrecv *r)
{
    json_t *m = NULL;
    int rc = tdm_mig_recv(r->ctx, r->conn, GO_TIMEOUT_MS, "go", &m);
    if (rc == 0 && json_is_true(json_object_get(m, "paused")))
        r->flags |= TANDEM_MIGRATE_RECV_PAUSED;
    json_decref(m);
    return rc;
}

/* 8. Take the real name, run, confirm. */
static int phase_run(struct mrecv *r)
{
    json_t *m = NULL;
    int rc;

    /* From here the copy must survive us: the sender no longer resumes its own. */
    tdm_mig_guard_disarm(&r->guard);
    rc = tandem_domain_rename(r->ctx, r->domid, r->name);
    if (rc)
        return rc;
    if (!(r->flags & TANDEM_MIGRATE_RECV_PAUSED)) {
        rc = tandem_domain_unpause(r->ctx, r->domid);
        if (rc)
            return rc;
    }
    tdm_mig_test_stop("recv", "confirm");
    m = json_pack("{s:s,s:i}", "msg", "running", "domid", (int)r->domid);
    rc = m ? tdm_mig_send(r->ctx, r->conn, m) : 0;
    json_decref(m);
    say(r, "domain '%s' (id %u) %s here", r->name, r->domid,
        r->flags & TANDEM_MIGRATE_RECV_PAUSED ? "is paused" : "runs");
    /* Failing to tell the sender is not a reason to stop the domain: it is the only copy now. */
    tandem_ctx_clear_error(r->ctx);
    return 0;
}

/* 9. The sender destroys its copy; its last word is informational. */
static void phase_done(struct mrecv *r)
{
    json_t *m = NULL;
    tandem_ctx *c2 = NULL;

    if (tandem_ctx_alloc(&c2) != 0)
        return;
    if (tdm_mig_recv(c2, r->conn, DONE_TIMEOUT_MS, "done", &m) == 0)
        say(r, "the sender %s its copy",
            json_is_true(json_object_get(m, "source_destroyed")) ? "destroyed"
                                                                 : "could not destroy");
    else
        say(r, "no word from the sender after the hand-over (%s)", tandem_ctx_error(c2));
    json_decref(m);
    tandem_ctx_free(c2);
}

/* Run one phase, remembering its name for the failure message. */
static int enter(const char **phase, const char *name, int (*fn)(struct mrecv *), struct mrecv *r)
{
    *phase = name;
    tdm_mig_test_stop("recv", name);
    return fn(r);
}

int tandem_domain_migrate_receive(tandem_ctx *ctx, tandem_migrate_conn *conn, unsigned flags,
                                  tandem_migrate_log_cb *log, void *opaque, uint32_t *domid_out)
{
    struct mrecv r = {
        .ctx = ctx,
        .conn = conn,
        .flags = flags,
        .log = log,
        .opaque = opaque,
        .lock_fd = -1,
        .guard = {.fd = -1},
    };
    const char *phase = "hello";
    int rc;

    tandem_domain_config_init(&r.cfg);
    r.root = tandem_rundir();
    if ((rc = enter(&phase, "hello", phase_hello, &r)) ||
        (rc = enter(&phase, "config", phase_config, &r)) ||
        (rc = enter(&phase, "disk-copy", phase_disk_copy, &r)) ||
        (rc = enter(&phase, "ready", phase_ready, &r)) ||
        (rc = enter(&phase, "stream", phase_stream, &r)) ||
        (rc = enter(&phase, "have-state", phase_have_state, &r)) ||
        (rc = enter(&phase, "go", phase_go, &r)) || (rc = enter(&phase, "running", phase_run, &r)))
        goto fail;
    phase_done(&r);
    if (domid_out)
        *domid_out = r.domid;
    goto out;

fail:
    if (r.domid) {
        tandem_ctx *c2 = NULL;
        if (tandem_ctx_alloc(&c2) == 0) {
            (void)tandem_domain_destroy(c2, r.domid);
            tandem_ctx_free(c2);
        }
        tandem_error_prefix(ctx, "incoming copy discarded");
    }
    if (r.copy)
        remove_disks(&r);
    tandem_error_prefix(ctx, "migration failed in phase %s", phase);
    tdm_mig_send_error(conn, phase, tandem_ctx_error(ctx));
out:
    tdm_mig_guard_disarm(&r.guard);
    for (size_t k = 0; k < r.ndisk; k++)
        if (r.disk_fd[k] >= 0)
            close(r.disk_fd[k]);
    free(r.disk_fd);
    json_decref(r.disks);
    if (r.lock_fd >= 0)
        close(r.lock_fd);
    tandem_domain_config_dispose(&r.cfg);
    return rc;
}

int tandem_migrate_query_serve(tandem_ctx *ctx, tandem_migrate_conn *conn)
{
    json_t *q = NULL, *a = NULL;
    char incoming[TDM_NAME_MAX + sizeof(INCOMING_SUFFIX) + 1];
    const char *name, *state = "none";
    tandem_dominfo info;
    uint32_t id;
    int rc;

    tandem_dominfo_init(&info);
    rc = tdm_mig_handshake_receiver(ctx, conn, NULL);
    if (rc)
        goto out;
    rc = tdm_mig_recv(ctx, conn, CONFIG_TIMEOUT_MS, "query", &q);
    if (rc)
        goto out;
    name = json_string_value(json_object_get(q, "name"));
    if (!name || tdm_name_check(ctx, name)) {
        rc = tandem_error(ctx, TANDEM_ERR_PROTO, "query without a valid domain name");
        goto out;
    }
    snprintf(incoming, sizeof(incoming), "%s" INCOMING_SUFFIX, name);
    if (tandem_domain_lookup(ctx, name, &id) == 0 && tandem_domain_info(ctx, id, &info) == 0)
        state = info.state == TANDEM_DOMAIN_STATE_RUNNING
                    ? "running"
                    : tandem_domain_state_to_string(info.state);
    else if (tandem_domain_lookup(ctx, incoming, &id) == 0)
        state = "incoming";
    tandem_ctx_clear_error(ctx);
    a = json_pack("{s:s,s:s}", "msg", "query-result", "state", state);
    rc = a ? tdm_mig_send(ctx, conn, a) : tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
out:
    tandem_dominfo_dispose(&info);
    json_decref(q);
    json_decref(a);
    return rc;
}
