/* Internal header of the `tandem` command: the command table and shared helpers. */
#ifndef TANDEM_CLI_H
#define TANDEM_CLI_H

#include <stdio.h>

#include "tandem.h"

/* State shared by all commands of one invocation. */
struct cli {
    tandem_ctx *ctx;
    int dry_run; /* -N: parse and print, touch no hypervisor */
    int verbose; /* -v, may repeat */
    const char *argv0;
};

/*
 * One subcommand. fn receives argv with argv[0] = the command name and
 * returns the process exit status. usage is the synopsis after
 * "tandem NAME", help the text of `tandem NAME --help` (options, one per line).
 */
struct cli_cmd {
    const char *name;
    int (*fn)(struct cli *cli, int argc, char **argv);
    const char *usage;
    const char *summary;
    const char *help;
    int dry_run_ok; /* accepts -N */
};

extern const struct cli_cmd cli_commands[];
extern const int cli_ncommands;

const struct cli_cmd *cli_find(const char *name);
/* Print "Usage: tandem NAME USAGE" + summary + help to f. */
void cli_print_cmd_help(FILE *f, const struct cli_cmd *cmd);
/* Print the usage of argv[0]'s command to stderr and return 2 (bad invocation). */
int cli_usage_error(struct cli *cli, const char *cmdname, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Print "tandem: <ctx error>" (prefixed with what, if given) to stderr; returns 1. */
int cli_fail_ctx(struct cli *cli, const char *what);
/* Print "tandem: <message>" to stderr; returns 1. */
int cli_fail(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True if argv has --help or -h anywhere before "--"; prints the command's help. */
int cli_wants_help(const char *cmdname, int argc, char **argv);

/* Commands, one file per group (cmd_<group>.c). */
int cmd_help(struct cli *cli, int argc, char **argv);
int cmd_config_check(struct cli *cli, int argc, char **argv);   /* cmd_config.c */
int cmd_create(struct cli *cli, int argc, char **argv);         /* cmd_create.c */
int cmd_block_attach(struct cli *cli, int argc, char **argv);   /* cmd_device.c */
int cmd_network_attach(struct cli *cli, int argc, char **argv); /* cmd_device.c */
int cmd_block_list(struct cli *cli, int argc, char **argv);     /* cmd_devices.c */
int cmd_network_list(struct cli *cli, int argc, char **argv);   /* cmd_devices.c */

int cmd_list(struct cli *cli, int argc, char **argv);           /* cmd_domain.c */
int cmd_console(struct cli *cli, int argc, char **argv);        /* cmd_domain.c */
int cmd_pause(struct cli *cli, int argc, char **argv);          /* cmd_domain.c */
int cmd_unpause(struct cli *cli, int argc, char **argv);        /* cmd_domain.c */
int cmd_destroy(struct cli *cli, int argc, char **argv);        /* cmd_domain.c */
int cmd_domid(struct cli *cli, int argc, char **argv);          /* cmd_domain.c */
int cmd_domname(struct cli *cli, int argc, char **argv);        /* cmd_domain.c */
int cmd_rename(struct cli *cli, int argc, char **argv);         /* cmd_domain.c */
int cmd_save(struct cli *cli, int argc, char **argv);           /* cmd_save.c */
int cmd_restore(struct cli *cli, int argc, char **argv);        /* cmd_save.c */

int cmd_migrate(struct cli *cli, int argc, char **argv);         /* cmd_migrate.c */
int cmd_migrate_receive(struct cli *cli, int argc, char **argv); /* cmd_migrate.c */
int cmd_remus(struct cli *cli, int argc, char **argv);           /* cmd_remus.c */
int cmd_remus_receive(struct cli *cli, int argc, char **argv);   /* cmd_remus.c */
int cmd_remus_status(struct cli *cli, int argc, char **argv);    /* cmd_remus.c */
/*
 * Start Remus protection of domid (cmd_remus.c): through `SHELL HOST RECEIVER`
 * (NULLs: ssh, tandem remus-receive), or over PSK TCP to HOST when keyfile is
 * given. Prints progress to stderr; returns the exit status (0 = PROTECTED).
 */
int cli_remus_protect(struct cli *cli, uint32_t domid, const char *label, const char *shell,
                      const char *host, const char *receiver, const char *keyfile,
                      const tandem_remus_info *info);

/* Follow the console of domid (until it goes away or Ctrl-]); follow=0 prints the log so far. */
int cli_console_attach(struct cli *cli, uint32_t domid, int follow); /* cmd_domain.c */

#endif
