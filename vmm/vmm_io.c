/* The VMM's I/O thread: serves the guest's shared-memory rings (ioeventfd doorbells, TAP fds). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

/*
 * Threads: the vCPU thread sets rings up (RING_SETUP) and reads ring
 * indexes for POLL's ready set; this thread does all ring data work.
 * io->lock is held while either side touches ring state, so a reboot
 * (vmm_io_reset) never pulls a ring from under a running request.
 * Every VMM write into guest memory goes through vmm_gpa_ptr_w.
 */

#define EV_STOP UINT32_MAX
#define EV_WAKE (UINT32_MAX - 1) /* vmm_io_wake: an output buffer has room again */
#define EV_DOORBELL 0x10000u     /* data.u32 = handle | EV_DOORBELL; plain handle = TAP readable */
#define MAX_SLOTS 4096u
/*
 * After the last piece of work the thread keeps polling the rings this
 * long before it sleeps (and asks for doorbells again): waking a sleeping
 * thread costs tens of µs on this nested host, while back-to-back
 * requests arrive within a few µs. Measured in docs/devices.md.
 */
#define SPIN_NS 100000u
#define MAX_SLOT_SIZE (64u << 10)
/*
 * A stalled TX ring (its output said EAGAIN) is retried on vmm_io_wake,
 * on any doorbell, and at the latest after this long: a TAP whose queue
 * was full raises no event when it drains.
 */
#define STALL_RETRY_MS 1

struct vmm_ring {
    struct vmm_dev *dev;
    tandem_gpa_t gpa;
    uint32_t slots, slot_size;
    int doorbell_fd;           /* eventfd KVM writes when the guest rings */
    bool ioeventfd_on;         /* registered with KVM_IOEVENTFD */
    uint32_t tx_cons, rx_prod; /* the VMM's own indexes (mirrored into the header) */
    bool tx_stalled;           /* the output refused the frame at tx_cons (EAGAIN): retry later */
    uint64_t tx_dropped;       /* malformed frames only: a full output stalls instead */
    uint64_t tx_stalls;        /* times the ring stalled (output said EAGAIN) */
};

struct vmm_io {
    pthread_t thread;
    bool stopping;
    pthread_mutex_t lock;
    int epoll_fd;
    int stop_fd;
    int wake_fd; /* eventfd: vmm_io_wake, retry stalled TX rings */
    struct vmm *vm;
};

/* ---- ring header access ------------------------------------------------------------------- */

static struct tandem_ring *hdr(struct vmm *vm, struct vmm_ring *r)
{
    return vmm_gpa_ptr(&vm->mem, r->gpa, TANDEM_RING_HDR_SIZE); /* checked at setup */
}

static uint32_t load_idx(struct vmm *vm, struct vmm_ring *r, size_t off)
{
    return __atomic_load_n((uint32_t *)((uint8_t *)hdr(vm, r) + off), __ATOMIC_ACQUIRE);
}

/* The VMM's header writes: dirty-marked, release-ordered after the data they publish. */
static void store_idx(struct vmm *vm, struct vmm_ring *r, size_t off, uint32_t v)
{
    uint32_t *p = vmm_gpa_ptr_w(&vm->mem, r->gpa + off, sizeof(v));

    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint64_t slot_gpa(struct vmm_ring *r, bool rx, uint32_t idx)
{
    return r->gpa + TANDEM_RING_HDR_SIZE +
           ((uint64_t)(rx ? r->slots : 0) + (idx & (r->slots - 1))) * r->slot_size;
}

static void kick_vcpu(struct vmm *vm)
{
    uint64_t one = 1;

    if (write(vm->kick_fd, &one, sizeof(one)) < 0)
        vmm_log("I/O thread: kick eventfd: %s", strerror(errno));
}

/* ---- vif ---------------------------------------------------------------------------------- */

/*
 * Send everything the guest queued; true if any frame was consumed. When
 * the output says EAGAIN (the Remus output buffer or the TAP queue is
 * full) the frame stays in its slot and the ring stalls: the guest sees a
 * full ring and its tg_net_send returns EAGAIN. Only malformed frames
 * (bad length, or an error other than EAGAIN) are dropped and counted.
 */
static bool net_tx(struct vmm *vm, struct vmm_ring *r)
{
    uint32_t prod = load_idx(vm, r, offsetof(struct tandem_ring, tx_prod)), cons0 = r->tx_cons;
    bool was_stalled = r->tx_stalled;

    if (r->tx_cons == prod)
        return false;
    if (prod - r->tx_cons > r->slots) {
        /* The guest broke the protocol: drop what it claims, do not loop 2^32 times. */
        r->tx_dropped += prod - r->tx_cons;
        r->tx_cons = prod;
    }
    r->tx_stalled = false;
    while (r->tx_cons != prod) {
        const uint8_t *slot = vmm_gpa_ptr(&vm->mem, slot_gpa(r, false, r->tx_cons), r->slot_size);
        uint32_t len;
        int rc;

        memcpy(&len, slot, sizeof(len));
        rc = len > r->slot_size - TANDEM_RING_SLOT_HDR
                 ? TANDEM_HC_EINVAL
                 : vmm_net_output(r->dev, slot + TANDEM_RING_SLOT_HDR, len);
        if (rc == TANDEM_HC_EAGAIN) {
            r->tx_stalled = true;
            if (!was_stalled || r->tx_cons != cons0)
                r->tx_stalls++; /* episodes, not retries */
            break;
        }
        if (rc != 0)
            r->tx_dropped++; /* malformed: the guest broke the protocol */
        r->tx_cons++;
    }
    if (r->tx_cons == cons0)
        return false;
    store_idx(vm, r, offsetof(struct tandem_ring, tx_cons), r->tx_cons);
    return true;
}

static bool any_stalled(struct vmm *vm)
{
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (vm->devs[k].ring && vm->devs[k].ring->tx_stalled)
            return true;
    return false;
}

/* Move frames from the TAP into free RX slots; wakes the vCPU if any arrived. */
static bool net_rx(struct vmm *vm, struct vmm_ring *r)
{
    const size_t cons_off = offsetof(struct tandem_ring, rx_cons);
    struct vmm_dev *d = r->dev;
    unsigned got = 0;

    for (;;) {
        uint32_t cons = load_idx(vm, r, cons_off);
        uint8_t *slot;
        ssize_t n;
        uint32_t len;

        if (r->rx_prod - cons >= r->slots) {
            store_idx(vm, r, offsetof(struct tandem_ring, rx_blocked), 1);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (r->rx_prod - load_idx(vm, r, cons_off) >= r->slots)
                break; /* the guest rings the doorbell once it has made room */
            store_idx(vm, r, offsetof(struct tandem_ring, rx_blocked), 0);
            continue;
        }
        slot = vmm_gpa_ptr_w(&vm->mem, slot_gpa(r, true, r->rx_prod), r->slot_size);
        n = read(d->vif.tap_fd, slot + TANDEM_RING_SLOT_HDR, r->slot_size - TANDEM_RING_SLOT_HDR);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EAGAIN: the TAP is empty (edge-triggered: the next frame wakes us) */
        len = (uint32_t)n;
        memcpy(slot, &len, sizeof(len));
        r->rx_prod++;
        store_idx(vm, r, offsetof(struct tandem_ring, rx_prod), r->rx_prod);
        d->vif.rx_frames++;
        got++;
    }
    if (got)
        kick_vcpu(vm);
    return got > 0;
}

/* ---- disk --------------------------------------------------------------------------------- */

static bool blk_serve(struct vmm *vm, struct vmm_ring *r)
{
    struct tandem_ring *h = hdr(vm, r);
    uint32_t prod = load_idx(vm, r, offsetof(struct tandem_ring, tx_prod));
    struct tandem_ring_blk_req req;
    struct vmm_dev *d = r->dev;
    int32_t ret;
    void *buf;

    if (prod == r->tx_cons)
        return false;
    memcpy(&req, &h->req, sizeof(req));
    if (req.op == TANDEM_HC_BLOCK_FLUSH) {
        ret = vmm_block_flush(d);
    } else if (req.op != TANDEM_HC_BLOCK_READ && req.op != TANDEM_HC_BLOCK_WRITE) {
        ret = TANDEM_HC_EINVAL;
    } else if ((ret = vmm_block_check(d, req.offset, req.len)) != 0) {
        /* ret says why */
    } else if (req.op == TANDEM_HC_BLOCK_WRITE && d->blk.readonly) {
        ret = TANDEM_HC_EROFS;
    } else if (req.op == TANDEM_HC_BLOCK_READ) {
        buf = vmm_gpa_ptr_w(&vm->mem, req.data, req.len);
        ret = buf ? vmm_block_read(d, req.offset, buf, req.len) : TANDEM_HC_EINVAL;
    } else {
        buf = vmm_gpa_ptr(&vm->mem, req.data, req.len);
        ret = buf ? vmm_block_write(d, req.offset, buf, req.len) : TANDEM_HC_EINVAL;
    }
    store_idx(vm, r, offsetof(struct tandem_ring, blk_ret), (uint32_t)ret);
    r->tx_cons = prod;
    store_idx(vm, r, offsetof(struct tandem_ring, tx_cons), prod);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (load_idx(vm, r, offsetof(struct tandem_ring, guest_wait)))
        kick_vcpu(vm);
    return true;
}

/* Serve whatever the guest queued on any ring (io->lock held); true if there was work. */
static bool poll_rings(struct vmm *vm)
{
    bool worked = false;

    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_ring *r = vm->devs[k].ring;

        if (!r)
            continue;
        if (vm->devs[k].abi.type == TANDEM_DEVICE_DISK) {
            worked |= blk_serve(vm, r);
        } else {
            worked |= net_tx(vm, r);
            if (load_idx(vm, r, offsetof(struct tandem_ring, rx_blocked)))
                worked |= net_rx(vm, r);
        }
    }
    return worked;
}

/*
 * Set every ring's vmm_idle (the guest rings doorbells from now on), then
 * look once more: work queued in between would otherwise wait for a
 * doorbell nobody rings. Returns true (and stays busy) if there was some.
 */
static bool rings_go_idle(struct vmm *vm, bool idle)
{
    for (unsigned k = 0; k < vm->num_devs; k++)
        if (vm->devs[k].ring)
            store_idx(vm, vm->devs[k].ring, offsetof(struct tandem_ring, vmm_idle), idle);
    if (!idle)
        return false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!poll_rings(vm))
        return false;
    rings_go_idle(vm, false);
    return true;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the thread --------------------------------------------------------------------------- */

static void *io_main(void *opaque)
{
    struct vmm *vm = opaque;
    struct vmm_io *io = vm->io;
    struct epoll_event ev[16];
    uint64_t last_work = 0;

    for (;;) {
        bool spinning = mono_ns() - last_work < SPIN_NS, kick = false, worked, stalled = false;
        int n;

        if (!spinning) {
            pthread_mutex_lock(&io->lock);
            worked = rings_go_idle(vm, true);
            stalled = any_stalled(vm);
            pthread_mutex_unlock(&io->lock);
            if (worked) {
                last_work = mono_ns();
                continue;
            }
        }
        n = epoll_wait(io->epoll_fd, ev, 16, spinning ? 0 : stalled ? STALL_RETRY_MS : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vmm_log("I/O thread: epoll_wait: %s", strerror(errno));
            break;
        }
        if (__atomic_load_n(&io->stopping, __ATOMIC_ACQUIRE))
            break;
        pthread_mutex_lock(&io->lock);
        if (!spinning)
            rings_go_idle(vm, false); /* awake: no doorbells needed while we poll */
        worked = n > 0;
        for (int i = 0; i < n; i++) {
            uint32_t tag = ev[i].data.u32, k = tag & ~EV_DOORBELL;
            struct vmm_dev *d;
            uint64_t cnt;

            if (tag == EV_STOP) {
                pthread_mutex_unlock(&io->lock);
                return NULL;
            }
            worked = true;
            if (tag == EV_WAKE) {
                if (read(io->wake_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
                    vmm_log("I/O thread: wake eventfd: %s", strerror(errno));
                continue; /* poll_rings below retries the stalled rings */
            }
            if (k >= vm->num_devs)
                continue;
            d = &vm->devs[k];
            if (tag & EV_DOORBELL) {
                if (!d->ring || read(d->ring->doorbell_fd, &cnt, sizeof(cnt)) < 0)
                    continue;
                if (d->abi.type == TANDEM_DEVICE_DISK) {
                    blk_serve(vm, d->ring);
                } else {
                    net_tx(vm, d->ring);
                    net_rx(vm, d->ring);
                }
            } else if (d->ring) {
                net_rx(vm, d->ring);
            } else {
                kick = true; /* per-request path: the guest reads the TAP itself after POLL */
            }
        }
        worked |= poll_rings(vm);
        pthread_mutex_unlock(&io->lock);
        if (worked)
            last_work = mono_ns();
        else if (spinning)
            __builtin_ia32_pause();
        if (kick)
            kick_vcpu(vm);
    }
    return NULL;
}

int vmm_io_start(struct vmm *vm, char *err, size_t errlen)
{
    struct vmm_io *io;
    struct epoll_event ev;
    int rc;

    io = calloc(1, sizeof(*io));
    if (!io) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    io->vm = vm;
    pthread_mutex_init(&io->lock, NULL);
    io->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    io->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    io->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (io->epoll_fd < 0 || io->stop_fd < 0 || io->wake_fd < 0) {
        snprintf(err, errlen, "I/O thread: %s", strerror(errno));
        goto fail;
    }
    ev.events = EPOLLIN;
    ev.data.u32 = EV_STOP;
    if (epoll_ctl(io->epoll_fd, EPOLL_CTL_ADD, io->stop_fd, &ev) < 0)
        goto fail_errno;
    ev.data.u32 = EV_WAKE;
    if (epoll_ctl(io->epoll_fd, EPOLL_CTL_ADD, io->wake_fd, &ev) < 0)
        goto fail_errno;
    for (unsigned k = 0; k < vm->num_devs; k++) {
        if (vm->devs[k].abi.type != TANDEM_DEVICE_VIF)
            continue;
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u32 = k;
        if (epoll_ctl(io->epoll_fd, EPOLL_CTL_ADD, vm->devs[k].vif.tap_fd, &ev) < 0)
            goto fail_errno;
    }
    vm->io = io;
    rc = pthread_create(&io->thread, NULL, io_main, vm);
    if (rc != 0) {
        vm->io = NULL;
        snprintf(err, errlen, "cannot start the I/O thread: %s", strerror(rc));
        goto fail;
    }
    return 0;
fail_errno:
    snprintf(err, errlen, "I/O thread: epoll_ctl: %s", strerror(errno));
fail:
    if (io->epoll_fd >= 0)
        close(io->epoll_fd);
    if (io->stop_fd >= 0)
        close(io->stop_fd);
    if (io->wake_fd >= 0)
        close(io->wake_fd);
    pthread_mutex_destroy(&io->lock);
    free(io);
    return -1;
}

static int ioeventfd(struct vmm *vm, struct vmm_ring *r, bool assign)
{
    struct kvm_ioeventfd ioe;

    memset(&ioe, 0, sizeof(ioe));
    ioe.addr = TANDEM_HC_PORT(TANDEM_HC_DOORBELL);
    ioe.len = 4;
    ioe.datamatch = r->dev->abi.handle;
    ioe.fd = r->doorbell_fd;
    ioe.flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH |
                (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN);
    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioe);
}

/* Unhook and free one ring (io->lock held). */
static void ring_free(struct vmm *vm, struct vmm_dev *d)
{
    struct vmm_ring *r = d->ring;

    if (!r)
        return;
    if (r->ioeventfd_on && ioeventfd(vm, r, false) < 0)
        vmm_log("%s %u: KVM_IOEVENTFD deassign: %s", d->ops->kind, d->abi.handle, strerror(errno));
    if (r->doorbell_fd >= 0) {
        epoll_ctl(vm->io->epoll_fd, EPOLL_CTL_DEL, r->doorbell_fd, NULL);
        close(r->doorbell_fd);
    }
    d->ring = NULL;
    free(r);
}

int vmm_io_ring_setup(struct vmm *vm, struct vmm_dev *d, tandem_gpa_t gpa, uint64_t size)
{
    struct tandem_ring h;
    struct vmm_ring *r = NULL;
    struct epoll_event ev;
    const void *p;
    uint64_t need = TANDEM_RING_HDR_SIZE, one = 1;
    int ret = TANDEM_HC_EINVAL;

    if (!vm->io)
        return TANDEM_HC_ENOSYS;
    pthread_mutex_lock(&vm->io->lock);
    if (d->ring || gpa % TANDEM_ABI_PAGE_SIZE || size < need ||
        !(p = vmm_gpa_ptr(&vm->mem, gpa, size)))
        goto out;
    memcpy(&h, p, sizeof(h));
    if (h.magic != TANDEM_RING_MAGIC || h.kind != d->abi.type)
        goto out;
    if (d->abi.type == TANDEM_DEVICE_VIF) {
        if (h.slots == 0 || h.slots > MAX_SLOTS || (h.slots & (h.slots - 1)) || h.slot_size % 64 ||
            h.slot_size > MAX_SLOT_SIZE || h.slot_size < TANDEM_RING_SLOT_HDR + d->abi.mtu + 14)
            goto out;
        need += 2ull * h.slots * h.slot_size; /* bounded above: no overflow */
        if (size < need)
            goto out;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        ret = TANDEM_HC_EIO;
        goto out;
    }
    r->dev = d;
    r->gpa = gpa;
    r->slots = h.slots;
    r->slot_size = h.slot_size;
    /*
     * Continue from the indexes in the header: zero for a fresh ring; after
     * a restore, migration or failover the checkpoint's, so frames the
     * guest queued but the old VMM had not sent yet go out now, and frames
     * delivered but not yet taken stay. Inconsistent indexes (more than a
     * ring's worth apart) start the ring empty instead.
     */
    r->tx_cons = h.tx_cons;
    r->rx_prod = h.rx_prod;
    if (h.tx_prod - r->tx_cons > h.slots)
        r->tx_cons = h.tx_prod;
    if (r->rx_prod - h.rx_cons > h.slots)
        r->rx_prod = h.rx_cons;
    if (d->abi.type == TANDEM_DEVICE_DISK) /* a disk's one request: redo it if it was pending */
        r->tx_cons = h.tx_cons == h.tx_prod ? h.tx_prod : h.tx_prod - 1;
    r->doorbell_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->doorbell_fd < 0) {
        ret = TANDEM_HC_EIO;
        goto out;
    }
    if (ioeventfd(vm, r, true) < 0) {
        vmm_log("%s %u: KVM_IOEVENTFD: %s; the guest keeps the per-request calls", d->ops->kind,
                d->abi.handle, strerror(errno));
        ret = TANDEM_HC_ENOSYS;
        goto out;
    }
    r->ioeventfd_on = true;
    ev.events = EPOLLIN;
    ev.data.u32 = d->abi.handle | EV_DOORBELL;
    if (epoll_ctl(vm->io->epoll_fd, EPOLL_CTL_ADD, r->doorbell_fd, &ev) < 0) {
        ret = TANDEM_HC_EIO;
        goto out;
    }
    d->ring = r;
    store_idx(vm, r, offsetof(struct tandem_ring, tx_cons), r->tx_cons);
    store_idx(vm, r, offsetof(struct tandem_ring, rx_prod), r->rx_prod);
    store_idx(vm, r, offsetof(struct tandem_ring, vmm_idle), 1);
    store_idx(vm, r, offsetof(struct tandem_ring, rx_blocked), 0);
    r = NULL;
    /* Frames that reached the TAP before the ring existed raised no edge: look now. */
    if (write(d->ring->doorbell_fd, &one, sizeof(one)) < 0)
        vmm_log("%s %u: doorbell: %s", d->ops->kind, d->abi.handle, strerror(errno));
    vmm_log("%s %u: ring at 0x%llx, %u x %u-byte slots", d->ops->kind, d->abi.handle,
            (unsigned long long)gpa, h.slots, h.slot_size);
    ret = 0;
out:
    if (r) {
        d->ring = r;
        ring_free(vm, d);
    }
    pthread_mutex_unlock(&vm->io->lock);
    return ret;
}

void vmm_io_doorbell(struct vmm *vm, uint32_t handle)
{
    uint64_t one = 1;

    if (!vm->io)
        return;
    pthread_mutex_lock(&vm->io->lock);
    if (handle < vm->num_devs && vm->devs[handle].ring &&
        write(vm->devs[handle].ring->doorbell_fd, &one, sizeof(one)) < 0)
        vmm_log("doorbell %u: %s", handle, strerror(errno));
    pthread_mutex_unlock(&vm->io->lock);
}

bool vmm_io_ring_has_input(struct vmm *vm, struct vmm_dev *d)
{
    struct vmm_ring *r = d->ring;

    return load_idx(vm, r, offsetof(struct tandem_ring, rx_prod)) !=
           load_idx(vm, r, offsetof(struct tandem_ring, rx_cons));
}

void vmm_io_reset(struct vmm *vm)
{
    if (!vm->io)
        return;
    pthread_mutex_lock(&vm->io->lock);
    for (unsigned k = 0; k < vm->num_devs; k++)
        ring_free(vm, &vm->devs[k]);
    pthread_mutex_unlock(&vm->io->lock);
}

void vmm_io_stop(struct vmm *vm)
{
    struct vmm_io *io = vm->io;
    uint64_t one = 1;

    if (!io)
        return;
    __atomic_store_n(&io->stopping, true, __ATOMIC_RELEASE);
    if (write(io->stop_fd, &one, sizeof(one)) < 0)
        vmm_log("I/O thread: stop: %s", strerror(errno));
    pthread_join(io->thread, NULL);
    vmm_io_reset(vm);
    close(io->epoll_fd);
    close(io->stop_fd);
    close(io->wake_fd);
    pthread_mutex_destroy(&io->lock);
    free(io);
    vm->io = NULL;
}

void vmm_io_wake(struct vmm *vm)
{
    uint64_t one = 1;

    /* No io->lock: called from the Remus engine, which may hold it (vmm_io_suspend). */
    if (vm->io && write(vm->io->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        vmm_log("I/O thread: wake: %s", strerror(errno));
}

bool vmm_io_ring_counters(struct vmm *vm, struct vmm_dev *d, uint64_t *tx_dropped,
                          uint64_t *tx_stalls)
{
    bool has = false;

    if (!vm->io)
        return false;
    pthread_mutex_lock(&vm->io->lock);
    if (d->ring) {
        *tx_dropped = d->ring->tx_dropped;
        *tx_stalls = d->ring->tx_stalls;
        has = true;
    }
    pthread_mutex_unlock(&vm->io->lock);
    return has;
}

/* ---- checkpoint engine (vmm_save.c, vmm_restore.c) ------------------------------------------ */

void vmm_io_suspend(struct vmm *vm)
{
    if (vm->io)
        pthread_mutex_lock(&vm->io->lock);
}

void vmm_io_resume(struct vmm *vm)
{
    if (vm->io)
        pthread_mutex_unlock(&vm->io->lock);
}

bool vmm_io_ring_where(struct vmm_dev *d, tandem_gpa_t *gpa, uint64_t *size)
{
    struct vmm_ring *r = d->ring;

    if (!r)
        return false;
    *gpa = r->gpa;
    *size = TANDEM_RING_HDR_SIZE;
    if (d->abi.type == TANDEM_DEVICE_VIF)
        *size += 2ull * r->slots * r->slot_size;
    return true;
}
