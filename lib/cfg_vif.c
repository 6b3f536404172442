/* xl vif spec parser (docs/vif-spec.md). */
#include "internal.h"

int tandem_nic_parse(tandem_ctx *ctx, tandem_device_nic *nic, const char *spec)
{
    return tandem_error(ctx, TANDEM_ERR_UNSUPP, "vif specs: parser not written yet");
}

int tandem_rate_parse(tandem_ctx *ctx, const char *rate, uint64_t *bytes_per_interval,
                      uint32_t *interval_usecs)
{
    return tandem_error(ctx, TANDEM_ERR_UNSUPP, "vif rates: parser not written yet");
}
