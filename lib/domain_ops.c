/* Operations on existing domains: lookup, info, config, pause, destroy, rename, console. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "domain_internal.h"

char *tdm_domain_label(const char *root, uint32_t domid)
{
    char *path = tdm_domain_path(root, domid, "name"), *name = NULL, *label = NULL;
    int rc;

    if (path && tdm_read_file(NULL, path, &name) == 0 && !tdm_name_check(NULL, name))
        rc = asprintf(&label, "domain '%s' (id %u)", name, domid);
    else
        rc = asprintf(&label, "domain %u", domid);
    if (rc < 0)
        label = NULL;
    free(name);
    free(path);
    return label;
}

int tdm_wait_pid_gone(pid_t pid, int timeout_ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};

    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (!tdm_pid_alive(pid))
            return 1;
        nanosleep(&ts, NULL);
    }
    return !tdm_pid_alive(pid);
}

/*
 * The domain's VMM has gone: reap it and record NOTFOUND saying how it ended.
 * label is "domain 'x' (id N)".
 */
static int gone_error(tandem_ctx *ctx, const char *root, uint32_t domid, const char *label)
{
    char *why = tdm_exit_summary(root, domid);
    int rc;

    tdm_rundir_reap_one(NULL, root, domid);
    if (why)
        rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "%s has exited (%s)", label, why);
    else
        rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "%s has exited", label);
    free(why);
    return rc;
}

/*
 * The refusals every operation on an existing domain shares: no such
 * folder (TANDEM_ERR_NOTFOUND) and a domain still being created
 * (TANDEM_ERR_BUSY). 0 for LIVE and DEAD, which each caller treats in its
 * own way. label is "domain 'x' (id N)".
 */
static int refuse_absent_or_creating(tandem_ctx *ctx, enum tdm_dom_status st, uint32_t domid,
                                     const char *label)
{
    if (st == TDM_DOM_ABSENT)
        return tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain with id %u", domid);
    if (st == TDM_DOM_CREATING)
        return tandem_error(ctx, TANDEM_ERR_BUSY, "%s is still being created", label);
    return 0;
}

int tdm_domain_request(tandem_ctx *ctx, const char *root, uint32_t domid, const char *cmd,
                       json_t *extra, json_t **reply)
{
    return tdm_domain_request_ex(ctx, root, domid, cmd, extra, NULL, 0, 0, reply);
}

int tdm_domain_request_ex(tandem_ctx *ctx, const char *root, uint32_t domid, const char *cmd,
                          json_t *extra, int *fds, int nfds, int timeout_ms, json_t **reply)
{
    char *label = tdm_domain_label(root, domid), *dir = tdm_domain_path(root, domid, NULL);
    json_t *req = NULL;
    enum tdm_dom_status st;
    pid_t pid = 0;
    int rc = 0;

    if (reply)
        *reply = NULL;
    req = json_pack("{s:s}", "cmd", cmd);
    if (!label || !dir || !req || (extra && json_object_update(req, extra) < 0)) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    st = tdm_domain_status(root, domid, &pid);
    rc = refuse_absent_or_creating(ctx, st, domid, label);
    if (!rc && st == TDM_DOM_DEAD)
        rc = gone_error(ctx, root, domid, label);
    if (rc)
        goto out;
    if (timeout_ms <= 0)
        timeout_ms = tdm_env_ms("TANDEM_CONTROL_TIMEOUT_MS", TDM_CONTROL_TIMEOUT_MS);
    rc = tdm_control_call_timeout(ctx, dir, req, reply, fds, nfds, timeout_ms);
    if (rc && rc != TANDEM_ERR_FAIL && rc != TANDEM_ERR_TIMEOUT && rc != TANDEM_ERR_NOMEM) {
        /*
         * A VMM that is exiting closes its socket before its pid file goes:
         * give it a moment, and report the exit rather than a broken socket.
         */
        tdm_wait_pid_gone(pid, 1000);
        if (tdm_domain_status(root, domid, NULL) == TDM_DOM_DEAD) {
            rc = gone_error(ctx, root, domid, label);
            goto out;
        }
    }
    if (rc)
        tandem_error_prefix(ctx, "%s", label);
out:
    json_decref(req);
    free(dir);
    free(label);
    return rc;
}

int tandem_domain_lookup(tandem_ctx *ctx, const char *name_or_domid, uint32_t *domid_out)
{
    const char *root = tandem_rundir();
    char *label = NULL;
    uint32_t domid = 0;
    int rc = 0, by_id = 1;

    if (!name_or_domid || !name_or_domid[0])
        return tandem_error(ctx, TANDEM_ERR_INVAL, "empty domain name or id");
    for (const char *p = name_or_domid; *p; p++)
        if (!isdigit((unsigned char)*p))
            by_id = 0;
    if (by_id) {
        char *end;
        unsigned long v;
        errno = 0;
        v = strtoul(name_or_domid, &end, 10);
        if (errno || v < 1 || v > TDM_DOMID_MAX) {
            rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain with id %s", name_or_domid);
            goto out;
        }
        domid = (uint32_t)v;
    } else if (tdm_rundir_name_lookup(ctx, root, name_or_domid, &domid)) {
        rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain named '%s'", name_or_domid);
        goto out;
    }
    switch (tdm_domain_status(root, domid, NULL)) {
    case TDM_DOM_ABSENT:
        if (by_id)
            rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain with id %u", domid);
        else
            rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain named '%s'", name_or_domid);
        goto out;
    case TDM_DOM_DEAD:
        label = tdm_domain_label(root, domid);
        rc = gone_error(ctx, root, domid, label ? label : name_or_domid);
        goto out;
    case TDM_DOM_CREATING:
    case TDM_DOM_LIVE:
        break;
    }
    *domid_out = domid;
out:
    free(label);
    return rc;
}

/*
 * The runtime directory is the authority on a domain's identity: its `name`
 * file replaces out->name, its `uuid` file fills out->uuid if that is still
 * zero. A missing or unreadable file leaves the field as it was. -1 (no
 * message) when the first path cannot be allocated, else 0.
 */
static int identity_from_rundir(const char *root, uint32_t domid, tandem_dominfo *out)
{
    char *path = tdm_domain_path(root, domid, "name"), *text = NULL;

    if (!path)
        return -1;
    if (tdm_read_file(NULL, path, &text) == 0) {
        free(out->name);
        out->name = text;
        text = NULL;
    }
    free(path);
    path = tdm_domain_path(root, domid, "uuid");
    if (path && tandem_uuid_is_zero(out->uuid) && tdm_read_file(NULL, path, &text) == 0)
        tandem_uuid_parse(text, out->uuid);
    free(text);
    free(path);
    return 0;
}

/* Fill what the runtime directory knows (name, uuid, pid) for a domain whose VMM cannot say more.
 */
static int info_from_rundir(tandem_ctx *ctx, const char *root, uint32_t domid, pid_t pid,
                            tandem_domain_state state, tandem_dominfo *out)
{
    tandem_dominfo_dispose(out);
    out->domid = domid;
    out->state = state;
    out->vmm_pid = (int)pid;
    if (identity_from_rundir(root, domid, out))
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    return 0;
}

int tandem_domain_info(tandem_ctx *ctx, uint32_t domid, tandem_dominfo *out)
{
    const char *root = tandem_rundir();
    json_t *reply = NULL, *info;
    char *label = NULL;
    pid_t pid = 0;
    int rc = 0;

    switch (tdm_domain_status(root, domid, &pid)) {
    case TDM_DOM_ABSENT:
        return tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain with id %u", domid);
    case TDM_DOM_CREATING:
        return info_from_rundir(ctx, root, domid, pid, TANDEM_DOMAIN_STATE_CREATING, out);
    case TDM_DOM_DEAD:
    case TDM_DOM_LIVE:
        break; /* tdm_domain_request reaps the dead and reports */
    }
    rc = tdm_domain_request(ctx, root, domid, "info", NULL, &reply);
    if (rc)
        goto out;
    info = json_object_get(reply, "info");
    rc = tandem_dominfo_parse_json(ctx, out, info);
    if (rc) {
        label = tdm_domain_label(root, domid);
        tandem_error_prefix(ctx, "%s: malformed \"info\" reply from its VMM",
                            label ? label : "domain");
        rc = TANDEM_ERR_PROTO;
        goto out;
    }
    /* The VMM is the authority on state. */
    out->domid = domid;
    if (!out->vmm_pid)
        out->vmm_pid = (int)pid;
    identity_from_rundir(root, domid, out);
out:
    free(label);
    json_decref(reply);
    return rc;
}

int tandem_domain_get_config(tandem_ctx *ctx, uint32_t domid, tandem_domain_config *out)
{
    const char *root = tandem_rundir();
    char *path = NULL, *text = NULL, *label = NULL, *name = NULL;
    int rc;

    label = tdm_domain_label(root, domid);
    path = tdm_domain_path(root, domid, "config.json");
    if (!label || !path) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (tdm_domain_status(root, domid, NULL) == TDM_DOM_ABSENT) {
        rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain with id %u", domid);
        goto out;
    }
    rc = tdm_read_file(ctx, path, &text);
    if (rc == TANDEM_ERR_NOTFOUND)
        rc = tandem_error(ctx, rc, "%s has no configuration file '%s'", label, path);
    if (rc)
        goto out;
    rc = tandem_domain_config_from_json(ctx, out, text);
    if (rc) {
        tandem_error_prefix(ctx, "%s: %s", label, path);
        goto out;
    }
    free(path);
    path = tdm_domain_path(root, domid, "name");
    if (path && tdm_read_file(NULL, path, &name) == 0) {
        free(out->c_info.name);
        out->c_info.name = name;
    }
out:
    free(text);
    free(path);
    free(label);
    return rc;
}

int tandem_domain_pause(tandem_ctx *ctx, uint32_t domid)
{
    return tdm_domain_request(ctx, tandem_rundir(), domid, "pause", NULL, NULL);
}

int tandem_domain_unpause(tandem_ctx *ctx, uint32_t domid)
{
    return tdm_domain_request(ctx, tandem_rundir(), domid, "unpause", NULL, NULL);
}

int tandem_domain_destroy(tandem_ctx *ctx, uint32_t domid)
{
    char *root = strdup(tandem_rundir()), *label = NULL, *why = NULL, *path = NULL, *uuid = NULL;
    int timeout = tdm_env_ms("TANDEM_DESTROY_TIMEOUT_MS", TDM_DESTROY_TIMEOUT_MS);
    enum tdm_dom_status st;
    pid_t pid = 0;
    int rc = 0, asked;

    if (!root) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    label = tdm_domain_label(root, domid);
    path = tdm_domain_path(root, domid, "uuid");
    if (!label || !path) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Which domain this is, so that the folder removed at the end is still its own. */
    if (tdm_read_file(NULL, path, &uuid))
        uuid = NULL;
    st = uuid ? tdm_domain_status(root, domid, &pid) : TDM_DOM_ABSENT;
    rc = refuse_absent_or_creating(ctx, st, domid, label);
    if (rc)
        goto out;
    if (st == TDM_DOM_DEAD) {
        rc = tdm_rundir_reap_one(ctx, root, domid); /* already gone: just clean up */
        rc = rc < 0 ? rc : 0;
        goto out;
    }
    rc = tdm_domain_request(ctx, root, domid, "destroy", NULL, NULL);
    if (rc == TANDEM_ERR_NOTFOUND) {
        rc = 0; /* it exited on its own meanwhile and has been reaped */
        tandem_ctx_clear_error(ctx);
        goto out;
    }
    asked = rc == 0;
    rc = 0;
    if (asked && tdm_wait_pid_gone(pid, timeout)) {
        tandem_ctx_clear_error(ctx);
    } else {
        /* Keep the reason the VMM did not cooperate for the message. */
        if (!asked)
            why = strdup(tandem_ctx_error(ctx));
        if (pid > 0)
            kill(pid, SIGKILL);
        tdm_wait_pid_gone(pid, 2000);
        rc = TANDEM_ERR_TIMEOUT;
    }
    {
        int rrc = tdm_rundir_remove(ctx, root, domid, uuid);
        if (rrc) {
            tandem_error_prefix(ctx, "%s: destroyed, but its runtime files remain", label);
            rc = rrc;
            goto out;
        }
    }
    if (rc == TANDEM_ERR_TIMEOUT) {
        if (why && why[0])
            tandem_error(ctx, rc,
                         "%s: the VMM (pid %d) did not take the destroy request (%s); killed it "
                         "with SIGKILL and removed its runtime files",
                         label, (int)pid, why);
        else
            tandem_error(ctx, rc,
                         "%s: the VMM (pid %d) did not exit within %d ms of destroy; killed it "
                         "with SIGKILL and removed its runtime files",
                         label, (int)pid, timeout);
    }
out:
    free(uuid);
    free(path);
    free(why);
    free(label);
    free(root);
    return rc;
}

int tandem_domain_rename(tandem_ctx *ctx, uint32_t domid, const char *new_name)
{
    char *root = strdup(tandem_rundir()), *label = NULL, *path = NULL, *old = NULL;
    enum tdm_dom_status st;
    int lock = -1, rc, begun = 0;

    if (!root) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tdm_name_check(ctx, new_name);
    if (rc)
        goto out;
    rc = tdm_rundir_lock(ctx, root, &lock);
    if (rc)
        goto out;
    label = tdm_domain_label(root, domid);
    path = tdm_domain_path(root, domid, "name");
    if (!label || !path) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (tdm_read_file(NULL, path, &old) == 0 && !strcmp(old, new_name)) {
        rc = tdm_domain_status(root, domid, NULL) == TDM_DOM_ABSENT
                 ? tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain with id %u", domid)
                 : 0;
        goto out;
    }
    rc = tdm_rundir_rename_begin(ctx, root, domid, new_name);
    if (rc) {
        tandem_error_prefix(ctx, "cannot rename %s", label);
        goto out;
    }
    begun = 1;
    /* Checked here, not by tdm_domain_request: the lock is ours, so no reap inside it. */
    st = tdm_domain_status(root, domid, NULL);
    rc = refuse_absent_or_creating(ctx, st, domid, label);
    if (!rc && st == TDM_DOM_DEAD)
        rc = tandem_error(ctx, TANDEM_ERR_NOTFOUND, "%s has exited", label);
    if (rc)
        goto out;
    {
        char *dir = tdm_domain_path(root, domid, NULL);
        json_t *req = json_pack("{s:s,s:s}", "cmd", "rename", "name", new_name);
        rc = dir && req ? tdm_control_call(ctx, dir, req, NULL, NULL, 0)
                        : tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        json_decref(req);
        free(dir);
    }
    if (rc) {
        tandem_error_prefix(ctx, "cannot rename %s", label);
        goto out;
    }
    rc = tdm_rundir_rename_commit(ctx, root, domid, old, new_name);
    if (!rc)
        begun = 0;
out:
    if (begun)
        tdm_rundir_rename_abort(root, new_name);
    tdm_rundir_unlock(lock);
    free(old);
    free(path);
    free(label);
    free(root);
    return rc;
}

int tandem_domain_console_path(tandem_ctx *ctx, uint32_t domid, char **path_out)
{
    const char *root = tandem_rundir();
    char *path;

    if (tdm_domain_status(root, domid, NULL) == TDM_DOM_ABSENT)
        return tandem_error(ctx, TANDEM_ERR_NOTFOUND, "no domain with id %u", domid);
    path = tdm_domain_path(root, domid, "console.log");
    if (!path)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    *path_out = path;
    return 0;
}

int tandem_domain_alive(tandem_ctx *ctx, uint32_t domid)
{
    const char *root = tandem_rundir();
    enum tdm_dom_status st = tdm_domain_status(root, domid, NULL);

    (void)ctx;
    if (st == TDM_DOM_DEAD)
        tdm_rundir_reap_one(NULL, root, domid); /* seen gone: clean up after it */
    return st == TDM_DOM_LIVE || st == TDM_DOM_CREATING;
}
