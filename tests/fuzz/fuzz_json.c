/* libFuzzer target: domain configs and domain info as JSON, as they arrive from streams and sockets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse; on success the value must survive to_json → from_json unchanged. */
#define ROUNDTRIP(T)                                                                               \
    do {                                                                                           \
        tandem_##T a, b;                                                                           \
        char *out;                                                                                 \
        tandem_##T##_init(&a);                                                                     \
        tandem_##T##_init(&b);                                                                     \
        if (tandem_##T##_from_json(ctx, &a, text) == 0) {                                          \
            out = tandem_##T##_to_json(&a);                                                        \
            if (out) {                                                                             \
                if (tandem_##T##_from_json(ctx, &b, out) || !tandem_##T##_equal(&a, &b))           \
                    abort();                                                                       \
                free(out);                                                                         \
            }                                                                                      \
        } else if (!tandem_ctx_error(ctx)[0]) {                                                    \
            abort(); /* every failure says why */                                                  \
        }                                                                                          \
        tandem_##T##_dispose(&a);                                                                  \
        tandem_##T##_dispose(&b);                                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    tandem_ctx *ctx = NULL;

    if (!text || tandem_ctx_alloc(&ctx))
        abort();
    ROUNDTRIP(domain_config);
    tandem_ctx_clear_error(ctx);
    ROUNDTRIP(dominfo);
    tandem_ctx_free(ctx);
    free(text);
    return 0;
}
