/* Internal header of the domain lifecycle: runtime directory, VMM spawning and control client. */
#ifndef TANDEM_LIB_DOMAIN_INTERNAL_H
#define TANDEM_LIB_DOMAIN_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

/* Domain ids are 1 .. TDM_DOMID_MAX (Xen stops below DOMID_FIRST_RESERVED 0x7ff0 too). */
#define TDM_DOMID_MAX 0x7fefu
#define TDM_NAME_MAX 64

/* Default time a control-socket request may take (TANDEM_CONTROL_TIMEOUT_MS overrides). */
#define TDM_CONTROL_TIMEOUT_MS 10000
/* Time the VMM gets to report ready (TANDEM_CREATE_TIMEOUT_MS overrides). */
#define TDM_CREATE_TIMEOUT_MS 60000
/* Time the VMM gets to exit after destroy before it is killed. */
#define TDM_DESTROY_TIMEOUT_MS 10000

/* ---- runtime directory (lib/rundir.c); layout in docs/runtime-dir.md ---- */

/*
 * Check a domain name: 1..TDM_NAME_MAX characters of [A-Za-z0-9_.-], not
 * starting with '.' or '-', not all digits (those are domids).
 * 0 or TANDEM_ERR_INVAL with a message naming the name.
 */
int tdm_name_check(tandem_ctx *ctx, const char *name);

/* "ROOT/domains/<domid>" or "ROOT/domains/<domid>/<file>" (file may be NULL); malloc'd or NULL. */
char *tdm_domain_path(const char *root, uint32_t domid, const char *file);

/* Create ROOT, ROOT/domains and ROOT/names if missing. */
int tdm_rundir_init(tandem_ctx *ctx, const char *root);

/*
 * Take the allocation lock (flock on ROOT/lock, created if missing; calls
 * tdm_rundir_init first). Blocks until it is free. *fd_out is the lock
 * to hand to tdm_rundir_unlock. Every change to the set of domain folders
 * and name links happens under it.
 */
int tdm_rundir_lock(tandem_ctx *ctx, const char *root, int *fd_out);
void tdm_rundir_unlock(int fd);

/* What a domain folder holds right now (see tdm_domain_status). */
enum tdm_dom_status {
    TDM_DOM_ABSENT,   /* no folder */
    TDM_DOM_CREATING, /* a creator holds DIR/creating locked: not yet started, never reap */
    TDM_DOM_LIVE,     /* the VMM's pid is alive and its socket does not refuse */
    TDM_DOM_DEAD,     /* the VMM has gone (or never came): reap it */
};

/*
 * Classify domain domid without changing anything (no lock needed). The
 * VMM's pid is stored in *pid_out when known (else 0); pid_out may be NULL.
 * A pid that is a zombie counts as dead.
 */
enum tdm_dom_status tdm_domain_status(const char *root, uint32_t domid, pid_t *pid_out);

/* 1 if pid exists and is not a zombie. */
int tdm_pid_alive(pid_t pid);

/*
 * Reserve a new domain under the lock (caller holds it): reaps dead
 * entries, picks the lowest free domid >= 1, creates DIR with files
 * `name` and `uuid` (uuid_str as given) and `creating` held with flock
 * (*creating_fd; release with tdm_rundir_created once the VMM is up or
 * the entry is released), then the name link ROOT/names/<name>.
 * TANDEM_ERR_EXISTS if a live domain has the name (nothing created),
 * TANDEM_ERR_BUSY if every domid is used.
 */
int tdm_rundir_reserve(tandem_ctx *ctx, const char *root, const char *name, const char *uuid_str,
                       uint32_t *domid_out, int *creating_fd);

/* Lock, tdm_rundir_reserve, unlock. */
int tdm_rundir_allocate(tandem_ctx *ctx, const char *root, const char *name, const char *uuid_str,
                        uint32_t *domid_out, int *creating_fd);

/* Creation finished: remove DIR/creating and drop its lock. fd < 0 is fine. */
void tdm_rundir_created(const char *root, uint32_t domid, int creating_fd);

/*
 * Remove domain domid's name link (if it still points at it) and its
 * folder with everything in it. Caller holds the lock. Missing pieces are
 * fine; fails only if something could not be removed.
 */
int tdm_rundir_release(tandem_ctx *ctx, const char *root, uint32_t domid);

/*
 * Lock, tdm_rundir_release, unlock — but only if domain domid is still
 * the one whose `uuid` file holds uuid_str and its VMM is not live: once
 * a VMM has gone, anyone may reap its folder and a new domain may take
 * the domid before the caller gets here. 0 also when nothing was removed.
 */
int tdm_rundir_remove(tandem_ctx *ctx, const char *root, uint32_t domid, const char *uuid_str);

/*
 * Reap under the lock (caller holds it): release every DEAD domain and
 * remove name links that point nowhere. Returns the number of domains
 * reaped (>= 0) or an error.
 */
int tdm_rundir_reap(tandem_ctx *ctx, const char *root);

/* Lock, reap only domid if it is DEAD, unlock. 1 if it was reaped, 0 if not, < 0 on error. */
int tdm_rundir_reap_one(tandem_ctx *ctx, const char *root, uint32_t domid);

/* Domain ids with a folder, ascending, malloc'd (NULL when none). */
int tdm_rundir_ids(tandem_ctx *ctx, const char *root, uint32_t **ids_out, int *n_out);

/* The domid the name link ROOT/names/<name> points at; TANDEM_ERR_NOTFOUND (no message) if none. */
int tdm_rundir_name_lookup(tandem_ctx *ctx, const char *root, const char *name,
                           uint32_t *domid_out);

/*
 * Read a whole small file into a malloc'd NUL-terminated string with
 * trailing newlines removed. TANDEM_ERR_NOTFOUND (no message) if missing.
 */
int tdm_read_file(tandem_ctx *ctx, const char *path, char **out);

/* Write data to path atomically (path.tmp + rename). */
int tdm_write_file(tandem_ctx *ctx, const char *path, const char *data, size_t len);

/*
 * Human summary of DIR/exit-status ("poweroff, code 0" / the VMM's message),
 * malloc'd, or NULL if there is none.
 */
char *tdm_exit_summary(const char *root, uint32_t domid);

/*
 * Rename under the lock (caller holds it): create ROOT/names/<new_name>
 * pointing at domid (TANDEM_ERR_EXISTS if taken). The caller then tells
 * the VMM and calls tdm_rundir_rename_commit (writes `name`, removes the
 * old link) or tdm_rundir_rename_abort (removes the new link).
 */
int tdm_rundir_rename_begin(tandem_ctx *ctx, const char *root, uint32_t domid,
                            const char *new_name);
int tdm_rundir_rename_commit(tandem_ctx *ctx, const char *root, uint32_t domid,
                             const char *old_name, const char *new_name);
void tdm_rundir_rename_abort(const char *root, const char *new_name);

/* ---- control socket client (lib/control_client.c); protocol in docs/control.md ---- */

/*
 * Send one request (a JSON object, not consumed) to the VMM listening on
 * DIR/control.sock, with nfds file descriptors attached (SCM_RIGHTS; the
 * caller keeps its copies), and wait for its one reply. On {"ok":true,...}
 * returns 0 and, if reply is not NULL, stores the reply object (caller
 * json_decref's it). On {"ok":false,"error":E} returns TANDEM_ERR_FAIL with
 * E as the message; no answer within the timeout (TANDEM_CONTROL_TIMEOUT_MS
 * or 10 s) gives TANDEM_ERR_TIMEOUT, a socket that is missing or refuses
 * gives TANDEM_ERR_NOTFOUND, a malformed reply TANDEM_ERR_PROTO. Messages
 * name the command and the socket; callers prefix the domain.
 */
int tdm_control_call(tandem_ctx *ctx, const char *dir, json_t *req, json_t **reply, int *fds_in,
                     int nfds);
/* The same with an explicit timeout in milliseconds. */
int tdm_control_call_timeout(tandem_ctx *ctx, const char *dir, json_t *req, json_t **reply,
                             int *fds_in, int nfds, int timeout_ms);

/*
 * connect() a non-blocking SOCK_SEQPACKET socket to DIR/control.sock (long
 * paths go through /proc/self/fd). Returns the fd or -errno (-EAGAIN: the
 * VMM's backlog is full, it is alive but not accepting); no message recorded.
 */
int tdm_control_connect(const char *dir);

/* ---- shared by lib/domain_*.c (lib/domain_ops.c) ---- */

/* "domain 'web' (id 3)", or "domain 3" when the name is unknown; malloc'd, never NULL on success.
 */
char *tdm_domain_label(const char *root, uint32_t domid);

/*
 * Send {"cmd":cmd, ...extra's keys} to domain domid's VMM (extra may be
 * NULL; it is not consumed). The domain must be LIVE: ABSENT gives
 * TANDEM_ERR_NOTFOUND, CREATING TANDEM_ERR_BUSY, DEAD is reaped and gives
 * TANDEM_ERR_NOTFOUND saying how it ended. Errors are prefixed with the
 * domain's label. reply as tdm_control_call.
 */
int tdm_domain_request(tandem_ctx *ctx, const char *root, uint32_t domid, const char *cmd,
                       json_t *extra, json_t **reply);

/*
 * The same with file descriptors attached (SCM_RIGHTS; the caller keeps
 * its copies) and a timeout in milliseconds (<= 0: the default). For
 * commands that hand the VMM a stream (save, migrate, Remus).
 */
int tdm_domain_request_ex(tandem_ctx *ctx, const char *root, uint32_t domid, const char *cmd,
                          json_t *extra, int *fds, int nfds, int timeout_ms, json_t **reply);

/*
 * Wait until pid is gone (tdm_pid_alive false) or timeout_ms passes.
 * 1 if it is gone, 0 on timeout.
 */
int tdm_wait_pid_gone(pid_t pid, int timeout_ms);

/* Milliseconds from environment variable name, or def when unset or not a positive number. */
int tdm_env_ms(const char *name, int def);

/*
 * The tandem-vmm to run: $TANDEM_VMM, next to the running executable, its
 * ../vmm/ (the build tree), then PATH. *out is an absolute, malloc'd path
 * (the VMM runs after chdir("/")); TANDEM_ERR_NOTFOUND says where it looked.
 */
int tdm_find_vmm(tandem_ctx *ctx, char **out);

/*
 * Read a VMM's one ready line from fd within timeout_ms. 0 with *line
 * malloc'd, or NULL when the VMM closed the pipe without a line (it died);
 * TANDEM_ERR_TIMEOUT or TANDEM_ERR_NOMEM, with no message recorded.
 */
int tdm_read_ready_line(int fd, int timeout_ms, char **line);

/*
 * In a freshly forked child: become a daemon for the VMM. setsid, fork
 * again (the intermediate child writes the grandchild's pid to pid_fd and
 * _exits), then in the grandchild reset the signal mask and handlers and
 * chdir("/") (_exit(126) on failure). Returns only in the grandchild.
 */
void tdm_daemon_child(int pid_fd);

#endif
