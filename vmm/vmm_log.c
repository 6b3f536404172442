/* tandem-vmm's own log: timestamped lines to DIR/vmm.log (daemon) or stderr (direct mode). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

static int log_fd = 2;

void vmm_log_open(int fd)
{
    log_fd = fd;
}

void vmm_log(const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (log_fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%06ldZ tandem-vmm[%d]: ", ts.tv_nsec / 1000,
                          (int)getpid());
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    n = strlen(line);
    if (n < sizeof(line) - 1)
        line[n++] = '\n';
    /* One write per line so concurrent writers do not interleave within a line. */
    if (write(log_fd, line, n) < 0) {
        /* nowhere left to report it */
    }
}
