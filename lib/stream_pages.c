/* PAGE_BATCH records: zero-page elision, lz4/zstd compression, and decoding with validation first.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <lz4.h>
#include <zstd.h>

#include "stream_internal.h"

/* True when the page is all zeros; random pages leave at the first word, zero ones take one pass.
 */
static int page_is_zero(const void *p, size_t size)
{
    const uint64_t *q = p;

    if (q[0])
        return 0;
    for (size_t i = 0; i < size / 8; i += 32) {
        uint64_t acc = 0;
        for (size_t k = 0; k < 32; k++)
            acc |= q[i + k];
        if (acc)
            return 0;
    }
    return 1;
}

static int grow(tandem_stream_writer *w, uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    uint8_t *n = realloc(*buf, need);
    if (!n)
        return tandem_error(w->ctx, TANDEM_ERR_NOMEM, "out of memory for a %zu-byte page buffer",
                            need);
    *buf = n;
    *cap = need;
    return 0;
}

/*
 * Compress the gathered data into w->cbuf. Returns the compressed length,
 * 0 when compression does not shrink it, or a negative error.
 */
static long compress_batch(tandem_stream_writer *w, const uint8_t *src, size_t len)
{
    size_t bound, got;
    int rc;

    if (w->compression == TANDEM_COMPRESS_LZ4) {
        bound = (size_t)LZ4_compressBound((int)len);
        if ((rc = grow(w, &w->cbuf, &w->cbuf_size, bound)) < 0)
            return rc;
        int n = LZ4_compress_fast((const char *)src, (char *)w->cbuf, (int)len, (int)bound,
                                  w->level > 0 ? w->level : 1);
        got = n > 0 ? (size_t)n : len;
    } else {
        bound = ZSTD_compressBound(len);
        if ((rc = grow(w, &w->cbuf, &w->cbuf_size, bound)) < 0)
            return rc;
        if (!w->zctx && !(w->zctx = ZSTD_createCCtx()))
            return tandem_error(w->ctx, TANDEM_ERR_NOMEM, "out of memory for a zstd context");
        size_t n = ZSTD_compressCCtx(w->zctx, w->cbuf, bound, src, len,
                                     w->level ? w->level : ZSTD_CLEVEL_DEFAULT);
        got = ZSTD_isError(n) ? len : n;
    }
    return got < len ? (long)got : 0;
}

/* One PAGE_BATCH of n <= TANDEM_STREAM_WRITE_BATCH pages. */
static int write_batch(tandem_stream_writer *w, const uint64_t *pfns, const void *const *pages,
                       size_t n)
{
    uint8_t head[STREAM_REC_HDR_LEN + STREAM_BATCH_HDR_LEN];
    uint8_t ents[TANDEM_STREAM_WRITE_BATCH * 8];
    struct iovec parts[2 + TANDEM_STREAM_WRITE_BATCH];
    size_t ps = w->page_size, nonzero = 0, raw, data_len;
    uint32_t comp = TANDEM_COMPRESS_NONE;
    int np = 2, rc;

    for (size_t i = 0; i < n; i++) {
        if (pfns[i] > TANDEM_STREAM_PFN_MASK)
            return tandem_error(w->ctx, TANDEM_ERR_INVAL, "page frame number %#llx is over 2^52",
                                (unsigned long long)pfns[i]);
        int zero = page_is_zero(pages[i], ps);
        put_le64(ents + 8 * i, pfns[i] | (zero ? STREAM_PFN_ZERO : 0));
        if (!zero)
            parts[np++] = (struct iovec){(void *)pages[i], ps};
    }
    nonzero = (size_t)np - 2;
    raw = data_len = nonzero * ps;

    if (w->compression != TANDEM_COMPRESS_NONE && nonzero > 0) {
        if ((rc = grow(w, &w->gbuf, &w->gbuf_size, raw)) < 0)
            return rc;
        for (size_t i = 0; i < nonzero; i++)
            memcpy(w->gbuf + i * ps, parts[2 + i].iov_base, ps);
        long clen = compress_batch(w, w->gbuf, raw);
        if (clen < 0)
            return (int)clen;
        if (clen > 0) {
            comp = w->compression;
            data_len = (size_t)clen;
            parts[2] = (struct iovec){w->cbuf, data_len};
            np = 3;
        }
    }

    uint8_t *bh = head + STREAM_REC_HDR_LEN;
    put_le32(bh, (uint32_t)n);
    put_le32(bh + 4, comp);
    put_le32(bh + 8, (uint32_t)data_len);
    put_le32(bh + 12, (uint32_t)raw);
    parts[0] = (struct iovec){bh, STREAM_BATCH_HDR_LEN};
    parts[1] = (struct iovec){ents, 8 * n};
    uint32_t len = (uint32_t)(STREAM_BATCH_HDR_LEN + 8 * n + data_len);
    stream_rec_header(head, TANDEM_REC_PAGE_BATCH, len,
                      stream_rec_csum(TANDEM_REC_PAGE_BATCH, len, parts, np));

    /* Header and pfn list are copied; page data (or the compressed buffer) is referenced. */
    rc = stream_w_copy(w, head, sizeof(head));
    if (rc == 0)
        rc = stream_w_copy(w, ents, 8 * n);
    for (int i = 2; i < np && rc == 0; i++)
        rc = stream_w_ref(w, parts[i].iov_base, parts[i].iov_len);
    if (rc == 0)
        rc = stream_w_pad(w, len);
    /* The compressed buffer is reused by the next batch, so it must be on fd now. */
    if (rc == 0 && comp != TANDEM_COMPRESS_NONE)
        rc = tandem_stream_flush(w);
    return rc;
}

int tandem_stream_write_pages(tandem_stream_writer *w, const uint64_t *pfns,
                              const void *const *pages, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i += TANDEM_STREAM_WRITE_BATCH) {
        size_t m = n - i < TANDEM_STREAM_WRITE_BATCH ? n - i : TANDEM_STREAM_WRITE_BATCH;
        rc = write_batch(w, pfns + i, pages + i, m);
    }
    /* Page data is referenced, not copied: it must reach fd before we return. */
    if (rc == 0 && n > 0)
        rc = tandem_stream_flush(w);
    return rc;
}

static int grow_scratch(tandem_stream_reader *r, size_t need)
{
    if (r->scratch_cap >= need)
        return 0;
    uint8_t *n = realloc(r->scratch, need);
    if (!n)
        return tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory for %zu bytes of pages", need);
    r->scratch = n;
    r->scratch_cap = need;
    return 0;
}

/*
 * Check a batch's header and page entries (b holds at least 16 + 8 x count
 * bytes of rec's body): sizes, codec, reserved bits. Fills the header fields.
 */
static int batch_check(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                       const uint8_t *b, uint32_t *count, uint32_t *comp, uint32_t *data_len,
                       uint32_t *raw_len)
{
    uint64_t nonzero = 0, ps = r->page_size;

    *count = get_le32(b);
    *comp = get_le32(b + 4);
    *data_len = get_le32(b + 8);
    *raw_len = get_le32(b + 12);
    if (*count == 0 || *count > TANDEM_STREAM_MAX_BATCH)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "page count %u not in 1..%u", *count,
                                TANDEM_STREAM_MAX_BATCH);
    if (*comp > TANDEM_COMPRESS_ZSTD)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "unknown compression %u", *comp);
    if ((uint64_t)STREAM_BATCH_HDR_LEN + 8ull * *count + *data_len != rec->length)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "length %u is not 16 + 8 x %u pages + %u data bytes", rec->length,
                                *count, *data_len);
    for (uint32_t i = 0; i < *count; i++) {
        uint64_t e = get_le64(b + STREAM_BATCH_HDR_LEN + 8 * i);
        if (e & STREAM_PFN_RESERVED)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "page entry %u (%#llx) has reserved bits set", i,
                                    (unsigned long long)e);
        nonzero += !(e & STREAM_PFN_ZERO);
    }
    if (*raw_len != nonzero * ps)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "raw data length %u is not %llu non-zero pages x %llu", *raw_len,
                                (unsigned long long)nonzero, (unsigned long long)ps);
    if (*comp == TANDEM_COMPRESS_NONE && *data_len != *raw_len)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "uncompressed data length %u differs from raw length %u", *data_len,
                                *raw_len);
    if (*comp != TANDEM_COMPRESS_NONE && *raw_len == 0)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "compressed batch with no data");
    return 0;
}

int tandem_stream_decode_pages(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                               tandem_stream_page_fn fn, void *opaque)
{
    const uint8_t *b = rec->body;
    const uint8_t *data;
    uint32_t count, comp, data_len, raw_len;
    uint64_t ps = r->page_size;
    int rc;

    if (rec->type != TANDEM_REC_PAGE_BATCH)
        return stream_rec_error(r, rec, TANDEM_ERR_INVAL, "not a PAGE_BATCH record");
    if (rec->length < STREAM_BATCH_HDR_LEN)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "%u bytes, shorter than the 16-byte "
                                "batch header",
                                rec->length);
    if ((rc = batch_check(r, rec, b, &count, &comp, &data_len, &raw_len)) < 0)
        return rc;
    data = b + STREAM_BATCH_HDR_LEN + 8ull * count;
    if (comp != TANDEM_COMPRESS_NONE) {
        if ((rc = grow_scratch(r, raw_len)) < 0)
            return rc;
        if (comp == TANDEM_COMPRESS_LZ4) {
            int n = LZ4_decompress_safe((const char *)data, (char *)r->scratch, (int)data_len,
                                        (int)raw_len);
            if (n != (int)raw_len)
                return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                        "lz4 data is corrupt (decoded %d of %u bytes)", n, raw_len);
        } else {
            if (!r->dctx && !(r->dctx = ZSTD_createDCtx()))
                return tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory for a zstd context");
            size_t n = ZSTD_decompressDCtx(r->dctx, r->scratch, raw_len, data, data_len);
            if (ZSTD_isError(n))
                return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "zstd data is corrupt: %s",
                                        ZSTD_getErrorName(n));
            if (n != raw_len)
                return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                        "zstd data decodes to %zu bytes, not %u", n, raw_len);
        }
        data = r->scratch;
    }
    if (!fn)
        return 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = get_le64(b + STREAM_BATCH_HDR_LEN + 8 * i);
        const void *page = NULL;
        if (!(e & STREAM_PFN_ZERO)) {
            page = data;
            data += ps;
        }
        rc = fn(e & TANDEM_STREAM_PFN_MASK, page, opaque);
        if (rc)
            return rc;
    }
    return 0;
}

struct copy_ctx {
    tandem_stream_reader *r;
    const struct tandem_stream_record *rec;
};

static int no_dest(tandem_stream_reader *r, const struct tandem_stream_record *rec, uint64_t pfn)
{
    return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "page %#llx is outside the domain's memory",
                            (unsigned long long)pfn);
}

static int copy_to_dest(uint64_t pfn, const void *data, void *opaque)
{
    struct copy_ctx *c = opaque;
    void *d = c->r->dest_fn(pfn, c->r->dest_opaque);

    if (!d)
        return no_dest(c->r, c->rec, pfn);
    if (data)
        memcpy(d, data, c->r->page_size);
    else
        memset(d, 0, c->r->page_size);
    return 0;
}

int stream_batch_into(tandem_stream_reader *r, struct tandem_stream_record *rec, uint64_t csum)
{
    uint32_t count, comp, data_len, raw_len;
    size_t have = 0, ps = r->page_size;
    struct iovec iov[STREAM_MAX_IOV];
    struct copy_ctx cc = {r, rec};
    uint8_t *b = r->body;
    ssize_t n;
    int rc;

    /* Anything but a well-formed uncompressed batch takes the ordinary path and is copied. */
    if (rec->length < STREAM_BATCH_HDR_LEN)
        goto generic;
    n = stream_read_full(r, b, STREAM_BATCH_HDR_LEN);
    if (n < 0)
        return (int)n;
    have = (size_t)n;
    if (have < STREAM_BATCH_HDR_LEN)
        goto generic;
    count = get_le32(b);
    if (count == 0 || count > TANDEM_STREAM_MAX_BATCH ||
        STREAM_BATCH_HDR_LEN + 8ull * count > rec->length)
        goto generic;
    n = stream_read_full(r, b + have, 8ull * count);
    if (n < 0)
        return (int)n;
    have += (size_t)n;
    if (have < STREAM_BATCH_HDR_LEN + 8ull * count || get_le32(b + 4) != TANDEM_COMPRESS_NONE)
        goto generic;
    if (batch_check(r, rec, b, &count, &comp, &data_len, &raw_len) < 0)
        goto generic; /* the checksum (or the decoder) reports it */

    /* Destinations first, so a pfn outside the domain is refused before anything is read. */
    XXH3_state_t st;
    uint8_t head[8];
    put_le32(head, rec->type);
    put_le32(head + 4, rec->length);
    XXH3_64bits_reset(&st);
    stream_xxh3_update(&st, head, 8);
    stream_xxh3_update(&st, b, have);
    int niov = 0;
    for (uint32_t i = 0; i <= count; i++) {
        if (niov == STREAM_MAX_IOV || (i == count && niov > 0)) {
            size_t want = 0;
            for (int k = 0; k < niov; k++)
                want += iov[k].iov_len;
            for (size_t got = 0; got < want;) {
                /* readv may stop short; resume inside the iovec list. */
                ssize_t m = readv(r->fd, iov, niov);
                if (m < 0 && errno == EINTR)
                    continue;
                if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
                    if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                        continue;
                }
                if (m < 0)
                    return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno,
                                              "stream read at offset %llu failed",
                                              (unsigned long long)r->offset);
                if (m == 0)
                    return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                            "truncated: page data ends at stream offset %llu",
                                            (unsigned long long)r->offset);
                r->offset += (uint64_t)m;
                got += (size_t)m;
                while (m > 0 && niov > 0) {
                    size_t take = (size_t)m < iov[0].iov_len ? (size_t)m : iov[0].iov_len;
                    /* Hash what has landed, in stream order. */
                    stream_xxh3_update(&st, iov[0].iov_base, take);
                    iov[0].iov_base = (uint8_t *)iov[0].iov_base + take;
                    iov[0].iov_len -= take;
                    m -= (ssize_t)take;
                    if (iov[0].iov_len == 0) {
                        memmove(iov, iov + 1, (size_t)(niov - 1) * sizeof(iov[0]));
                        niov--;
                    }
                }
            }
            niov = 0;
        }
        if (i == count)
            break;
        uint64_t e = get_le64(b + STREAM_BATCH_HDR_LEN + 8 * i);
        if (e & STREAM_PFN_ZERO)
            continue;
        void *d = r->dest_fn(e & TANDEM_STREAM_PFN_MASK, r->dest_opaque);
        if (!d)
            return no_dest(r, rec, e & TANDEM_STREAM_PFN_MASK);
        if (niov > 0 && (uint8_t *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == d)
            iov[niov - 1].iov_len += ps; /* neighbouring guest pages: one piece */
        else
            iov[niov++] = (struct iovec){d, ps};
    }
    if (XXH3_64bits_digest(&st) != csum && !STREAM_FUZZ_NO_CSUM)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "checksum mismatch (its pages were already written)");
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = get_le64(b + STREAM_BATCH_HDR_LEN + 8 * i);
        if (!(e & STREAM_PFN_ZERO))
            continue;
        void *d = r->dest_fn(e & TANDEM_STREAM_PFN_MASK, r->dest_opaque);
        if (!d)
            return no_dest(r, rec, e & TANDEM_STREAM_PFN_MASK);
        memset(d, 0, ps);
    }
    b[have] = '\0';
    rec->body = b;
    r->index++;
    return 0;

generic:
    if ((rc = stream_finish_body(r, rec, csum, have)) < 0)
        return rc;
    return tandem_stream_decode_pages(r, rec, copy_to_dest, &cc);
}
