/* Dirty-block tracking of the block backend, for live migration with --copy-storage. */
#ifndef TANDEM_VMM_BLKDIRTY_H
#define TANDEM_VMM_BLKDIRTY_H

#include <jansson.h>
#include <stdint.h>

struct vmm;
struct vmm_dev;

/* Tracking granularity: a write marks every 64 KiB block it touches. */
#define VMM_BLKDIRTY_SHIFT 16
#define VMM_BLKDIRTY_BLOCK (1u << VMM_BLKDIRTY_SHIFT)

/*
 * Mark the blocks of [offset, offset+len) of disk d dirty. Called by
 * vmm_block_write after the data has reached the file (so whoever fetches
 * and clears the bit and then reads the file sees the new bytes). Any
 * thread, lock-free; nothing happens while tracking is off.
 */
void vmm_blkdirty_mark(const struct vmm_dev *d, uint64_t offset, uint64_t len);

/*
 * The control command `disk-dirty` (docs/control.md): {"op":"start"}
 * clears and starts tracking every disk, {"op":"fetch"} returns the dirty
 * blocks as ranges and clears them (at most a reply's worth; "more" says
 * the rest is still set), {"op":"stop"} stops. Returns the reply object
 * ({"ok":false,"error":...} on a bad request or no memory).
 */
json_t *vmm_blkdirty_request(struct vmm *vm, const json_t *req);

#endif
