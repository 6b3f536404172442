/* From a parsed xl.cfg file to a validated tandem_domain_config (lib/cfg_domain.c). */
#ifndef TANDEM_DOMCFG_H
#define TANDEM_DOMCFG_H

#include "tandem_cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Fill *out (which the caller has init'ed) from cfg. Every option is
 * validated; a failure returns TANDEM_ERR_INVAL with a message of the form
 * "FILE:LINE: OPTION: what is wrong" and leaves *out to be disposed by the
 * caller. Relative `kernel` paths are resolved against the current
 * directory, then against the directory of the config file. Recognised
 * options are listed in docs/xl-cfg.md ("Domain options").
 */
int tandem_domain_config_from_cfg(tandem_ctx *ctx, const tandem_cfg *cfg,
                                  tandem_domain_config *out);

/*
 * Parse FILE, apply the KEY=VALUE overrides in order (xl create's
 * trailing arguments) and convert. *out must be init'ed by the caller.
 */
int tandem_domain_config_load(tandem_ctx *ctx, const char *path, int noverrides,
                              char *const *overrides, tandem_domain_config *out);

/*
 * Check a domain name: 1..64 of [A-Za-z0-9_.-], not starting with '.' or
 * '-', not all digits (those are domids). 0, or TANDEM_ERR_INVAL with a
 * message naming the name and what is wrong with it.
 */
int tandem_domain_name_check(tandem_ctx *ctx, const char *name);

#ifdef __cplusplus
}
#endif

#endif
