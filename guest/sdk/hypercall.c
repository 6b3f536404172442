/* Guest hypercall wrappers. Argument structs are static: they must lie below 4 GiB. */
#include <string.h>

#include "tandem_guest.h"

/* One vCPU, no interrupts: calls never nest, so one struct per call is enough. */
static struct tandem_hc_console_write console_args;
static struct tandem_hc_poll poll_args;
static struct tandem_hc_halt halt_args;

long tg_console_write(const void *buf, size_t len)
{
    const char *p = buf;
    size_t done = 0;

    while (done < len) {
        size_t n = len - done > TANDEM_HC_CONSOLE_MAX ? TANDEM_HC_CONSOLE_MAX : len - done;
        console_args.data = (uintptr_t)(p + done);
        console_args.len = n;
        console_args.ret = 0;
        tg_hypercall(TANDEM_HC_CONSOLE_WRITE, &console_args);
        if (console_args.ret < 0)
            return console_args.ret;
        done += n;
    }
    return (long)len;
}

uint64_t tg_poll(uint64_t deadline_ns)
{
    poll_args.deadline_ns = deadline_ns;
    poll_args.ready_set = 0;
    tg_hypercall(TANDEM_HC_POLL, &poll_args);
    return poll_args.ready_set;
}

void tg_sleep_until(uint64_t deadline_ns)
{
    while (tg_clock_ns() < deadline_ns)
        tg_poll(deadline_ns);
}

void tg_sleep_ns(uint64_t ns)
{
    tg_sleep_until(tg_clock_ns() + ns);
}

void tg_halt(enum tandem_halt_reason reason, int code, const char *message)
{
    halt_args.reason = reason;
    halt_args.code = code;
    halt_args.message = (uintptr_t)message;
    halt_args.message_len = message ? strlen(message) : 0;
    for (;;)
        tg_hypercall(TANDEM_HC_HALT, &halt_args);
}
