/* Migration guard: a child that undoes a half-done migration when its parent is killed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate_internal.h"

int tdm_mig_guard_start(tandem_ctx *ctx, struct tdm_mig_guard *g, tdm_mig_guard_fn *fn, void *arg,
                        int keep_fd)
{
    int p[2];
    pid_t pid;

    g->pid = 0;
    g->fd = -1;
    if (pipe2(p, O_CLOEXEC) < 0)
        return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot create the guard's pipe");
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot fork the migration guard");
    }
    if (pid == 0) {
        char b = 0;
        ssize_t n;
        int null = open("/dev/null", O_RDWR);

        /* Outlive the terminal's Ctrl-C and the parent's session; keep only what is needed. */
        setsid();
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        /* fd 3 = pipe, fd 4 = keep_fd (e.g. the VMM control connection); nothing else stays. */
        {
            int a = fcntl(p[0], F_DUPFD, 10), k = keep_fd >= 0 ? fcntl(keep_fd, F_DUPFD, 10) : -1;
            if (a < 0 || dup2(a, 3) < 0)
                _exit(1);
            if (keep_fd >= 0 && (k < 0 || dup2(k, 4) < 0))
                _exit(1);
        }
        close_range(keep_fd >= 0 ? 5 : 4, ~0u, 0);
        int kept = keep_fd >= 0 ? 4 : -1;
        for (;;) {
            do
                n = read(3, &b, 1);
            while (n < 0 && errno == EINTR);
            if (n != 1)
                break; /* EOF: the parent died while the guard was armed */
            if (b == 'D')
                _exit(0);
            if (b == 'R' && kept >= 0) {
                close(kept);
                kept = -1;
            }
        }
        fn(arg, kept);
        _exit(0);
    }
    close(p[0]);
    g->pid = pid;
    g->fd = p[1];
    return 0;
}

void tdm_mig_guard_release_fd(struct tdm_mig_guard *g)
{
    if (g->fd >= 0)
        (void)!write(g->fd, "R", 1);
}

void tdm_mig_guard_disarm(struct tdm_mig_guard *g)
{
    if (g->fd >= 0) {
        (void)!write(g->fd, "D", 1);
        close(g->fd);
        g->fd = -1;
    }
    if (g->pid > 0) {
        while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        g->pid = 0;
    }
}

void tdm_mig_test_stop(const char *role, const char *phase)
{
    const char *v = getenv("TANDEM_MIGRATE_TEST_STOP");
    char want[64];

    if (!v || !v[0])
        return;
    snprintf(want, sizeof(want), "%s:%s", role, phase);
    if (strcmp(v, want) == 0)
        raise(SIGSTOP);
}
