/* Public interface of libtandem: context, error codes and the toolstack API. */
#ifndef TANDEM_H
#define TANDEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem_types.h" /* generated from lib/idl/types.idl */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes. Every library call returns 0 on success or one of these
 * (negative) codes; the context then holds a message naming the input and
 * what was wrong with it (tandem_ctx_error()). The library never exits and
 * never prints on its own.
 */
enum tandem_error {
    TANDEM_OK = 0,
    TANDEM_ERR_FAIL = -1,     /* generic failure, see the message */
    TANDEM_ERR_INVAL = -2,    /* bad input from the caller or a user */
    TANDEM_ERR_NOMEM = -3,    /* allocation failed */
    TANDEM_ERR_NOTFOUND = -4, /* no such domain, file, device */
    TANDEM_ERR_EXISTS = -5,   /* name or id already in use */
    TANDEM_ERR_IO = -6,       /* system call or stream I/O failed */
    TANDEM_ERR_VERSION = -7,  /* incompatible version (ABI, stream, protocol) */
    TANDEM_ERR_BUSY = -8,     /* object is in a state that forbids the call */
    TANDEM_ERR_PROTO = -9,    /* malformed message or stream */
    TANDEM_ERR_TIMEOUT = -10, /* peer did not answer in time */
    TANDEM_ERR_PERM = -11,    /* permission denied */
    TANDEM_ERR_UNSUPP = -12,  /* valid request this host or build cannot do */
};

/* Short constant name of an error code ("INVAL"), never NULL. */
const char *tandem_error_name(int rc);

typedef struct tandem_ctx tandem_ctx;

/*
 * Allocate a context. Returns 0 or TANDEM_ERR_NOMEM. The context is not
 * thread-safe; use one per thread.
 */
int tandem_ctx_alloc(tandem_ctx **out);
/* Free a context; NULL is fine. */
void tandem_ctx_free(tandem_ctx *ctx);

/*
 * Message recorded by the last failing call on this context, or "" when
 * no call has failed. Valid until the next call on the context.
 */
const char *tandem_ctx_error(const tandem_ctx *ctx);
/* Code of the last failure (0 when none). */
int tandem_ctx_errcode(const tandem_ctx *ctx);
/* Forget the last failure. */
void tandem_ctx_clear_error(tandem_ctx *ctx);

/*
 * Record a failure and return rc, so callers can write
 * `return tandem_error(ctx, TANDEM_ERR_INVAL, "...")`. Public so that
 * applications built on the library (and its own components) report in
 * the same way. A NULL ctx only returns rc.
 */
int tandem_error(tandem_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tandem_verror(tandem_ctx *ctx, int rc, const char *fmt, va_list ap);
/* Like tandem_error, appending ": strerror(errno_value)". */
int tandem_error_errno(tandem_ctx *ctx, int rc, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefix the recorded message with "prefix: " (adds context on the way up). */
void tandem_error_prefix(tandem_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#include "tandem_cfg.h"    /* xl.cfg files */
#include "tandem_spec.h"   /* disk and vif specs */
#include "tandem_domcfg.h" /* xl.cfg to domain config */
#include "tandem_domain.h" /* domain lifecycle */
#include "tandem_migrate.h" /* live migration */
#include "tandem_checkpoint.h" /* save, restore, checkpoint callbacks */
#include "tandem_remus.h"  /* Remus: continuous checkpointing and failover */

#endif
