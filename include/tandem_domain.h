/* Domain lifecycle: runtime directory, create, list, pause, destroy (lib/domain_*.c). */
#ifndef TANDEM_DOMAIN_H
#define TANDEM_DOMAIN_H

#include <stdint.h>

#include "tandem_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Domains live under a runtime directory (docs/runtime-dir.md): one
 * folder per domain holding its config, name, uuid, the VMM's control
 * socket, pid file and console log. Every call below finds domains there;
 * entries whose VMM has died are removed ("reaped") on the way, under the
 * directory's lock. Domain ids are >= 1 (0 is never used).
 *
 * Unless stated otherwise each call returns 0 or a negative TANDEM_ERR_*
 * code with a message in ctx naming the domain and what went wrong.
 * A VMM that does not answer its control socket within 10 s (override
 * with the environment variable TANDEM_CONTROL_TIMEOUT_MS) gives
 * TANDEM_ERR_TIMEOUT; the call never blocks forever.
 */

/*
 * The runtime directory root: $TANDEM_RUNDIR if set and non-empty (made
 * absolute against the current directory), else /run/tandem. Resolved on
 * every call (tests change the variable); the returned string is valid
 * until the next call in the same thread. Never NULL.
 */
const char *tandem_rundir(void);

/* Leave the new domain paused: the guest is loaded but has not run. */
#define TANDEM_CREATE_PAUSED 1u

/*
 * Create a domain from cfg and start its VMM (a daemon that outlives the
 * caller). cfg->c_info.name is required: 1-64 characters of [A-Za-z0-9_.-],
 * not starting with '.' or '-', not all digits. A zero uuid is replaced by
 * a random one. A relative kernel path is made absolute against the
 * caller's current directory (the VMM runs in /).
 * Returns once the VMM reports the guest running (or paused with
 * TANDEM_CREATE_PAUSED), with the new domid in *domid_out.
 * Fails with TANDEM_ERR_EXISTS if the name is taken, TANDEM_ERR_INVAL for
 * a bad name, TANDEM_ERR_NOTFOUND if no tandem-vmm binary is found
 * (searched: $TANDEM_VMM, next to the running executable, its ../vmm/,
 * then PATH), TANDEM_ERR_TIMEOUT if the VMM does not report within 60 s
 * (it is then killed), and TANDEM_ERR_FAIL with the VMM's own message if
 * it refuses the configuration. On failure nothing is left behind: no
 * domain folder, no name, no process. Safe against concurrent creates
 * from other processes.
 */
int tandem_domain_create(tandem_ctx *ctx, const tandem_domain_config *cfg, unsigned flags,
                         uint32_t *domid_out);

/*
 * Resolve "3" (a domid, all digits) or "web" (a name) to a live domain's
 * id. TANDEM_ERR_NOTFOUND with "no domain named 'web'" / "no domain with
 * id 3" otherwise (a domain whose VMM died is reaped and not found).
 */
int tandem_domain_lookup(tandem_ctx *ctx, const char *name_or_domid, uint32_t *domid_out);

/*
 * Fill *out (which the caller has init'ed; it is disposed first) with the
 * domain's current state as reported by its VMM. A domain still being
 * created is reported as TANDEM_DOMAIN_STATE_CREATING from the runtime
 * directory alone. TANDEM_ERR_NOTFOUND if the domain does not exist or its
 * VMM has gone (the message then says how it ended, from exit-status).
 */
int tandem_domain_info(tandem_ctx *ctx, uint32_t domid, tandem_dominfo *out);

/*
 * All domains, ordered by domid, in a malloc'd array of *n entries (NULL
 * and 0 when there are none); free it with tandem_dominfo_list_free().
 * A domain whose VMM does not answer is listed with state UNKNOWN rather
 * than failing the whole list.
 */
int tandem_domain_list(tandem_ctx *ctx, tandem_dominfo **out, int *n);
/* Dispose every entry and free the array; NULL is fine. */
void tandem_dominfo_list_free(tandem_dominfo *list, int n);

/*
 * The configuration the domain was created with (its current name
 * substituted). *out is init'ed by the caller and disposed first.
 */
int tandem_domain_get_config(tandem_ctx *ctx, uint32_t domid, tandem_domain_config *out);

/*
 * Stop / resume the domain's vCPU. Pausing a paused domain (or unpausing a
 * running one) is whatever the VMM says it is; the VMM's message is
 * passed on if it refuses.
 */
int tandem_domain_pause(tandem_ctx *ctx, uint32_t domid);
int tandem_domain_unpause(tandem_ctx *ctx, uint32_t domid);

/*
 * Destroy the domain: ask the VMM to tear down, wait up to 10 s for it
 * to exit, then remove the runtime directory entries. If the VMM does not
 * answer or does not exit in time it is killed with SIGKILL, the entries
 * are removed all the same and TANDEM_ERR_TIMEOUT is returned with a
 * message saying so (the domain is gone either way; callers may treat it
 * as a warning). TANDEM_ERR_NOTFOUND if there is no such domain.
 */
int tandem_domain_destroy(tandem_ctx *ctx, uint32_t domid);

/*
 * Give the domain a new name (same rules as at create). TANDEM_ERR_EXISTS
 * if another domain has it; renaming to its own name is a no-op. Atomic
 * with respect to creates and other renames.
 */
int tandem_domain_rename(tandem_ctx *ctx, uint32_t domid, const char *new_name);

/*
 * The domain's network interfaces / disks as its VMM runs them
 * (lib/domain_devices.c, docs/devices.md): a malloc'd array of *n
 * entries (NULL and 0 when there are none) to free with the matching
 * _list_free. Vifs carry the MAC actually in use (generated when the
 * config gave none), the TAP name, bridge, MTU; disks vdev, path,
 * readwrite and format raw. Errors as tandem_domain_info.
 */
int tandem_domain_nics(tandem_ctx *ctx, uint32_t domid, tandem_device_nic **out, int *n);
int tandem_domain_disks(tandem_ctx *ctx, uint32_t domid, tandem_device_disk **out, int *n);
void tandem_device_nic_list_free(tandem_device_nic *list, int n);
void tandem_device_disk_list_free(tandem_device_disk *list, int n);

/*
 * Path of the file holding everything the guest wrote to its console
 * (malloc'd into *path_out; the caller frees it). The file may not exist
 * yet while the domain is being created.
 */
int tandem_domain_console_path(tandem_ctx *ctx, uint32_t domid, char **path_out);

/*
 * Whether the domain still exists with a live VMM (or is being created):
 * 1 yes, 0 no. A domain found dead is reaped on the way. For console
 * followers polling for the end of a domain. Never records an error.
 */
int tandem_domain_alive(tandem_ctx *ctx, uint32_t domid);

#ifdef __cplusplus
}
#endif

#endif
