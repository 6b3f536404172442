/* libFuzzer target for the xl.cfg parser: parsing, overrides, lookups and JSON must not misbehave.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tandem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* More overrides per input only slow the fuzzer down (each one copies the config). */
#define MAX_OVERRIDES 16

/* Abort (a finding) unless msg is one line that names where the error is. */
static void check_message(tandem_ctx *ctx)
{
    const char *msg = tandem_ctx_error(ctx);
    if (strncmp(msg, "fuzz.cfg:", 9) && strncmp(msg, TANDEM_CFG_CMDLINE_SOURCE ":", 15))
        abort();
    if (strchr(msg, '\n'))
        abort();
}

/* Every lookup on every name: none may crash, and results must agree with the value's kind. */
static void walk(tandem_ctx *ctx, const tandem_cfg *cfg)
{
    for (int i = 0; i < tandem_cfg_count(cfg); i++) {
        const char *name = tandem_cfg_name_at(cfg, i), *s;
        const tandem_cfg_value *l;
        char **sl;
        long v;
        int b, n, rs = tandem_cfg_get_string(ctx, cfg, name, &s);
        int rl = tandem_cfg_get_list(ctx, cfg, name, &l);
        if (!name || tandem_cfg_line(cfg, name) <= 0 || (rs == 0) == (rl == 0))
            abort();
        if (rl == 0)
            for (int k = 0; k < tandem_cfg_value_count(l); k++)
                if (!tandem_cfg_value_elem(l, k))
                    abort();
        (void)tandem_cfg_get_long(ctx, cfg, name, &v);
        (void)tandem_cfg_get_bool(ctx, cfg, name, &b);
        if (tandem_cfg_get_string_list(ctx, cfg, name, &sl, &n) == 0) {
            if (sl[n])
                abort();
            tandem_cfg_free_string_list(sl);
        }
    }
}

static char *checked_json(const tandem_cfg *cfg)
{
    char *text = tandem_cfg_to_json(cfg);
    json_error_t err;
    json_t *root;

    if (!text)
        abort();
    if (!(root = json_loads(text, 0, &err)) || !json_is_array(root))
        abort();
    json_decref(root);
    return text;
}

/*
 * Input: config text, optionally followed by "\n%%\n" and one override
 * per line, so that overrides are fuzzed against a parsed file.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *sep = NULL;
    tandem_ctx *ctx = NULL;
    tandem_cfg *cfg = NULL;
    size_t flen = size;
    int rc;

    if (tandem_ctx_alloc(&ctx))
        return 0;
    for (size_t i = 0; i + 4 <= size; i++)
        if (!memcmp(text + i, "\n%%\n", 4)) {
            sep = text + i + 4;
            flen = i;
            break;
        }
    rc = tandem_cfg_parse_string(ctx, "fuzz.cfg", text, flen, &cfg);
    if (rc) {
        if (cfg || rc != TANDEM_ERR_INVAL)
            abort();
        check_message(ctx);
        goto out;
    }
    free(checked_json(cfg));
    walk(ctx, cfg);
    for (int index = 1; sep && sep < text + size && index <= MAX_OVERRIDES; index++) {
        const char *nl = memchr(sep, '\n', (size_t)(text + size - sep));
        size_t len = nl ? (size_t)(nl - sep) : (size_t)(text + size - sep);
        char *kv = strndup(sep, len), *before = checked_json(cfg), *after;
        if (!kv)
            abort();
        rc = tandem_cfg_apply_override(ctx, cfg, kv, index);
        after = checked_json(cfg);
        if (rc) {
            /* A failed override leaves the config as it was. */
            if (rc != TANDEM_ERR_INVAL || strcmp(before, after))
                abort();
            check_message(ctx);
        }
        free(kv);
        free(before);
        free(after);
        walk(ctx, cfg);
        sep = nl ? nl + 1 : text + size;
    }
out:
    tandem_cfg_free(cfg);
    tandem_ctx_free(ctx);
    return 0;
}
