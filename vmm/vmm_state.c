/* vCPU state for checkpoints: regs, sregs2, XSAVE2, XCRs, MSRs, events, debugregs, MP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "tandem_stream.h"
#include "vmm.h"

#define MSR_IA32_TSC 0x10u
#define MSR_IA32_TSC_ADJUST 0x3bu
#define MSR_MAX 4096u

#ifndef KVM_CAP_XSAVE2
#define KVM_CAP_XSAVE2 208
#endif

/*
 * MSRs never restored: KVM would turn a written TSC into a TSC offset,
 * and the clock page formula (vmm_clock.c) reads the host TSC, so guest
 * time would jump. Under PVM the writes have no effect anyway
 * (kvm-on-pvm-measurements.md §4); they are still captured for the record.
 */
static bool msr_skip_on_restore(uint32_t index)
{
    return index == MSR_IA32_TSC || index == MSR_IA32_TSC_ADJUST;
}

void vmm_state_free(struct vmm_vcpu_state *s)
{
    free(s->xsave);
    free(s->msrs);
    memset(s, 0, sizeof(*s));
}

/* The MSR list KVM saves for us, probed once: only indexes KVM_GET_MSRS accepts on this vCPU. */
static int msr_list(struct vmm *vm, struct kvm_msrs **out, char *err, size_t errlen)
{
    struct kvm_msr_list probe = {.nmsrs = 0}, *list = NULL;
    struct kvm_msrs *msrs = NULL, *one = NULL;
    uint32_t i, n = 0;
    int rc = -1;

    if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
        snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
        goto out;
    }
    if (probe.nmsrs > MSR_MAX)
        probe.nmsrs = MSR_MAX;
    list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
    msrs = calloc(1, sizeof(*msrs) + probe.nmsrs * sizeof(struct kvm_msr_entry));
    one = calloc(1, sizeof(*one) + sizeof(struct kvm_msr_entry));
    if (!list || !msrs || !one) {
        snprintf(err, errlen, "out of memory for the MSR list");
        goto out;
    }
    list->nmsrs = probe.nmsrs;
    if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < list->nmsrs; i++) {
        one->nmsrs = 1;
        one->entries[0].index = list->indices[i];
        if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, one) == 1)
            msrs->entries[n++].index = list->indices[i];
    }
    msrs->nmsrs = n;
    *out = msrs;
    msrs = NULL;
    rc = 0;
out:
    free(list);
    free(msrs);
    free(one);
    return rc;
}

int vmm_state_get(struct vmm *vm, struct vmm_vcpu_state *s, char *err, size_t errlen)
{
    static struct kvm_msrs *msr_template;
    int xsave_size, rc = -1;
    size_t msr_bytes;

    memset(s, 0, sizeof(*s));
    if (!msr_template && msr_list(vm, &msr_template, err, errlen) < 0)
        goto out;
    if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &s->regs) < 0) {
        snprintf(err, errlen, "KVM_GET_REGS: %s", strerror(errno));
        goto out;
    }
    s->have_sregs2 = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0 &&
                     ioctl(vm->vcpu_fd, KVM_GET_SREGS2, &s->sregs2) == 0;
    if (!s->have_sregs2 && ioctl(vm->vcpu_fd, KVM_GET_SREGS, &s->sregs) < 0) {
        snprintf(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
        goto out;
    }
    /* XSAVE2 carries AVX-512 state; plain XSAVE (4 KiB) would lose ZMM on hosts with more. */
    xsave_size = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    s->xsave_len = xsave_size > (int)sizeof(struct kvm_xsave) ? (uint32_t)xsave_size
                                                              : (uint32_t)sizeof(struct kvm_xsave);
    s->xsave = calloc(1, s->xsave_len);
    if (!s->xsave) {
        snprintf(err, errlen, "out of memory for XSAVE state");
        goto out;
    }
    if (ioctl(vm->vcpu_fd, xsave_size > 0 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave) < 0) {
        snprintf(err, errlen, "KVM_GET_XSAVE2: %s", strerror(errno));
        goto out;
    }
    if (ioctl(vm->vcpu_fd, KVM_GET_XCRS, &s->xcrs) < 0) {
        snprintf(err, errlen, "KVM_GET_XCRS: %s", strerror(errno));
        goto out;
    }
    msr_bytes = sizeof(struct kvm_msrs) + msr_template->nmsrs * sizeof(struct kvm_msr_entry);
    s->msrs = malloc(msr_bytes);
    if (!s->msrs) {
        snprintf(err, errlen, "out of memory for MSRs");
        goto out;
    }
    memcpy(s->msrs, msr_template, msr_bytes);
    s->msrs_len = (uint32_t)msr_bytes;
    if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, s->msrs) != (int)msr_template->nmsrs) {
        snprintf(err, errlen, "KVM_GET_MSRS: read fewer than the %u MSRs probed",
                 msr_template->nmsrs);
        goto out;
    }
    if (ioctl(vm->vcpu_fd, KVM_GET_VCPU_EVENTS, &s->events) < 0) {
        snprintf(err, errlen, "KVM_GET_VCPU_EVENTS: %s", strerror(errno));
        goto out;
    }
    if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0) {
        snprintf(err, errlen, "KVM_GET_DEBUGREGS: %s", strerror(errno));
        goto out;
    }
    if (ioctl(vm->vcpu_fd, KVM_GET_MP_STATE, &s->mp_state) < 0) {
        snprintf(err, errlen, "KVM_GET_MP_STATE: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        vmm_state_free(s);
    return rc;
}

size_t vmm_state_blocks(const struct vmm_vcpu_state *s, struct tandem_stream_block *b)
{
    size_t n = 0;

    b[n++] = (struct tandem_stream_block){TANDEM_VCPU_REGS, sizeof(s->regs), &s->regs};
    if (s->have_sregs2)
        b[n++] = (struct tandem_stream_block){TANDEM_VCPU_SREGS2, sizeof(s->sregs2), &s->sregs2};
    else
        b[n++] = (struct tandem_stream_block){TANDEM_VCPU_SREGS, sizeof(s->sregs), &s->sregs};
    b[n++] = (struct tandem_stream_block){TANDEM_VCPU_XSAVE, s->xsave_len, s->xsave};
    b[n++] = (struct tandem_stream_block){TANDEM_VCPU_XCRS, sizeof(s->xcrs), &s->xcrs};
    b[n++] = (struct tandem_stream_block){TANDEM_VCPU_MSRS, s->msrs_len, s->msrs};
    b[n++] = (struct tandem_stream_block){TANDEM_VCPU_EVENTS, sizeof(s->events), &s->events};
    b[n++] =
        (struct tandem_stream_block){TANDEM_VCPU_DEBUGREGS, sizeof(s->debugregs), &s->debugregs};
    b[n++] = (struct tandem_stream_block){TANDEM_VCPU_MP_STATE, sizeof(s->mp_state), &s->mp_state};
    return n;
}

/* Copy a block's bytes into fixed storage, checking its size. */
static int take_fixed(void *dst, size_t size, const struct tandem_stream_block *b, bool *have,
                      char *err, size_t errlen)
{
    if (b->len != size) {
        snprintf(err, errlen, "vCPU sub-block %u is %u bytes, this VMM expects %zu", b->tag, b->len,
                 size);
        return -1;
    }
    memcpy(dst, b->data, size);
    *have = true;
    return 0;
}

static int take_copy(void **dst, uint32_t *len, const struct tandem_stream_block *b, char *err,
                     size_t errlen)
{
    free(*dst);
    *dst = malloc(b->len);
    if (!*dst) {
        snprintf(err, errlen, "out of memory for vCPU sub-block %u", b->tag);
        return -1;
    }
    memcpy(*dst, b->data, b->len);
    *len = b->len;
    return 0;
}

int vmm_state_take_block(struct vmm_vcpu_state *s, const struct tandem_stream_block *b, char *err,
                         size_t errlen)
{
    switch (b->tag) {
    case TANDEM_VCPU_REGS:
        return take_fixed(&s->regs, sizeof(s->regs), b, &s->have_regs, err, errlen);
    case TANDEM_VCPU_SREGS:
        return take_fixed(&s->sregs, sizeof(s->sregs), b, &s->have_sregs, err, errlen);
    case TANDEM_VCPU_SREGS2:
        return take_fixed(&s->sregs2, sizeof(s->sregs2), b, &s->have_sregs2, err, errlen);
    case TANDEM_VCPU_XCRS:
        return take_fixed(&s->xcrs, sizeof(s->xcrs), b, &s->have_xcrs, err, errlen);
    case TANDEM_VCPU_EVENTS:
        return take_fixed(&s->events, sizeof(s->events), b, &s->have_events, err, errlen);
    case TANDEM_VCPU_DEBUGREGS:
        return take_fixed(&s->debugregs, sizeof(s->debugregs), b, &s->have_debugregs, err, errlen);
    case TANDEM_VCPU_MP_STATE:
        return take_fixed(&s->mp_state, sizeof(s->mp_state), b, &s->have_mp_state, err, errlen);
    case TANDEM_VCPU_XSAVE:
        return take_copy((void **)&s->xsave, &s->xsave_len, b, err, errlen);
    case TANDEM_VCPU_MSRS:
        return take_copy((void **)&s->msrs, &s->msrs_len, b, err, errlen);
    }
    return 0; /* the decoder only hands out known tags */
}

int vmm_state_set(struct vmm *vm, struct vmm_vcpu_state *s, char *err, size_t errlen)
{
    int xsave_size;

    if (!s->have_regs || !(s->have_sregs || s->have_sregs2) || !s->have_mp_state) {
        snprintf(err, errlen, "vCPU state lacks REGS, SREGS/SREGS2 or MP_STATE");
        return -1;
    }
    if (!s->xsave || !s->have_xcrs) {
        /* Without them the guest's vector registers would silently change. */
        snprintf(err, errlen,
                 "vCPU state lacks XSAVE or XCRS (needed for the guest's FPU and "
                 "vector registers)");
        return -1;
    }
    /* Order as measured to work (kvm-on-pvm-measurements.md §4): sregs, MSRs, regs, FPU, events. */
    if (s->have_sregs2 && ioctl(vm->vcpu_fd, KVM_SET_SREGS2, &s->sregs2) < 0) {
        snprintf(err, errlen, "KVM_SET_SREGS2: %s", strerror(errno));
        return -1;
    }
    if (!s->have_sregs2 && ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s->sregs) < 0) {
        snprintf(err, errlen, "KVM_SET_SREGS: %s", strerror(errno));
        return -1;
    }
    if (s->msrs) {
        uint32_t i, k = 0;
        if (s->msrs_len < sizeof(struct kvm_msrs) ||
            s->msrs_len !=
                sizeof(struct kvm_msrs) + s->msrs->nmsrs * sizeof(struct kvm_msr_entry)) {
            snprintf(err, errlen, "MSRS sub-block length %u does not match its count", s->msrs_len);
            return -1;
        }
        for (i = 0; i < s->msrs->nmsrs; i++)
            if (!msr_skip_on_restore(s->msrs->entries[i].index))
                s->msrs->entries[k++] = s->msrs->entries[i];
        s->msrs->nmsrs = k;
        s->msrs_len = (uint32_t)(sizeof(struct kvm_msrs) + k * sizeof(struct kvm_msr_entry));
        /*
         * KVM_SET_MSRS stops at the first MSR it refuses. Some it lists
         * cannot be written back while unused (kvm PV MSRs such as
         * 0x4b564d06 under PVM); a refused MSR whose value matches what
         * this vCPU already holds changes nothing, so skip it and go on.
         */
        for (i = 0; i < k;) {
            /* A one-entry kvm_msrs; a union keeps the flexible array at the end (clang). */
            union {
                struct kvm_msrs h;
                uint8_t raw[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
            } one;
            int got;

            memmove(&s->msrs->entries[0], &s->msrs->entries[i],
                    (k - i) * sizeof(struct kvm_msr_entry));
            k -= i;
            i = 0;
            s->msrs->nmsrs = k;
            got = ioctl(vm->vcpu_fd, KVM_SET_MSRS, s->msrs);
            if (got < 0) {
                snprintf(err, errlen, "KVM_SET_MSRS: %s", strerror(errno));
                return -1;
            }
            if ((uint32_t)got == k)
                break;
            memset(&one, 0, sizeof(one));
            one.h.nmsrs = 1;
            one.h.entries[0].index = s->msrs->entries[got].index;
            if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, &one) != 1 ||
                one.h.entries[0].data != s->msrs->entries[got].data) {
                snprintf(err, errlen, "KVM_SET_MSRS: MSR 0x%x = 0x%llx refused",
                         s->msrs->entries[got].index,
                         (unsigned long long)s->msrs->entries[got].data);
                return -1;
            }
            i = (uint32_t)got + 1;
        }
    }
    if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &s->regs) < 0) {
        snprintf(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
        return -1;
    }
    if (ioctl(vm->vcpu_fd, KVM_SET_XCRS, &s->xcrs) < 0) {
        snprintf(err, errlen,
                 "KVM_SET_XCRS (XCR0 0x%llx; does this host's CPU lack a feature "
                 "of the saving host?): %s",
                 (unsigned long long)s->xcrs.xcrs[0].value, strerror(errno));
        return -1;
    }
    xsave_size = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    if (xsave_size < (int)sizeof(struct kvm_xsave))
        xsave_size = (int)sizeof(struct kvm_xsave);
    if (s->xsave_len > (uint32_t)xsave_size) {
        snprintf(err, errlen, "XSAVE state is %u bytes, this host's KVM takes at most %d",
                 s->xsave_len, xsave_size);
        return -1;
    }
    if (s->xsave_len < (uint32_t)xsave_size) {
        void *big = calloc(1, (size_t)xsave_size);
        if (!big) {
            snprintf(err, errlen, "out of memory for XSAVE state");
            return -1;
        }
        memcpy(big, s->xsave, s->xsave_len);
        free(s->xsave);
        s->xsave = big;
        s->xsave_len = (uint32_t)xsave_size;
    }
    if (ioctl(vm->vcpu_fd, KVM_SET_XSAVE, s->xsave) < 0) {
        snprintf(err, errlen, "KVM_SET_XSAVE: %s", strerror(errno));
        return -1;
    }
    if (s->have_events && ioctl(vm->vcpu_fd, KVM_SET_VCPU_EVENTS, &s->events) < 0) {
        snprintf(err, errlen, "KVM_SET_VCPU_EVENTS: %s", strerror(errno));
        return -1;
    }
    if (s->have_debugregs && ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0) {
        snprintf(err, errlen, "KVM_SET_DEBUGREGS: %s", strerror(errno));
        return -1;
    }
    if (ioctl(vm->vcpu_fd, KVM_SET_MP_STATE, &s->mp_state) < 0) {
        snprintf(err, errlen, "KVM_SET_MP_STATE: %s", strerror(errno));
        return -1;
    }
    return 0;
}
