/* Dirty pages for checkpoints: KVM's dirty log of the RAM slot OR the VMM's own bitmap. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm.h"

#define PAGE_SHIFT 12

/*
 * Why two sources: KVM logs only the guest's own stores (through its
 * page tables). What the VMM writes into guest memory from its threads
 * (hypercall results, ring indexes, received frames, block reads) goes
 * through the host mapping and never reaches the KVM log; vmm_gpa_ptr_w
 * marks those in vm->mem.dirty instead. A checkpoint needs the union.
 */

static int set_slot_logging(struct vmm *vm, bool on, char *err, size_t errlen)
{
    struct kvm_userspace_memory_region slot;

    memset(&slot, 0, sizeof(slot));
    slot.slot = 0; /* vmm_cpu.c: one slot for all of RAM */
    slot.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    slot.guest_phys_addr = 0;
    slot.memory_size = vm->mem.size;
    slot.userspace_addr = (uint64_t)(uintptr_t)vm->mem.base;
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
        snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION (dirty logging %s): %s",
                 on ? "on" : "off", strerror(errno));
        return -1;
    }
    return 0;
}

int vmm_dirty_start(struct vmm *vm, struct vmm_dirty *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->pages = vm->mem.size >> PAGE_SHIFT;
    d->words = (d->pages + 63) / 64;
    d->kvm = calloc(d->words, sizeof(uint64_t));
    d->merged = calloc(d->words, sizeof(uint64_t));
    if (!d->kvm || !d->merged) {
        snprintf(err, errlen, "out of memory for the dirty bitmaps");
        goto fail;
    }
    /* From here on every guest store to a page is logged (each page is write-protected once). */
    if (set_slot_logging(vm, true, err, errlen) < 0)
        goto fail;
    d->logging = true;
    /* Forget older VMM writes: the first round sends every touched page anyway. */
    vmm_dirty_count(&vm->mem, true);
    return 0;
fail:
    vmm_dirty_stop(vm, d);
    return -1;
}

int64_t vmm_dirty_harvest(struct vmm *vm, struct vmm_dirty *d, char *err, size_t errlen)
{
    struct kvm_dirty_log log;
    uint64_t i, n = 0;

    memset(&log, 0, sizeof(log));
    log.slot = 0;
    log.dirty_bitmap = d->kvm;
    /* Classic GET_DIRTY_LOG: returns and clears the log and re-protects the pages it names. */
    if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
        snprintf(err, errlen, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < d->words; i++) {
        /* Accumulate: pages harvested earlier and not yet sent stay marked. */
        d->merged[i] |= d->kvm[i] | __atomic_exchange_n(&vm->mem.dirty[i], 0, __ATOMIC_RELAXED);
        n += (uint64_t)__builtin_popcountll(d->merged[i]);
    }
    return (int64_t)n;
}

void vmm_dirty_stop(struct vmm *vm, struct vmm_dirty *d)
{
    char err[VMM_ERRLEN];

    if (d->logging && set_slot_logging(vm, false, err, sizeof(err)) < 0)
        vmm_log("%s", err);
    free(d->kvm);
    free(d->merged);
    memset(d, 0, sizeof(*d));
}
