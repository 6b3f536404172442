/* Checkpoint receiver: read a stream, stage each state, apply it at CHECKPOINT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "tandem.h"
#include "tandem_stream.h"
#include "vmm.h"

#define PAGE_SIZE 4096u

int (*vmm_restore_ack_hook)(struct vmm *vm, uint64_t epoch);
int (*vmm_restore_disk_hook)(struct vmm *vm, uint32_t disk, uint32_t sector_size,
                             const struct tandem_stream_extent *e, char *err, size_t errlen);
int (*vmm_restore_broken_hook)(struct vmm *vm, uint64_t last_epoch, bool any, const char *what);

struct ring_state {
    uint32_t version; /* 1 (vmm_save.c) */
    uint32_t has_ring;
    uint64_t gpa;
    uint64_t size;
};

/* One staged page of a checkpointed stream (applied only at its CHECKPOINT). */
struct staged_page {
    uint64_t pfn;
    uint8_t data[PAGE_SIZE];
};

/* Everything of the state being read that is not applied until its CHECKPOINT. */
struct stage {
    struct vmm_vcpu_state vcpu;
    bool have_vcpu;
    struct tandem_stream_clock clock;
    bool have_clock;
    struct ring_state rings[TANDEM_ABI_MAX_DEVICES];
    bool have_ring_state[TANDEM_ABI_MAX_DEVICES];
    struct staged_page *pages; /* checkpointed streams only */
    size_t npages, cap;
};

/* What the last applied state left for the end of the restore. */
struct applied {
    struct tandem_stream_clock clock;
    struct ring_state rings[TANDEM_ABI_MAX_DEVICES];
    bool have_ring_state[TANDEM_ABI_MAX_DEVICES];
    uint64_t epoch;
    bool any;
};

#define CHUNK_SHIFT 21 /* prefault guest memory 2 MiB at a time */

struct rst {
    struct vmm *vm;
    uint64_t *populated; /* 1 bit per 2 MiB chunk already prefaulted */
    tandem_ctx *ctx;
    tandem_stream_reader *r;
    struct tandem_stream_header hdr;
    struct tandem_stream_order order;
    struct stage st;
    struct applied ap;
    const struct tandem_stream_record *rec; /* the record being handled (for messages) */
    char *err;
    size_t errlen;
};

static int rec_fail(struct rst *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rec_fail(struct rst *s, const char *fmt, ...)
{
    char msg[VMM_ERRLEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->rec)
        snprintf(s->err, s->errlen, "stream offset %llu, record %llu (%s): %s",
                 (unsigned long long)s->rec->offset, (unsigned long long)s->rec->index,
                 tandem_stream_rec_name(s->rec->type), msg);
    else
        snprintf(s->err, s->errlen, "stream: %s", msg);
    return -1;
}

/* The stream library's message already names offset and record. */
static int lib_fail(struct rst *s)
{
    snprintf(s->err, s->errlen, "%s", tandem_ctx_error(s->ctx));
    return -1;
}

static void *dest_page(uint64_t pfn, void *opaque)
{
    struct rst *s = opaque;
    uint8_t *p;
    uint64_t chunk;

    if (pfn > (UINT64_MAX >> 12))
        return NULL;
    p = vmm_gpa_ptr(&s->vm->mem, pfn << 12, PAGE_SIZE);
    /*
     * Map the page's 2 MiB chunk in one call before data lands in it: the
     * kernel's copy into a page not yet mapped here takes a fault per
     * 4 KiB page, which made reading a stream into RAM ~3x slower than
     * reading the file. Only chunks the stream touches are mapped.
     */
    chunk = (pfn << 12) >> CHUNK_SHIFT;
    if (p && s->populated && !(s->populated[chunk / 64] & (1ull << (chunk % 64)))) {
        uint64_t start = chunk << CHUNK_SHIFT, len = 1ull << CHUNK_SHIFT;
        if (start + len > s->vm->mem.size)
            len = s->vm->mem.size - start;
        (void)madvise(s->vm->mem.base + start, len, MADV_POPULATE_WRITE); /* a hint: errors ok */
        s->populated[chunk / 64] |= 1ull << (chunk % 64);
    }
    return p;
}

/*
 * Save and live streams: pages are written through the memfd with pwritev
 * (contiguous pfns of a batch in one call) rather than read into the
 * mapping. shmem fills a page that is written whole without clearing it
 * first (SGP_WRITE), while the mapping's first touch of a fresh page
 * clears it and then the stream's bytes overwrite it: measured, this costs
 * the receiving VMM ~15-30 % less CPU (docs/migration.md "Measurements").
 * TANDEM_VMM_RESTORE_READV=1 selects the old path (for comparisons).
 */
#define PW_IOV 64
static const uint8_t zero_page[PAGE_SIZE];
struct pw {
    struct vmm *vm;
    uint64_t first; /* pfn of iov[0] */
    int n;
    struct iovec iov[PW_IOV];
    int err;          /* errno of a failed pwritev */
    uint64_t bad_pfn; /* a page outside the domain, when bad */
    bool bad;
};

static int pw_flush(struct pw *w)
{
    size_t want = (size_t)w->n * PAGE_SIZE, done = 0;
    off_t off = (off_t)(w->first << 12);

    while (done < want) {
        ssize_t m = pwritev(w->vm->mem.fd, w->iov, w->n, off + (off_t)done);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0) {
            w->err = m < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)m;
        if (done < want) { /* short: drop what went, go on with the rest */
            size_t skip = (size_t)m;
            while (skip >= w->iov[0].iov_len) {
                skip -= w->iov[0].iov_len;
                memmove(w->iov, w->iov + 1, (size_t)--w->n * sizeof(w->iov[0]));
            }
            w->iov[0].iov_base = (uint8_t *)w->iov[0].iov_base + skip;
            w->iov[0].iov_len -= skip;
        }
    }
    w->n = 0;
    return 0;
}

static int pw_page(uint64_t pfn, const void *data, void *opaque)
{
    struct pw *w = opaque;

    if (pfn >= (w->vm->mem.size >> 12)) {
        w->bad = true;
        w->bad_pfn = pfn;
        return -1;
    }
    if (w->n && (w->n == PW_IOV || pfn != w->first + (uint64_t)w->n) && pw_flush(w) < 0)
        return -1;
    if (!w->n)
        w->first = pfn;
    w->iov[w->n].iov_base = (void *)(data ? data : zero_page);
    w->iov[w->n].iov_len = PAGE_SIZE;
    w->n++;
    return 0;
}

static int stage_page(uint64_t pfn, const void *data, void *opaque)
{
    struct rst *s = opaque;
    struct staged_page *p;

    if (!dest_page(pfn, s))
        return rec_fail(s, "page %llu lies outside the domain's %llu MiB of RAM",
                        (unsigned long long)pfn, (unsigned long long)(s->vm->mem.size >> 20));
    if (s->st.npages == s->st.cap) {
        size_t cap = s->st.cap ? s->st.cap * 2 : 1024;
        p = realloc(s->st.pages, cap * sizeof(*p));
        if (!p)
            return rec_fail(s, "out of memory staging pages");
        s->st.pages = p;
        s->st.cap = cap;
    }
    p = &s->st.pages[s->st.npages++];
    p->pfn = pfn;
    if (data)
        memcpy(p->data, data, PAGE_SIZE);
    else
        memset(p->data, 0, PAGE_SIZE);
    return 0;
}

static int take_block(uint32_t vcpu_id, const struct tandem_stream_block *b, void *opaque)
{
    struct rst *s = opaque;
    char msg[VMM_ERRLEN];

    (void)vcpu_id;
    if (vmm_state_take_block(&s->st.vcpu, b, msg, sizeof(msg)) < 0)
        return rec_fail(s, "%s", msg);
    return 0;
}

/* DOMAIN_CONFIG: the domain we were built from must have the same RAM size. */
static int on_config(struct rst *s)
{
    const char *json;
    size_t len;
    json_t *j, *b;
    json_int_t kb;
    int rc = 0;

    if (tandem_stream_decode_config(s->r, s->rec, &json, &len) < 0)
        return lib_fail(s);
    j = json_loadb(json, len, 0, NULL);
    b = json_object_get(j, "b_info");
    kb = json_integer_value(json_object_get(b, "max_memkb"));
    if (!kb)
        kb = json_integer_value(json_object_get(b, "target_memkb"));
    if (kb > 0 && (uint64_t)kb << 10 != s->vm->mem.size)
        rc = rec_fail(s,
                      "the image is of a domain with %llu MiB of memory, the configuration "
                      "given has %llu MiB",
                      (unsigned long long)kb >> 10, (unsigned long long)(s->vm->mem.size >> 20));
    json_decref(j);
    return rc;
}

static struct vmm_dev *find_dev(struct vmm *vm, uint32_t kind, uint32_t id, unsigned *index)
{
    uint32_t type = kind == TANDEM_DEVICE_BLOCK ? TANDEM_DEVICE_DISK : TANDEM_DEVICE_VIF;

    for (unsigned k = 0; k < vm->num_devs; k++)
        if (vm->devs[k].abi.type == type && (uint32_t)vm->devs[k].devid == id) {
            *index = k;
            return &vm->devs[k];
        }
    return NULL;
}

static int on_device(struct rst *s)
{
    struct tandem_stream_device dev;
    struct ring_state rs;
    unsigned k;

    if (tandem_stream_decode_device(s->r, s->rec, &dev) < 0)
        return lib_fail(s);
    if (dev.kind == TANDEM_DEVICE_CONSOLE)
        return 0; /* informational: the console log stays on the saving host */
    if (!find_dev(s->vm, dev.kind, dev.id, &k))
        return rec_fail(s, "state for %s %u, but the domain configuration has no such device",
                        dev.kind == TANDEM_DEVICE_BLOCK ? "disk" : "vif", dev.id);
    if (dev.len != sizeof(rs))
        return rec_fail(s, "%s %u: device state is %zu bytes, expected %zu",
                        dev.kind == TANDEM_DEVICE_BLOCK ? "disk" : "vif", dev.id, dev.len,
                        sizeof(rs));
    memcpy(&rs, dev.data, sizeof(rs));
    if (rs.version != 1)
        return rec_fail(s, "device state version %u is not supported (this VMM reads 1)",
                        rs.version);
    s->st.rings[k] = rs;
    s->st.have_ring_state[k] = true;
    return 0;
}

/* CHECKPOINT: the staged state is complete; make it the domain's. */
static int on_checkpoint(struct rst *s, uint64_t epoch)
{
    struct vmm *vm = s->vm;
    char msg[VMM_ERRLEN];

    for (size_t i = 0; i < s->st.npages; i++)
        memcpy(dest_page(s->st.pages[i].pfn, s), s->st.pages[i].data, PAGE_SIZE);
    s->st.npages = 0;
    if (vmm_state_set(vm, &s->st.vcpu, msg, sizeof(msg)) < 0)
        return rec_fail(s, "cannot load the vCPU state: %s", msg);
    vmm_state_free(&s->st.vcpu);
    s->st.have_vcpu = false;
    s->ap.clock = s->st.clock;
    memcpy(s->ap.rings, s->st.rings, sizeof(s->ap.rings));
    memcpy(s->ap.have_ring_state, s->st.have_ring_state, sizeof(s->ap.have_ring_state));
    memset(s->st.have_ring_state, 0, sizeof(s->st.have_ring_state));
    s->st.have_clock = false;
    s->ap.epoch = epoch;
    s->ap.any = true;
    if (s->hdr.flags % 4 == TANDEM_STREAM_CHECKPOINTED && vmm_restore_ack_hook &&
        vmm_restore_ack_hook(vm, epoch) != 0)
        return rec_fail(s, "acknowledging epoch %llu failed", (unsigned long long)epoch);
    return 0;
}

/* Remus: an epoch's disk writes wait for its CHECKPOINT (vmm_remus_backup.c). */
static int hold_extent(uint32_t disk, uint32_t sector_size, const struct tandem_stream_extent *e,
                       void *opaque)
{
    struct rst *s = opaque;
    char msg[VMM_ERRLEN];

    if (vmm_restore_disk_hook(s->vm, disk, sector_size, e, msg, sizeof(msg)) != 0)
        return rec_fail(s, "%s", msg);
    return 0;
}

static int handle(struct rst *s, const struct tandem_stream_record *rec, bool staged_pages)
{
    uint64_t value = 0;
    uint32_t id;

    s->rec = rec;
    switch (rec->type) {
    case TANDEM_REC_DOMAIN_CONFIG:
        if (on_config(s) < 0)
            return -1;
        break;
    case TANDEM_REC_PAGE_BATCH:
        if (staged_pages && tandem_stream_decode_pages(s->r, rec, stage_page, s) != 0)
            return s->err[0] ? -1 : lib_fail(s);
        break;
    case TANDEM_REC_VCPU_STATE:
        if (tandem_stream_decode_vcpu(s->r, rec, &id, take_block, s) != 0)
            return s->err[0] ? -1 : lib_fail(s);
        if (id != 0)
            return rec_fail(s, "state for vCPU %u; domains have one vCPU (id 0)", id);
        value = id;
        s->st.have_vcpu = true;
        break;
    case TANDEM_REC_CLOCK:
        if (tandem_stream_decode_clock(s->r, rec, &s->st.clock) < 0)
            return lib_fail(s);
        s->st.have_clock = true;
        break;
    case TANDEM_REC_DEVICE_STATE:
        if (on_device(s) < 0)
            return -1;
        break;
    case TANDEM_REC_DISK_WRITES:
        if (!staged_pages || !vmm_restore_disk_hook)
            return rec_fail(s, "disk writes in a stream are not supported by this VMM yet");
        if (tandem_stream_decode_disk(s->r, rec, hold_extent, s) != 0)
            return s->err[0] ? -1 : lib_fail(s);
        break;
    case TANDEM_REC_CHECKPOINT:
        if (tandem_stream_decode_checkpoint(s->r, rec, &value) < 0)
            return lib_fail(s);
        break;
    default:
        break;
    }
    if (tandem_stream_order_check(s->r, &s->order, rec, value) < 0)
        return lib_fail(s);
    if (rec->type == TANDEM_REC_CHECKPOINT && on_checkpoint(s, value) < 0)
        return -1;
    return 0;
}

/* After END: time continues from the captured guest time; rings are hooked up again. */
static int finish(struct rst *s)
{
    struct vmm *vm = s->vm;
    const struct tandem_clock *page = vmm_gpa_ptr(&vm->mem, TANDEM_ABI_CLOCK_ADDR, sizeof(*page));

    s->rec = NULL;
    if (!s->ap.any)
        return rec_fail(s, "no complete state (CHECKPOINT) before END");
    /* The clock page came with the pages; relocate() bumps its generation (the guest re-announces).
     */
    vm->clock = *page;
    vmm_clock_relocate(vm, s->ap.clock.guest_ns, vm->tsc_khz);
    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_dev *d = &vm->devs[k];
        int ret;
        if (!s->ap.have_ring_state[k] || !s->ap.rings[k].has_ring)
            continue;
        ret = vmm_io_ring_setup(vm, d, s->ap.rings[k].gpa, s->ap.rings[k].size);
        if (ret != 0)
            return rec_fail(s, "%s %u: cannot set its ring at 0x%llx up again (error %d)",
                            d->ops->kind, d->abi.handle, (unsigned long long)s->ap.rings[k].gpa,
                            ret);
    }
    vmm_log("restore: applied epoch %llu; guest time continues at %llu ms (clock generation %llu)",
            (unsigned long long)s->ap.epoch, (unsigned long long)(s->ap.clock.guest_ns / 1000000),
            (unsigned long long)vm->clock.generation);
    return 0;
}

int vmm_restore(struct vmm *vm, int fd, char *err, size_t errlen)
{
    struct rst s = {.vm = vm, .err = err, .errlen = errlen};
    struct tandem_stream_record rec;
    bool staged;
    int rc = -1;

    err[0] = '\0';
    tandem_stream_order_init(&s.order, 0);
    s.populated = calloc(((vm->mem.size >> CHUNK_SHIFT) + 64) / 64, sizeof(uint64_t));
    if (tandem_ctx_alloc(&s.ctx) < 0 || tandem_stream_reader_open(s.ctx, fd, &s.r) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (tandem_stream_read_header(s.r, &s.hdr) < 0) {
        lib_fail(&s);
        goto out;
    }
    if (s.hdr.page_size != PAGE_SIZE) {
        snprintf(err, errlen, "stream offset 0 (header): page size %u, this VMM uses %u",
                 s.hdr.page_size, PAGE_SIZE);
        goto out;
    }
    tandem_stream_order_dispose(&s.order);
    tandem_stream_order_init(&s.order, s.hdr.flags & TANDEM_STREAM_F_KIND_MASK);
    /*
     * Save and live streams hold one state, read into guest memory as it
     * comes: on any error this VMM exits and the memory goes with it.
     * Checkpointed streams (Remus) stage every page until its CHECKPOINT.
     */
    staged = (s.hdr.flags & TANDEM_STREAM_F_KIND_MASK) == TANDEM_STREAM_CHECKPOINTED;
    bool pwrite_pages = !staged && !getenv("TANDEM_VMM_RESTORE_READV");
    struct pw pw = {.vm = vm};
    for (;;) {
        int r = staged || pwrite_pages ? tandem_stream_next(s.r, &rec)
                                       : tandem_stream_next_into(s.r, &rec, dest_page, &s);
        if (r < 0)
            lib_fail(&s);
        if (r >= 0 && pwrite_pages && rec.type == TANDEM_REC_PAGE_BATCH) {
            s.rec = &rec;
            if (tandem_stream_decode_pages(s.r, &rec, pw_page, &pw) != 0 || pw_flush(&pw) < 0) {
                if (pw.bad)
                    rec_fail(&s, "page %llu lies outside the domain's %llu MiB of RAM",
                             (unsigned long long)pw.bad_pfn,
                             (unsigned long long)(vm->mem.size >> 20));
                else if (pw.err)
                    rec_fail(&s, "writing guest memory: %s", strerror(pw.err));
                else
                    lib_fail(&s);
                goto out;
            }
            continue;
        }
        if (r < 0 || handle(&s, &rec, staged) < 0) {
            /* Remus: a broken stream means failover to the last applied state (or none). */
            if (!staged || !vmm_restore_broken_hook ||
                vmm_restore_broken_hook(vm, s.ap.epoch, s.ap.any, err) != 0)
                goto out;
            s.st.npages = 0;
            goto done;
        }
        if (rec.type == TANDEM_REC_END)
            break;
    }
    if (tandem_stream_order_finish(s.r, &s.order) < 0) {
        lib_fail(&s);
        goto out;
    }
done:
    err[0] = '\0';
    rc = finish(&s);
out:
    vmm_state_free(&s.st.vcpu);
    free(s.st.pages);
    free(s.populated);
    tandem_stream_order_dispose(&s.order);
    tandem_stream_reader_free(s.r);
    tandem_ctx_free(s.ctx);
    return rc;
}
