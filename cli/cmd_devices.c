/* `tandem block-list` and `network-list`: a running domain's disks and vifs, in xl's columns. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/*
 * xl's numeric Vdev for xvdX / hdX / sdX (major 202 / 3 / 8 with 16, 64
 * and 16 minors per disk); other names print as given.
 */
static void vdev_number(const char *vdev, char *out, size_t len)
{
    size_t n = vdev ? strlen(vdev) : 0;

    if (n == 4 && strncmp(vdev, "xvd", 3) == 0 && vdev[3] >= 'a' && vdev[3] <= 'z')
        snprintf(out, len, "%d", 202 * 256 + (vdev[3] - 'a') * 16);
    else if (n == 3 && strncmp(vdev, "hd", 2) == 0 && vdev[2] >= 'a' && vdev[2] <= 'd')
        snprintf(out, len, "%d", 3 * 256 + (vdev[2] - 'a') * 64);
    else if (n == 3 && strncmp(vdev, "sd", 2) == 0 && vdev[2] >= 'a' && vdev[2] <= 'p')
        snprintf(out, len, "%d", 8 * 256 + (vdev[2] - 'a') * 16);
    else
        snprintf(out, len, "%s", vdev ? vdev : "-");
}

/* Shared shape of both commands: DOM... each printed under one header. */
static int list_devices(struct cli *cli, int argc, char **argv, int nics)
{
    int status = 0;

    if (argc < 2)
        return cli_usage_error(cli, argv[0], "expected at least one domain");
    if (nics)
        printf("Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path\n");
    else
        printf("Vdev  BE  handle state evt-ch ring-ref BE-path\n");
    for (int a = 1; a < argc; a++) {
        tandem_device_nic *nl = NULL;
        tandem_device_disk *dl = NULL;
        uint32_t domid;
        int n = 0;

        if (tandem_domain_lookup(cli->ctx, argv[a], &domid) ||
            (nics ? tandem_domain_nics(cli->ctx, domid, &nl, &n)
                  : tandem_domain_disks(cli->ctx, domid, &dl, &n))) {
            status = cli_fail_ctx(cli, NULL);
            continue;
        }
        /* No event channels or grant refs here: those columns stay -1 as for a disconnected xl
         * device. */
        for (int i = 0; i < n; i++) {
            if (nics) {
                char mac[TANDEM_MAC_STRLEN];
                tandem_mac_format(nl[i].mac, mac);
                printf("%-3d 0  %s %6d %5d %6d %8d/%-8d %s@%s\n", nl[i].devid, mac, nl[i].devid, 4,
                       -1, -1, -1, nl[i].ifname ? nl[i].ifname : "-",
                       nl[i].bridge ? nl[i].bridge : "-");
            } else {
                char num[32];
                vdev_number(dl[i].vdev, num, sizeof(num));
                printf("%-5s 0   %-6d %-5d %-6d %-8d %s (%s)\n", num, i, 4, -1, -1,
                       dl[i].pdev_path ? dl[i].pdev_path : "-", dl[i].readwrite ? "rw" : "ro");
            }
        }
        tandem_device_nic_list_free(nl, nics ? n : 0);
        tandem_device_disk_list_free(dl, nics ? 0 : n);
    }
    return status;
}

int cmd_block_list(struct cli *cli, int argc, char **argv)
{
    return list_devices(cli, argc, argv, 0);
}

int cmd_network_list(struct cli *cli, int argc, char **argv)
{
    return list_devices(cli, argc, argv, 1);
}
