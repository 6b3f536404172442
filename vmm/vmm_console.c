/* Guest console: a ring of the most recent output plus the log file (and stdout in direct mode). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

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
    c->total += len;
    if (c->log_fd >= 0)
        write_all(c->log_fd, p, len);
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
