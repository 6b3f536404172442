/* Library context: the last error of a caller's sequence of calls. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *tandem_error_name(int rc)
{
    switch (rc) {
    case TANDEM_OK: return "OK";
    case TANDEM_ERR_FAIL: return "FAIL";
    case TANDEM_ERR_INVAL: return "INVAL";
    case TANDEM_ERR_NOMEM: return "NOMEM";
    case TANDEM_ERR_NOTFOUND: return "NOTFOUND";
    case TANDEM_ERR_EXISTS: return "EXISTS";
    case TANDEM_ERR_IO: return "IO";
    case TANDEM_ERR_VERSION: return "VERSION";
    case TANDEM_ERR_BUSY: return "BUSY";
    case TANDEM_ERR_PROTO: return "PROTO";
    case TANDEM_ERR_TIMEOUT: return "TIMEOUT";
    case TANDEM_ERR_PERM: return "PERM";
    case TANDEM_ERR_UNSUPP: return "UNSUPP";
    }
    return "UNKNOWN";
}

int tandem_ctx_alloc(tandem_ctx **out)
{
    tandem_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return TANDEM_ERR_NOMEM;
    *out = ctx;
    return 0;
}

void tandem_ctx_free(tandem_ctx *ctx)
{
    free(ctx);
}

const char *tandem_ctx_error(const tandem_ctx *ctx)
{
    return ctx ? ctx->errmsg : "";
}

int tandem_ctx_errcode(const tandem_ctx *ctx)
{
    return ctx ? ctx->errcode : 0;
}

void tandem_ctx_clear_error(tandem_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->errcode = 0;
    ctx->errmsg[0] = '\0';
}

int tandem_verror(tandem_ctx *ctx, int rc, const char *fmt, va_list ap)
{
    if (!ctx)
        return rc;
    ctx->errcode = rc;
    vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
    return rc;
}

int tandem_error(tandem_ctx *ctx, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tandem_verror(ctx, rc, fmt, ap);
    va_end(ap);
    return rc;
}

int tandem_error_errno(tandem_ctx *ctx, int rc, int errno_value, const char *fmt, ...)
{
    va_list ap;
    size_t len;

    if (!ctx)
        return rc;
    va_start(ap, fmt);
    tandem_verror(ctx, rc, fmt, ap);
    va_end(ap);
    len = strlen(ctx->errmsg);
    snprintf(ctx->errmsg + len, sizeof(ctx->errmsg) - len, ": %s", strerror(errno_value));
    return rc;
}

void tandem_error_prefix(tandem_ctx *ctx, const char *fmt, ...)
{
    char prefix[256], old[sizeof(ctx->errmsg)];
    va_list ap;

    if (!ctx)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, ctx->errmsg, sizeof(old));
    /* Truncation keeps the front of the message, which names the input. */
    if (snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s: %s", prefix, old) < 0)
        memcpy(ctx->errmsg, old, sizeof(old));
}
