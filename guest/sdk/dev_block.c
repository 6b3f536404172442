/* Guest SDK block device: synchronous read/write/flush, through the disk's ring when it has one. */
#include <stdbool.h>
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

/*
 * Which path a small request takes. A synchronous request through the
 * ring needs the vCPU and the VMM's I/O thread on CPUs at the same time:
 * ~4 µs on a quiet host, but 3-5x slower than one hypercall (~60 µs) when
 * other work holds the CPUs (docs/devices.md). So each disk keeps a
 * moving average of both paths' latency, sends small requests down the
 * faster one and tries the other every PROBE_EVERY requests.
 * tg_blk_ring=1 pins the ring, tg_blk_ring=0 the hypercall.
 */
#define PROBE_EVERY 64u
struct path_stats {
    uint64_t ring_ns, call_ns; /* averages (1/8 weight per sample); 0 = not measured yet */
    uint32_t n;
};
static struct path_stats stats[TANDEM_ABI_MAX_DEVICES];
static int pinned = -2; /* tg_blk_ring from the command line, read once */

static void account(uint64_t *avg, uint64_t ns)
{
    *avg = *avg ? *avg - *avg / 8 + ns / 8 : ns;
}

static bool use_ring(unsigned handle)
{
    struct path_stats *s = &stats[handle];
    bool faster;

    if (pinned == -2)
        pinned = (int)tg_cmdline_long("tg_blk_ring", -1);
    if (pinned >= 0)
        return pinned;
    if (!s->ring_ns || !s->call_ns) /* measure each path first */
        return !s->ring_ns;
    faster = s->ring_ns <= s->call_ns;
    return ++s->n % PROBE_EVERY == 0 ? !faster : faster;
}

static int blk_request(unsigned nr, unsigned handle, uint64_t offset, uintptr_t buf, size_t len)
{
    struct tandem_ring *r = NULL;
    const struct tandem_device *d = tg_dev(handle);
    uint64_t t0;
    int rc;

    if (!d || d->type != TANDEM_DEVICE_DISK)
        return TANDEM_HC_EINVAL;
    /*
     * Large requests and flushes are bound by the copy or fdatasync, which
     * the vCPU thread does fastest itself (no second busy thread, no
     * wake-up): they always take the hypercall (measurements behind
     * RING_MAX in docs/devices.md).
     */
    if (len > RING_MAX || nr == TANDEM_HC_BLOCK_FLUSH)
        return blk_call(nr, handle, offset, buf, len);
    if (use_ring(handle))
        r = tg_ring(handle);
    t0 = tg_clock_ns();
    rc = r ? blk_ring(r, handle, nr, offset, buf, len) : blk_call(nr, handle, offset, buf, len);
    account(r ? &stats[handle].ring_ns : &stats[handle].call_ns, tg_clock_ns() - t0);
    if (!r && !stats[handle].ring_ns && !tg_ring(handle))
        stats[handle].ring_ns = UINT64_MAX / 2; /* no ring here: never pick it */
    return rc;
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
