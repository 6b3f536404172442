/* xl disk spec parser (docs/disk-spec.md). */
#include "internal.h"

int tandem_disk_parse(tandem_ctx *ctx, tandem_device_disk *disk, int nspecs,
                      const char *const *specs)
{
    return tandem_error(ctx, TANDEM_ERR_UNSUPP, "disk specs: parser not written yet");
}
