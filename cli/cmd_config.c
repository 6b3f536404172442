/* `tandem config-check FILE [KEY=VALUE...]`: every setting of an xl.cfg file as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_config_check(struct cli *cli, int argc, char **argv)
{
    tandem_cfg *cfg = NULL;
    char *json = NULL;
    int i = 1, rc = 1;

    if (i < argc && !strcmp(argv[i], "--"))
        i++;
    if (i >= argc)
        return cli_usage_error(cli, argv[0], "missing FILE");
    if (argv[i][0] == '-' && argv[i][1])
        return cli_usage_error(cli, argv[0], "unknown option '%s'", argv[i]);
    /* Parse errors are printed bare, "FILE:LINE: ...", as compilers and xl do. */
    if (tandem_cfg_parse_file(cli->ctx, argv[i], &cfg)) {
        fprintf(stderr, "%s\n", tandem_ctx_error(cli->ctx));
        goto out;
    }
    for (int k = i + 1; k < argc; k++) {
        if (tandem_cfg_apply_override(cli->ctx, cfg, argv[k], k - i)) {
            fprintf(stderr, "%s\n", tandem_ctx_error(cli->ctx));
            goto out;
        }
    }
    if (!(json = tandem_cfg_to_json(cfg))) {
        cli_fail(cli, "out of memory");
        goto out;
    }
    printf("%s\n", json);
    rc = fflush(stdout) ? cli_fail(cli, "writing the output failed") : 0;
out:
    free(json);
    tandem_cfg_free(cfg);
    return rc;
}
