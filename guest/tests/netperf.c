/* netperf: frame rate through the vif; mode=tx|rx count=N size=BYTES secs=LIMIT linger=SECS. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tandem_dev.h"
#include "tandem_guest.h"

static uint8_t frame[65536] __attribute__((aligned(64)));

int main(int argc, char **argv)
{
    char mode[8] = "tx";
    long count = tg_cmdline_long("count", 100000), size = tg_cmdline_long("size", 60);
    long secs = tg_cmdline_long("secs", 30);
    /* Stay up this long after the result (tests read the VMM's counters meanwhile). */
    long linger = tg_cmdline_long("linger", 0);
    int h = tg_dev_find(TANDEM_DEVICE_VIF, 0);
    uint64_t t0 = 0, t1 = 0, end, eagain = 0;
    long n = 0;

    (void)argc;
    (void)argv;
    tg_cmdline_str("mode", mode, sizeof(mode));
    if (h < 0 || size < 14 || size > 1514) {
        printf("FAIL: need a vif and 14 <= size <= 1514\n");
        return 1;
    }
    end = tg_clock_ns() + (uint64_t)secs * 1000000000ull;
    if (strcmp(mode, "tx") == 0) {
        /* To a locally administered unicast nobody has: the bridge floods it to its own port. */
        static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01};
        memcpy(frame, dst, 6);
        memcpy(frame + 6, tg_dev((unsigned)h)->mac, 6);
        frame[12] = 0x88;
        frame[13] = 0xb5; /* IEEE local experimental ethertype */
        t0 = tg_clock_ns();
        while (n < count && tg_clock_ns() < end) {
            int rc = tg_net_send((unsigned)h, frame, (size_t)size);
            if (rc == TANDEM_HC_EAGAIN) {
                eagain++;
                tg_poll(tg_clock_ns() + 20000);
                continue;
            }
            if (rc < 0) {
                printf("FAIL: send: %d\n", rc);
                return 1;
            }
            n++;
        }
        t1 = tg_clock_ns();
    } else {
        printf("READY\n");
        while (n < count && tg_clock_ns() < end) {
            int rc = tg_net_recv((unsigned)h, frame, sizeof(frame));
            if (rc == TANDEM_HC_EAGAIN) {
                tg_poll(n ? tg_clock_ns() + 200000000ull : end);
                if (n && tg_net_recv((unsigned)h, frame, 0) == TANDEM_HC_EAGAIN &&
                    tg_clock_ns() - t1 > 200000000ull)
                    break; /* the sender has stopped */
                continue;
            }
            if (rc < 0 && rc != TANDEM_HC_ENOSPC) {
                printf("FAIL: recv: %d\n", rc);
                return 1;
            }
            if (rc < 14 || frame[12] != 0x88 || frame[13] != 0xb5)
                continue; /* not the benchmark's: neighbour discovery and the like */
            if (n == 0)
                t0 = tg_clock_ns();
            t1 = tg_clock_ns();
            n++;
        }
    }
    if (n < 2 || t1 <= t0) {
        printf("FAIL: only %ld frames\n", n);
        return 1;
    }
    printf("netperf %s frames %ld size %ld ns %" PRIu64 " pps %" PRIu64 " eagain %" PRIu64 "\n",
           mode, n, size, t1 - t0, (uint64_t)((uint64_t)n * 1000000000u / (t1 - t0)), eagain);
    printf("SUCCESS\n");
    if (linger > 0) {
        uint64_t until = tg_clock_ns() + (uint64_t)linger * 1000000000ull;
        while (tg_clock_ns() < until)
            tg_poll(until);
    }
    return 0;
}
