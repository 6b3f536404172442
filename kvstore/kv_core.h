/* kvstore core: line protocol, bounded store and durable log, free of sockets and disks. */
#ifndef KV_CORE_H
#define KV_CORE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The core is portable C (malloc, memcpy, snprintf only) so that the same
 * code runs in the native host server and inside the PV guest. The protocol
 * and the on-disk format are specified in docs/kvstore-protocol.md.
 *
 * Threading: none. Every call, including the backend's flush completion, must
 * come from the one thread that owns the store.
 */

#define KV_SECTOR 512u
#define KV_KEY_MAX 64u
#define KV_VALUE_MAX 256u
/* Longest accepted request line, without its "\n". */
#define KV_LINE_MAX 1024u
#define KV_DEFAULT_MAX_KEYS 65536u

/* Completion of an asynchronous flush: rc is 0 or a negative errno. */
typedef void kv_flush_done_fn(void *arg, int rc);

/*
 * The storage under the log. Offsets and lengths passed to read and write are
 * always multiples of KV_SECTOR and lie inside [0, capacity).
 *
 * read and write are synchronous (write may leave data in a volatile cache)
 * and return 0 or a negative errno; write may also only queue the data (it
 * must copy it), provided the next flush completes after the queued writes
 * are done, as an in-order ring with a flush barrier does. read is used only
 * by kv_store_open. flush makes every completed (or queued) write durable
 * and reports it by calling done(arg, rc) exactly once, either before flush
 * returns (synchronous backends) or later from the owner's event loop; flush
 * itself returns 0, or a negative errno when it could not start (done is then
 * not called). The core never has two flushes outstanding.
 */
struct kv_backend {
    void *opaque;
    uint64_t capacity; /* bytes, a multiple of KV_SECTOR */
    int (*read)(void *opaque, uint64_t off, void *buf, size_t len);
    int (*write)(void *opaque, uint64_t off, const void *buf, size_t len);
    int (*flush)(void *opaque, kv_flush_done_fn *done, void *arg);
};

/*
 * Called when replies for a connection are released (after the flush that
 * covers everything they depend on). data is one or more complete reply lines;
 * it is valid only during the call.
 */
typedef void kv_send_fn(void *conn_arg, const char *data, size_t len);

struct kv_config {
    uint32_t max_keys; /* 0 = KV_DEFAULT_MAX_KEYS */
    kv_send_fn *send;  /* required */
};

struct kv_store;
struct kv_conn;

/* Counters for logs and benchmarks. */
struct kv_stats {
    uint64_t keys;         /* live keys */
    uint64_t mutations;    /* writes applied since open (replay excluded) */
    uint64_t durable;      /* of those, covered by a completed flush */
    uint64_t replayed;     /* log records applied by kv_store_open */
    uint64_t flushes;      /* flushes started */
    uint64_t compactions;  /* snapshots written */
    uint64_t log_bytes;    /* bytes of the active log region in use */
    uint64_t log_capacity; /* bytes of one log region */
    uint32_t generation;   /* superblock generation in use */
};

/*
 * Open a store on a backend: read the superblocks, replay the log of the
 * active region up to its first missing, partial or corrupt record (that is
 * the end) and return the store in *out. A backend without a valid
 * superblock is formatted (the format is made durable by the first flush).
 * The backend is borrowed and must outlive the store.
 *
 * Returns 0, -EINVAL when the capacity is too small (< 16 KiB) or not sector
 * aligned, -ENOMEM, or the backend's read/write error. On failure *err (when
 * not NULL) points to a static message naming the problem.
 */
int kv_store_open(const struct kv_config *cfg, const struct kv_backend *be, struct kv_store **out,
                  const char **err);

/* Free the store and every connection still open on it. NULL is fine. */
void kv_store_close(struct kv_store *st);

/*
 * Start a flush of everything written since the last one, unless a flush is
 * already outstanding (its completion starts the next one). Call it after a
 * round of kv_conn_input calls: replies to writes are held until then, which
 * is how writes of many connections share one flush. Also starts log
 * compaction when the active region is full.
 */
void kv_store_commit(struct kv_store *st);

/* True when writes are waiting for kv_store_commit or a flush is outstanding. */
int kv_store_busy(const struct kv_store *st);

void kv_store_stats(const struct kv_store *st, struct kv_stats *out);

/* Open a connection; conn_arg is handed back to cfg->send. NULL on ENOMEM. */
struct kv_conn *kv_conn_open(struct kv_store *st, void *conn_arg);

/*
 * Feed bytes received on a connection. Complete lines are executed at once
 * (state changes are visible to later commands on every connection); their
 * replies go to cfg->send in request order, each as soon as the flush covering
 * the state it observed has completed. A partial line is kept for the next
 * call. A line longer than KV_LINE_MAX gets "ERR line too long" and is skipped
 * up to its newline.
 */
void kv_conn_input(struct kv_conn *c, const char *data, size_t len);

/* Number of replies held for this connection (waiting for a flush). */
size_t kv_conn_pending(const struct kv_conn *c);

/* Close a connection; held replies are dropped (their writes still happen). */
void kv_conn_close(struct kv_conn *c);

/* IEEE 802.3 CRC-32 (the zlib one), continued from crc (0 to start). */
uint32_t kv_crc32(uint32_t crc, const void *data, size_t len);

#endif
