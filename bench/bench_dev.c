/* bench_dev: host-side halves of the device benchmarks (frame sender, TAP and file baselines). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: bench_dev send IFACE DSTMAC COUNT SIZE   raw frames into IFACE (AF_PACKET)\n"
        "       bench_dev tap-write TAP COUNT SIZE        frames into a persistent TAP\n"
        "       bench_dev tap-read TAP COUNT              frames out of a persistent TAP\n"
        "       bench_dev file PATH MIB                   1 MiB pwrite+fdatasync, then pread\n");
    return 2;
}

static int tap_open(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The same frame netperf sends: to 02:00:00:00:00:01, ethertype 0x88b5. */
static void make_frame(uint8_t *f, size_t size, const uint8_t dst[6])
{
    static const uint8_t src[6] = {0x00, 0x16, 0x3e, 0x7f, 0xee, 0x01};
    memset(f, 0, size);
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
}

int main(int argc, char **argv)
{
    static uint8_t buf[1 << 20];
    uint64_t t0, t1, n = 0;

    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "send") == 0 && argc == 6) {
        unsigned m[6];
        uint8_t dst[6];
        long count = atol(argv[4]), size = atol(argv[5]);
        struct sockaddr_ll sll;
        int fd = socket(AF_PACKET, SOCK_RAW, 0);
        if (fd < 0 ||
            sscanf(argv[3], "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
            perror("send");
            return 1;
        }
        for (int i = 0; i < 6; i++)
            dst[i] = (uint8_t)m[i];
        memset(&sll, 0, sizeof(sll));
        sll.sll_family = AF_PACKET;
        sll.sll_ifindex = (int)if_nametoindex(argv[2]);
        sll.sll_halen = 6;
        memcpy(sll.sll_addr, dst, 6);
        make_frame(buf, (size_t)size, dst);
        t0 = now_ns();
        for (n = 0; n < (uint64_t)count; n++)
            while (sendto(fd, buf, (size_t)size, 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
                if (errno != ENOBUFS && errno != EAGAIN) {
                    perror("sendto");
                    return 1;
                }
        t1 = now_ns();
        printf("send frames %llu pps %llu\n", (unsigned long long)n,
               (unsigned long long)(n * 1000000000ull / (t1 - t0)));
        return 0;
    }
    if (strcmp(argv[1], "tap-write") == 0 && argc == 5) {
        static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01};
        long count = atol(argv[3]), size = atol(argv[4]);
        int fd = tap_open(argv[2]);
        if (fd < 0) {
            perror(argv[2]);
            return 1;
        }
        make_frame(buf, (size_t)size, dst);
        t0 = now_ns();
        for (n = 0; n < (uint64_t)count; n++)
            if (write(fd, buf, (size_t)size) < 0) {
                perror("write");
                return 1;
            }
        t1 = now_ns();
        printf("tap-write frames %llu pps %llu\n", (unsigned long long)n,
               (unsigned long long)(n * 1000000000ull / (t1 - t0)));
        return 0;
    }
    if (strcmp(argv[1], "tap-read") == 0 && argc == 4) {
        long count = atol(argv[3]);
        int fd = tap_open(argv[2]);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (fd < 0) {
            perror(argv[2]);
            return 1;
        }
        printf("READY\n");
        fflush(stdout);
        t0 = t1 = 0;
        while (n < (uint64_t)count) {
            if (poll(&pfd, 1, n ? 200 : 30000) <= 0)
                break;
            ssize_t len = read(fd, buf, sizeof(buf));
            if (len <= 0)
                break;
            if (len < 14 || buf[12] != 0x88 || buf[13] != 0xb5)
                continue; /* not ours: neighbour discovery and the like */
            if (n++ == 0)
                t0 = now_ns();
            t1 = now_ns();
        }
        if (n < 2)
            return 1;
        printf("tap-read frames %llu pps %llu\n", (unsigned long long)n,
               (unsigned long long)(n * 1000000000ull / (t1 - t0)));
        return 0;
    }
    if (strcmp(argv[1], "file") == 0 && argc == 4) {
        long mib = atol(argv[3]);
        int fd = open(argv[2], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        uint64_t t2;
        if (fd < 0) {
            perror(argv[2]);
            return 1;
        }
        memset(buf, 0x5a, sizeof(buf));
        t0 = now_ns();
        for (long i = 0; i < mib; i++)
            if (pwrite(fd, buf, sizeof(buf), (off_t)i << 20) != (ssize_t)sizeof(buf) ||
                fdatasync(fd) < 0) {
                perror("pwrite");
                return 1;
            }
        t1 = now_ns();
        for (long i = 0; i < mib; i++)
            if (pread(fd, buf, sizeof(buf), (off_t)i << 20) != (ssize_t)sizeof(buf)) {
                perror("pread");
                return 1;
            }
        t2 = now_ns();
        printf("file mib %ld write_flush_MBps %llu read_MBps %llu\n", mib,
               (unsigned long long)((uint64_t)mib * 1048576000ull / (t1 - t0)),
               (unsigned long long)((uint64_t)mib * 1048576000ull / (t2 - t1)));
        return 0;
    }
    return usage();
}
