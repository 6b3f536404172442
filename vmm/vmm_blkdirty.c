/* Dirty-block bitmaps per disk, set from the block write path, fetched and cleared by migration. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vmm.h"
#include "vmm_blkdirty.h"

/* Ranges per fetch reply: keeps it far below the control socket's 64 KiB message limit. */
#define MAX_RANGES 2000

/*
 * Per device slot (vm->devs index). A bitmap, once allocated, is never
 * freed while the VMM runs: a writer that saw `on` a moment before a stop
 * may still be setting a bit, and tracking may start again (a second
 * migration attempt) on the same disk.
 */
static struct track {
    bool on;
    uint64_t *bits;
    uint64_t nblocks;
} tracks[TANDEM_ABI_MAX_DEVICES];

/* Bitmaps replaced because a slot's disk changed size: kept (and reachable) for the same reason. */
static struct retired {
    struct retired *next;
    uint64_t *bits;
} *retired;

static size_t words_of(uint64_t nblocks)
{
    return (size_t)((nblocks + 63) / 64);
}

void vmm_blkdirty_mark(const struct vmm_dev *d, uint64_t offset, uint64_t len)
{
    struct track *t;
    uint64_t first, last;

    if (len == 0 || d->abi.handle >= TANDEM_ABI_MAX_DEVICES)
        return;
    t = &tracks[d->abi.handle];
    if (!__atomic_load_n(&t->on, __ATOMIC_ACQUIRE))
        return;
    first = offset >> VMM_BLKDIRTY_SHIFT;
    last = (offset + len - 1) >> VMM_BLKDIRTY_SHIFT;
    if (last >= t->nblocks)
        last = t->nblocks - 1;
    for (uint64_t b = first; b <= last; b++)
        __atomic_fetch_or(&t->bits[b / 64], 1ull << (b % 64), __ATOMIC_RELEASE);
}

static bool is_disk(const struct vmm_dev *d)
{
    return d->is_setup && d->abi.type == TANDEM_DEVICE_DISK && d->blk.fd >= 0;
}

static json_t *fail(const char *msg)
{
    return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

static json_t *start(struct vmm *vm)
{
    json_t *disks = json_array();

    if (!disks)
        return fail("disk-dirty: out of memory");
    for (unsigned k = 0; k < vm->num_devs && k < TANDEM_ABI_MAX_DEVICES; k++) {
        struct vmm_dev *d = &vm->devs[k];
        struct track *t = &tracks[k];
        uint64_t nblocks;

        if (!is_disk(d))
            continue;
        nblocks = (d->blk.capacity + VMM_BLKDIRTY_BLOCK - 1) >> VMM_BLKDIRTY_SHIFT;
        __atomic_store_n(&t->on, false, __ATOMIC_RELEASE);
        if (!t->bits || t->nblocks != nblocks) {
            /* A different disk in this slot: the old map is retired, not freed (see `tracks`). */
            uint64_t *bits = calloc(words_of(nblocks), sizeof(uint64_t));
            if (!bits) {
                json_decref(disks);
                return fail("disk-dirty: out of memory for a dirty bitmap");
            }
            if (t->bits) {
                struct retired *r = malloc(sizeof(*r));
                if (!r) {
                    free(bits);
                    json_decref(disks);
                    return fail("disk-dirty: out of memory for a dirty bitmap");
                }
                r->bits = t->bits;
                r->next = retired;
                retired = r;
            }
            t->bits = bits;
            t->nblocks = nblocks;
        }
        for (size_t w = 0; w < words_of(nblocks); w++)
            __atomic_store_n(&t->bits[w], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&t->on, true, __ATOMIC_RELEASE);
        json_array_append_new(disks, json_pack("{s:s,s:I,s:I}", "path", d->blk.path, "capacity",
                                               (json_int_t)d->blk.capacity, "blocks",
                                               (json_int_t)nblocks));
    }
    vmm_log("disk-dirty: tracking %zu disk(s) in %u-byte blocks", json_array_size(disks),
            VMM_BLKDIRTY_BLOCK);
    return json_pack("{s:b,s:i,s:o}", "ok", 1, "block_size", (int)VMM_BLKDIRTY_BLOCK, "disks",
                     disks);
}

/*
 * Take one disk's dirty bits (cleared as they are taken) and append them
 * as [first, count] ranges to `ranges` while *budget lasts; bits beyond
 * the budget are put back. Returns the number of blocks reported.
 */
static uint64_t take_ranges(struct track *t, json_t *ranges, unsigned *budget, bool *more)
{
    size_t nw = words_of(t->nblocks);
    uint64_t reported = 0, run_start = 0, run_len = 0;

    for (size_t w = 0; w < nw; w++) {
        uint64_t bits = __atomic_exchange_n(&t->bits[w], 0, __ATOMIC_ACQ_REL);
        for (unsigned i = 0; bits && i < 64; i++) {
            uint64_t b = (uint64_t)w * 64 + i;
            if (!(bits & (1ull << i)))
                continue;
            if (run_len && run_start + run_len == b) {
                run_len++;
            } else {
                if (run_len) {
                    json_array_append_new(
                        ranges, json_pack("[I,I]", (json_int_t)run_start, (json_int_t)run_len));
                    reported += run_len;
                    (*budget)--;
                }
                run_len = 0;
                if (*budget == 0) {
                    /* Full: this bit and the rest of the word go back, later words stay. */
                    __atomic_fetch_or(&t->bits[w], bits & ~((1ull << i) - 1), __ATOMIC_RELEASE);
                    *more = true;
                    return reported;
                }
                run_start = b;
                run_len = 1;
            }
            bits &= ~(1ull << i);
        }
    }
    if (run_len) {
        json_array_append_new(ranges,
                              json_pack("[I,I]", (json_int_t)run_start, (json_int_t)run_len));
        reported += run_len;
        (*budget)--;
    }
    return reported;
}

static json_t *fetch(struct vmm *vm)
{
    json_t *disks = json_array();
    unsigned budget = MAX_RANGES;
    bool more = false;

    if (!disks)
        return fail("disk-dirty: out of memory");
    for (unsigned k = 0; k < vm->num_devs && k < TANDEM_ABI_MAX_DEVICES; k++) {
        struct vmm_dev *d = &vm->devs[k];
        struct track *t = &tracks[k];
        json_t *ranges;
        uint64_t n;

        if (!is_disk(d) || !__atomic_load_n(&t->on, __ATOMIC_ACQUIRE))
            continue;
        ranges = json_array();
        if (!ranges) {
            json_decref(disks);
            return fail("disk-dirty: out of memory");
        }
        n = more ? 0 : take_ranges(t, ranges, &budget, &more);
        json_array_append_new(disks, json_pack("{s:s,s:I,s:o}", "path", d->blk.path, "dirty",
                                               (json_int_t)n, "ranges", ranges));
    }
    return json_pack("{s:b,s:i,s:b,s:o}", "ok", 1, "block_size", (int)VMM_BLKDIRTY_BLOCK, "more",
                     more, "disks", disks);
}

json_t *vmm_blkdirty_request(struct vmm *vm, const json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));

    if (!op)
        return fail("disk-dirty: \"op\" must be \"start\", \"fetch\" or \"stop\"");
    if (strcmp(op, "start") == 0)
        return start(vm);
    if (strcmp(op, "fetch") == 0)
        return fetch(vm);
    if (strcmp(op, "stop") == 0) {
        for (unsigned k = 0; k < TANDEM_ABI_MAX_DEVICES; k++)
            __atomic_store_n(&tracks[k].on, false, __ATOMIC_RELEASE);
        vmm_log("disk-dirty: tracking stopped");
        return json_pack("{s:b}", "ok", 1);
    }
    return json_pack("{s:b,s:s}", "ok", 0, "error",
                     "disk-dirty: unknown \"op\" (known: start, fetch, stop)");
}
