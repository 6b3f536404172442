/* `tandem migrate` and `tandem migrate-receive`: live migration over a shell or PSK TCP. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Progress on a terminal: one line rewritten in place. */
struct progress_view {
    int tty;
    int drawn;
};

static void on_progress(void *opaque, const struct tandem_migrate_progress *p)
{
    struct progress_view *v = opaque;
    double pct, left_s = -1;

    if (!v->tty)
        return;
    if (!p->pages_total) {
        fprintf(stderr, "\r\033[K  %s", p->phase);
        v->drawn = 1;
        return;
    }
    pct = 100.0 * (double)p->pages_sent / (double)p->pages_total;
    if (pct > 100)
        pct = 100;
    if (p->rate_mbps > 0.1) {
        /* Only this round is known: later rounds depend on what the guest dirties meanwhile. */
        double left_pages =
            p->pages_total > p->pages_sent ? (double)(p->pages_total - p->pages_sent) : 0;
        left_s = left_pages * 4096.0 / (p->rate_mbps * 1e6);
    }
    fprintf(stderr, "\r\033[K  %s round %llu: %5.1f%% of %llu pages, %.0f MB/s, %llu dirty",
            p->phase, (unsigned long long)p->iter, pct, (unsigned long long)p->pages_total,
            p->rate_mbps, (unsigned long long)p->dirty);
    if (left_s >= 0)
        fprintf(stderr, ", round done in ~%.1f s", left_s);
    v->drawn = 1;
}

static void end_progress(struct progress_view *v)
{
    if (v->tty && v->drawn)
        fprintf(stderr, "\r\033[K");
    v->drawn = 0;
}

enum {
    OPT_DOWNTIME = 256,
    OPT_BANDWIDTH,
    OPT_MAXITERS,
    OPT_COMPRESS,
    OPT_COPY_STORAGE,
    OPT_TCP,
    OPT_KEYFILE,
    OPT_RECEIVER,
    OPT_LISTEN,
    OPT_TIMEOUT,
    OPT_QUERY,
    OPT_ENCRYPT,
};

static int parse_uint(struct cli *cli, const char *cmd, const char *opt, const char *s,
                      uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!s[0] || *end || v > 1000000000ul || s[0] == '-')
        return cli_usage_error(cli, cmd, "%s: '%s' is not a non-negative integer", opt, s);
    *out = (uint32_t)v;
    return 0;
}

/*
 * `go` was sent and `running` never came: ask the receiving host through a
 * second remote shell (`migrate-receive --query`) and destroy or resume
 * the source accordingly. Returns the exit status.
 */
static int settle(struct cli *cli, uint32_t domid, const char *dom, const char *shell,
                  const char *host, const char *receiver, const struct tandem_migrate_stats *stats,
                  tandem_migrate_conn **conn)
{
    char *extra[] = {"--query", NULL}, **qargv = NULL, name[128];
    tandem_migrate_conn *q = NULL;
    tandem_dominfo info;
    int outcome = 0, rc = 1;

    fprintf(stderr, "tandem: %s\n", tandem_ctx_error(cli->ctx));
    tandem_migrate_conn_close(*conn);
    *conn = NULL;
    tandem_dominfo_init(&info);
    if (tandem_domain_info(cli->ctx, domid, &info) || !info.name) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    snprintf(name, sizeof(name), "%s", info.name);
    fprintf(stderr, "tandem: asking the receiving host whether %s runs there\n", dom);
    if (tandem_migrate_shell_argv(cli->ctx, shell, host, receiver, extra, &qargv) ||
        tandem_migrate_conn_spawn(cli->ctx, qargv, &q) ||
        tandem_domain_migrate_resolve(cli->ctx, domid, name, stats, q, &outcome)) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    if (outcome == TANDEM_MIGRATE_RESOLVED_THERE) {
        fprintf(stderr,
                "migration of %s done after all: it runs on the receiver; the copy here "
                "was destroyed\n",
                dom);
        rc = 0;
    } else {
        rc = cli_fail(cli, "migration of %s failed: it never ran on the receiver; %s here", dom,
                      stats->source_was_running ? "resumed" : "left paused as it was");
    }
out:
    tandem_migrate_conn_close(q);
    tandem_migrate_argv_free(qargv);
    tandem_dominfo_dispose(&info);
    return rc;
}

int cmd_migrate(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"downtime", required_argument, NULL, OPT_DOWNTIME},
        {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
        {"max-iters", required_argument, NULL, OPT_MAXITERS},
        {"compress", required_argument, NULL, OPT_COMPRESS},
        {"copy-storage", no_argument, NULL, OPT_COPY_STORAGE},
        {"tcp", required_argument, NULL, OPT_TCP},
        {"key-file", required_argument, NULL, OPT_KEYFILE},
        {"receiver", required_argument, NULL, OPT_RECEIVER},
        {"encrypt", no_argument, NULL, OPT_ENCRYPT},
        {NULL, 0, NULL, 0},
    };
    struct tandem_migrate_params params = {0};
    struct tandem_migrate_stats stats = {0};
    struct progress_view view = {.tty = isatty(STDERR_FILENO)};
    const char *shell = NULL, *tcp = NULL, *keyfile = NULL, *receiver = NULL, *host = NULL;
    char **rargv = NULL;
    int opt, rc = 1, status;
    uint8_t key[TANDEM_MIGRATE_KEY_BYTES];
    tandem_migrate_conn *conn = NULL;
    uint32_t domid;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "+s:ep", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            shell = optarg;
            break;
        case 'e':
            break; /* xl compatibility: the receiver never waits for the domain's death */
        case 'p':
            params.leave_paused = 1;
            break;
        case OPT_DOWNTIME:
            if (parse_uint(cli, "migrate", "--downtime", optarg, &params.downtime_ms))
                return 2;
            break;
        case OPT_BANDWIDTH:
            if (parse_uint(cli, "migrate", "--bandwidth", optarg, &params.bandwidth_mbps))
                return 2;
            break;
        case OPT_MAXITERS:
            if (parse_uint(cli, "migrate", "--max-iters", optarg, &params.max_iters))
                return 2;
            break;
        case OPT_COMPRESS:
            if (strcmp(optarg, "none") && strcmp(optarg, "lz4") && strcmp(optarg, "zstd"))
                return cli_usage_error(cli, "migrate", "--compress: '%s' is not none, lz4 or zstd",
                                       optarg);
            params.compression = optarg;
            break;
        case OPT_COPY_STORAGE:
            params.copy_storage = 1;
            break;
        case OPT_TCP:
            tcp = optarg;
            break;
        case OPT_KEYFILE:
            keyfile = optarg;
            break;
        case OPT_RECEIVER:
            receiver = optarg;
            break;
        case OPT_ENCRYPT:
            params.encrypt = 1;
            break;
        default:
            return cli_usage_error(cli, "migrate", "unknown option");
        }
    }
    if (tcp) {
        if (argc - optind != 1)
            return cli_usage_error(cli, "migrate", "with --tcp give only DOM");
        if (!keyfile)
            return cli_usage_error(cli, "migrate", "--tcp needs --key-file");
        if (shell || receiver)
            return cli_usage_error(cli, "migrate", "-s and --receiver do not go with --tcp");
    } else {
        if (params.encrypt)
            return cli_usage_error(cli, "migrate",
                                   "--encrypt goes with --tcp (ssh encrypts the remote shell)");
        if (argc - optind != 2)
            return cli_usage_error(cli, "migrate", "give DOM and HOST");
        if (keyfile)
            return cli_usage_error(cli, "migrate", "--key-file goes with --tcp");
        host = argv[optind + 1];
    }
    /* A receiver that goes away must be an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    if (tandem_domain_lookup(cli->ctx, argv[optind], &domid))
        return cli_fail_ctx(cli, NULL);
    if (tcp) {
        if (tandem_migrate_key_load(cli->ctx, keyfile, key))
            return cli_fail_ctx(cli, NULL);
        if (tandem_migrate_conn_connect(cli->ctx, tcp, key, &conn)) {
            rc = cli_fail_ctx(cli, NULL);
            goto out;
        }
    } else {
        if (tandem_migrate_shell_argv(cli->ctx, shell, host, receiver, NULL, &rargv)) {
            rc = cli_fail_ctx(cli, NULL);
            goto out;
        }
        if (cli->verbose) {
            fprintf(stderr, "tandem: running");
            for (char **a = rargv; *a; a++)
                fprintf(stderr, " %s", *a);
            fputc('\n', stderr);
        }
        if (tandem_migrate_conn_spawn(cli->ctx, rargv, &conn)) {
            rc = cli_fail_ctx(cli, NULL);
            goto out;
        }
    }
    fprintf(stderr, "migrating %s to %s\n", argv[optind], tcp ? tcp : host);
    rc = tandem_domain_migrate_send(cli->ctx, domid, conn, &params, on_progress, &view, &stats);
    end_progress(&view);
    if (rc && stats.in_doubt && !tcp) {
        rc = settle(cli, domid, argv[optind], shell, host, receiver, &stats, &conn);
        goto out;
    }
    if (rc) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    fprintf(stderr,
            "migration of %s done: total %llu ms, downtime %.3f ms (paused %llu ms until the "
            "receiver ran it), %.1f MB, %llu pages, %llu pre-copy rounds; remote id %u\n",
            argv[optind], (unsigned long long)stats.total_ms,
            stats.downtime_us ? (double)stats.downtime_us / 1000.0 : (double)stats.downtime_ms,
            (unsigned long long)stats.handover_ms, (double)stats.bytes / 1e6,
            (unsigned long long)stats.pages, (unsigned long long)stats.iterations,
            stats.remote_domid);
    if (params.copy_storage)
        fprintf(stderr,
                "disks copied live: %.1f MB (all-zero MiB chunks skipped), %llu round(s) "
                "re-sent %llu dirty blocks; %.1f MB of it while paused, in %llu ms\n",
                (double)stats.storage_bytes / 1e6, (unsigned long long)stats.storage_rounds,
                (unsigned long long)stats.storage_dirty_blocks,
                (double)stats.storage_final_bytes / 1e6,
                (unsigned long long)stats.storage_final_ms);
    rc = 0;
out:
    status = tandem_migrate_conn_close(conn);
    if (rc == 0 && status != 0 && !tcp)
        fprintf(stderr, "tandem: warning: the remote command exited with status %d\n", status);
    tandem_migrate_argv_free(rargv);
    return rc;
}

static void on_log(void *opaque, const char *line)
{
    (void)opaque;
    fprintf(stderr, "migrate-receive: %s\n", line);
}

int cmd_migrate_receive(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"key-file", required_argument, NULL, OPT_KEYFILE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"query", no_argument, NULL, OPT_QUERY},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *keyfile = NULL;
    int query = 0;
    uint8_t key[TANDEM_MIGRATE_KEY_BYTES];
    tandem_migrate_conn *conn = NULL;
    uint32_t timeout_s = 0, domid = 0;
    unsigned flags = 0;
    int opt, rc = 1, lfd = -1, proto_out;
    time_t deadline = 0;

    /* xl's `migrate-receive -r`: be a Remus backup instead (cmd_remus.c, docs/remus.md). */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-r") == 0)
            return cmd_remus_receive(cli, argc, argv);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+epd", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e':
        case 'd':
            break; /* xl compatibility: nothing to wait for, no debug mode */
        case 'p':
            flags |= TANDEM_MIGRATE_RECV_PAUSED;
            break;
        case OPT_LISTEN:
            listen = optarg;
            break;
        case OPT_KEYFILE:
            keyfile = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_uint(cli, "migrate-receive", "--timeout", optarg, &timeout_s))
                return 2;
            break;
        case OPT_QUERY:
            query = 1;
            break;
        default:
            return cli_usage_error(cli, "migrate-receive", "unknown option");
        }
    }
    if (optind != argc)
        return cli_usage_error(cli, "migrate-receive", "unexpected argument '%s'", argv[optind]);
    if (listen && !keyfile)
        return cli_usage_error(cli, "migrate-receive",
                               "--listen needs --key-file: there is no unauthenticated listener");
    if (keyfile && !listen)
        return cli_usage_error(cli, "migrate-receive", "--key-file goes with --listen");
    if (query && listen)
        return cli_usage_error(cli, "migrate-receive", "--query works over stdin/stdout only");
    signal(SIGPIPE, SIG_IGN);
    if (listen) {
        if (tandem_migrate_key_load(cli->ctx, keyfile, key))
            return cli_fail_ctx(cli, NULL);
        if (tandem_migrate_listen(cli->ctx, listen, &lfd))
            return cli_fail_ctx(cli, NULL);
        fprintf(stderr, "migrate-receive: listening on %s\n", listen);
        /* A probe or a sender with the wrong key does not end the listener; the timeout does. */
        for (;;) {
            int left = 0, arc;
            if (timeout_s) {
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (!deadline)
                    deadline = now.tv_sec + (time_t)timeout_s;
                left = (int)(deadline - now.tv_sec) * 1000;
                if (left <= 0)
                    left = 1;
            }
            arc = tandem_migrate_accept(cli->ctx, lfd, key, left, &conn);
            if (arc == 0)
                break;
            if (arc == TANDEM_ERR_TIMEOUT || arc == TANDEM_ERR_NOMEM || arc == TANDEM_ERR_INVAL) {
                rc = cli_fail_ctx(cli, "migrate-receive");
                goto out;
            }
            fprintf(stderr, "migrate-receive: %s; still listening\n", tandem_ctx_error(cli->ctx));
        }
        close(lfd);
        lfd = -1;
    } else {
        /* The interlock owns stdout; anything printed by mistake goes to stderr instead. */
        proto_out = dup(STDOUT_FILENO);
        if (proto_out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
            return cli_fail(cli, "cannot set up stdout for the interlock");
        if (tandem_migrate_conn_stdio(cli->ctx, STDIN_FILENO, proto_out, &conn)) {
            close(proto_out);
            return cli_fail_ctx(cli, NULL);
        }
    }
    if (query) {
        rc = tandem_migrate_query_serve(cli->ctx, conn) ? cli_fail_ctx(cli, "migrate-receive") : 0;
        goto out;
    }
    if (tandem_domain_migrate_receive(cli->ctx, conn, flags, on_log, NULL, &domid)) {
        rc = cli_fail_ctx(cli, "migrate-receive");
        goto out;
    }
    rc = 0;
out:
    if (lfd >= 0)
        close(lfd);
    tandem_migrate_conn_close(conn);
    return rc;
}
