/* kvstore guest: the kv_core backend over a PV disk (tg_block_*). */
#ifndef KV_BLOCKDEV_H
#define KV_BLOCKDEV_H

#include <stddef.h>

#include "kv_core.h"

struct kv_blockdev {
    struct kv_backend be; /* what kv_store_open takes; opaque points back here */
    unsigned handle;
    unsigned long long writes, flushes;
    unsigned long long write_ns, flush_ns; /* guest time spent in the calls (for the stats line) */
};

/*
 * Set up bd over the nth disk of the domain. The disk must have 512-byte
 * sectors (the log's unit) and be writable. Returns 0, or -1 after writing
 * one line naming the disk and the problem into err.
 */
int kv_blockdev_open(struct kv_blockdev *bd, unsigned nth, char *err, size_t errlen);

#endif
