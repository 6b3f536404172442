/* Internal header of the stream format: wire offsets, byte helpers, writer and reader layouts. */
#ifndef TANDEM_LIB_STREAM_INTERNAL_H
#define TANDEM_LIB_STREAM_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include "internal.h"
#include "tandem_stream.h"

/*
 * XXH3-64 through libxxhash's run-time CPU dispatch where it has one: the
 * AVX2/AVX-512 code hashes 14.6 GB/s here, the generic SSE2 entry points
 * of Debian's build 6 GB/s. Same results either way.
 */
#if defined(__x86_64__)
#define stream_xxh3(p, n) XXH3_64bits_dispatch((p), (n))
#define stream_xxh3_update(st, p, n) XXH3_64bits_update_dispatch((st), (p), (n))
#else
#define stream_xxh3(p, n) XXH3_64bits((p), (n))
#define stream_xxh3_update(st, p, n) XXH3_64bits_update((st), (p), (n))
#endif

/* Wire layout, docs/stream-format.md. */
#define STREAM_MAGIC "TANDEMST"
#define STREAM_HDR_LEN 32u
#define STREAM_HDR_CSUM_OFF 24u
#define STREAM_REC_HDR_LEN 16u
#define STREAM_BATCH_HDR_LEN 16u
#define STREAM_PFN_ZERO (1ull << 63)
#define STREAM_PFN_RESERVED (((1ull << 63) - 1) & ~TANDEM_STREAM_PFN_MASK)
#define STREAM_FLAGS_KNOWN (TANDEM_STREAM_F_KIND_MASK | TANDEM_STREAM_F_COMPRESSED)
#define STREAM_CLOCK_LEN 32u
#define STREAM_MAX_XSAVE (1u << 20)
#define STREAM_MAX_MSRS 4096u

/* The fuzz target ignores checksums so that mutated inputs reach the payload decoders. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define STREAM_FUZZ_NO_CSUM 1
#else
#define STREAM_FUZZ_NO_CSUM 0
#endif

static inline uint64_t stream_pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static inline void put_le32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(void *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get_le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t get_le64(const void *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32((const uint8_t *)p + 4) << 32;
}

/*
 * The writer queues output as iovecs: small pieces are copied into the
 * staging buffer, page data is referenced in place. Flushing writes the
 * whole queue with writev().
 */
#define STREAM_WBUF_SIZE (1u << 20)
#define STREAM_MAX_IOV 1024

struct tandem_stream_writer {
    tandem_ctx *ctx;
    int fd;
    int broken;    /* an I/O error happened: the stream is unusable */
    int is_socket; /* written with sendmsg(MSG_NOSIGNAL) */
    uint32_t page_size;
    uint32_t kind;
    uint32_t compression;
    int level;
    uint64_t bytes;   /* stream bytes produced */
    uint64_t written; /* of which on fd */
    uint8_t *buf;     /* staging buffer for small pieces */
    size_t buf_used;
    struct iovec iov[STREAM_MAX_IOV];
    int niov;
    uint8_t *cbuf; /* gather + compression buffers for page batches */
    size_t cbuf_size;
    uint8_t *gbuf;
    size_t gbuf_size;
    void *zctx; /* ZSTD_CCtx, created on first use */
};

/* Queue len bytes copied into the staging buffer (flushing first if needed). */
int stream_w_copy(tandem_stream_writer *w, const void *p, size_t len);
/* Queue len bytes by reference; p must stay valid until the next flush. */
int stream_w_ref(tandem_stream_writer *w, const void *p, size_t len);
/* Queue zero padding after a body of len bytes. */
int stream_w_pad(tandem_stream_writer *w, size_t len);
/* Fill a record header for a body whose checksum state already covers it. */
void stream_rec_header(uint8_t hdr[STREAM_REC_HDR_LEN], uint32_t type, uint32_t len, uint64_t csum);
/* Checksum of a record: header bytes 0..7 then the body pieces. */
uint64_t stream_rec_csum(uint32_t type, uint32_t len, const struct iovec *parts, int nparts);

/*
 * The reader never reads ahead: it reads each record header, then exactly
 * its body and padding, so a protocol that continues after END on the same
 * fd finds its bytes untouched.
 */
struct tandem_stream_reader {
    tandem_ctx *ctx;
    int fd;
    int header_done;
    int ended;
    int failed;
    uint32_t page_size;
    uint32_t flags;
    uint64_t offset; /* stream offset of the next unread byte */
    uint64_t index;  /* number of the last record returned */
    uint64_t skipped;
    uint8_t *body; /* current record body (+ padding + NUL) */
    size_t body_cap;
    uint8_t *scratch; /* decompressed page data */
    size_t scratch_cap;
    void *dctx;                    /* ZSTD_DCtx, created on first use */
    tandem_stream_dest_fn dest_fn; /* set during tandem_stream_next_into() */
    void *dest_opaque;
};

/* Read up to len bytes; returns the count read (short only at end of stream) or an error. */
ssize_t stream_read_full(tandem_stream_reader *r, void *dst, size_t len);
/*
 * Read the rest of rec's body and padding into r->body (have bytes are
 * already there), check padding and checksum, and count the record.
 */
int stream_finish_body(tandem_stream_reader *r, struct tandem_stream_record *rec, uint64_t csum,
                       size_t have);
/*
 * PAGE_BATCH for tandem_stream_next_into(): header and entries into
 * r->body, page data straight to r->dest_fn's destinations.
 */
int stream_batch_into(tandem_stream_reader *r, struct tandem_stream_record *rec, uint64_t csum);

/* Name of a VCPU_STATE sub-block tag ("REGS"), "unknown" for others. */
const char *stream_vcpu_tag_name(uint32_t tag);
/*
 * Check one VCPU_STATE sub-block against the format (data holds len
 * bytes): NULL when fine, else a constant description of the problem.
 * Unknown skippable tags are fine. Used by writer and reader alike.
 */
const char *stream_vcpu_block_problem(uint32_t tag, uint32_t len, const void *data);

/* Record an error about rec: "stream offset N, record K (TYPE): ...". */
int stream_rec_error(tandem_stream_reader *r, const struct tandem_stream_record *rec, int rc,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
