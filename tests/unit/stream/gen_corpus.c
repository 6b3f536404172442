/* Writes small valid streams (every record type, each codec) as the fuzz_stream seed corpus. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "stream_sample.h"
#include "tandem.h"

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int states;
        uint32_t comp;
    } seeds[] = {
        {"save-plain", 1, TANDEM_COMPRESS_NONE},
        {"save-lz4", 1, TANDEM_COMPRESS_LZ4},
        {"remus-zstd", 2, TANDEM_COMPRESS_ZSTD},
    };
    tandem_ctx *ctx;
    char path[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (tandem_ctx_alloc(&ctx) < 0)
        return 1;
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", argv[1], seeds[i].name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || sample_stream(ctx, fd, seeds[i].states, seeds[i].comp, NULL) < 0) {
            fprintf(stderr, "%s: %s\n", path, fd < 0 ? "cannot create" : tandem_ctx_error(ctx));
            return 1;
        }
        close(fd);
    }
    tandem_ctx_free(ctx);
    return 0;
}
