/* Guest SDK block device: synchronous read/write/flush, through the disk's ring when it has one. */
#include <string.h>

#include "sdk_internal.h"
#include "tandem_dev.h"
#include "tandem_guest.h"

/* One vCPU, no interrupts: calls never nest, so one static argument struct suffices. */
static struct tandem_hc_block blk_args;

/*
 * How long a request is waited for by spinning before the vCPU sleeps in
 * POLL (a userspace exit plus a wake-up, ~100 µs here): 50 µs plus the
 * time the host needs to copy len bytes at ~4 GB/s. A flush (fdatasync,
 * milliseconds) sleeps after 50 µs.
 */
#define SPIN_NS 50000u
#define SPIN_NS_PER_KIB 250u
#define RING_MAX (64u << 10)

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

/* One request through the ring: submit, ring the doorbell, spin briefly, then sleep in POLL. */
static int blk_ring(struct tandem_ring *r, unsigned handle, unsigned op, uint64_t offset,
                    uintptr_t buf, size_t len)
{
    uint32_t seq = r->tx_prod + 1;
    uint64_t until;

    r->req.op = op;
    r->req.offset = offset;
    r->req.data = buf;
    r->req.len = len;
    __atomic_store_n(&r->tx_prod, seq, __ATOMIC_SEQ_CST);
    /* A polling I/O thread sees the request by itself; only a sleeping one needs the doorbell. */
    if (__atomic_load_n(&r->vmm_idle, __ATOMIC_SEQ_CST))
        tg_doorbell(handle);
    until =
        tg_clock_ns() + SPIN_NS + (op == TANDEM_HC_BLOCK_FLUSH ? 0 : (len >> 10) * SPIN_NS_PER_KIB);
    for (unsigned i = 0; __atomic_load_n(&r->tx_cons, __ATOMIC_ACQUIRE) != seq; i++) {
        /* no `pause`: KVM's pause-loop exiting would turn this spin into exits */
        if ((i & 63) == 0 && tg_clock_ns() > until) {
            /* Long request (fdatasync): say so, look once more, then sleep until woken. */
            __atomic_store_n(&r->guest_wait, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&r->tx_cons, __ATOMIC_SEQ_CST) != seq)
                tg_poll(tg_clock_ns() + 10000000u);
            __atomic_store_n(&r->guest_wait, 0, __ATOMIC_RELAXED);
            break;
        }
    }
    return __atomic_load_n(&r->blk_ret, __ATOMIC_ACQUIRE);
}

static int blk_request(unsigned nr, unsigned handle, uint64_t offset, uintptr_t buf, size_t len)
{
    struct tandem_ring *r;
    const struct tandem_device *d = tg_dev(handle);

    if (!d || d->type != TANDEM_DEVICE_DISK)
        return TANDEM_HC_EINVAL;
    /*
     * Small requests are bound by the exit cost and go through the ring;
     * large ones and flushes are bound by the copy or fdatasync, which the
     * vCPU thread does fastest itself (no second busy thread, no wake-up):
     * docs/devices.md has the measurements behind RING_MAX.
     */
    r = len <= RING_MAX && nr != TANDEM_HC_BLOCK_FLUSH ? tg_ring(handle) : NULL;
    return r ? blk_ring(r, handle, nr, offset, buf, len) : blk_call(nr, handle, offset, buf, len);
}

int tg_block_read(unsigned handle, uint64_t offset, void *buf, size_t len)
{
    return blk_request(TANDEM_HC_BLOCK_READ, handle, offset, (uintptr_t)buf, len);
}

int tg_block_write(unsigned handle, uint64_t offset, const void *buf, size_t len)
{
    return blk_request(TANDEM_HC_BLOCK_WRITE, handle, offset, (uintptr_t)buf, len);
}

int tg_block_flush(unsigned handle)
{
    return blk_request(TANDEM_HC_BLOCK_FLUSH, handle, 0, 0, 0);
}
