/*
 * memdirty: dirties pages=N distinct 4 KiB pages per second, cycling through a
 * mem=M MiB working set; prints the achieved rate every report=S seconds and,
 * with seconds=T, the average over T seconds before powering off.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tandem_guest.h"

#define NS ((uint64_t)1000000000)
#define PAGE ((uint64_t)4096)
#define TICK_NS ((uint64_t)10000000) /* pace in 10 ms steps */

int main(int argc, char **argv)
{
    long rate = tg_cmdline_long("pages", 1000);
    long mem_mib = tg_cmdline_long("mem", 16);
    long report = tg_cmdline_long("report", 1);
    long seconds = tg_cmdline_long("seconds", 0);
    uint64_t npages, cursor = 0, done = 0, last_done = 0, start, last, now, target, next;
    volatile uint8_t *ws;

    (void)argc;
    (void)argv;
    if (rate <= 0 || mem_mib <= 0 || report <= 0 || seconds < 0)
        tg_panic("memdirty: pages, mem and report must be positive, seconds >= 0");
    npages = (uint64_t)mem_mib * (1ull << 20) / PAGE;
    ws = malloc(npages * PAGE);
    if (!ws)
        tg_panic("memdirty: cannot allocate mem=%ld MiB (domain memory %" PRIu64 " MiB)", mem_mib,
                 tg_boot_info()->mem_size >> 20);
    printf("memdirty: %ld pages/s over a %ld MiB working set (%" PRIu64 " pages)\n", rate, mem_mib,
           npages);
    start = last = next = tg_clock_ns();
    for (;;) {
        now = tg_clock_ns();
        target = (now - start) / 1000 * (uint64_t)rate / 1000000; /* µs: no overflow for years */
        while (done < target) {
            ws[cursor * PAGE + (done & 63) * 8] += 1; /* touch a different word each pass */
            cursor = cursor + 1 == npages ? 0 : cursor + 1;
            done++;
        }
        if (now - last >= (uint64_t)report * NS) {
            printf("memdirty: rate %" PRIu64 " pages/s (asked %ld), total %" PRIu64 "\n",
                   (done - last_done) * NS / (now - last), rate, done);
            last = now;
            last_done = done;
        }
        if (seconds && now - start >= (uint64_t)seconds * NS)
            break;
        next += TICK_NS;
        if (next > now)
            tg_sleep_until(next);
        else
            next = now;
    }
    printf("memdirty: average %" PRIu64 " pages/s over %ld s (asked %ld)\n",
           done * NS / (now - start), seconds, rate);
    printf("SUCCESS\n");
    return 0;
}
