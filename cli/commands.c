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
    {"list", cmd_list, "[-l] [DOM...]", "List domains (all, or the ones named) with their state.",
     "  -l, --long    print a JSON array of {\"domid\", \"config\", \"info\"} per domain\n"
     "  State letters as xl: r running, p paused, s shut down (with the reason letter\n"
     "  after it: - poweroff, r reboot, s suspend, c crash, w watchdog); ------ while it is\n"
     "  being created, ?????? when its VMM does not answer. xl's b and d never show.\n",
     0},
    {"console", cmd_console, "[--log] DOM",
     "Attach to a domain's console: show what the guest writes until it goes away.",
     "  --log         print what the guest has written so far and exit (for scripts)\n"
     "  Ctrl-] detaches. DOM is a name or a domain id.\n",
     0},
    {"pause", cmd_pause, "DOM", "Pause a domain: its vCPU stops until unpause.", "", 0},
    {"unpause", cmd_unpause, "DOM", "Resume a paused domain.", "", 0},
    {"destroy", cmd_destroy, "DOM", "Stop a domain at once and remove it.",
     "  The VMM gets 10 s to exit; after that it is killed (SIGKILL) and a warning says so.\n", 0},
    {"domid", cmd_domid, "NAME", "Print the domain id of the domain called NAME.", "", 0},
    {"domname", cmd_domname, "ID", "Print the name of the domain with id ID.", "", 0},
    {"save", cmd_save, "[-c] [-l] [-z lz4|zstd] DOM FILE [CONFIG]",
     "Save a domain's memory, vCPU and device state to FILE, then destroy the domain.",
     "  -c            leave the domain running after the save (a checkpoint)\n"
     "  -l            live: copy memory while the domain runs, pause it only for the\n"
     "                last dirty pages (shorter pause, larger image)\n"
     "  -z ALG        compress page data: none (default), lz4 or zstd\n"
     "  CONFIG        an xl.cfg file stored in the image instead of the domain's own\n"
     "  Only pages the guest ever touched are written. On a terminal a progress line\n"
     "  shows phase, round, percent, megabytes and MB/s. If the save fails, the file is\n"
     "  removed and the domain keeps running. Format: docs/stream-format.md.\n",
     0},
    {"restore", cmd_restore, "[-p] [-e] [-c] FILE [CONFIG]",
     "Recreate a domain from an image written by save, and run it.",
     "  -p            leave the restored domain paused\n"
     "  -e            accepted for xl compatibility (xl: do not wait in the background for\n"
     "                the domain's death); tandem never waits: each domain's tandem-vmm\n"
     "                applies on_poweroff/on_reboot/on_crash itself\n"
     "  -c            attach to the console afterwards\n"
     "  CONFIG        an xl.cfg file that replaces the configuration in the image (its\n"
     "                memory size must match)\n"
     "  The whole image is checked (every checksum and record) before anything is\n"
     "  created; a damaged image is refused naming the stream offset and record, and\n"
     "  leaves nothing behind. A domain with the image's name must not exist. Guest time\n"
     "  continues from the moment of the save.\n",
     0},
    {"rename", cmd_rename, "DOM NEWNAME",
     "Rename a domain (refused if another domain has NEWNAME).", "", 0},
    {"config-check", cmd_config_check, "FILE [KEY=VALUE...]",
     "Parse an xl.cfg file and print every setting (name, operator, value, line) as JSON.",
     "  KEY=VALUE     settings applied after FILE, as for create (their source is\n"
     "                \"<command line>\")\n"
     "  Each setting also names its source file. Only the syntax is checked here; the\n"
     "  meaning of the options is checked by create (tandem -N create FILE).\n",
     0},
    {"block-attach", cmd_block_attach, "DOM SPEC...",
     "Check an xl disk spec (each SPEC word adds to the same disk); hot-plug is refused.",
     "  With the global -N, print the parsed disk as JSON. Without it the spec is checked\n"
     "  and the command fails: disks cannot be attached to a running domain yet; declare\n"
     "  them in the domain's 'disk' option.\n",
     1},
    {"network-attach", cmd_network_attach, "DOM SPEC",
     "Check an xl vif spec; hot-plug into a running domain is refused.",
     "  With the global -N, print the parsed vif as JSON. Without it the spec is checked\n"
     "  and the command fails: vifs cannot be attached to a running domain yet; declare\n"
     "  them in the domain's 'vif' option.\n",
     1},
    {"block-list", cmd_block_list, "DOM...", "List a domain's disks (xl's columns).",
     "  BE-path shows the image and its access mode; evt-ch and ring-ref are -1 (no Xen).\n",
     0},
    {"network-list", cmd_network_list, "DOM...",
     "List a domain's network interfaces (xl's columns).",
     "  Mac Addr. is the MAC in use (generated when the config gave none); BE-path shows\n"
     "  the TAP device and its bridge as TAP@BRIDGE.\n",
     0},
    {"migrate", cmd_migrate,
     "[-s SSHCOMMAND] [-e] [-p] [--downtime MS] [--bandwidth MB/s] [--max-iters N]\n"
     "       [--compress none|lz4|zstd] [--copy-storage] [--receiver CMD] DOM HOST\n"
     "   or: tandem migrate --tcp ADDR:PORT --key-file FILE [--encrypt] [OPTIONS] DOM",
     "Move a running domain to another host (live: pre-copy, then a short pause).",
     "  Runs SSHCOMMAND HOST RECEIVER on the sender (default: ssh HOST tandem migrate-receive)\n"
     "  and talks to it over its stdin/stdout (docs/migration.md).\n"
     "  -s SSHCOMMAND   command words put before HOST instead of 'ssh' (split on blanks, no\n"
     "                  quoting); -s '' makes the words of HOST the command (xl)\n"
     "  --receiver CMD  receiver command after HOST (default 'tandem migrate-receive')\n"
     "  -e              accepted for xl compatibility (the receiver never waits in the background)\n"
     "  -p              leave the domain paused on the receiver\n"
     "  --downtime MS   target pause for the final copy (default 5)\n"
     "  --bandwidth N   cap the stream at N MB/s (default: unlimited)\n"
     "  --max-iters N   at most N pre-copy rounds (default 30)\n"
     "  --compress C    page compression: none (default), lz4, zstd\n"
     "  --copy-storage  copy disk contents too, while the domain runs (blocks it writes\n"
     "                  meanwhile are sent again; the last few while it is paused); the\n"
     "                  receiver creates each disk at the same path and refuses to overwrite\n"
     "                  a file. Without it disks must be on storage both hosts see at the same\n"
     "                  path (size + sampled checksum are compared)\n"
     "  --tcp ADDR:PORT connect to `tandem migrate-receive --listen` directly; both sides\n"
     "                  prove they hold the key of --key-file FILE (libsodium HMAC)\n"
     "  --encrypt       with --tcp: also seal the state stream (XChaCha20-Poly1305\n"
     "                  secretstream); without it only the interlock messages are authenticated\n"
     "  If anything fails before the receiver holds the whole state, the domain keeps\n"
     "  running here. On success the copy here is destroyed. If the receiver's last word is\n"
     "  lost after it was told to run the domain, the remote command is run again with\n"
     "  --query to learn whether it runs there (not over --tcp: the domain then stays paused\n"
     "  here, and the message says so).\n",
     0},
    {"migrate-receive", cmd_migrate_receive,
     "[-r] [-p] [-e] [--listen ADDR:PORT --key-file FILE [--timeout S]] | --query",
     "Receive one migrating domain (run by `tandem migrate` through the remote shell).",
     "  Without --listen the interlock runs on stdin/stdout; messages go to stderr.\n"
     "  --listen ADDR:PORT  accept one TCP sender instead; it must prove it holds the key\n"
     "  --key-file FILE     pre-shared key (>= 16 bytes, mode 600; e.g. head -c 32 /dev/urandom)\n"
     "  --timeout S         give up if no sender connects within S seconds\n"
     "  -r                  be a Remus backup instead: `tandem remus-receive` (its options)\n"
     "  -p                  leave the domain paused after the hand-over\n"
     "  -e, -d              accepted for xl compatibility\n"
     "  --query             answer a sender's question whether a domain runs here (the sender\n"
     "                      asks when the hand-over's last message was lost)\n",
     0},
    {"remus", cmd_remus,
     "[-i MS] [-s SSHCOMMAND] [-F] [-b] [-n] [-d] [-u] [-e] [--timeout MS] [--heartbeat MS]\n"
     "       [--receiver CMD] DOM HOST\n"
     "   or: tandem remus --tcp ADDR:PORT --key-file FILE [OPTIONS] DOM",
     "Protect a running domain with Remus: checkpoint it to a backup host continuously.",
     "  Runs SSHCOMMAND HOST RECEIVER (default: ssh HOST tandem migrate-receive -r), syncs the\n"
     "  domain and its disks there, then checkpoints every -i MS (default 25). Network output\n"
     "  leaves only after the backup acknowledged the checkpoint that produced it; disk writes\n"
     "  are applied on the backup at the same commit (docs/remus.md).\n"
     "  -i MS           checkpoint interval (default 25 ms = 40 Hz)\n"
     "  -s SSHCOMMAND   command words put before HOST instead of 'ssh' (as for migrate)\n"
     "  --receiver CMD  receiver command after HOST (default 'tandem migrate-receive -r'; pass\n"
     "                  --disk-map OLD=NEW there when the hosts share a filesystem)\n"
     "  --timeout MS    the backup takes over after MS of silence (default 1000)\n"
     "  --heartbeat MS  heartbeat interval both ways (default 100)\n"
     "  -b              blackhole: replicate to nowhere (measuring only; needs -F)\n"
     "  -n              no network buffering (needs -F)\n"
     "  -d              no disk replication (needs -F)\n"
     "  -u              LZ4-compress checkpoints (xl's -u turns compression off; it is off here\n"
     "                  by default)\n"
     "  -F              allow the unsafe -b, -n, -d\n"
     "  -e              accepted for xl compatibility\n"
     "  --tcp ADDR:PORT connect to `tandem remus-receive --listen` (PSK-authenticated TCP, as for\n"
     "                  migrate) with the key of --key-file FILE\n"
     "  Returns once the first checkpoint is acknowledged; protection goes on in the VMM.\n",
     0},
    {"remus-receive", cmd_remus_receive,
     "[-r] [--disk-map OLD=NEW]... [--listen ADDR:PORT --key-file FILE [--timeout S]]",
     "Be the Remus backup of one domain (run by `tandem remus` through the remote shell).",
     "  Reads checkpoints on stdin, sends ACKs and heartbeats on stdout, messages on stderr.\n"
     "  Takes over (failover) when the primary falls silent or the stream breaks after the\n"
     "  first complete checkpoint; exits without taking over before it or after an orderly\n"
     "  end of protection. `tandem migrate-receive -r` is the same (xl's spelling).\n"
     "  --disk-map OLD=NEW  use image NEW here for the primary's disk at OLD\n"
     "  --listen ADDR:PORT  accept one `tandem remus --tcp` sender instead (it must prove it\n"
     "                      holds the key of --key-file FILE); --timeout S to give up waiting\n",
     0},
    {"remus-status", cmd_remus_status, "[DOM...] | --follow [--epochs N] DOM",
     "Show Remus state and per-epoch telemetry (JSON) of the domains named, or of all.",
     "  state: protected (RPO = 0), unprotected (backup lost: RPO != 0, reason given),\n"
     "  syncing, stopped or off; configured_hz / achieved_hz; recent epochs with pause_us,\n"
     "  dirty_pages, bytes, send_ms, ack_ms, frames_held.\n"
     "  --follow       stay attached and print every epoch's steps as the VMM reports them\n"
     "                 (suspend, postcopy, checkpoint N, then its telemetry) until protection\n"
     "                 ends (exit 1 if the backup was lost) or N epochs (--epochs N) were shown\n",
     0},
};

const int cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);
