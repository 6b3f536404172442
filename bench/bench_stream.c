/* Stream writer/reader throughput against raw sequential write/read of the same bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tandem.h"
#include "tandem_stream.h"

#define PS 4096
#define CHUNK (4u << 20)
#define PAGES_PER_CALL 16384

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, tandem_ctx *ctx)
{
    fprintf(stderr, "bench_stream: %s: %s\n", what, ctx ? tandem_ctx_error(ctx) : strerror(errno));
    exit(1);
}

/* Guest-like memory: random pages, or every other page zero when half_zero. */
static uint8_t *make_memory(size_t bytes, int half_zero)
{
    uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t x = 0x9e3779b97f4a7c15ull;

    if (m == MAP_FAILED)
        die("mmap", NULL);
    memset(m, 0, bytes); /* fault every page in, as a running guest's memory is */
    for (size_t p = 0; p < bytes / PS; p++) {
        uint64_t *q = (uint64_t *)(m + p * PS);
        if (half_zero && p % 2 == 0)
            continue;
        for (size_t i = 0; i < PS / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            q[i] = x;
        }
    }
    return m;
}

/* Writes either replace the file (fresh blocks) or overwrite it in place (warm page cache). */
static int in_place;

static int open_target(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | (in_place ? 0 : O_TRUNC), 0600);
    if (fd < 0)
        die(path, NULL);
    return fd;
}

static double raw_write(const char *path, const uint8_t *mem, size_t bytes)
{
    int fd = open_target(path);
    double t = now();
    for (size_t off = 0; off < bytes;) {
        ssize_t n = write(fd, mem + off, bytes - off < CHUNK ? bytes - off : CHUNK);
        if (n <= 0)
            die("raw write", NULL);
        off += (size_t)n;
    }
    t = now() - t;
    close(fd);
    return t;
}

static double raw_read(const char *path, uint8_t *dst, size_t bytes)
{
    int fd = open(path, O_RDONLY);
    double t = now();
    for (size_t off = 0; off < bytes;) {
        ssize_t n = read(fd, dst + off, bytes - off < CHUNK ? bytes - off : CHUNK);
        if (n <= 0)
            die("raw read", NULL);
        off += (size_t)n;
    }
    t = now() - t;
    close(fd);
    return t;
}

/* Save-like: header, DOMAIN_CONFIG, every page, END. */
static double stream_write(tandem_ctx *ctx, const char *path, const uint8_t *mem, size_t bytes,
                           uint32_t comp, uint64_t *out_bytes)
{
    static uint64_t pfns[PAGES_PER_CALL];
    static const void *pp[PAGES_PER_CALL];
    struct tandem_stream_params p = {PS, TANDEM_STREAM_SAVE, comp, 0};
    tandem_stream_writer *w;
    size_t npages = bytes / PS;
    int fd = open_target(path);
    const char *cfg = "{\"c_info\":{\"name\":\"bench\"}}";

    double t = now();
    if (tandem_stream_writer_open(ctx, fd, &p, &w) < 0 ||
        tandem_stream_write_config(w, cfg, strlen(cfg)) < 0)
        die("stream open", ctx);
    for (size_t i = 0; i < npages; i += PAGES_PER_CALL) {
        size_t n = npages - i < PAGES_PER_CALL ? npages - i : PAGES_PER_CALL;
        for (size_t k = 0; k < n; k++) {
            pfns[k] = i + k;
            pp[k] = mem + (i + k) * PS;
        }
        if (tandem_stream_write_pages(w, pfns, pp, n) < 0)
            die("stream write", ctx);
    }
    if (tandem_stream_flush(w) < 0)
        die("stream flush", ctx);
    t = now() - t;
    *out_bytes = tandem_stream_bytes(w);
    tandem_stream_writer_free(w);
    close(fd);
    return t;
}

static int put_page(uint64_t pfn, const void *data, void *opaque)
{
    uint8_t *dst = (uint8_t *)opaque + pfn * PS;
    if (data)
        memcpy(dst, data, PS);
    else
        memset(dst, 0, PS);
    return 0;
}

static void *page_dest(uint64_t pfn, void *opaque)
{
    return (uint8_t *)opaque + pfn * PS;
}

/*
 * Restore-like: every record framed and checked; pages either decoded and
 * copied (direct = 0, what a Remus backup's staging does) or read straight
 * into destination memory (direct = 1, tandem_stream_next_into).
 */
static double stream_read(tandem_ctx *ctx, const char *path, uint8_t *dst, uint64_t bytes,
                          int direct)
{
    struct tandem_stream_record rec;
    tandem_stream_reader *r;
    int fd = open(path, O_RDONLY);

    double t = now();
    if (fd < 0 || tandem_stream_reader_open(ctx, fd, &r) < 0 ||
        tandem_stream_read_header(r, NULL) < 0)
        die("stream read header", ctx);
    while (tandem_stream_offset(r) < bytes) {
        if (direct) {
            if (tandem_stream_next_into(r, &rec, page_dest, dst) < 0)
                die("stream next_into", ctx);
            continue;
        }
        if (tandem_stream_next(r, &rec) < 0)
            die("stream next", ctx);
        if (rec.type == TANDEM_REC_PAGE_BATCH &&
            tandem_stream_decode_pages(r, &rec, put_page, dst) != 0)
            die("stream decode", ctx);
    }
    t = now() - t;
    tandem_stream_reader_free(r);
    close(fd);
    return t;
}

static void report(const char *what, size_t bytes, double t_stream, double t_raw)
{
    double gs = (double)bytes / t_stream / 1e9, gr = (double)bytes / t_raw / 1e9;
    printf("  %-46s stream %6.2f GB/s  raw %6.2f GB/s  ratio %.2f\n", what, gs, gr, gs / gr);
}

static double min2(double a, double b)
{
    return a < b ? a : b;
}

#define REPEAT 3

static void run(tandem_ctx *ctx, size_t mib, int half_zero, const char *file)
{
    size_t bytes = mib << 20;
    uint8_t *mem = make_memory(bytes, half_zero), *dst;
    const char *kind = half_zero ? "half-zero" : "random";
    char what[128];
    uint64_t sbytes = 0;
    double ts = 1e9, tr = 1e9;

    dst = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (dst == MAP_FAILED)
        die("mmap", NULL);
    memset(dst, 1, bytes); /* fault in, as guest memory of a restored domain would be */

    /* The format's own cost: /dev/null takes the bytes without reading them. */
    for (int i = 0; i < REPEAT; i++)
        ts = min2(ts, stream_write(ctx, "/dev/null", mem, bytes, TANDEM_COMPRESS_NONE, &sbytes));
    printf("  %-46s stream %6.2f GB/s  (raw write to /dev/null reads nothing: no ratio)\n",
           (snprintf(what, sizeof(what), "write %zu MiB %s -> /dev/null", mib, kind), what),
           (double)bytes / ts / 1e9);

    /* A new file each time: the file system allocates blocks and throttles dirty pages. */
    in_place = 0;
    ts = tr = 1e9;
    for (int i = 0; i < 2; i++) {
        tr = min2(tr, raw_write(file, mem, bytes));
        ts = min2(ts, stream_write(ctx, file, mem, bytes, TANDEM_COMPRESS_NONE, &sbytes));
    }
    snprintf(what, sizeof(what), "write %zu MiB %s -> new file", mib, kind);
    report(what, bytes, ts, tr);
    printf("    stream file %.1f MiB for %zu MiB of memory\n", (double)sbytes / (1 << 20), mib);

    /* Overwriting the same file in place: page-cache speed, what a fast disk would allow. */
    in_place = 1;
    ts = tr = 1e9;
    for (int i = 0; i < REPEAT; i++) {
        tr = min2(tr, raw_write(file, mem, bytes));
        ts = min2(ts, stream_write(ctx, file, mem, bytes, TANDEM_COMPRESS_NONE, &sbytes));
    }
    in_place = 0;
    snprintf(what, sizeof(what), "write %zu MiB %s -> file in place", mib, kind);
    report(what, bytes, ts, tr);

    /* Reads from a warm page cache: decoded and copied, then straight into memory. */
    double td = 1e9;
    ts = tr = 1e9;
    for (int i = 0; i < REPEAT; i++) {
        memset(dst, 1, bytes);
        ts = min2(ts, stream_read(ctx, file, dst, sbytes, 0));
        if (memcmp(dst, mem, bytes) != 0)
            die("read back differs from what was written", NULL);
        memset(dst, 1, bytes);
        td = min2(td, stream_read(ctx, file, dst, sbytes, 1));
        if (memcmp(dst, mem, bytes) != 0)
            die("direct read back differs from what was written", NULL);
    }
    raw_write(file, mem, bytes);
    for (int i = 0; i < REPEAT; i++)
        tr = min2(tr, raw_read(file, dst, bytes));
    snprintf(what, sizeof(what), "read  %zu MiB %s <- file, decode+copy", mib, kind);
    report(what, bytes, ts, tr);
    snprintf(what, sizeof(what), "read  %zu MiB %s <- file, into memory", mib, kind);
    report(what, bytes, td, tr);

    if (mib <= 256) {
        for (uint32_t c = TANDEM_COMPRESS_LZ4; c <= TANDEM_COMPRESS_ZSTD; c++) {
            const char *cn = c == TANDEM_COMPRESS_LZ4 ? "lz4" : "zstd";
            in_place = 1;
            tr = raw_write(file, mem, bytes);
            ts = stream_write(ctx, file, mem, bytes, c, &sbytes);
            in_place = 0;
            snprintf(what, sizeof(what), "write %zu MiB %s -> file in place, %s", mib, kind, cn);
            report(what, bytes, ts, tr);
            memset(dst, 1, bytes);
            ts = stream_read(ctx, file, dst, sbytes, 1);
            if (memcmp(dst, mem, bytes) != 0)
                die("compressed read back differs", NULL);
            raw_write(file, mem, bytes);
            tr = raw_read(file, dst, bytes);
            snprintf(what, sizeof(what), "read  %zu MiB %s <- file, %s (%.0f MiB)", mib, kind, cn,
                     (double)sbytes / (1 << 20));
            report(what, bytes, ts, tr);
        }
    }
    unlink(file);
    munmap(mem, bytes);
    munmap(dst, bytes);
}

int main(int argc, char **argv)
{
    tandem_ctx *ctx;
    char file[] = "/tmp/bench_stream.XXXXXX";
    int fd = mkstemp(file);

    if (fd < 0 || tandem_ctx_alloc(&ctx) < 0)
        die("setup", NULL);
    close(fd);
    printf("bench_stream: page cache writes/reads of %s (no fsync), 4 MiB raw chunks\n", file);
    for (int i = 1; i < argc || i == 1; i++) {
        size_t mib = argc > 1 ? strtoul(argv[i], NULL, 10) : 256;
        if (mib == 0) {
            fprintf(stderr, "bench_stream: sizes are MiB counts, e.g. 256 1024\n");
            return 2;
        }
        run(ctx, mib, 0, file);
        run(ctx, mib, 1, file);
    }
    unlink(file);
    tandem_ctx_free(ctx);
    return 0;
}
