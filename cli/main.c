/* Entry point of `tandem`: global options, then dispatch through the command table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage_global(FILE *f)
{
    fprintf(f, "Usage: tandem [-v] [-N] COMMAND [ARGS...]\n\n"
               "Tandem: a KVM toolstack with Remus-style high availability (xl-compatible syntax).\n\n"
               "Global options:\n"
               "  -N    dry run: parse the configuration and print it as JSON, touch no domain\n"
               "  -v    verbose\n"
               "  -h, --help   this text\n\n"
               "Commands:\n");
    for (int i = 0; i < cli_ncommands; i++)
        fprintf(f, "  %-18s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fprintf(f, "\n'tandem help COMMAND' or 'tandem COMMAND --help' describes one command.\n");
}

const struct cli_cmd *cli_find(const char *name)
{
    for (int i = 0; i < cli_ncommands; i++)
        if (!strcmp(cli_commands[i].name, name))
            return &cli_commands[i];
    return NULL;
}

void cli_print_cmd_help(FILE *f, const struct cli_cmd *cmd)
{
    fprintf(f, "Usage: tandem %s%s%s\n\n%s\n", cmd->name, cmd->usage[0] ? " " : "", cmd->usage,
            cmd->summary);
    if (cmd->help && cmd->help[0])
        fprintf(f, "\n%s", cmd->help);
}

int cli_wants_help(const char *cmdname, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            const struct cli_cmd *cmd = cli_find(cmdname);
            if (cmd)
                cli_print_cmd_help(stdout, cmd);
            return 1;
        }
    }
    return 0;
}

int cli_usage_error(struct cli *cli, const char *cmdname, const char *fmt, ...)
{
    const struct cli_cmd *cmd = cli_find(cmdname);
    va_list ap;

    (void)cli;
    fprintf(stderr, "tandem %s: ", cmdname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd)
        fprintf(stderr, "Usage: tandem %s %s\n", cmd->name, cmd->usage);
    return 2;
}

int cli_fail_ctx(struct cli *cli, const char *what)
{
    const char *msg = tandem_ctx_error(cli->ctx);
    if (what)
        fprintf(stderr, "tandem: %s: %s\n", what, msg[0] ? msg : "failed");
    else
        fprintf(stderr, "tandem: %s\n", msg[0] ? msg : "failed");
    return 1;
}

int cli_fail(struct cli *cli, const char *fmt, ...)
{
    va_list ap;

    (void)cli;
    fputs("tandem: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cmd_help(struct cli *cli, int argc, char **argv)
{
    const struct cli_cmd *cmd;

    (void)cli;
    if (argc < 2) {
        usage_global(stdout);
        return 0;
    }
    cmd = cli_find(argv[1]);
    if (!cmd) {
        fprintf(stderr, "tandem help: unknown command '%s'\n", argv[1]);
        return 2;
    }
    cli_print_cmd_help(stdout, cmd);
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli = {.argv0 = argv[0]};
    const struct cli_cmd *cmd;
    int i, rc;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-N"))
            cli.dry_run = 1;
        else if (!strcmp(argv[i], "-v"))
            cli.verbose++;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage_global(stdout);
            return 0;
        } else {
            fprintf(stderr, "tandem: unknown global option '%s'\n", argv[i]);
            usage_global(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage_global(stderr);
        return 2;
    }
    cmd = cli_find(argv[i]);
    if (!cmd) {
        fprintf(stderr, "tandem: unknown command '%s' (try 'tandem help')\n", argv[i]);
        return 2;
    }
    if (cli.dry_run && !cmd->dry_run_ok) {
        fprintf(stderr, "tandem: -N is not supported by '%s'\n", cmd->name);
        return 2;
    }
    if (cli_wants_help(cmd->name, argc - i, argv + i))
        return 0;
    if (tandem_ctx_alloc(&cli.ctx)) {
        fprintf(stderr, "tandem: out of memory\n");
        return 1;
    }
    rc = cmd->fn(&cli, argc - i, argv + i);
    tandem_ctx_free(cli.ctx);
    return rc;
}
