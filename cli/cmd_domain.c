/* Domain commands: list, console, pause, unpause, destroy, domid, domname, rename. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

/* Ctrl-] ends an attached console, as with xl console. */
#define CONSOLE_ESCAPE 0x1d
#define CONSOLE_POLL_MS 100

/* Resolve DOM (a name or a domid) or print "tandem: no domain named 'x'" and return 1. */
static int lookup(struct cli *cli, const char *dom, uint32_t *domid)
{
    return tandem_domain_lookup(cli->ctx, dom, domid) ? cli_fail_ctx(cli, NULL) : 0;
}

/* xl's state column: r(unning) b(locked) p(aused) s(hutdown) <shutdown reason> d(ying). */
static void state_string(const tandem_dominfo *info, char out[7])
{
    static const char reason_letters[] = "-rscw"; /* poweroff reboot suspend crash watchdog */
    int shut =
        info->state == TANDEM_DOMAIN_STATE_SHUTDOWN || info->state == TANDEM_DOMAIN_STATE_CRASHED;
    int reason = info->state == TANDEM_DOMAIN_STATE_CRASHED ? TANDEM_SHUTDOWN_REASON_CRASH
                                                            : (int)info->shutdown_reason;

    memcpy(out, "------", 7);
    if (info->state == TANDEM_DOMAIN_STATE_RUNNING)
        out[0] = 'r';
    if (info->state == TANDEM_DOMAIN_STATE_PAUSED)
        out[2] = 'p';
    if (shut) {
        out[3] = 's';
        out[4] =
            reason >= 0 && reason < (int)sizeof(reason_letters) - 1 ? reason_letters[reason] : '?';
    }
    if (info->state == TANDEM_DOMAIN_STATE_DYING)
        out[5] = 'd';
    if (info->state == TANDEM_DOMAIN_STATE_UNKNOWN)
        memcpy(out, "??????", 7);
}

static void print_table(const tandem_dominfo *list, int n)
{
    printf("Name                                        ID   Mem VCPUs\tState\tTime(s)\n");
    for (int i = 0; i < n; i++) {
        const tandem_dominfo *d = &list[i];
        uint64_t kb = d->current_memkb ? d->current_memkb : d->max_memkb;
        char state[7];
        state_string(d, state);
        printf("%-40s %5u %5lu %5d     %s  %8.1f\n", d->name ? d->name : "(unknown)", d->domid,
               (unsigned long)(kb / 1024), d->vcpu_online, state, (double)d->cpu_time_ns / 1e9);
    }
}

/* xl list -l: [{"domid":N,"config":<domain_config>,"info":<dominfo>}, ...] */
static int print_long(struct cli *cli, const tandem_dominfo *list, int n)
{
    json_t *arr = json_array();
    char *text = NULL;
    int rc = 1;

    if (!arr)
        goto out;
    for (int i = 0; i < n; i++) {
        tandem_domain_config cfg;
        json_t *o = json_object(), *c = NULL, *inf;

        tandem_domain_config_init(&cfg);
        if (!o || json_array_append_new(arr, o) < 0)
            goto out;
        if (json_object_set_new(o, "domid", json_integer(list[i].domid)) < 0)
            goto out;
        if (tandem_domain_get_config(cli->ctx, list[i].domid, &cfg) == 0)
            c = tandem_domain_config_gen_json(&cfg);
        else if (cli->verbose)
            fprintf(stderr, "tandem: warning: %s\n", tandem_ctx_error(cli->ctx));
        tandem_domain_config_dispose(&cfg);
        if (c && json_object_set_new(o, "config", c) < 0)
            goto out;
        inf = tandem_dominfo_gen_json(&list[i]);
        if (!inf || json_object_set_new(o, "info", inf) < 0)
            goto out;
    }
    text = json_dumps(arr, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    printf("%s\n", text);
    rc = 0;
out:
    if (rc)
        cli_fail(cli, "out of memory");
    free(text);
    json_decref(arr);
    return rc;
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"long", no_argument, NULL, 'l'}, {0}};
    tandem_dominfo *list = NULL;
    int n = 0, opt, longfmt = 0, rc = 1;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+l", opts, NULL)) != -1) {
        if (opt != 'l')
            return cli_usage_error(cli, "list", "unknown option '%s'", argv[optind - 1]);
        longfmt = 1;
    }
    if (optind < argc) {
        n = argc - optind;
        list = calloc((size_t)n, sizeof(*list));
        if (!list)
            return cli_fail(cli, "out of memory");
        for (int i = 0; i < n; i++)
            tandem_dominfo_init(&list[i]);
        for (int i = 0; i < n; i++) {
            uint32_t domid;
            if (lookup(cli, argv[optind + i], &domid))
                goto out;
            if (tandem_domain_info(cli->ctx, domid, &list[i])) {
                rc = cli_fail_ctx(cli, NULL);
                goto out;
            }
        }
    } else if (tandem_domain_list(cli->ctx, &list, &n)) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    if (longfmt) {
        rc = print_long(cli, list, n);
    } else {
        print_table(list, n);
        rc = 0;
    }
out:
    tandem_dominfo_list_free(list, n);
    return rc;
}

/*
 * Copy everything readable from fd to stdout. 0; 1 when stdout's reader
 * has gone (EPIPE: `tandem console x | head`); -1 on another error.
 */
static int drain(int fd)
{
    char buf[65536];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf)), off = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        while (off < n) {
            ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return errno == EPIPE ? 1 : -1;
            off += w;
        }
    }
}

/*
 * Is path still the file fd has open? Not when the domain's folder is gone,
 * or when its domid went to a new domain whose log is another file.
 */
static int same_file(int fd, const char *path)
{
    struct stat a, b;

    if (fd < 0)
        return 1;
    if (stat(path, &b) < 0)
        return errno != ENOENT;
    return fstat(fd, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static volatile sig_atomic_t console_stop;

static void on_console_signal(int sig)
{
    (void)sig;
    console_stop = 1;
}

int cli_console_attach(struct cli *cli, uint32_t domid, int follow)
{
    struct termios saved, raw;
    struct sigaction sa = {0}, ign = {0}, old_int, old_term, old_hup, old_pipe;
    char *path = NULL;
    int fd = -1, rc = 1, tty = follow && isatty(STDIN_FILENO), raw_set = 0;

    if (tandem_domain_console_path(cli->ctx, domid, &path))
        return cli_fail_ctx(cli, NULL);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) {
        rc = cli_fail(cli, "cannot open console log '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!follow) {
        rc = fd >= 0 && drain(fd) < 0 ? cli_fail(cli, "cannot copy '%s' to stdout", path) : 0;
        goto out;
    }

    console_stop = 0;
    sa.sa_handler = on_console_signal; /* no SA_RESTART: poll returns so the tty is restored */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    ign.sa_handler = SIG_IGN; /* a closed stdout ends the console, with the tty restored */
    sigaction(SIGPIPE, &ign, &old_pipe);
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        raw_set = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    for (;;) {
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int alive, drained;

        if (fd < 0)
            fd = open(path, O_RDONLY | O_CLOEXEC); /* the VMM has not opened it yet */
        /* Sample liveness before draining so the last words are never lost. */
        alive = tandem_domain_alive(cli->ctx, domid) && same_file(fd, path);
        drained = fd >= 0 ? drain(fd) : 0;
        if (drained < 0) {
            rc = cli_fail(cli, "cannot copy '%s' to stdout", path);
            goto restore;
        }
        if (!alive || console_stop || drained > 0)
            break;
        if (poll(&p, tty ? 1 : 0, CONSOLE_POLL_MS) > 0) {
            char c;
            if (read(STDIN_FILENO, &c, 1) == 1 && c == CONSOLE_ESCAPE)
                break;
            if (p.revents & (POLLHUP | POLLERR))
                tty = 0;
        }
    }
    rc = 0;
restore:
    if (raw_set)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

int cmd_console(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"log", no_argument, NULL, 'L'}, {0}};
    uint32_t domid;
    int opt, follow = 1;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (opt != 'L')
            return cli_usage_error(cli, "console", "unknown option '%s'", argv[optind - 1]);
        follow = 0;
    }
    if (optind != argc - 1)
        return cli_usage_error(cli, "console", "expected exactly one DOM");
    if (lookup(cli, argv[optind], &domid))
        return 1;
    return cli_console_attach(cli, domid, follow);
}

/* pause / unpause / destroy: one DOM, one library call. */
static int simple_op(struct cli *cli, int argc, char **argv, int (*op)(tandem_ctx *, uint32_t))
{
    uint32_t domid;

    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error(cli, argv[0], "expected exactly one DOM");
    if (lookup(cli, argv[1], &domid))
        return 1;
    return op(cli->ctx, domid) ? cli_fail_ctx(cli, NULL) : 0;
}

int cmd_pause(struct cli *cli, int argc, char **argv)
{
    return simple_op(cli, argc, argv, tandem_domain_pause);
}

int cmd_unpause(struct cli *cli, int argc, char **argv)
{
    return simple_op(cli, argc, argv, tandem_domain_unpause);
}

int cmd_destroy(struct cli *cli, int argc, char **argv)
{
    uint32_t domid;
    int rc;

    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error(cli, "destroy", "expected exactly one DOM");
    if (lookup(cli, argv[1], &domid))
        return 1;
    rc = tandem_domain_destroy(cli->ctx, domid);
    if (rc == TANDEM_ERR_TIMEOUT) {
        /* The domain is gone all the same; say how. */
        fprintf(stderr, "tandem: warning: %s\n", tandem_ctx_error(cli->ctx));
        return 0;
    }
    return rc ? cli_fail_ctx(cli, NULL) : 0;
}

int cmd_domid(struct cli *cli, int argc, char **argv)
{
    uint32_t domid;

    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error(cli, "domid", "expected exactly one NAME");
    if (lookup(cli, argv[1], &domid))
        return 1;
    printf("%u\n", domid);
    return 0;
}

int cmd_domname(struct cli *cli, int argc, char **argv)
{
    tandem_dominfo info;
    uint32_t domid;
    int rc = 1;

    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error(cli, "domname", "expected exactly one ID");
    for (const char *p = argv[1]; *p; p++)
        if (!isdigit((unsigned char)*p))
            return cli_usage_error(cli, "domname", "'%s' is not a domain id (a number)", argv[1]);
    if (lookup(cli, argv[1], &domid))
        return 1;
    tandem_dominfo_init(&info);
    if (tandem_domain_info(cli->ctx, domid, &info)) {
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    printf("%s\n", info.name ? info.name : "");
    rc = 0;
out:
    tandem_dominfo_dispose(&info);
    return rc;
}

int cmd_rename(struct cli *cli, int argc, char **argv)
{
    uint32_t domid;

    if (argc != 3 || argv[1][0] == '-')
        return cli_usage_error(cli, "rename", "expected DOM and NEWNAME");
    if (lookup(cli, argv[1], &domid))
        return 1;
    return tandem_domain_rename(cli->ctx, domid, argv[2]) ? cli_fail_ctx(cli, NULL) : 0;
}
