/* `tandem remus`, `tandem remus-receive` and `tandem remus-status`: Remus protection from the
 * command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define DEFAULT_RECEIVER "tandem migrate-receive -r" /* xl's spelling of remus-receive */

enum {
    OPT_TIMEOUT = 256,
    OPT_HEARTBEAT,
    OPT_RECEIVER,
    OPT_DISK_MAP,
    OPT_TCP,
    OPT_KEYFILE,
    OPT_LISTEN,
    OPT_WAIT
};

/* Run argv with its stdin/stdout on pipes: *to_fd writes its stdin, *from_fd reads its stdout. */
static pid_t spawn_shell(char **argv, int *to_fd, int *from_fd)
{
    int in[2], out[2];
    pid_t pid;

    if (pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execvp(argv[0], argv);
        fprintf(stderr, "tandem: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    *to_fd = in[1];
    *from_fd = out[0];
    return pid;
}

int cmd_remus(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
        {"receiver", required_argument, NULL, OPT_RECEIVER},
        {"tcp", required_argument, NULL, OPT_TCP},
        {"key-file", required_argument, NULL, OPT_KEYFILE},
        {NULL, 0, NULL, 0},
    };
    const char *tcp = NULL, *keyfile = NULL;
    tandem_remus_info info;
    const char *shell = NULL, *receiver = DEFAULT_RECEIVER;
    int opt, rc;
    bool force = false;
    uint32_t domid;

    tandem_remus_info_init(&info);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+i:s:Fbndue", longopts, NULL)) != -1) {
        char *end;
        long v;
        switch (opt) {
        case 'i':
        case OPT_TIMEOUT:
        case OPT_HEARTBEAT:
            v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > 600000)
                return cli_usage_error(cli, "remus", "%s '%s' is not a time in milliseconds",
                                       opt == 'i'           ? "-i"
                                       : opt == OPT_TIMEOUT ? "--timeout"
                                                            : "--heartbeat",
                                       optarg);
            if (opt == 'i')
                info.interval_ms = (int)v;
            else if (opt == OPT_TIMEOUT)
                info.failover_timeout_ms = (int)v;
            else
                info.heartbeat_ms = (int)v;
            break;
        case 's':
            shell = optarg;
            break;
        case OPT_RECEIVER:
            receiver = optarg;
            break;
        case OPT_TCP:
            tcp = optarg;
            break;
        case OPT_KEYFILE:
            keyfile = optarg;
            break;
        case 'F':
            force = true;
            break;
        case 'b':
            tandem_defbool_set(&info.blackhole, 1);
            break;
        case 'n':
            tandem_defbool_set(&info.netbuf, 0);
            break;
        case 'd':
            tandem_defbool_set(&info.diskbuf, 0);
            break;
        case 'u':
            /* xl: -u disables memory checkpoint compression; here compression is off by default
             * (LZ4 costs more CPU than it saves on a local link), so -u switches it ON. */
            tandem_defbool_set(&info.compression, 1);
            break;
        case 'e':
            break; /* xl: do not wait in the background on the console; we never do */
        default:
            return cli_usage_error(cli, "remus", "unknown option");
        }
    }
    if (force)
        tandem_defbool_set(&info.allow_unsafe, 1);
    if (!tcp != !keyfile)
        return cli_usage_error(cli, "remus", "--tcp and --key-file go together");
    if (argc - optind != ((tandem_defbool_val(info.blackhole, 0) || tcp) ? 1 : 2) &&
        argc - optind != 2)
        return cli_usage_error(cli, "remus",
                               tcp ? "with --tcp give only DOM" : "expected DOM HOST");
    if (tandem_domain_lookup(cli->ctx, argv[optind], &domid))
        return cli_fail_ctx(cli, NULL);
    rc = cli_remus_protect(cli, domid, argv[optind], shell,
                           tcp                 ? tcp
                           : optind + 1 < argc ? argv[optind + 1]
                                               : "",
                           receiver, keyfile, &info);
    tandem_remus_info_dispose(&info);
    return rc;
}

int cli_remus_protect(struct cli *cli, uint32_t domid, const char *label, const char *shell,
                      const char *host, const char *receiver, const char *keyfile,
                      const tandem_remus_info *info)
{
    char **rargv = NULL, *extra[1] = {NULL};
    uint8_t key[TANDEM_MIGRATE_KEY_BYTES];
    tandem_migrate_conn *conn = NULL;
    int to = -1, from = -1, rc = 1;
    pid_t child = -1;

    if (!receiver)
        receiver = DEFAULT_RECEIVER;
    if (keyfile) {
        if (tandem_migrate_key_load(cli->ctx, keyfile, key) ||
            tandem_migrate_conn_connect(cli->ctx, host, key, &conn)) {
            cli_fail_ctx(cli, "remus");
            goto out;
        }
        tandem_remus_conn_fds(conn, &from, &to);
    } else if (!tandem_defbool_val(info->blackhole, 0)) {
        if (tandem_migrate_shell_argv(cli->ctx, shell, host, receiver, extra, &rargv))
            return cli_fail_ctx(cli, "remus");
        child = spawn_shell(rargv, &to, &from);
        if (child < 0) {
            cli_fail(cli, "remus: cannot start the receiver '%s': %s", rargv[0], strerror(errno));
            goto out;
        }
    }
    fprintf(stderr, "remus: protecting domain %s (%u)%s%s ...\n", label, domid,
            host[0] ? " on " : "", host);
    if (tandem_domain_remus_start(cli->ctx, info, domid, to, from, 0)) {
        cli_fail_ctx(cli, "remus");
        goto out;
    }
    fprintf(stderr, "remus: domain %s is PROTECTED (see `tandem remus-status %s`)\n", label, label);
    rc = 0;
out:
    /* The VMM holds its own copies of the channel now; the receiver runs on by itself. */
    if (conn) {
        tandem_migrate_conn_close(conn);
    } else {
        if (to >= 0)
            close(to);
        if (from >= 0)
            close(from);
    }
    /* On failure the receiver sees the end of its input and exits by itself (no failover
     * without a complete checkpoint); it is not killed, so that it can say why: wait a little. */
    for (int i = 0; rc && child > 0 && i < 30 && waitpid(child, NULL, WNOHANG) == 0; i++)
        usleep(100000);
    tandem_migrate_argv_free(rargv);
    return rc;
}

static void recv_log(void *opaque, const char *line)
{
    (void)opaque;
    fprintf(stderr, "%s\n", line);
}

int cmd_remus_receive(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"disk-map", required_argument, NULL, OPT_DISK_MAP},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"key-file", required_argument, NULL, OPT_KEYFILE},
        {"timeout", required_argument, NULL, OPT_WAIT},
        {NULL, 0, NULL, 0},
    };
    const char *listen_addr = NULL, *keyfile = NULL;
    uint8_t key[TANDEM_MIGRATE_KEY_BYTES];
    tandem_migrate_conn *conn = NULL;
    int wait_s = 0, lfd = -1, in_fd = 0;
    char **map = calloc((size_t)argc + 1, sizeof(char *));
    int opt, n = 0, rc = 1, out_fd;
    uint32_t domid;

    if (!map)
        return cli_fail(cli, "out of memory");
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+re", longopts, NULL)) != -1) {
        if (opt == OPT_DISK_MAP) {
            map[n++] = optarg;
        } else if (opt == OPT_LISTEN) {
            listen_addr = optarg;
        } else if (opt == OPT_KEYFILE) {
            keyfile = optarg;
        } else if (opt == OPT_WAIT) {
            wait_s = atoi(optarg);
        } else if (opt != 'r' && opt != 'e') {
            free(map);
            return cli_usage_error(cli, "remus-receive", "unknown option");
        }
    }
    if (optind != argc) {
        free(map);
        return cli_usage_error(cli, "remus-receive", "no arguments expected");
    }
    if (!listen_addr != !keyfile) {
        free(map);
        return cli_usage_error(cli, "remus-receive", "--listen and --key-file go together");
    }
    if (listen_addr) {
        int r, w;
        if (tandem_migrate_key_load(cli->ctx, keyfile, key) ||
            tandem_migrate_listen(cli->ctx, listen_addr, &lfd)) {
            free(map);
            return cli_fail_ctx(cli, "remus-receive");
        }
        fprintf(stderr, "remus-receive: listening on %s\n", listen_addr);
        if (tandem_migrate_accept(cli->ctx, lfd, key, wait_s * 1000, &conn)) {
            close(lfd);
            free(map);
            return cli_fail_ctx(cli, "remus-receive");
        }
        close(lfd);
        tandem_remus_conn_fds(conn, &r, &w);
        in_fd = dup(r);
        out_fd = dup(w);
        /* Only the backup VMM may keep the socket open: its death must reach the primary. */
        tandem_migrate_conn_close(conn);
        conn = NULL;
    } else {
        /* stdout carries ACKs: nothing else may ever be printed there. */
        out_fd = dup(1);
        dup2(2, 1);
    }
    if (tandem_remus_receive(cli->ctx, in_fd, out_fd, map, recv_log, NULL, &domid))
        cli_fail_ctx(cli, NULL);
    else
        rc = 0;
    tandem_migrate_conn_close(conn);
    free(map);
    return rc;
}

/* remus-status --follow: one line per delivered step, then the epoch's telemetry. */
struct follow_state {
    long left; /* epochs still to show; <= 0: until protection ends */
};

static int follow_suspend(tandem_ctx *ctx, uint32_t domid, void *opaque)
{
    (void)ctx;
    (void)domid;
    (void)opaque;
    printf("suspend\n");
    return 0;
}

static int follow_postcopy(tandem_ctx *ctx, uint32_t domid, void *opaque)
{
    (void)ctx;
    (void)domid;
    (void)opaque;
    printf("postcopy\n");
    return 0;
}

static int follow_checkpoint(tandem_ctx *ctx, uint32_t domid, uint64_t epoch, void *opaque)
{
    (void)ctx;
    (void)domid;
    (void)opaque;
    printf("checkpoint %llu\n", (unsigned long long)epoch);
    return 1;
}

static void follow_telemetry(const struct tandem_remus_epoch *e, void *opaque)
{
    struct follow_state *fs = opaque;

    printf("epoch %llu: pause %llu us, %llu dirty pages, %llu bytes, send %.3f ms, ack %.3f ms, "
           "%llu frames held\n",
           (unsigned long long)e->epoch, (unsigned long long)e->pause_us,
           (unsigned long long)e->dirty_pages, (unsigned long long)e->bytes, e->send_ms, e->ack_ms,
           (unsigned long long)e->frames_held);
    if (fs->left > 0)
        fs->left--;
}

/* Stops following after the telemetry of the last wanted epoch. */
static int follow_checkpoint_counted(tandem_ctx *ctx, uint32_t domid, uint64_t epoch, void *opaque)
{
    struct follow_state *fs = opaque;

    follow_checkpoint(ctx, domid, epoch, opaque);
    return fs->left == 1 ? 0 : 1;
}

static int remus_follow(struct cli *cli, int argc, char **argv)
{
    struct follow_state fs = {0};
    struct tandem_checkpoint_callbacks cb = {follow_suspend, follow_postcopy, follow_checkpoint,
                                             &fs};
    uint32_t domid;
    char *end;
    int i = 2;

    if (i + 1 < argc && strcmp(argv[i], "--epochs") == 0) {
        fs.left = strtol(argv[i + 1], &end, 10);
        if (*end || fs.left <= 0)
            return cli_usage_error(cli, "remus-status", "--epochs '%s' is not a positive number",
                                   argv[i + 1]);
        cb.checkpoint = follow_checkpoint_counted;
        i += 2;
    }
    if (argc - i != 1)
        return cli_usage_error(cli, "remus-status", "--follow takes one domain");
    if (tandem_domain_lookup(cli->ctx, argv[i], &domid))
        return cli_fail_ctx(cli, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (tandem_domain_remus_follow(cli->ctx, domid, &cb, follow_telemetry, &fs))
        return cli_fail_ctx(cli, NULL);
    if (fs.left == 0 && cb.checkpoint == follow_checkpoint_counted)
        return 0;
    fprintf(stderr, "remus-status: protection of %s has ended\n", argv[i]);
    return 0;
}

int cmd_remus_status(struct cli *cli, int argc, char **argv)
{
    uint32_t domid;
    char *json = NULL;
    int rc = 0;

    if (argc >= 2 && strcmp(argv[1], "--follow") == 0)
        return remus_follow(cli, argc, argv);
    if (argc < 2) {
        tandem_dominfo *infos = NULL;
        int n = 0;
        if (tandem_domain_list(cli->ctx, &infos, &n))
            return cli_fail_ctx(cli, NULL);
        for (int i = 0; i < n; i++) {
            if (tandem_domain_remus_status(cli->ctx, infos[i].domid, &json)) {
                rc = cli_fail_ctx(cli, NULL);
                continue;
            }
            printf("%s\n", json);
            free(json);
        }
        for (int i = 0; i < n; i++)
            tandem_dominfo_dispose(&infos[i]);
        free(infos);
        return rc;
    }
    for (int i = 1; i < argc; i++) {
        if (tandem_domain_lookup(cli->ctx, argv[i], &domid) ||
            tandem_domain_remus_status(cli->ctx, domid, &json)) {
            rc = cli_fail_ctx(cli, NULL);
            continue;
        }
        printf("%s\n", json);
        free(json);
    }
    return rc;
}
