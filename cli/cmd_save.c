/* `tandem save` and `tandem restore`: a domain to an image file and back (docs/checkpoint.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

struct show {
    int tty;
    int shown; /* a progress line is on the terminal */
    const char *verb;
};

/* On a terminal: one rewritten line with phase, percent of the round, size and rate. */
static void show_progress(const struct tandem_save_progress *p, void *opaque)
{
    struct show *s = opaque;
    double pct;

    if (!s->tty)
        return;
    pct = p->pages_total ? 100.0 * (double)p->pages_sent / (double)p->pages_total : 100.0;
    if (pct > 100.0)
        pct = 100.0;
    if (p->iter)
        fprintf(stderr, "\r%s: %-10s round %llu %5.1f%%  %8.1f MB  %7.1f MB/s   ", s->verb,
                p->phase, (unsigned long long)p->iter, pct, (double)p->bytes / 1e6, p->rate_mbps);
    else
        fprintf(stderr, "\r%s: %-10s %8.1f MB   ", s->verb, p->phase, (double)p->bytes / 1e6);
    s->shown = 1;
}

static void end_progress(struct show *s)
{
    if (s->shown)
        fputc('\n', stderr);
    s->shown = 0;
}

/* Remove a partial image, but only a regular file (never a device or FIFO given as FILE). */
static void remove_partial(int fd, const char *file)
{
    struct stat sb;

    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
        unlink(file);
}

int cmd_save(struct cli *cli, int argc, char **argv)
{
    struct tandem_save_params params = {0};
    struct tandem_save_stats stats = {0};
    struct show show = {.tty = isatty(STDERR_FILENO), .verb = "saving"};
    tandem_domain_config cfg;
    int opt, rc = 1, fd = -1, leave = 0, have_cfg = 0;
    const char *file;
    uint32_t domid;

    tandem_domain_config_init(&cfg);
    optind = 1;
    while ((opt = getopt(argc, argv, "+clz:")) != -1) {
        switch (opt) {
        case 'c':
            leave = 1;
            break;
        case 'l':
            params.flags |= TANDEM_SAVE_LIVE;
            break;
        case 'z':
            if (strcmp(optarg, "lz4") == 0)
                params.flags |= TANDEM_SAVE_LZ4;
            else if (strcmp(optarg, "zstd") == 0)
                params.flags |= TANDEM_SAVE_ZSTD;
            else if (strcmp(optarg, "none") != 0)
                return cli_usage_error(cli, "save", "-z %s: compression is none, lz4 or zstd",
                                       optarg);
            break;
        default:
            return cli_usage_error(cli, "save", "unknown option");
        }
    }
    if (argc - optind < 2 || argc - optind > 3)
        return cli_usage_error(cli, "save", "need DOM and FILE (and optionally CONFIG)");
    file = argv[optind + 1];
    if (tandem_domain_lookup(cli->ctx, argv[optind], &domid))
        return cli_fail_ctx(cli, NULL);
    if (argc - optind == 3) {
        if (tandem_domain_config_load(cli->ctx, argv[optind + 2], 0, NULL, &cfg)) {
            rc = cli_fail_ctx(cli, NULL);
            goto out;
        }
        have_cfg = 1;
        params.config = &cfg;
    }
    if (leave)
        params.flags |= TANDEM_SAVE_LEAVE_RUNNING;
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = cli_fail(cli, "cannot create %s: %s", file, strerror(errno));
        goto out;
    }
    if (tandem_domain_checkpoint(cli->ctx, domid, fd, &params, NULL, show_progress, &show,
                                 &stats)) {
        end_progress(&show);
        remove_partial(fd, file); /* a partial image is of no use */
        rc = cli_fail_ctx(cli, NULL);
        goto out;
    }
    end_progress(&show);
    /* EINVAL/EROFS: FILE is a pipe or device, nothing to sync. */
    if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS) {
        /* The domain is paused (or running with -c): keep it, the image may not be on disk. */
        remove_partial(fd, file);
        if (!leave)
            tandem_domain_unpause(cli->ctx, domid);
        rc = cli_fail(cli, "cannot write %s to disk: %s; the domain was left running", file,
                      strerror(errno));
        goto out;
    }
    if (!leave && tandem_domain_destroy(cli->ctx, domid)) {
        rc = cli_fail_ctx(cli, "saved, but destroying the domain failed");
        goto out;
    }
    fprintf(stderr,
            "Saved domain %s (domid %u) to %s: %.1f MB in %llu ms, paused for %llu ms, %llu "
            "pages%s%s\n",
            argv[optind], domid, file, (double)stats.bytes / 1e6,
            (unsigned long long)stats.total_ms, (unsigned long long)stats.downtime_ms,
            (unsigned long long)stats.pages, leave ? "; still running" : "; destroyed it",
            have_cfg ? " (with the given CONFIG)" : "");
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    tandem_domain_config_dispose(&cfg);
    return rc;
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
    struct show show = {.tty = isatty(STDERR_FILENO), .verb = "restoring"};
    unsigned flags = 0;
    int opt, rc = 1, fd = -1, console = 0;
    uint32_t domid = 0;
    const char *file, *config = NULL;
    tandem_dominfo info;

    optind = 1;
    while ((opt = getopt(argc, argv, "+pec")) != -1) {
        switch (opt) {
        case 'p':
            flags |= TANDEM_RESTORE_PAUSED;
            break;
        case 'e':
            /* xl: do not wait in the background for the domain's death. Tandem never does. */
            break;
        case 'c':
            console = 1;
            break;
        default:
            return cli_usage_error(cli, "restore", "unknown option");
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return cli_usage_error(cli, "restore", "need FILE (and optionally CONFIG)");
    file = argv[optind];
    if (argc - optind == 2)
        config = argv[optind + 1];
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(cli, "cannot open %s: %s", file, strerror(errno));
    rc = tandem_domain_restore(cli->ctx, fd, config, flags, &domid, show_progress, &show);
    end_progress(&show);
    close(fd);
    if (rc)
        return cli_fail_ctx(cli, NULL);
    tandem_dominfo_init(&info);
    if (tandem_domain_info(cli->ctx, domid, &info) == 0)
        fprintf(stderr, "Domain %s (domid %u) restored from %s, %s\n", info.name, domid, file,
                (flags & TANDEM_RESTORE_PAUSED) ? "paused" : "running");
    else
        fprintf(stderr, "Domain %u restored from %s\n", domid, file);
    tandem_dominfo_dispose(&info);
    return console ? cli_console_attach(cli, domid, 1) : 0;
}
