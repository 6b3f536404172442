/* Guest SDK block device: synchronous read/write/flush on a disk from the boot info. */
#include <string.h>

#include "tandem_dev.h"
#include "tandem_guest.h"

/* One vCPU, no interrupts: calls never nest, so one static argument struct suffices. */
static struct tandem_hc_block blk_args;

const struct tandem_device *tg_dev(unsigned handle)
{
    const struct tandem_boot_info *bi = tg_boot_info();

    if (handle >= bi->num_devices || handle >= TANDEM_ABI_MAX_DEVICES ||
        bi->devices[handle].type == TANDEM_DEVICE_NONE)
        return NULL;
    return &bi->devices[handle];
}

int tg_dev_find(uint32_t type, unsigned nth)
{
    const struct tandem_boot_info *bi = tg_boot_info();

    for (unsigned i = 0; i < bi->num_devices && i < TANDEM_ABI_MAX_DEVICES; i++)
        if (bi->devices[i].type == type && nth-- == 0)
            return (int)i;
    return -1;
}

static int blk_call(unsigned nr, unsigned handle, uint64_t offset, uintptr_t buf, size_t len)
{
    blk_args.handle = handle;
    blk_args.pad0 = 0;
    blk_args.offset = offset;
    blk_args.data = buf;
    blk_args.len = len;
    blk_args.ret = TANDEM_HC_ENOSYS;
    tg_hypercall(nr, &blk_args);
    return (int)blk_args.ret;
}

int tg_block_read(unsigned handle, uint64_t offset, void *buf, size_t len)
{
    return blk_call(TANDEM_HC_BLOCK_READ, handle, offset, (uintptr_t)buf, len);
}

int tg_block_write(unsigned handle, uint64_t offset, const void *buf, size_t len)
{
    return blk_call(TANDEM_HC_BLOCK_WRITE, handle, offset, (uintptr_t)buf, len);
}

int tg_block_flush(unsigned handle)
{
    return blk_call(TANDEM_HC_BLOCK_FLUSH, handle, 0, 0, 0);
}
