/* libFuzzer target: vif specs and rates through tandem_nic_parse/tandem_rate_parse and JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = strndup((const char *)data, size), *text;
    tandem_device_nic nic, back;
    tandem_ctx *ctx = NULL;
    uint64_t bytes = 0;
    uint32_t usecs = 0;

    if (!spec || tandem_ctx_alloc(&ctx))
        abort();
    tandem_device_nic_init(&nic);
    tandem_device_nic_init(&back);
    if (tandem_nic_parse(ctx, &nic, spec) == 0) {
        text = tandem_device_nic_to_json(&nic);
        if (text) {
            if (tandem_device_nic_from_json(ctx, &back, text) ||
                !tandem_device_nic_equal(&nic, &back))
                abort();
            free(text);
        }
    } else if (!tandem_ctx_error(ctx)[0]) {
        abort();
    }
    if (tandem_rate_parse(ctx, spec, &bytes, &usecs) == 0 && usecs == 0)
        abort(); /* a zero interval is never accepted */
    tandem_device_nic_dispose(&nic);
    tandem_device_nic_dispose(&back);
    tandem_ctx_free(ctx);
    free(spec);
    return 0;
}
