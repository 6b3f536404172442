/* Listing domains: every entry of the runtime directory with the state its VMM reports. */
#include <stdlib.h>
#include <string.h>

#include "domain_internal.h"

void tandem_dominfo_list_free(tandem_dominfo *list, int n)
{
    if (!list)
        return;
    for (int i = 0; i < n; i++)
        tandem_dominfo_dispose(&list[i]);
    free(list);
}

/* The runtime directory's view of a domain whose VMM could not answer. */
static void info_unknown(const char *root, uint32_t domid, tandem_dominfo *out)
{
    char *path, *text = NULL;
    pid_t pid = 0;

    tandem_dominfo_dispose(out);
    tdm_domain_status(root, domid, &pid);
    out->domid = domid;
    out->state = TANDEM_DOMAIN_STATE_UNKNOWN;
    out->vmm_pid = (int)pid;
    path = tdm_domain_path(root, domid, "name");
    if (path && tdm_read_file(NULL, path, &text) == 0) {
        out->name = text;
        text = NULL;
    }
    free(path);
    path = tdm_domain_path(root, domid, "uuid");
    if (path && tdm_read_file(NULL, path, &text) == 0)
        tandem_uuid_parse(text, out->uuid);
    free(text);
    free(path);
}

int tandem_domain_list(tandem_ctx *ctx, tandem_dominfo **out, int *n_out)
{
    char *root = strdup(tandem_rundir());
    tandem_dominfo *list = NULL;
    uint32_t *ids = NULL;
    int lock = -1, nids = 0, n = 0, rc;

    *out = NULL;
    *n_out = 0;
    if (!root) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tdm_rundir_lock(ctx, root, &lock);
    if (rc)
        goto out;
    rc = tdm_rundir_reap(ctx, root);
    if (rc >= 0)
        rc = tdm_rundir_ids(ctx, root, &ids, &nids);
    tdm_rundir_unlock(lock);
    if (rc < 0)
        goto out;
    rc = 0;
    if (nids == 0)
        goto out;
    list = calloc((size_t)nids, sizeof(*list));
    if (!list) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory listing domains");
        goto out;
    }
    for (int i = 0; i < nids; i++) {
        int irc;
        tandem_dominfo_init(&list[n]);
        irc = tandem_domain_info(ctx, ids[i], &list[n]);
        if (irc == TANDEM_ERR_NOTFOUND) {
            tandem_dominfo_dispose(&list[n]); /* gone since we looked: not listed */
            continue;
        }
        if (irc == TANDEM_ERR_NOMEM) {
            tandem_dominfo_dispose(&list[n]);
            rc = irc;
            goto out;
        }
        if (irc)
            info_unknown(root, ids[i], &list[n]);
        n++;
    }
    tandem_ctx_clear_error(ctx);
    if (n == 0) {
        free(list);
        list = NULL;
    }
    *out = list;
    *n_out = n;
    list = NULL;
    n = 0;
out:
    tandem_dominfo_list_free(list, n);
    free(ids);
    free(root);
    return rc;
}
