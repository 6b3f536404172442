/* kvstore guest: the kv_core backend over a PV disk; synchronous writes, flush completes in the
 * call. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kv_blockdev.h"
#include "tandem_dev.h"
#include "tandem_guest.h"

/* Large replay reads and snapshot writes go to the device in pieces of this size. */
#define CHUNK (256u * 1024u)

static int to_errno(int hc)
{
    switch (hc) {
    case TANDEM_HC_EINVAL:
        return -EINVAL;
    case TANDEM_HC_EROFS:
        return -EROFS;
    case TANDEM_HC_ENOSYS:
        return -ENOSYS;
    default:
        return -EIO;
    }
}

static int bd_read(void *opaque, uint64_t off, void *buf, size_t len)
{
    struct kv_blockdev *bd = opaque;

    for (size_t done = 0; done < len;) {
        size_t n = len - done < CHUNK ? len - done : CHUNK;
        int hc = tg_block_read(bd->handle, off + done, (char *)buf + done, n);
        if (hc < 0)
            return to_errno(hc);
        done += n;
    }
    return 0;
}

static int bd_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
    struct kv_blockdev *bd = opaque;
    uint64_t t0 = tg_clock_ns();
    int rc = 0;

    for (size_t done = 0; done < len;) {
        size_t n = len - done < CHUNK ? len - done : CHUNK;
        int hc = tg_block_write(bd->handle, off + done, (const char *)buf + done, n);
        if (hc < 0) {
            rc = to_errno(hc);
            break;
        }
        done += n;
    }
    bd->writes++;
    bd->write_ns += tg_clock_ns() - t0;
    return rc;
}

/* tg_block_flush returns once the writes are on stable storage, so completion is immediate. */
static int bd_flush(void *opaque, kv_flush_done_fn *done, void *arg)
{
    struct kv_blockdev *bd = opaque;
    uint64_t t0 = tg_clock_ns();
    int hc = tg_block_flush(bd->handle);

    bd->flushes++;
    bd->flush_ns += tg_clock_ns() - t0;
    done(arg, hc < 0 ? to_errno(hc) : 0);
    return 0;
}

int kv_blockdev_open(struct kv_blockdev *bd, unsigned nth, char *err, size_t errlen)
{
    int h = tg_dev_find(TANDEM_DEVICE_DISK, nth);
    const struct tandem_device *dev;
    int rc = -1;

    memset(bd, 0, sizeof(*bd));
    if (h < 0) {
        snprintf(err, errlen, "no disk number %u: the domain needs a disk for the log (disk=[...])",
                 nth);
        goto out;
    }
    dev = tg_dev((unsigned)h);
    if (dev->sector_size != KV_SECTOR) {
        snprintf(err, errlen, "disk %s has %u-byte sectors; the log needs %u-byte sectors",
                 dev->name, dev->sector_size, KV_SECTOR);
        goto out;
    }
    if (dev->flags & TANDEM_DEVICE_F_READONLY) {
        snprintf(err, errlen, "disk %s is read-only; the log needs it writable (\",rw\")",
                 dev->name);
        goto out;
    }
    bd->handle = (unsigned)h;
    bd->be.opaque = bd;
    bd->be.capacity = dev->capacity / KV_SECTOR * KV_SECTOR;
    bd->be.read = bd_read;
    bd->be.write = bd_write;
    bd->be.flush = bd_flush;
    rc = 0;
out:
    return rc;
}
