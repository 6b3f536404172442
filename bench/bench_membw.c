/*
 * bench_membw: memory bandwidth of the same loop (bench_membw_loop.h) on the
 * host and inside a guest (membw guest under tandem-vmm), and their ratio.
 * Usage: bench_membw VMM GUEST_DIR [MiB] [PASSES]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_membw_loop.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long mib = argc > 3 ? atol(argv[3]) : 64, passes = argc > 4 ? atol(argv[4]) : 10, i;
    unsigned long long g_read = 0, g_write = 0;
    uint64_t *buf, t0, t1, t2, sum = 0, bytes, h_read, h_write;
    char cmd[8192], line[512];
    size_t words;
    FILE *p;

    if (argc < 3 || mib <= 0 || passes <= 0) {
        fprintf(stderr, "usage: bench_membw VMM GUEST_DIR [MiB] [PASSES]\n");
        return 2;
    }
    words = (size_t)mib << 17;
    buf = malloc(words * 8);
    if (!buf)
        return 1;
    membw_write(buf, words, 1);
    t0 = now_ns();
    for (i = 0; i < passes; i++)
        sum += membw_read(buf, words);
    t1 = now_ns();
    for (i = 0; i < passes; i++)
        membw_write(buf, words, (uint64_t)i);
    t2 = now_ns();
    bytes = (uint64_t)words * 8 * (uint64_t)passes;
    h_read = bytes * 1000 / (t1 - t0);
    h_write = bytes * 1000 / (t2 - t1);
    free(buf);

    /* guest RAM: the buffer plus room for the image, heap overhead and stack */
    snprintf(cmd, sizeof(cmd),
             "'%s' --kernel '%s/membw.elf' --memory %ld --cmdline 'mem=%ld passes=%ld'", argv[1],
             argv[2], (mib + 16 + 1) & ~1L, mib, passes);
    p = popen(cmd, "r");
    if (!p)
        return 1;
    while (fgets(line, sizeof(line), p))
        sscanf(line, "membw read_mb_s %llu write_mb_s %llu", &g_read, &g_write);
    if (pclose(p) != 0 || !g_read || !g_write) {
        fprintf(stderr, "bench_membw: the membw guest failed (%s)\n", cmd);
        return 1;
    }
    printf("memory bandwidth, %ld MiB x %ld passes (sum %llu):\n", mib, passes,
           (unsigned long long)(sum & 0xff));
    printf("  read:  host %llu MB/s, guest %llu MB/s, guest/host %.2f\n",
           (unsigned long long)h_read, g_read, (double)g_read / (double)h_read);
    printf("  write: host %llu MB/s, guest %llu MB/s, guest/host %.2f\n",
           (unsigned long long)h_write, g_write, (double)g_write / (double)h_write);
    return 0;
}
