/* The block backend: a raw image file or block device, read-only honoured, flush = fdatasync. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"
#include "vmm_blkdirty.h"

#define SECTOR_SIZE 512u

static const char *vdev_of(const struct vmm_dev *d)
{
    return d->disk->vdev && d->disk->vdev[0] ? d->disk->vdev : "(no vdev)";
}

static int block_setup(struct vmm *vm, struct vmm_dev *d, char *err, size_t errlen)
{
    const tandem_device_disk *spec = d->disk;
    struct stat st;
    uint64_t size = 0;
    int fd = -1, flags;

    (void)vm;
    if (spec->format != TANDEM_DISK_FORMAT_RAW && spec->format != TANDEM_DISK_FORMAT_UNKNOWN) {
        snprintf(err, errlen, "disk %s: format '%s' is not supported, only raw", vdev_of(d),
                 tandem_disk_format_to_string(spec->format));
        goto fail;
    }
    if (spec->is_cdrom) {
        snprintf(err, errlen, "disk %s: CD-ROM devices are not supported", vdev_of(d));
        goto fail;
    }
    if (!spec->pdev_path || !spec->pdev_path[0]) {
        snprintf(err, errlen, "disk %s: no target path given", vdev_of(d));
        goto fail;
    }
    d->blk.readonly = !spec->readwrite;
    flags = (d->blk.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    fd = open(spec->pdev_path, flags);
    if (fd < 0) {
        snprintf(err, errlen, "disk %s: cannot open %s%s: %s", vdev_of(d), spec->pdev_path,
                 d->blk.readonly ? "" : " read-write", strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "disk %s: %s: %s", vdev_of(d), spec->pdev_path, strerror(errno));
        goto fail;
    }
    if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
            snprintf(err, errlen, "disk %s: %s: cannot read the size: %s", vdev_of(d),
                     spec->pdev_path, strerror(errno));
            goto fail;
        }
    } else {
        snprintf(err, errlen, "disk %s: %s is neither a regular file nor a block device",
                 vdev_of(d), spec->pdev_path);
        goto fail;
    }
    /* A trailing partial sector is not addressable by the guest. */
    size -= size % SECTOR_SIZE;
    if (size == 0) {
        snprintf(err, errlen, "disk %s: %s is smaller than one %u-byte sector", vdev_of(d),
                 spec->pdev_path, SECTOR_SIZE);
        goto fail;
    }
    d->blk.path = strdup(spec->pdev_path);
    if (!d->blk.path) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    d->blk.fd = fd;
    d->blk.capacity = size;
    d->abi.type = TANDEM_DEVICE_DISK;
    d->abi.flags = d->blk.readonly ? TANDEM_DEVICE_F_READONLY : 0;
    d->abi.capacity = size;
    d->abi.sector_size = SECTOR_SIZE;
    vmm_log("disk %s: %s, %llu bytes, %s", vdev_of(d), spec->pdev_path, (unsigned long long)size,
            d->blk.readonly ? "read-only" : "read-write");
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

static void block_teardown(struct vmm *vm, struct vmm_dev *d)
{
    (void)vm;
    if (d->blk.fd >= 0) {
        if (!d->blk.readonly && fdatasync(d->blk.fd) < 0)
            vmm_log("disk %s: final fdatasync: %s", vdev_of(d), strerror(errno));
        close(d->blk.fd);
    }
    d->blk.fd = -1;
    free(d->blk.path);
    d->blk.path = NULL;
}

const struct vmm_dev_ops vmm_block_ops = {
    .kind = "disk",
    .setup = block_setup,
    .teardown = block_teardown,
};

int vmm_block_check(struct vmm_dev *d, uint64_t offset, uint64_t len)
{
    if (offset % SECTOR_SIZE || len % SECTOR_SIZE || offset > d->blk.capacity ||
        len > d->blk.capacity - offset)
        return TANDEM_HC_EINVAL;
    return 0;
}

int vmm_block_read(struct vmm_dev *d, uint64_t offset, void *buf, uint64_t len)
{
    uint64_t done = 0;

    while (done < len) {
        ssize_t n = pread(d->blk.fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vmm_log("disk %s: read at %llu: %s", vdev_of(d), (unsigned long long)(offset + done),
                    strerror(errno));
            return TANDEM_HC_EIO;
        }
        if (n == 0) { /* the file shrank under us: read zeros, as a sparse tail would */
            memset((uint8_t *)buf + done, 0, len - done);
            break;
        }
        done += (uint64_t)n;
    }
    return 0;
}

int vmm_block_write(struct vmm_dev *d, uint64_t offset, const void *buf, uint64_t len)
{
    uint64_t done = 0;

    if (d->blk.readonly)
        return TANDEM_HC_EROFS;
    while (done < len) {
        ssize_t n =
            pwrite(d->blk.fd, (const uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            vmm_log("disk %s: write at %llu: %s", vdev_of(d), (unsigned long long)(offset + done),
                    n < 0 ? strerror(errno) : "no progress");
            return TANDEM_HC_EIO;
        }
        done += (uint64_t)n;
    }
    vmm_blkdirty_mark(d, offset, len); /* migration (--copy-storage); after the data is in */
    {
        void (*hook)(struct vmm_dev *, uint64_t, const void *, uint64_t) =
            __atomic_load_n(&d->blk.on_write, __ATOMIC_ACQUIRE);
        if (hook)
            hook(d, offset, buf, len); /* Remus: the backup gets it with this epoch */
    }
    return 0;
}

int vmm_block_flush(struct vmm_dev *d)
{
    if (d->blk.readonly)
        return 0;
    /* Remus: the writes become durable on the backup, which syncs them before it ACKs the
     * epoch; the guest's output that depends on this flush waits for that ACK (docs/remus.md). */
    if (__atomic_load_n(&d->blk.on_write, __ATOMIC_ACQUIRE))
        return 0;
    if (fdatasync(d->blk.fd) < 0) {
        vmm_log("disk %s: fdatasync: %s", vdev_of(d), strerror(errno));
        return TANDEM_HC_EIO;
    }
    return 0;
}
