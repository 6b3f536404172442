/* libFuzzer target: disk spec words (NUL-separated) through tandem_disk_parse and JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"

#define MAX_WORDS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *text;
    const char *words[MAX_WORDS];
    tandem_device_disk disk, back;
    tandem_ctx *ctx = NULL;
    int n = 0;

    if (!buf || tandem_ctx_alloc(&ctx))
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    /* NUL bytes split the input into spec words, as separate argv words. */
    for (size_t i = 0; i <= size && n < MAX_WORDS; i += strlen(buf + i) + 1)
        words[n++] = buf + i;

    tandem_device_disk_init(&disk);
    tandem_device_disk_init(&back);
    if (tandem_disk_parse(ctx, &disk, n, words) == 0) {
        /* What the parser promises on success. */
        if (!disk.vdev || (!disk.pdev_path && !disk.removable))
            abort();
        if (disk.remus_host && (disk.remus_port < 1 || disk.remus_port > 65535))
            abort();
        text = tandem_device_disk_to_json(&disk);
        /* NULL only for strings that are not UTF-8, which JSON cannot carry. */
        if (text) {
            if (tandem_device_disk_from_json(ctx, &back, text) ||
                !tandem_device_disk_equal(&disk, &back))
                abort();
            free(text);
        }
    } else if (!tandem_ctx_error(ctx)[0]) {
        abort(); /* every failure explains itself */
    }
    tandem_device_disk_dispose(&disk);
    tandem_device_disk_dispose(&back);
    tandem_ctx_free(ctx);
    free(buf);
    return 0;
}
