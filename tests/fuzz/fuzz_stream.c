/* libFuzzer target for the stream reader: tandem_stream_validate() over arbitrary bytes in a memfd.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tandem.h"
#include "tandem_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A small "guest" for the direct-to-memory path; pfns past it are refused. */
#define GUEST_PAGES 64
static uint8_t guest[GUEST_PAGES][65536];

static void *dest(uint64_t pfn, void *opaque)
{
    return pfn < GUEST_PAGES ? guest[pfn] : NULL;
}

/* The restore path: records straight into guest memory until END or the first error. */
static void read_into(tandem_ctx *ctx, int fd)
{
    struct tandem_stream_record rec;
    tandem_stream_reader *r;

    if (lseek(fd, 0, SEEK_SET) < 0 || tandem_stream_reader_open(ctx, fd, &r) < 0)
        abort();
    if (tandem_stream_read_header(r, NULL) == 0)
        while (tandem_stream_next_into(r, &rec, dest, NULL) == 0 && rec.type != TANDEM_REC_END)
            ;
    tandem_stream_reader_free(r);
}

static int apply_page(uint64_t pfn, const void *data, void *opaque)
{
    return pfn < GUEST_PAGES ? 0 : 1;
}

/* The Remus backup path: stage each state, commit it at its CHECKPOINT. */
static void stage(tandem_ctx *ctx, int fd)
{
    static const struct tandem_stream_apply_ops ops = {.page = apply_page};
    struct tandem_stream_record rec;
    tandem_stream_reader *r;
    tandem_stream_stage *st = NULL;
    int rc;

    if (lseek(fd, 0, SEEK_SET) < 0 || tandem_stream_reader_open(ctx, fd, &r) < 0)
        abort();
    if (tandem_stream_read_header(r, NULL) == 0 && tandem_stream_stage_alloc(r, &st) == 0) {
        while (tandem_stream_next(r, &rec) == 0 && (rc = tandem_stream_stage_add(st, &rec)) >= 0) {
            if (rc == 1)
                tandem_stream_stage_commit(st, &ops, NULL);
            if (rc == 2)
                break;
        }
    }
    tandem_stream_stage_free(st);
    tandem_stream_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static tandem_ctx *ctx;
    struct tandem_stream_summary sum = {0};

    if (fd < 0) {
        fd = memfd_create("fuzz-stream", 0);
        if (fd < 0 || tandem_ctx_alloc(&ctx) < 0)
            abort();
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size ||
        lseek(fd, 0, SEEK_SET) < 0)
        abort();
    int rc = tandem_stream_validate(ctx, fd, &sum);
    /* An accepted stream has a config and at least one checkpoint; a refused one says why. */
    if (rc == 0 && (!sum.config_json || sum.checkpoints == 0))
        abort();
    if (rc < 0 && tandem_ctx_error(ctx)[0] == '\0')
        abort();
    tandem_stream_summary_dispose(&sum);
    tandem_ctx_clear_error(ctx);
    read_into(ctx, fd);
    stage(ctx, fd);
    return 0;
}
