/* The command table: every `tandem` subcommand with its synopsis and inline help. */
#include "cli.h"

const struct cli_cmd cli_commands[] = {
    {"help", cmd_help, "[COMMAND]", "Show the commands, or the help of one command.", "", 0},
    {"create", cmd_create, "[-c] [-p] FILE [KEY=VALUE...]",
     "Create a domain from an xl.cfg-style configuration file.",
     "  -c            attach to the console after creation\n"
     "  -p            leave the domain paused after creation\n"
     "  KEY=VALUE     configuration lines applied after FILE (xl.cfg syntax; a bare word\n"
     "                that is not valid syntax is taken as a string)\n"
     "  With the global -N, print the domain configuration as JSON and create nothing.\n",
     1},
    {"config-check", cmd_config_check, "FILE",
     "Parse an xl.cfg file and print every setting (name, operator, value, line) as JSON.", "", 0},
    {"block-attach", cmd_block_attach, "DOM SPEC...",
     "Attach a disk described by an xl disk spec (each SPEC word adds to the same disk).",
     "  With the global -N, print the parsed disk as JSON and attach nothing.\n", 1},
    {"network-attach", cmd_network_attach, "DOM SPEC",
     "Attach a network interface described by an xl vif spec.",
     "  With the global -N, print the parsed vif as JSON and attach nothing.\n", 1},
};

const int cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);
