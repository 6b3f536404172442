/* Guest SDK: sets up a device's shared-memory ring on first use (RING_SETUP), else per-request
 * calls. */
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"
#include "tandem_dev.h"
#include "tandem_guest.h"

#define NET_SLOTS 256u

/* 0 = not tried yet, 1 = ring in use, -1 = per-request hypercalls. */
static int ring_state[TANDEM_ABI_MAX_DEVICES];
static struct tandem_ring *rings[TANDEM_ABI_MAX_DEVICES];
static struct tandem_hc_ring_setup setup_args;

static struct tandem_ring *ring_create(unsigned handle)
{
    const struct tandem_device *d = tg_dev(handle);
    uint32_t slots = 0, slot_size = 0;
    size_t size = TANDEM_RING_HDR_SIZE;
    struct tandem_ring *r;
    void *mem;

    /*
     * tg_rings=0 on the command line keeps the per-request calls for every
     * device, tg_blk_ring=0 for disks (benchmarks and tests compare both).
     */
    if (!d || tg_cmdline_long("tg_rings", 1) == 0 ||
        (d->type == TANDEM_DEVICE_DISK && tg_cmdline_long("tg_blk_ring", -1) == 0))
        return NULL;
    if (d->type == TANDEM_DEVICE_VIF) {
        slots = NET_SLOTS;
        slot_size = (TANDEM_RING_SLOT_HDR + d->mtu + 14u + 63u) & ~63u;
        size += (size_t)2 * slots * slot_size;
    }
    mem =
        malloc(size + TANDEM_ABI_PAGE_SIZE); /* never freed: the ring lives as long as the guest */
    if (!mem)
        return NULL;
    r = (struct tandem_ring *)(((uintptr_t)mem + TANDEM_ABI_PAGE_SIZE - 1) &
                               ~(uintptr_t)(TANDEM_ABI_PAGE_SIZE - 1));
    memset(r, 0, size);
    r->magic = TANDEM_RING_MAGIC;
    r->kind = d->type;
    r->slots = slots;
    r->slot_size = slot_size;
    setup_args.handle = handle;
    setup_args.ring = (uintptr_t)r;
    setup_args.size = size;
    setup_args.ret = TANDEM_HC_ENOSYS;
    tg_hypercall(TANDEM_HC_RING_SETUP, &setup_args);
    if (setup_args.ret != 0) {
        free(mem);
        return NULL;
    }
    return r;
}

struct tandem_ring *tg_ring(unsigned handle)
{
    if (handle >= TANDEM_ABI_MAX_DEVICES)
        return NULL;
    if (ring_state[handle] == 0) {
        rings[handle] = ring_create(handle);
        ring_state[handle] = rings[handle] ? 1 : -1;
    }
    return rings[handle];
}
