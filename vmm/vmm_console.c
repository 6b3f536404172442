/* Guest console: a ring of the most recent output plus the log file (and stdout in direct mode). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

/*
 * console.log stops growing at this size, so a guest printing in a loop
 * cannot fill the host's disk (a 64 KiB write per hypercall is ~2 GB/s).
 * A ticker's 80 bytes a second reach it after about 20 days. The ring and
 * the direct-mode stdout are not capped.
 */
#define CONSOLE_LOG_MAX (128ull << 20)
static const char log_full_marker[] =
    "\n[tandem-vmm: console.log reached 128 MiB; further guest output is not logged]\n";

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* a full disk must not stop the guest */
        buf += n;
        len -= (size_t)n;
    }
}

int vmm_console_init(struct vmm_console *c, int log_fd, int echo_fd)
{
    c->log_fd = log_fd;
    c->echo_fd = echo_fd;
    c->total = 0;
    c->ring = calloc(1, VMM_CONSOLE_RING);
    if (!c->ring)
        return -1;
    pthread_mutex_init(&c->lock, NULL);
    return 0;
}

void vmm_console_write(struct vmm_console *c, const void *buf, size_t len)
{
    const char *p = buf;
    size_t i;

    pthread_mutex_lock(&c->lock);
    for (i = 0; i < len; i++)
        c->ring[(c->total + i) % VMM_CONSOLE_RING] = p[i];
    if (c->log_fd >= 0 && c->total < CONSOLE_LOG_MAX) {
        size_t room = (size_t)(CONSOLE_LOG_MAX - c->total);
        write_all(c->log_fd, p, len < room ? len : room);
        if (len >= room)
            write_all(c->log_fd, log_full_marker, sizeof(log_full_marker) - 1);
    }
    c->total += len;
    if (c->echo_fd >= 0)
        write_all(c->echo_fd, p, len);
    pthread_mutex_unlock(&c->lock);
}

void vmm_console_free(struct vmm_console *c)
{
    if (!c->ring)
        return;
    free(c->ring);
    c->ring = NULL;
    if (c->log_fd >= 0)
        close(c->log_fd);
    c->log_fd = -1;
    pthread_mutex_destroy(&c->lock);
}
