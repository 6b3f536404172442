/* bench_rxpages: socket bytes into fresh memfd guest RAM: via the mapping, pwrite or splice. */
/*
 * Usage: bench_rxpages mmap|pwrite|splice MIB [FALLOCATE 0|1]
 * mmap: MADV_POPULATE_WRITE per 2 MiB, then read() 256 KiB at a time into the mapping (what the
 * restoring VMM did); pwrite: read() into a 256 KiB buffer, pwrite() into the memfd (shmem does
 * not clear a page written whole); splice: socket -> pipe -> memfd. A writer thread feeds the
 * socket from a 4 MiB buffer. Prints wall time and the receiving thread's CPU time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static size_t SIZE;
static int sv[2];
static uint8_t *src;
#define SRC (4u << 20)

static void *writer(void *a)
{
    (void)a;
    for (size_t off = 0; off < SIZE;) {
        size_t n = SIZE - off < SRC ? SIZE - off : SRC;
        ssize_t w = write(sv[0], src, n);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        off += (size_t)w;
    }
    return NULL;
}

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void readfull(int fd, void *b, size_t n)
{
    for (size_t g = 0; g < n;) {
        ssize_t r = read(fd, (uint8_t *)b + g, n - g);
        if (r <= 0) {
            perror("read");
            exit(1);
        }
        g += (size_t)r;
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    SIZE = argc > 2 ? (size_t)atol(argv[2]) << 20 : 0;
    int falloc = argc > 3 && atoi(argv[3]);
    pthread_t th;
    int fd = memfd_create("ram", MFD_CLOEXEC);
    src = malloc(SRC);
    for (size_t i = 0; i < SRC; i++)
        src[i] = (uint8_t)(rand() >> 7);
    if (ftruncate(fd, (off_t)SIZE) < 0)
        return 1;
    if (falloc && fallocate(fd, 0, 0, (off_t)SIZE) < 0) {
        perror("fallocate");
        return 1;
    }
    uint8_t *base = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (argc < 3 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        fprintf(stderr, "usage: bench_rxpages mmap|pwrite|splice MIB [FALLOCATE]\n");
        return 2;
    }
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
    pthread_create(&th, NULL, writer, NULL);
    if (!strcmp(mode, "mmap")) {
        /* today's VMM: populate each 2 MiB chunk, readv 64 pages at a time into the mapping */
        for (size_t off = 0; off < SIZE; off += 2u << 20) {
            madvise(base + off, 2u << 20, MADV_POPULATE_WRITE);
            for (size_t o = off; o < off + (2u << 20); o += 256 << 10)
                readfull(sv[1], base + o, 256 << 10);
        }
    } else if (!strcmp(mode, "pwrite")) {
        /* read into a bounce buffer, pwrite into the memfd (shmem SGP_WRITE: no clearing) */
        uint8_t *buf = aligned_alloc(4096, 256 << 10);
        for (size_t off = 0; off < SIZE; off += 256 << 10) {
            readfull(sv[1], buf, 256 << 10);
            if (pwrite(fd, buf, 256 << 10, (off_t)off) != 256 << 10) {
                perror("pwrite");
                return 1;
            }
        }
    } else if (!strcmp(mode, "splice")) {
        /* socket -> pipe -> memfd, no user copy */
        int p[2];
        if (pipe2(p, 0) < 0)
            return 1;
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        for (size_t off = 0; off < SIZE;) {
            ssize_t n = splice(sv[1], NULL, p[1], NULL, 256 << 10, SPLICE_F_MOVE);
            if (n <= 0) {
                perror("splice in");
                return 1;
            }
            for (ssize_t left = n; left > 0;) {
                loff_t o = (loff_t)off;
                ssize_t m = splice(p[0], NULL, fd, &o, (size_t)left, SPLICE_F_MOVE);
                if (m <= 0) {
                    perror("splice out");
                    return 1;
                }
                left -= m;
                off += (size_t)m;
            }
        }
    }
    double c1 = now(CLOCK_THREAD_CPUTIME_ID);
    pthread_join(th, NULL);
    double w1 = now(CLOCK_MONOTONIC);
    /* check a sample */
    if (memcmp(base + SIZE - SRC, src + ((SIZE - SRC) % SRC), 4096)) {
        fprintf(stderr, "mismatch\n");
        return 1;
    }
    printf("%-7s falloc=%d %zu MiB: wall %.0f ms (%.0f MB/s), receiver CPU %.0f ms\n", mode, falloc,
           SIZE >> 20, (w1 - w0) * 1e3, SIZE / (w1 - w0) / 1e6, (c1 - c0) * 1e3);
    return 0;
}
