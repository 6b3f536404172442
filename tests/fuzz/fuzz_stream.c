/* libFuzzer target for the stream reader: tandem_stream_validate() over arbitrary bytes in a memfd. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tandem.h"
#include "tandem_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    return 0;
}
