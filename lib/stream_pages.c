/* PAGE_BATCH records: zero-page elision, lz4/zstd compression, and decoding with validation first. */
#include <stdlib.h>

#include <lz4.h>
#include <xxhash.h>
#include <zstd.h>

#include "stream_internal.h"

/* True when the page is all zeros; random pages leave at the first word, zero ones take one pass. */
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

int tandem_stream_decode_pages(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                               tandem_stream_page_fn fn, void *opaque)
{
    const uint8_t *b = rec->body;
    const uint8_t *data;
    uint32_t count, comp, data_len, raw_len;
    uint64_t nonzero = 0, ps = r->page_size;
    int rc;

    if (rec->type != TANDEM_REC_PAGE_BATCH)
        return stream_rec_error(r, rec, TANDEM_ERR_INVAL, "not a PAGE_BATCH record");
    if (rec->length < STREAM_BATCH_HDR_LEN)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "%u bytes, shorter than the 16-byte "
                                "batch header", rec->length);
    count = get_le32(b);
    comp = get_le32(b + 4);
    data_len = get_le32(b + 8);
    raw_len = get_le32(b + 12);
    if (count == 0 || count > TANDEM_STREAM_MAX_BATCH)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "page count %u not in 1..%u", count,
                                TANDEM_STREAM_MAX_BATCH);
    if (comp > TANDEM_COMPRESS_ZSTD)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "unknown compression %u", comp);
    if ((uint64_t)STREAM_BATCH_HDR_LEN + 8ull * count + data_len != rec->length)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "length %u is not 16 + 8 x %u pages + %u data bytes", rec->length,
                                count, data_len);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = get_le64(b + STREAM_BATCH_HDR_LEN + 8 * i);
        if (e & STREAM_PFN_RESERVED)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "page entry %u (%#llx) has reserved bits set", i,
                                    (unsigned long long)e);
        nonzero += !(e & STREAM_PFN_ZERO);
    }
    if (raw_len != nonzero * ps)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "raw data length %u is not %llu non-zero pages x %llu", raw_len,
                                (unsigned long long)nonzero, (unsigned long long)ps);
    data = b + STREAM_BATCH_HDR_LEN + 8ull * count;
    if (comp == TANDEM_COMPRESS_NONE) {
        if (data_len != raw_len)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "uncompressed data length %u differs from raw length %u",
                                    data_len, raw_len);
    } else {
        if (raw_len == 0)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "compressed batch with no data");
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
