/* A running domain's disks and vifs as its VMM reports them (`devices` control command). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "domain_internal.h"

/* Strings of a reply entry, copied (NULL when absent or empty). */
static int dup_str(json_t *o, const char *key, char **out)
{
    const char *s = json_string_value(json_object_get(o, key));

    *out = NULL;
    if (!s || !s[0])
        return 0;
    *out = strdup(s);
    return *out ? 0 : -1;
}

/*
 * Ask domain domid's VMM for its devices. *out is a new array of the reply's
 * entries whose "type" is type (caller json_decref's it; NULL on failure).
 * TANDEM_ERR_PROTO when the reply has no "devices" array.
 */
static int fetch(tandem_ctx *ctx, uint32_t domid, const char *type, json_t **out)
{
    json_t *reply = NULL, *devs, *o;
    size_t i;
    int rc = tdm_domain_request(ctx, tandem_rundir(), domid, "devices", NULL, &reply);

    *out = NULL;
    if (rc)
        goto out;
    devs = json_object_get(reply, "devices");
    if (!json_is_array(devs)) {
        rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                          "domain %u: malformed \"devices\" reply from its VMM", domid);
        goto out;
    }
    *out = json_array();
    if (!*out)
        goto nomem;
    json_array_foreach(devs, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "type"));

        if (t && !strcmp(t, type) && json_array_append(*out, o) < 0)
            goto nomem;
    }
    goto out;
nomem:
    json_decref(*out);
    *out = NULL;
    rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
out:
    json_decref(reply);
    return rc;
}

int tandem_domain_nics(tandem_ctx *ctx, uint32_t domid, tandem_device_nic **out, int *n)
{
    json_t *devs = NULL, *o;
    tandem_device_nic *list = NULL;
    int rc, count = 0;
    size_t i;

    *out = NULL;
    *n = 0;
    rc = fetch(ctx, domid, "vif", &devs);
    if (rc || json_array_size(devs) == 0)
        goto out; /* none: *out stays NULL, as the contract says */
    list = calloc(json_array_size(devs), sizeof(*list));
    if (!list)
        goto nomem;
    json_array_foreach(devs, i, o)
    {
        tandem_device_nic *nic = &list[count++];
        const char *mac = json_string_value(json_object_get(o, "mac"));

        tandem_device_nic_init(nic);
        nic->devid = (int)json_integer_value(json_object_get(o, "devid"));
        nic->mtu = (int)json_integer_value(json_object_get(o, "mtu"));
        if (mac && tandem_mac_parse(mac, nic->mac) != 0) {
            rc = tandem_error(ctx, TANDEM_ERR_PROTO,
                              "domain %u: vif %d in the \"devices\" reply has MAC '%s'", domid,
                              nic->devid, mac);
            goto out;
        }
        if (dup_str(o, "ifname", &nic->ifname) || dup_str(o, "bridge", &nic->bridge) ||
            dup_str(o, "script", &nic->script) || dup_str(o, "ip", &nic->ip))
            goto nomem;
    }
    *out = list;
    *n = count;
    list = NULL;
    goto out;
nomem:
    rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
out:
    tandem_device_nic_list_free(list, count);
    json_decref(devs);
    return rc;
}

int tandem_domain_disks(tandem_ctx *ctx, uint32_t domid, tandem_device_disk **out, int *n)
{
    json_t *devs = NULL, *o;
    tandem_device_disk *list = NULL;
    int rc, count = 0;
    size_t i;

    *out = NULL;
    *n = 0;
    rc = fetch(ctx, domid, "disk", &devs);
    if (rc || json_array_size(devs) == 0)
        goto out; /* none: *out stays NULL, as the contract says */
    list = calloc(json_array_size(devs), sizeof(*list));
    if (!list)
        goto nomem;
    json_array_foreach(devs, i, o)
    {
        tandem_device_disk *disk = &list[count++];

        tandem_device_disk_init(disk);
        disk->format = TANDEM_DISK_FORMAT_RAW;
        disk->readwrite = !json_is_true(json_object_get(o, "readonly"));
        if (dup_str(o, "vdev", &disk->vdev) || dup_str(o, "pdev_path", &disk->pdev_path))
            goto nomem;
    }
    *out = list;
    *n = count;
    list = NULL;
    goto out;
nomem:
    rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
out:
    tandem_device_disk_list_free(list, count);
    json_decref(devs);
    return rc;
}

void tandem_device_nic_list_free(tandem_device_nic *list, int n)
{
    for (int i = 0; list && i < n; i++)
        tandem_device_nic_dispose(&list[i]);
    free(list);
}

void tandem_device_disk_list_free(tandem_device_disk *list, int n)
{
    for (int i = 0; list && i < n; i++)
        tandem_device_disk_dispose(&list[i]);
    free(list);
}
