/* tandem_domain_save: one checkpoint with the default callbacks (xl save / libxl_domain_suspend).
 */
#include "domain_internal.h"
#include "tandem_checkpoint.h"

int tandem_domain_save(tandem_ctx *ctx, uint32_t domid, int fd, unsigned flags,
                       tandem_progress_cb progress, void *opaque)
{
    struct tandem_save_params params = {.flags = flags};

    /* The same path Remus and migration take: suspend -> postcopy -> checkpoint, once. */
    return tandem_domain_checkpoint(ctx, domid, fd, &params, &tandem_checkpoint_default_callbacks,
                                    progress, opaque, NULL);
}
