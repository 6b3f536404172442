/* `tandem block-attach` and `network-attach`: parse xl disk/vif specs into devices. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

/* Print "LABEL: JSON\n\n" as `xl -N block-attach` does. */
static int print_device(struct cli *cli, const char *label, char *json)
{
    if (!json)
        return cli_fail(cli, "out of memory");
    printf("%s: %s\n\n", label, json);
    free(json);
    return 0;
}

int cmd_block_attach(struct cli *cli, int argc, char **argv)
{
    tandem_device_disk disk;
    int rc;

    if (argc < 3)
        return cli_usage_error(cli, "block-attach", "expected a domain and at least one SPEC");
    tandem_device_disk_init(&disk);
    if (tandem_disk_parse(cli->ctx, &disk, argc - 2, (const char *const *)(argv + 2))) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    if (!cli->dry_run) {
        rc = cli_fail(cli,
                      "block-attach: %s: attaching disks to a running domain is not supported; "
                      "declare them in the domain's 'disk' option",
                      argv[1]);
        goto out;
    }
    rc = print_device(cli, "disk", tandem_device_disk_to_json(&disk));
out:
    tandem_device_disk_dispose(&disk);
    return rc;
}

int cmd_network_attach(struct cli *cli, int argc, char **argv)
{
    tandem_device_nic nic;
    int rc;

    if (argc != 3)
        return cli_usage_error(cli, "network-attach", "expected a domain and one SPEC");
    tandem_device_nic_init(&nic);
    if (tandem_nic_parse(cli->ctx, &nic, argv[2])) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    if (!cli->dry_run) {
        rc = cli_fail(cli,
                      "network-attach: %s: attaching vifs to a running domain is not supported; "
                      "declare them in the domain's 'vif' option",
                      argv[1]);
        goto out;
    }
    rc = print_device(cli, "vif", tandem_device_nic_to_json(&nic));
out:
    tandem_device_nic_dispose(&nic);
    return rc;
}
