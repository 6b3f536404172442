/* xl disk and vif specification parsers (lib/cfg_disk.c, lib/cfg_vif.c). */
#ifndef TANDEM_SPEC_H
#define TANDEM_SPEC_H

#include <stdint.h>

#include "tandem_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse xl disk spec words into one disk, like libxlutil's xlu_disk_parse
 * (grammar: docs/disk-spec.md). Each of the nspecs strings is parsed in
 * turn into the same disk, as xl does with separate argv words (joining
 * them with spaces does not give the same result). The caller init's disk;
 * settings already in it are kept unless a spec overrides them. After the
 * last word the defaults are filled in as xl does (format raw, or empty for
 * a CD-ROM without target; readwrite unless a CD-ROM or access=ro).
 *
 * Also accepts the Remus replication forms `tap:remus:HOST:PORT|aio:/path`,
 * `tap2:remus:...` and `remus:HOST:PORT|...`, which set remus_host and
 * remus_port.
 *
 * Returns 0, or TANDEM_ERR_INVAL with a message naming the spec word and
 * what is wrong with it (disk then holds partial values: dispose it),
 * TANDEM_ERR_UNSUPP for a parameter xl knows but Tandem has nowhere to put
 * (colo-*, backend=, ...; docs/disk-spec.md), or TANDEM_ERR_NOMEM.
 */
int tandem_disk_parse(tandem_ctx *ctx, tandem_device_disk *disk, int nspecs,
                      const char *const *specs);

/*
 * Parse one xl vif spec ("mac=00:16:3e:00:00:01,bridge=br0,rate=10Mb/s")
 * into nic, like xl's parse_nic_config (docs/vif-spec.md). The caller
 * init's nic. Unknown keys are rejected, as current xl does. Returns 0, or
 * TANDEM_ERR_INVAL naming the key and value at fault (nic then holds
 * partial values: dispose it), TANDEM_ERR_UNSUPP for a key xl accepts that
 * Tandem has no use for (backend, accel, colo_*, ...), or TANDEM_ERR_NOMEM.
 */
int tandem_nic_parse(tandem_ctx *ctx, tandem_device_nic *nic, const char *spec);

/*
 * Parse an xl vif rate "RATE[@INTERVAL]" (e.g. "10Mb/s@20ms"), like xl's
 * parse_vif_rate: RATE is NUMBER UNIT/s with UNIT one of b B Kb KB Mb MB
 * Gb GB, INTERVAL is NUMBER us|ms|s (default 50ms). Outputs the bytes
 * allowed per interval and the interval in microseconds. Returns 0 or
 * TANDEM_ERR_INVAL (zero rate or interval, overflow of either, bad syntax),
 * outputs untouched on failure.
 */
int tandem_rate_parse(tandem_ctx *ctx, const char *rate, uint64_t *bytes_per_interval,
                      uint32_t *interval_usecs);

#ifdef __cplusplus
}
#endif

#endif
