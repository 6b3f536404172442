/* Guest SDK network device: whole Ethernet frames through the vif's ring (or per-frame calls). */
#include <stdbool.h>
#include <string.h>

#include "sdk_internal.h"
#include "tandem_dev.h"
#include "tandem_guest.h"

static struct tandem_hc_net net_args;

static int net_call(unsigned nr, unsigned handle, uintptr_t buf, size_t len)
{
    net_args.handle = handle;
    net_args.pad0 = 0;
    net_args.data = buf;
    net_args.len = len;
    net_args.ret = TANDEM_HC_ENOSYS;
    tg_hypercall(nr, &net_args);
    return (int)net_args.ret;
}

static uint8_t *slot(struct tandem_ring *r, bool rx, uint32_t idx)
{
    return (uint8_t *)r + TANDEM_RING_HDR_SIZE +
           ((size_t)(rx ? r->slots : 0) + (idx & (r->slots - 1))) * r->slot_size;
}

static const struct tandem_device *vif(unsigned handle)
{
    const struct tandem_device *d = tg_dev(handle);

    return d && d->type == TANDEM_DEVICE_VIF ? d : NULL;
}

int tg_net_send(unsigned handle, const void *frame, size_t len)
{
    const struct tandem_device *d = vif(handle);
    struct tandem_ring *r;
    uint32_t prod;
    uint8_t *s;
    int rc;

    if (!d || len < 14 || len > d->mtu + 14u)
        return TANDEM_HC_EINVAL;
    r = tg_ring(handle);
    if (!r) {
        rc = net_call(TANDEM_HC_NET_WRITE, handle, (uintptr_t)frame, len);
        return rc < 0 ? rc : 0;
    }
    prod = r->tx_prod;
    if (prod - __atomic_load_n(&r->tx_cons, __ATOMIC_ACQUIRE) >= r->slots) {
        if (__atomic_load_n(&r->vmm_idle, __ATOMIC_SEQ_CST))
            tg_doorbell(handle);
        return TANDEM_HC_EAGAIN;
    }
    s = slot(r, false, prod);
    memcpy(s + TANDEM_RING_SLOT_HDR, frame, len);
    *(uint32_t *)s = (uint32_t)len;
    __atomic_store_n(&r->tx_prod, prod + 1, __ATOMIC_SEQ_CST);
    /* Only an idle I/O thread needs the doorbell; a busy one looks again before it sleeps. */
    if (__atomic_load_n(&r->vmm_idle, __ATOMIC_SEQ_CST))
        tg_doorbell(handle);
    return 0;
}

int tg_net_recv(unsigned handle, void *buf, size_t buflen)
{
    struct tandem_ring *r;
    uint32_t cons, len;
    uint8_t *s;

    if (!vif(handle))
        return TANDEM_HC_EINVAL;
    r = tg_ring(handle);
    if (!r)
        return net_call(TANDEM_HC_NET_READ, handle, (uintptr_t)buf, buflen);
    cons = r->rx_cons;
    if (cons == __atomic_load_n(&r->rx_prod, __ATOMIC_ACQUIRE))
        return TANDEM_HC_EAGAIN;
    s = slot(r, true, cons);
    len = *(uint32_t *)s;
    if (buflen < len)
        return TANDEM_HC_ENOSPC;
    memcpy(buf, s + TANDEM_RING_SLOT_HDR, len);
    __atomic_store_n(&r->rx_cons, cons + 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->rx_blocked, __ATOMIC_SEQ_CST))
        tg_doorbell(handle);
    return (int)len;
}
