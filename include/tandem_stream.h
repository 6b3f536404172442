/* Checkpoint stream (docs/stream-format.md): writer, reader, payload decoders and validator. */
#ifndef TANDEM_STREAM_H
#define TANDEM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "tandem.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TANDEM_STREAM_VERSION 1u
#define TANDEM_STREAM_MAX_RECORD (64u << 20) /* largest body a reader accepts */
#define TANDEM_STREAM_MAX_BATCH 4096u        /* pages per PAGE_BATCH a reader accepts */
#define TANDEM_STREAM_WRITE_BATCH 1024u      /* pages per PAGE_BATCH the writer emits */
#define TANDEM_STREAM_PFN_MASK ((1ull << 52) - 1)

/* Record types; bit 31 marks a record a reader may skip if it does not know it. */
enum tandem_stream_rec {
    TANDEM_REC_DOMAIN_CONFIG = 1,
    TANDEM_REC_PAGE_BATCH = 2,
    TANDEM_REC_VCPU_STATE = 3,
    TANDEM_REC_CLOCK = 4,
    TANDEM_REC_DEVICE_STATE = 5,
    TANDEM_REC_DISK_WRITES = 6,
    TANDEM_REC_CHECKPOINT = 7,
    TANDEM_REC_END = 8,
    TANDEM_REC_HEARTBEAT = 0x80000001u,
};
#define TANDEM_REC_SKIPPABLE 0x80000000u

/* Name of a record type ("PAGE_BATCH"), "unknown" for others; never NULL. */
const char *tandem_stream_rec_name(uint32_t type);

/* Stream kinds (header flags bits 0..1). */
enum tandem_stream_kind {
    TANDEM_STREAM_SAVE = 0,
    TANDEM_STREAM_LIVE = 1,
    TANDEM_STREAM_CHECKPOINTED = 2,
};
#define TANDEM_STREAM_F_KIND_MASK 0x3u
#define TANDEM_STREAM_F_COMPRESSED 0x4u

enum tandem_stream_compression {
    TANDEM_COMPRESS_NONE = 0,
    TANDEM_COMPRESS_LZ4 = 1,
    TANDEM_COMPRESS_ZSTD = 2,
};

/* VCPU_STATE sub-block tags (bit 31: skippable). Lengths are in docs/stream-format.md. */
enum tandem_stream_vcpu_tag {
    TANDEM_VCPU_REGS = 1,
    TANDEM_VCPU_SREGS = 2,
    TANDEM_VCPU_SREGS2 = 3,
    TANDEM_VCPU_XSAVE = 4,
    TANDEM_VCPU_XCRS = 5,
    TANDEM_VCPU_MSRS = 6,
    TANDEM_VCPU_EVENTS = 7,
    TANDEM_VCPU_DEBUGREGS = 8,
    TANDEM_VCPU_MP_STATE = 9,
};

enum tandem_stream_device_kind {
    TANDEM_DEVICE_CONSOLE = 1,
    TANDEM_DEVICE_NET = 2,
    TANDEM_DEVICE_BLOCK = 3,
};

struct tandem_stream_header {
    uint32_t version;
    uint32_t page_size;
    uint32_t flags; /* kind in bits 0..1, TANDEM_STREAM_F_* */
};

/* One VCPU_STATE sub-block: tag, length and the KVM structure's bytes. */
struct tandem_stream_block {
    uint32_t tag;
    uint32_t len;
    const void *data;
};

struct tandem_stream_clock {
    uint64_t guest_ns;
    uint64_t tsc_khz;
    uint64_t generation;
    uint64_t wall_ns;
};

struct tandem_stream_device {
    uint32_t kind; /* enum tandem_stream_device_kind */
    uint32_t id;
    const void *data; /* the device's opaque state */
    size_t len;
};

/* One DISK_WRITES extent: count sectors of sector_size bytes starting at sector. */
struct tandem_stream_extent {
    uint64_t sector;
    uint32_t count;
    const void *data;
};

/* ------------------------------------------------------------------ writer */

typedef struct tandem_stream_writer tandem_stream_writer;

struct tandem_stream_params {
    uint32_t page_size;   /* 0 means 4096 */
    uint32_t kind;        /* enum tandem_stream_kind */
    uint32_t compression; /* enum tandem_stream_compression, for PAGE_BATCH data */
    int level;            /* compression level, 0 = library default */
};

/*
 * Start a stream on fd (a file, pipe or socket opened for writing; the
 * writer never closes it; a non-blocking fd is waited on with poll) and
 * queue the stream header. On a socket a vanished peer is TANDEM_ERR_IO
 * (sendmsg with MSG_NOSIGNAL); on a pipe the caller must ignore SIGPIPE
 * to get the same. ctx must outlive the writer and receives its error
 * messages. Data is buffered: nothing is guaranteed to reach fd until
 * tandem_stream_flush() succeeds.
 * Returns 0, TANDEM_ERR_INVAL (bad params, named) or TANDEM_ERR_NOMEM.
 */
int tandem_stream_writer_open(tandem_ctx *ctx, int fd, const struct tandem_stream_params *params,
                              tandem_stream_writer **out);
/* Free the writer without flushing; NULL is fine. */
void tandem_stream_writer_free(tandem_stream_writer *w);

/*
 * Record writers. Each returns 0 or a negative TANDEM_ERR_* with the
 * message in ctx. The writer does not enforce the order rules (the reader
 * and tandem_stream_validate() do); it checks each payload against the
 * format. After an I/O error (TANDEM_ERR_IO) the writer is broken and
 * every later call fails with TANDEM_ERR_IO; the stream on fd is then
 * truncated at an unknown point and must be discarded.
 */

/* DOMAIN_CONFIG with json (len bytes, no NUL; a JSON object, not checked here). */
int tandem_stream_write_config(tandem_stream_writer *w, const char *json, size_t len);

/*
 * PAGE_BATCH records for n pages: pfns[i] (< 2^52) with page_size bytes
 * at pages[i]. All-zero pages are sent without data. Pages are split into
 * batches of TANDEM_STREAM_WRITE_BATCH and compressed when the writer was
 * opened with compression (and it helps). Uncompressed page data is
 * handed to the kernel straight from pages[] (no copy); the pages must not
 * change until this call returns, and they are not referenced after it.
 * Every page written is on fd when this returns 0.
 */
int tandem_stream_write_pages(tandem_stream_writer *w, const uint64_t *pfns,
                              const void *const *pages, size_t n);

/* VCPU_STATE for vcpu_id with n sub-blocks; lengths of known tags are checked. */
int tandem_stream_write_vcpu(tandem_stream_writer *w, uint32_t vcpu_id,
                             const struct tandem_stream_block *blocks, size_t n);
int tandem_stream_write_clock(tandem_stream_writer *w, const struct tandem_stream_clock *clock);
int tandem_stream_write_device(tandem_stream_writer *w, const struct tandem_stream_device *dev);
/* DISK_WRITES for one disk; n >= 1 extents of sector_size (512 or 4096) sectors. */
int tandem_stream_write_disk(tandem_stream_writer *w, uint32_t disk, uint32_t sector_size,
                             const struct tandem_stream_extent *ext, size_t n);
int tandem_stream_write_checkpoint(tandem_stream_writer *w, uint64_t epoch);
/* END, then flush. */
int tandem_stream_write_end(tandem_stream_writer *w);
int tandem_stream_write_heartbeat(tandem_stream_writer *w, uint64_t seq, uint64_t mono_ns);
/*
 * Any record with a caller-built body (for extensions and tests): type
 * must not be 0; the body is not checked. len <= TANDEM_STREAM_MAX_RECORD.
 */
int tandem_stream_write_record(tandem_stream_writer *w, uint32_t type, const void *body,
                               size_t len);

/* Write out everything buffered. Returns 0 or TANDEM_ERR_IO. */
int tandem_stream_flush(tandem_stream_writer *w);
/* Bytes of stream produced so far (written or buffered), header included. */
uint64_t tandem_stream_bytes(const tandem_stream_writer *w);

/* ------------------------------------------------------------------ reader */

typedef struct tandem_stream_reader tandem_stream_reader;

/* A framed record as returned by tandem_stream_next(). */
struct tandem_stream_record {
    uint32_t type;
    uint32_t length;
    const void *body; /* length bytes, followed by a NUL; valid until the next call */
    uint64_t offset;  /* stream offset of the record header */
    uint64_t index;   /* record number, from 1 */
};

/*
 * Read a stream from fd (the reader never closes it). There is no
 * read-ahead: the reader consumes exactly the records it returns, so on a
 * socket or pipe the bytes after END are left for the caller. A
 * non-blocking fd is waited on with poll. ctx must outlive the reader.
 * Returns 0 or TANDEM_ERR_NOMEM.
 */
int tandem_stream_reader_open(tandem_ctx *ctx, int fd, tandem_stream_reader **out);
void tandem_stream_reader_free(tandem_stream_reader *r);

/*
 * Read and check the stream header; call once, first. Errors:
 * TANDEM_ERR_PROTO (not a stream, bad checksum, bad page size or flags),
 * TANDEM_ERR_VERSION (newer format), TANDEM_ERR_IO (read failed or short).
 */
int tandem_stream_read_header(tandem_stream_reader *r, struct tandem_stream_header *hdr);

/*
 * Next record, framing checked: length bounded before any allocation,
 * checksum and padding verified, type known. Unknown skippable records
 * are consumed and skipped (counted in tandem_stream_skipped()). After
 * END it returns 0 with rec->type == TANDEM_REC_END and later calls fail.
 * Errors (message names stream offset, record number and type):
 * TANDEM_ERR_PROTO (corrupt, truncated, unknown type, stream ends without
 * END), TANDEM_ERR_IO (read failed). Payloads are not decoded here.
 */
int tandem_stream_next(tandem_stream_reader *r, struct tandem_stream_record *rec);
/*
 * Where page pfn goes: page_size writable bytes, or NULL when pfn is not
 * a page of the receiving domain (the read then fails naming the pfn).
 */
typedef void *(*tandem_stream_dest_fn)(uint64_t pfn, void *opaque);

/*
 * tandem_stream_next() for a receiver that writes pages straight into
 * guest memory (restore): a PAGE_BATCH record is checked up to its page
 * entries, then its page data is read from fd directly into dest(pfn)
 * (zero pages are cleared there; compressed batches are decompressed and
 * copied), and its checksum is verified afterwards. The returned PAGE_BATCH
 * is already applied: its body holds only the batch header and entries, so
 * do not pass it to tandem_stream_decode_pages(). On an error, pages of
 * that batch may have been written: use this only on a stream that
 * tandem_stream_validate() accepted, or into memory that is discarded on
 * failure. Other records come back as from tandem_stream_next().
 */
int tandem_stream_next_into(tandem_stream_reader *r, struct tandem_stream_record *rec,
                            tandem_stream_dest_fn dest, void *opaque);
/* Stream offset just past the last record consumed. */
uint64_t tandem_stream_offset(const tandem_stream_reader *r);
/* Unknown skippable records skipped so far. */
uint64_t tandem_stream_skipped(const tandem_stream_reader *r);

/*
 * Payload decoders for a record just returned by tandem_stream_next()
 * (of the matching type). Each validates the whole payload first and only
 * then reports its contents; on error nothing has been reported and the
 * message names the record (TANDEM_ERR_PROTO). Pointers handed out point
 * into the record body or reader buffers and live until the next
 * tandem_stream_next().
 */

/* DOMAIN_CONFIG: NUL-terminated JSON text of a JSON object. */
int tandem_stream_decode_config(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                const char **json, size_t *len);

/*
 * PAGE_BATCH: fn(pfn, data, opaque) per page in order, data NULL for a
 * zero page (else page_size bytes). A nonzero return from fn stops the
 * walk and is returned as is.
 */
typedef int (*tandem_stream_page_fn)(uint64_t pfn, const void *data, void *opaque);
int tandem_stream_decode_pages(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                               tandem_stream_page_fn fn, void *opaque);

/* VCPU_STATE: fn(block) per known sub-block (skippable unknown ones are left out). */
typedef int (*tandem_stream_block_fn)(uint32_t vcpu_id, const struct tandem_stream_block *b,
                                      void *opaque);
int tandem_stream_decode_vcpu(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                              uint32_t *vcpu_id, tandem_stream_block_fn fn, void *opaque);

int tandem_stream_decode_clock(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                               struct tandem_stream_clock *out);
int tandem_stream_decode_device(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                struct tandem_stream_device *out);

/* DISK_WRITES: fn(disk, sector_size, extent) per extent in order. */
typedef int (*tandem_stream_extent_fn)(uint32_t disk, uint32_t sector_size,
                                       const struct tandem_stream_extent *e, void *opaque);
int tandem_stream_decode_disk(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                              tandem_stream_extent_fn fn, void *opaque);

int tandem_stream_decode_checkpoint(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                    uint64_t *epoch);
int tandem_stream_decode_heartbeat(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                   uint64_t *seq, uint64_t *mono_ns);

/* ------------------------------------------------------------------ validation */

/*
 * The order rules of docs/stream-format.md as a small state machine, for
 * receivers that apply records as they come (restore, Remus backup).
 * Feed every record returned by tandem_stream_next() (skippable ones are
 * ignored) with the decoded vcpu id for VCPU_STATE and epoch for
 * CHECKPOINT (0 otherwise). Returns 0 or TANDEM_ERR_PROTO naming the rule.
 */
struct tandem_stream_order {
    uint32_t kind;
    int phase;
    int seen_config;
    int ended;
    int have_epoch;
    uint64_t last_epoch;
    uint64_t checkpoints;
    uint32_t vcpus_in_state;
    uint32_t clocks_in_state;
    uint32_t nvcpu_ids, cap_vcpu_ids;
    uint32_t *vcpu_ids;
};
void tandem_stream_order_init(struct tandem_stream_order *o, uint32_t kind);
void tandem_stream_order_dispose(struct tandem_stream_order *o);
int tandem_stream_order_check(tandem_stream_reader *r, struct tandem_stream_order *o,
                              const struct tandem_stream_record *rec, uint64_t value);
/* 0 when the stream may end here (END seen), else TANDEM_ERR_PROTO naming what is missing. */
int tandem_stream_order_finish(tandem_stream_reader *r, struct tandem_stream_order *o);

struct tandem_stream_summary {
    struct tandem_stream_header header;
    uint64_t bytes;   /* stream length, header included */
    uint64_t records; /* records read, skipped ones included */
    uint64_t skipped; /* unknown skippable records */
    uint64_t page_batches;
    uint64_t pages; /* page entries, zero ones included */
    uint64_t zero_pages;
    uint64_t max_pfn;      /* highest pfn in any batch (0 if none) */
    uint64_t vcpus;        /* VCPU_STATE records in the last state */
    uint64_t devices;      /* DEVICE_STATE records, all states */
    uint64_t disk_extents; /* DISK_WRITES extents, all states */
    uint64_t checkpoints;
    uint64_t last_epoch;
    char *config_json; /* DOMAIN_CONFIG text (malloc'd), NULL before a successful validate */
};
/* Free what a summary owns and zero it; idempotent. */
void tandem_stream_summary_dispose(struct tandem_stream_summary *s);

/*
 * Read a whole stream from fd (positioned at its start) and check it
 * without applying anything: header, every record's framing and payload
 * (compressed batches are decompressed), the order rules, that it ends
 * with CHECKPOINT then END, and that nothing follows END (it reads fd to
 * EOF, so on a socket or pipe it waits for the writer to close). Fills *sum
 * (which the caller disposes, also on failure; sum may be NULL).
 * Returns 0 or the first error, its message naming offset and record.
 */
int tandem_stream_validate(tandem_ctx *ctx, int fd, struct tandem_stream_summary *sum);

/* ------------------------------------------------------------------ staging (Remus backup) */

/*
 * A receiver that must apply a state only once all of it has arrived
 * (a Remus backup: a checkpoint cut short by the primary's death is
 * discarded) feeds every record to a stage; the stage checks and decodes
 * it, applies the order rules, and keeps a copy until the state's
 * CHECKPOINT. Pages are held in memory (a pfn sent twice in one state
 * keeps its last contents), so for a first full copy of a large domain
 * prefer tandem_stream_next_into() on a validated image.
 */
typedef struct tandem_stream_stage tandem_stream_stage;

/* Where a committed state goes; every hook may be NULL, nonzero stops the commit. */
struct tandem_stream_apply_ops {
    int (*page)(uint64_t pfn, const void *data /* NULL: zero page */, void *opaque);
    int (*vcpu)(uint32_t vcpu_id, const struct tandem_stream_block *blocks, size_t n, void *opaque);
    int (*clock)(const struct tandem_stream_clock *clock, void *opaque);
    int (*device)(const struct tandem_stream_device *dev, void *opaque);
    int (*disk)(uint32_t disk, uint32_t sector_size, const struct tandem_stream_extent *e,
                void *opaque);
};

/* A stage for a stream read by r (its header already read). 0 or TANDEM_ERR_NOMEM. */
int tandem_stream_stage_alloc(tandem_stream_reader *r, tandem_stream_stage **out);
void tandem_stream_stage_free(tandem_stream_stage *st);

/*
 * Take one record just returned by tandem_stream_next() on the stage's
 * reader. Returns 0 (state still open), 1 (this CHECKPOINT completed a
 * state: call tandem_stream_stage_commit), 2 (END: the stream is over),
 * or an error naming the record (TANDEM_ERR_PROTO for a bad payload or
 * order); after an error the partial state must be discarded.
 */
int tandem_stream_stage_add(tandem_stream_stage *st, const struct tandem_stream_record *rec);

/*
 * Apply the completed state through ops, in the order pages, vCPUs,
 * clock, devices, disk writes (each in stream order), then empty the
 * stage for the next state (also when a hook failed). Returns 0, the first nonzero hook result, or
 * TANDEM_ERR_BUSY when no complete state is staged.
 */
int tandem_stream_stage_commit(tandem_stream_stage *st, const struct tandem_stream_apply_ops *ops,
                               void *opaque);
/* Drop whatever the stage holds of an incomplete state (the last commit stays applied). */
void tandem_stream_stage_discard(tandem_stream_stage *st);
/* Epoch of the staged complete state, or of the last committed one. */
uint64_t tandem_stream_stage_epoch(const tandem_stream_stage *st);
/* DOMAIN_CONFIG text seen on this stream (NUL-terminated), NULL before it. */
const char *tandem_stream_stage_config(const tandem_stream_stage *st);

#ifdef __cplusplus
}
#endif

#endif
