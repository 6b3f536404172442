/* Tandem guest SDK: the PV network and block devices listed in the boot info. */
#ifndef TANDEM_DEV_H
#define TANDEM_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "tandem_abi.h"

/*
 * Devices come from the boot info's device table; a device's handle is
 * its index there (tandem_boot_info.devices[handle]). All calls below take
 * that handle and return a negative TANDEM_HC_E* code on failure:
 * TANDEM_HC_EINVAL for a handle that is not a device of the right type,
 * or a malformed offset/length. One vCPU, no interrupts: none of these
 * may be called re-entrantly, and none needs locking.
 *
 * Waiting: the existing tg_poll(deadline_ns) (tandem_guest.h) is the one
 * place a guest sleeps. It returns early when a device has input, with
 * bit `handle` set in the returned ready set for every vif that has a
 * frame pending. After it returns, call tg_net_recv until it says
 * TANDEM_HC_EAGAIN.
 */

/* The device entry for handle, or NULL if there is no device with that handle. */
const struct tandem_device *tg_dev(unsigned handle);
/* Handle of the nth (0-based) device of type (enum tandem_device_type), or -1. */
int tg_dev_find(uint32_t type, unsigned nth);

/* ---- network: whole Ethernet frames without FCS, at most mtu + 14 bytes. */

/*
 * Queue one frame for transmission. 0 on success (the frame was copied;
 * buf may be reused at once), TANDEM_HC_EAGAIN when the TX path is full
 * (call tg_poll with a short deadline, then retry), TANDEM_HC_EINVAL for
 * len 0 or > mtu + 14.
 */
int tg_net_send(unsigned handle, const void *frame, size_t len);
/*
 * Take the next received frame into buf. Returns its length (> 0),
 * TANDEM_HC_EAGAIN if none is pending, or TANDEM_HC_ENOSPC if buflen is
 * smaller than the frame (the frame stays queued; a buffer of mtu + 14
 * bytes always suffices).
 */
int tg_net_recv(unsigned handle, void *buf, size_t buflen);

/* ---- block: offset and len are multiples of the device's sector_size. */

/*
 * Synchronous: they return when the request is done. 0 on success;
 * TANDEM_HC_EINVAL for a misaligned or out-of-range offset/length (the
 * whole [offset, offset+len) must lie inside capacity), TANDEM_HC_EIO for
 * a host I/O error, TANDEM_HC_EROFS for a write to a read-only disk.
 * A completed write is visible to later reads but is durable only after
 * tg_block_flush.
 */
int tg_block_read(unsigned handle, uint64_t offset, void *buf, size_t len);
int tg_block_write(unsigned handle, uint64_t offset, const void *buf, size_t len);
/* Returns when all earlier completed writes are on stable storage (fdatasync on the host). */
int tg_block_flush(unsigned handle);

#endif
