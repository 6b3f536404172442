/* blkperf: sequential writes (+ flush) then reads on the first disk; mib=N kib=REQUEST_SIZE. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tandem_dev.h"
#include "tandem_guest.h"

#define CHUNK (1u << 20)
static uint8_t buf[CHUNK] __attribute__((aligned(4096)));

int main(int argc, char **argv)
{
    long mib = tg_cmdline_long("mib", 64), kib = tg_cmdline_long("kib", 1024);
    long flush_every = tg_cmdline_long("flush_every", 1), reqs;
    size_t req;
    int h = tg_dev_find(TANDEM_DEVICE_DISK, 0);
    uint64_t t0, t1, t2;

    (void)argc;
    (void)argv;
    if (h < 0 || tg_dev((unsigned)h)->capacity < (uint64_t)mib * CHUNK || kib < 1 || kib > 1024 ||
        1024 % kib) {
        printf("FAIL: need a disk of at least %ld MiB and kib dividing 1024\n", mib);
        return 1;
    }
    req = (size_t)kib << 10;
    reqs = mib * (1024 / kib);
    for (uint32_t i = 0; i < CHUNK; i += 4)
        memcpy(buf + i, &i, 4);
    t0 = tg_clock_ns();
    for (long i = 0; i < reqs; i++) {
        if (tg_block_write((unsigned)h, (uint64_t)i * req, buf, req) != 0 ||
            ((i + 1) % flush_every == 0 && tg_block_flush((unsigned)h) != 0)) {
            printf("FAIL: write/flush at request %ld\n", i);
            return 1;
        }
    }
    if (tg_block_flush((unsigned)h) != 0)
        return 1;
    t1 = tg_clock_ns();
    for (long i = 0; i < reqs; i++)
        if (tg_block_read((unsigned)h, (uint64_t)i * req, buf, req) != 0) {
            printf("FAIL: read at request %ld\n", i);
            return 1;
        }
    t2 = tg_clock_ns();
    printf("blkperf kib %ld mib %ld write_flush_MBps %" PRIu64 " read_MBps %" PRIu64 "\n", kib, mib,
           (uint64_t)((uint64_t)mib * CHUNK * 1000u / (t1 - t0)),
           (uint64_t)((uint64_t)mib * CHUNK * 1000u / (t2 - t1)));
    printf("SUCCESS\n");
    return 0;
}
