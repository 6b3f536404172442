/* `tandem create`: parse an xl.cfg file (plus overrides) and start the domain. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cmd_create(struct cli *cli, int argc, char **argv)
{
    tandem_domain_config cfg;
    unsigned flags = 0;
    int console = 0, opt, rc = 1;
    uint32_t domid = 0;
    char *json = NULL;

    tandem_domain_config_init(&cfg);
    optind = 1;
    while ((opt = getopt(argc, argv, "+cp")) != -1) {
        switch (opt) {
        case 'c':
            console = 1;
            break;
        case 'p':
            flags |= TANDEM_CREATE_PAUSED;
            break;
        default:
            rc = cli_usage_error(cli, "create", "unknown option");
            goto out;
        }
    }
    if (optind >= argc) {
        rc = cli_usage_error(cli, "create", "missing configuration FILE");
        goto out;
    }
    if (tandem_domain_config_load(cli->ctx, argv[optind], argc - optind - 1, argv + optind + 1,
                                  &cfg)) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    if (cli->dry_run) {
        json = tandem_domain_config_to_json(&cfg);
        if (!json) {
            rc = cli_fail(cli, "out of memory");
            goto out;
        }
        printf("%s\n", json);
        rc = 0;
        goto out;
    }
    fprintf(stderr, "Parsing config from %s\n", argv[optind]);
    if (tandem_domain_create(cli->ctx, &cfg, flags, &domid)) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    fprintf(stderr, "Domain %s (domid %u) %s\n", cfg.c_info.name, domid,
            (flags & TANDEM_CREATE_PAUSED) ? "created, paused" : "created and running");
    /* remus_backup = "HOST": protection from the start (docs/remus.md; the remote shell and
     * receiver come from TANDEM_REMUS_SHELL / TANDEM_REMUS_RECEIVER, default ssh HOST). */
    if (cfg.remus_backup &&
        cli_remus_protect(cli, domid, cfg.c_info.name, getenv("TANDEM_REMUS_SHELL"),
                          cfg.remus_backup, getenv("TANDEM_REMUS_RECEIVER"), NULL, &cfg.remus)) {
        fprintf(stderr, "Domain %s runs UNPROTECTED: Remus to '%s' did not start\n",
                cfg.c_info.name, cfg.remus_backup);
        rc = 1;
        goto out;
    }
    rc = console ? cli_console_attach(cli, domid, 1) : 0;
out:
    free(json);
    tandem_domain_config_dispose(&cfg);
    return rc;
}
