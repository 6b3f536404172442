/* Remus disk replication: capture an epoch's writes on the primary, hold and apply them at commit
 * on the backup. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm_remus.h"

#define SECTOR 512u
#define IMAGE_CHUNK (1u << 20)

/* ---- primary: capture ------------------------------------------------------------------------ */

struct db_write {
    struct db_write *next;
    uint64_t epoch;
    uint64_t offset, len;
    uint8_t data[];
};

struct vmm_diskbuf {
    pthread_mutex_t lock;
    struct vmm *vm;
    struct db_write *head, *tail;
    uint64_t stamp;
    uint64_t bytes;
    uint8_t *image; /* the initial copy, sent ahead of the first epoch's writes */
};

void (*vmm_diskbuf_full_hook)(struct vmm *vm);

/*
 * Runs after the write reached the primary's image (vCPU or I/O thread).
 * The epoch boundary cannot cut a write in two: both threads are held off
 * guest memory while an epoch's state is captured.
 */
static void db_capture(struct vmm_dev *d, uint64_t offset, const void *buf, uint64_t len)
{
    struct vmm_diskbuf *db = d->blk.capture;
    struct db_write *w = malloc(sizeof(*w) + len);
    bool full;

    if (!w) {
        /* Cannot keep it: the backup's disk would silently diverge, so say so loudly. */
        vmm_log("remus: disk %s: out of memory keeping a %llu-byte write; the backup's disk "
                "is no longer identical",
                d->blk.path, (unsigned long long)len);
        return;
    }
    w->next = NULL;
    w->offset = offset;
    w->len = len;
    memcpy(w->data, buf, len);
    pthread_mutex_lock(&db->lock);
    w->epoch = db->stamp;
    if (db->tail)
        db->tail->next = w;
    else
        db->head = w;
    db->tail = w;
    db->bytes += len;
    full = db->bytes > VMM_DISKBUF_SOFT_CAP;
    pthread_mutex_unlock(&db->lock);
    if (full && vmm_diskbuf_full_hook)
        vmm_diskbuf_full_hook(db->vm);
}

static int db_setup(struct vmm *vm, struct vmm_dev *d, char *err, size_t errlen)
{
    struct vmm_diskbuf *db;

    if (d->blk.readonly)
        return 0; /* nothing to replicate */
    db = calloc(1, sizeof(*db));
    if (!db) {
        snprintf(err, errlen, "disk %s: out of memory for the write buffer", d->blk.path);
        return -1;
    }
    pthread_mutex_init(&db->lock, NULL);
    db->vm = vm;
    db->stamp = 1;
    d->blk.capture = db;
    __atomic_store_n(&d->blk.on_write, db_capture, __ATOMIC_RELEASE);
    return 0;
}

static void db_postsuspend(struct vmm *vm, struct vmm_dev *d, uint64_t epoch)
{
    struct vmm_diskbuf *db = d->blk.capture;

    (void)vm;
    if (!db)
        return;
    pthread_mutex_lock(&db->lock);
    db->stamp = epoch + 1;
    pthread_mutex_unlock(&db->lock);
}

static void db_teardown(struct vmm *vm, struct vmm_dev *d, bool release)
{
    struct vmm_diskbuf *db = d->blk.capture;
    struct db_write *w;

    (void)vm;
    (void)release; /* the primary's image already has every write */
    if (!db)
        return;
    __atomic_store_n(&d->blk.on_write, NULL, __ATOMIC_RELEASE);
    d->blk.capture = NULL;
    while ((w = db->head)) {
        db->head = w->next;
        free(w);
    }
    pthread_mutex_destroy(&db->lock);
    free(db->image);
    free(db);
}

int vmm_diskbuf_send(struct vmm_dev *d, unsigned disk_index, uint64_t epoch,
                     tandem_stream_writer *w)
{
    struct vmm_diskbuf *db = d->blk.capture;
    struct db_write *list = NULL, **tailp = &list, *x;
    int rc = 0;

    if (!db)
        return 0;
    /* Zero chunks go too: the backup's image may hold anything before the copy. */
    for (uint64_t off = 0; db->image && off < d->blk.capacity && !rc; off += IMAGE_CHUNK) {
        uint64_t n = d->blk.capacity - off < IMAGE_CHUNK ? d->blk.capacity - off : IMAGE_CHUNK;
        struct tandem_stream_extent e = {off / SECTOR, (uint32_t)(n / SECTOR), db->image + off};
        if (tandem_stream_write_disk(w, disk_index, SECTOR, &e, 1) < 0)
            rc = -1;
    }
    free(db->image);
    db->image = NULL;
    pthread_mutex_lock(&db->lock);
    while (db->head && db->head->epoch <= epoch) {
        x = db->head;
        db->head = x->next;
        if (!db->head)
            db->tail = NULL;
        db->bytes -= x->len;
        x->next = NULL;
        *tailp = x;
        tailp = &x->next;
    }
    pthread_mutex_unlock(&db->lock);
    /* One record per write keeps the stream order = the order the guest wrote in. */
    while ((x = list)) {
        struct tandem_stream_extent e = {x->offset / SECTOR, (uint32_t)(x->len / SECTOR), x->data};
        list = x->next;
        if (!rc && x->len && tandem_stream_write_disk(w, disk_index, SECTOR, &e, 1) < 0)
            rc = -1;
        free(x);
    }
    return rc;
}

uint64_t vmm_diskbuf_held(struct vmm_dev *d)
{
    struct vmm_diskbuf *db = d->blk.capture;
    uint64_t n;

    if (!db)
        return 0;
    pthread_mutex_lock(&db->lock);
    n = db->bytes;
    pthread_mutex_unlock(&db->lock);
    return n;
}

int vmm_diskbuf_snapshot_image(struct vmm_dev *d, char *err, size_t errlen)
{
    struct vmm_diskbuf *db = d->blk.capture;
    uint8_t *buf;
    uint64_t off = 0;

    if (!db)
        return 0;
    buf = malloc(d->blk.capacity ? d->blk.capacity : 1);
    if (!buf) {
        snprintf(err, errlen, "disk %s: out of memory copying its %llu bytes", d->blk.path,
                 (unsigned long long)d->blk.capacity);
        return -1;
    }
    while (off < d->blk.capacity) {
        ssize_t got = pread(d->blk.fd, buf + off, d->blk.capacity - off, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "disk %s: read at %llu: %s", d->blk.path, (unsigned long long)off,
                     strerror(errno));
            free(buf);
            return -1;
        }
        if (got == 0) {
            memset(buf + off, 0, d->blk.capacity - off); /* sparse tail */
            break;
        }
        off += (uint64_t)got;
    }
    free(db->image);
    db->image = buf;
    return 0;
}

const struct vmm_remus_dev_ops vmm_diskbuf_ops = {
    .name = "diskbuf",
    .setup = db_setup,
    .postsuspend = db_postsuspend,
    .teardown = db_teardown,
};

/* ---- backup: hold until commit --------------------------------------------------------------- */

struct hold_write {
    struct hold_write *next;
    uint32_t disk;
    uint64_t offset, len;
    uint8_t data[];
};

static struct hold_write *hold_head, **hold_tail = &hold_head;
static uint64_t hold_bytes;
static uint64_t direct_written; /* bit per disk index written directly since the last commit */

static struct vmm_dev *disk_by_index(struct vmm *vm, uint32_t index)
{
    uint32_t n = 0;

    for (unsigned k = 0; k < vm->num_devs; k++)
        if (vm->devs[k].abi.type == TANDEM_DEVICE_DISK && n++ == index)
            return &vm->devs[k];
    return NULL;
}

int vmm_diskhold_add(struct vmm *vm, uint32_t disk, uint32_t sector_size,
                     const struct tandem_stream_extent *e, bool direct, char *err, size_t errlen)
{
    struct vmm_dev *d = disk_by_index(vm, disk);
    uint64_t off = e->sector * sector_size, len = (uint64_t)e->count * sector_size;
    struct hold_write *h;

    if (!d) {
        snprintf(err, errlen, "disk writes for disk %u, but the domain has no such disk", disk);
        return -1;
    }
    if (d->blk.readonly || off > d->blk.capacity || len > d->blk.capacity - off) {
        snprintf(err, errlen,
                 "disk %u (%s): a write of %llu bytes at %llu does not fit its %llu bytes%s", disk,
                 d->blk.path, (unsigned long long)len, (unsigned long long)off,
                 (unsigned long long)d->blk.capacity, d->blk.readonly ? " (read-only)" : "");
        return -1;
    }
    if (direct) {
        if (len && vmm_block_write(d, off, e->data, len) != 0) {
            snprintf(err, errlen, "disk %s: a write of %llu bytes at %llu failed", d->blk.path,
                     (unsigned long long)len, (unsigned long long)off);
            return -1;
        }
        direct_written |= disk < 64 ? 1ull << disk : 0;
        return 0;
    }
    h = malloc(sizeof(*h) + len);
    if (!h) {
        snprintf(err, errlen, "out of memory holding disk writes");
        return -1;
    }
    h->next = NULL;
    h->disk = disk;
    h->offset = off;
    h->len = len;
    memcpy(h->data, e->data, len);
    *hold_tail = h;
    hold_tail = &h->next;
    hold_bytes += len;
    return 0;
}

int vmm_diskhold_commit(struct vmm *vm, char *err, size_t errlen)
{
    struct hold_write *h;
    uint64_t synced = direct_written; /* bit per disk index written */
    int rc = 0;

    direct_written = 0;
    while ((h = hold_head)) {
        struct vmm_dev *d = disk_by_index(vm, h->disk);
        hold_head = h->next;
        if (h->disk < 64)
            synced |= 1ull << h->disk;
        if (!rc && d && vmm_block_write(d, h->offset, h->data, h->len) != 0) {
            snprintf(err, errlen, "disk %s: applying a write of %llu bytes at %llu failed",
                     d->blk.path, (unsigned long long)h->len, (unsigned long long)h->offset);
            rc = -1;
        }
        free(h);
    }
    hold_tail = &hold_head;
    hold_bytes = 0;
    /* Durable before the ACK: the primary skips the guest's flushes while protected. */
    for (uint32_t i = 0; !rc && synced; i++, synced >>= 1) {
        struct vmm_dev *d = disk_by_index(vm, i);
        if ((synced & 1) && d && fdatasync(d->blk.fd) < 0) {
            snprintf(err, errlen, "disk %s: fdatasync: %s", d->blk.path, strerror(errno));
            rc = -1;
        }
    }
    return rc;
}

uint64_t vmm_diskhold_discard(void)
{
    struct hold_write *h;
    uint64_t n = hold_bytes;

    while ((h = hold_head)) {
        hold_head = h->next;
        free(h);
    }
    hold_tail = &hold_head;
    hold_bytes = 0;
    return n;
}
