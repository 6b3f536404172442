/* Stream reader: framing checks, payload decoders, order rules, validator, state staging. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>

#include "stream_internal.h"

int stream_rec_error(tandem_stream_reader *r, const struct tandem_stream_record *rec, int rc,
                     const char *fmt, ...)
{
    char what[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return tandem_error(r->ctx, rc, "stream offset %llu, record %llu (%s): %s",
                        (unsigned long long)rec->offset, (unsigned long long)rec->index,
                        tandem_stream_rec_name(rec->type), what);
}

int tandem_stream_reader_open(tandem_ctx *ctx, int fd, tandem_stream_reader **out)
{
    tandem_stream_reader *r = calloc(1, sizeof(*r));

    if (!r)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory for a stream reader");
    r->ctx = ctx;
    r->fd = fd;
    *out = r;
    return 0;
}

void tandem_stream_reader_free(tandem_stream_reader *r)
{
    if (!r)
        return;
    ZSTD_freeDCtx(r->dctx);
    free(r->body);
    free(r->scratch);
    free(r);
}

uint64_t tandem_stream_offset(const tandem_stream_reader *r)
{
    return r->offset;
}

uint64_t tandem_stream_skipped(const tandem_stream_reader *r)
{
    return r->skipped;
}

ssize_t stream_read_full(tandem_stream_reader *r, void *dst, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(r->fd, (uint8_t *)dst + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
                if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                    continue;
            }
            return tandem_error_errno(r->ctx, TANDEM_ERR_IO, errno,
                                      "stream read at offset %llu failed",
                                      (unsigned long long)(r->offset + got));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    r->offset += got;
    return (ssize_t)got;
}

int tandem_stream_read_header(tandem_stream_reader *r, struct tandem_stream_header *hdr)
{
    uint8_t h[STREAM_HDR_LEN];
    uint32_t version, ps, flags;
    ssize_t n;

    if (r->header_done)
        return tandem_error(r->ctx, TANDEM_ERR_INVAL, "stream header was already read");
    n = stream_read_full(r, h, sizeof(h));
    if (n < 0)
        goto fail;
    if (n >= 8 && memcmp(h, STREAM_MAGIC, 8) != 0) {
        n = tandem_error(r->ctx, TANDEM_ERR_PROTO,
                         "stream offset 0: not a tandem stream (magic is not \"TANDEMST\")");
        goto fail;
    }
    if (n < (ssize_t)sizeof(h)) {
        n = tandem_error(r->ctx, TANDEM_ERR_PROTO,
                         "stream offset 0: truncated header (%zd of %u bytes)", n, STREAM_HDR_LEN);
        goto fail;
    }
    version = get_le32(h + 8);
    ps = get_le32(h + 12);
    flags = get_le32(h + 16);
    if (version > TANDEM_STREAM_VERSION) {
        n = tandem_error(r->ctx, TANDEM_ERR_VERSION,
                         "stream format version %u is newer than this tandem supports (%u)",
                         version, TANDEM_STREAM_VERSION);
        goto fail;
    }
    if (version == 0) {
        n = tandem_error(r->ctx, TANDEM_ERR_PROTO, "stream offset 8: format version 0 is invalid");
        goto fail;
    }
    if (get_le64(h + STREAM_HDR_CSUM_OFF) != stream_xxh3(h, STREAM_HDR_CSUM_OFF) &&
        !STREAM_FUZZ_NO_CSUM) {
        n = tandem_error(r->ctx, TANDEM_ERR_PROTO, "stream offset 24: header checksum mismatch");
        goto fail;
    }
    if (ps < 4096 || ps > 65536 || (ps & (ps - 1))) {
        n = tandem_error(r->ctx, TANDEM_ERR_PROTO,
                         "stream offset 12: page size %u is not a power of two in 4096..65536", ps);
        goto fail;
    }
    if ((flags & ~STREAM_FLAGS_KNOWN) || (flags & TANDEM_STREAM_F_KIND_MASK) == 3 ||
        get_le32(h + 20) != 0) {
        n = tandem_error(r->ctx, TANDEM_ERR_PROTO,
                         "stream offset 16: flags %#x or reserved field %#x invalid", flags,
                         get_le32(h + 20));
        goto fail;
    }
    r->header_done = 1;
    r->page_size = ps;
    r->flags = flags;
    if (hdr) {
        hdr->version = version;
        hdr->page_size = ps;
        hdr->flags = flags;
    }
    return 0;
fail:
    r->failed = 1;
    return (int)n;
}

static int known_type(uint32_t type)
{
    return (type >= TANDEM_REC_DOMAIN_CONFIG && type <= TANDEM_REC_END) ||
           type == TANDEM_REC_HEARTBEAT;
}

/* Read one framed record into r->body; skippable unknown ones are returned too (caller skips). */
static int next_framed(tandem_stream_reader *r, struct tandem_stream_record *rec)
{
    uint8_t h[STREAM_REC_HDR_LEN];
    uint64_t padded;
    ssize_t n;

    memset(rec, 0, sizeof(*rec));
    rec->offset = r->offset;
    rec->index = r->index + 1;
    n = stream_read_full(r, h, sizeof(h));
    if (n < 0)
        return (int)n;
    if (n == 0)
        return tandem_error(r->ctx, TANDEM_ERR_PROTO,
                            "stream offset %llu, after record %llu: stream ends without an END "
                            "record (truncated)",
                            (unsigned long long)rec->offset, (unsigned long long)r->index);
    if (n >= 4)
        rec->type = get_le32(h);
    if (n < (ssize_t)sizeof(h))
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "truncated record header (%zd of %u bytes)", n, STREAM_REC_HDR_LEN);
    rec->length = get_le32(h + 4);
    if (rec->type == 0 || (!known_type(rec->type) && !(rec->type & TANDEM_REC_SKIPPABLE)))
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "unknown record type %#x that is not marked skippable", rec->type);
    if (rec->length > TANDEM_STREAM_MAX_RECORD)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "length %u is over the %u-byte limit",
                                rec->length, TANDEM_STREAM_MAX_RECORD);
    padded = stream_pad8(rec->length);
    if (r->body_cap < padded + 1) {
        /* Bounded by TANDEM_STREAM_MAX_RECORD above; grows to the largest record seen. */
        uint8_t *b = realloc(r->body, padded + 1);
        if (!b)
            return stream_rec_error(r, rec, TANDEM_ERR_NOMEM, "out of memory for %llu bytes",
                                    (unsigned long long)padded);
        r->body = b;
        r->body_cap = padded + 1;
    }
    if (r->dest_fn && rec->type == TANDEM_REC_PAGE_BATCH)
        return stream_batch_into(r, rec, get_le64(h + 8));
    return stream_finish_body(r, rec, get_le64(h + 8), 0);
}

int stream_finish_body(tandem_stream_reader *r, struct tandem_stream_record *rec, uint64_t csum,
                       size_t have)
{
    uint64_t padded = stream_pad8(rec->length);
    ssize_t n;

    n = stream_read_full(r, r->body + have, padded - have);
    if (n < 0)
        return (int)n;
    if ((uint64_t)n < padded - have)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "truncated: body and padding need %llu bytes, stream has %llu",
                                (unsigned long long)padded, (unsigned long long)(have + (size_t)n));
    for (uint64_t i = rec->length; i < padded; i++)
        if (r->body[i])
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "non-zero padding byte at %llu",
                                    (unsigned long long)(rec->offset + STREAM_REC_HDR_LEN + i));
    struct iovec part = {r->body, rec->length};
    if (csum != stream_rec_csum(rec->type, rec->length, &part, 1) && !STREAM_FUZZ_NO_CSUM)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "checksum mismatch");
    r->body[rec->length] = '\0';
    rec->body = r->body;
    r->index++;
    return 0;
}

int tandem_stream_next(tandem_stream_reader *r, struct tandem_stream_record *rec)
{
    int rc;

    if (!r->header_done)
        return tandem_error(r->ctx, TANDEM_ERR_INVAL, "stream header not read yet");
    if (r->ended)
        return tandem_error(r->ctx, TANDEM_ERR_INVAL,
                            "stream offset %llu: read past the END record",
                            (unsigned long long)r->offset);
    if (r->failed)
        return tandem_error(r->ctx, TANDEM_ERR_PROTO,
                            "stream offset %llu: stream is unusable after an earlier error",
                            (unsigned long long)r->offset);
    for (;;) {
        rc = next_framed(r, rec);
        if (rc < 0) {
            r->failed = 1;
            return rc;
        }
        if (known_type(rec->type))
            break;
        r->skipped++;
    }
    if (rec->type == TANDEM_REC_END) {
        if (rec->length != 0) {
            r->failed = 1;
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "END has a %u-byte body",
                                    rec->length);
        }
        r->ended = 1;
    }
    return 0;
}

int tandem_stream_next_into(tandem_stream_reader *r, struct tandem_stream_record *rec,
                            tandem_stream_dest_fn dest, void *opaque)
{
    int rc;

    r->dest_fn = dest;
    r->dest_opaque = opaque;
    rc = tandem_stream_next(r, rec);
    r->dest_fn = NULL;
    r->dest_opaque = NULL;
    return rc;
}

/* ------------------------------------------------------------------ decoders */

static int want_type(tandem_stream_reader *r, const struct tandem_stream_record *rec, uint32_t type)
{
    if (rec->type != type)
        return stream_rec_error(r, rec, TANDEM_ERR_INVAL, "decoded as %s",
                                tandem_stream_rec_name(type));
    return 0;
}

static int want_len(tandem_stream_reader *r, const struct tandem_stream_record *rec, uint32_t len)
{
    if (rec->length != len)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "body is %u bytes, expected %u",
                                rec->length, len);
    return 0;
}

int tandem_stream_decode_config(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                const char **json, size_t *len)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    if ((rc = want_type(r, rec, TANDEM_REC_DOMAIN_CONFIG)) < 0)
        return rc;
    if (memchr(rec->body, '\0', rec->length))
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "config text contains a NUL byte");
    root = json_loadb(rec->body, rec->length, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "config is not JSON: %s at line %d",
                                jerr.text, jerr.line);
    rc = json_is_object(root)
             ? 0
             : stream_rec_error(r, rec, TANDEM_ERR_PROTO, "config is JSON but not an object");
    json_decref(root);
    if (rc == 0) {
        *json = rec->body;
        if (len)
            *len = rec->length;
    }
    return rc;
}

int tandem_stream_decode_vcpu(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                              uint32_t *vcpu_id, tandem_stream_block_fn fn, void *opaque)
{
    const uint8_t *b = rec->body;
    uint32_t id, count, seen = 0;
    uint64_t off;
    int rc;

    if ((rc = want_type(r, rec, TANDEM_REC_VCPU_STATE)) < 0)
        return rc;
    if (rec->length < 8)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "body of %u bytes has no vCPU header",
                                rec->length);
    id = get_le32(b);
    count = get_le32(b + 4);
    /* Pass 1: validate every sub-block. */
    off = 8;
    for (uint32_t i = 0; i < count; i++) {
        if (rec->length - off < 8)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "vCPU %u: sub-block %u of %u runs past the body", id, i, count);
        uint32_t tag = get_le32(b + off), len = get_le32(b + off + 4);
        if (len > rec->length - off - 8)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "vCPU %u: sub-block %u (%s) length %u runs past the body", id,
                                    i, stream_vcpu_tag_name(tag), len);
        const char *why = stream_vcpu_block_problem(tag, len, b + off + 8);
        if (why)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "vCPU %u: sub-block %u (%s, tag %#x, %u bytes): %s", id, i,
                                    stream_vcpu_tag_name(tag), tag, len, why);
        if (tag < 32 && (seen & (1u << tag)))
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "vCPU %u: sub-block %s appears twice",
                                    id, stream_vcpu_tag_name(tag));
        if (tag < 32)
            seen |= 1u << tag;
        if (stream_pad8(len) > rec->length - off - 8)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "vCPU %u: sub-block %u padding runs past the body", id, i);
        for (uint64_t p = off + 8 + len; p < off + 8 + stream_pad8(len); p++)
            if (b[p])
                return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                        "vCPU %u: sub-block %u has non-zero padding", id, i);
        off += 8 + stream_pad8(len);
    }
    if (off != rec->length)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "vCPU %u: %llu bytes left after %u sub-blocks", id,
                                (unsigned long long)(rec->length - off), count);
    if (!(seen & (1u << TANDEM_VCPU_REGS)) ||
        !(seen & ((1u << TANDEM_VCPU_SREGS) | (1u << TANDEM_VCPU_SREGS2))) ||
        !(seen & (1u << TANDEM_VCPU_MP_STATE)))
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "vCPU %u: state lacks REGS, SREGS/SREGS2 or MP_STATE", id);
    if (vcpu_id)
        *vcpu_id = id;
    if (!fn)
        return 0;
    /* Pass 2: report the known ones. */
    off = 8;
    for (uint32_t i = 0; i < count; i++) {
        struct tandem_stream_block blk = {get_le32(b + off), get_le32(b + off + 4), b + off + 8};
        off += 8 + stream_pad8(blk.len);
        if (blk.tag & TANDEM_REC_SKIPPABLE)
            continue;
        if ((rc = fn(id, &blk, opaque)) != 0)
            return rc;
    }
    return 0;
}

int tandem_stream_decode_clock(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                               struct tandem_stream_clock *out)
{
    const uint8_t *b = rec->body;
    int rc;

    if ((rc = want_type(r, rec, TANDEM_REC_CLOCK)) < 0 ||
        (rc = want_len(r, rec, STREAM_CLOCK_LEN)) < 0)
        return rc;
    out->guest_ns = get_le64(b);
    out->tsc_khz = get_le64(b + 8);
    out->generation = get_le64(b + 16);
    out->wall_ns = get_le64(b + 24);
    return 0;
}

int tandem_stream_decode_device(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                struct tandem_stream_device *out)
{
    const uint8_t *b = rec->body;
    uint32_t kind;
    int rc;

    if ((rc = want_type(r, rec, TANDEM_REC_DEVICE_STATE)) < 0)
        return rc;
    if (rec->length < 8)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "body of %u bytes has no device header",
                                rec->length);
    kind = get_le32(b);
    if (kind < TANDEM_DEVICE_CONSOLE || kind > TANDEM_DEVICE_BLOCK)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "device kind %u is not 1 (console), 2 (net) or 3 (block)", kind);
    out->kind = kind;
    out->id = get_le32(b + 4);
    out->data = b + 8;
    out->len = rec->length - 8;
    return 0;
}

int tandem_stream_decode_disk(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                              tandem_stream_extent_fn fn, void *opaque)
{
    const uint8_t *b = rec->body;
    uint32_t disk, ss, count;
    uint64_t off;
    int rc;

    if ((rc = want_type(r, rec, TANDEM_REC_DISK_WRITES)) < 0)
        return rc;
    if (rec->length < 16)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "body of %u bytes has no disk header",
                                rec->length);
    disk = get_le32(b);
    ss = get_le32(b + 4);
    count = get_le32(b + 8);
    if (ss != 512 && ss != 4096)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "disk %u: sector size %u is not 512 or 4096", disk, ss);
    if (count == 0 || get_le32(b + 12) != 0)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "disk %u: extent count is 0 or reserved field set", disk);
    off = 16;
    for (uint32_t i = 0; i < count; i++) {
        if (rec->length - off < 16)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "disk %u: extent %u of %u runs past the body", disk, i, count);
        uint32_t n = get_le32(b + off + 8);
        if (n == 0 || get_le32(b + off + 12) != 0)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "disk %u: extent %u is empty or has reserved bits", disk, i);
        if ((uint64_t)n * ss > rec->length - off - 16)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "disk %u: extent %u data (%u sectors) runs past the body", disk,
                                    i, n);
        off += 16 + (uint64_t)n * ss;
    }
    if (off != rec->length)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                "disk %u: %llu bytes left after %u "
                                "extents",
                                disk, (unsigned long long)(rec->length - off), count);
    if (!fn)
        return 0;
    off = 16;
    for (uint32_t i = 0; i < count; i++) {
        struct tandem_stream_extent e = {get_le64(b + off), get_le32(b + off + 8), b + off + 16};
        off += 16 + (uint64_t)e.count * ss;
        if ((rc = fn(disk, ss, &e, opaque)) != 0)
            return rc;
    }
    return 0;
}

int tandem_stream_decode_checkpoint(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                    uint64_t *epoch)
{
    int rc;

    if ((rc = want_type(r, rec, TANDEM_REC_CHECKPOINT)) < 0 || (rc = want_len(r, rec, 8)) < 0)
        return rc;
    *epoch = get_le64(rec->body);
    return 0;
}

int tandem_stream_decode_heartbeat(tandem_stream_reader *r, const struct tandem_stream_record *rec,
                                   uint64_t *seq, uint64_t *mono_ns)
{
    int rc;

    if ((rc = want_type(r, rec, TANDEM_REC_HEARTBEAT)) < 0 || (rc = want_len(r, rec, 16)) < 0)
        return rc;
    *seq = get_le64(rec->body);
    *mono_ns = get_le64((const uint8_t *)rec->body + 8);
    return 0;
}

/* ------------------------------------------------------------------ order rules */

/* Phase of a state: each record type may only follow records of a lower or equal phase. */
enum { PH_START, PH_PAGES, PH_VCPU, PH_CLOCK, PH_DEVICE, PH_DISK };

void tandem_stream_order_init(struct tandem_stream_order *o, uint32_t kind)
{
    memset(o, 0, sizeof(*o));
    o->kind = kind;
}

void tandem_stream_order_dispose(struct tandem_stream_order *o)
{
    free(o->vcpu_ids);
    o->vcpu_ids = NULL;
    o->nvcpu_ids = o->cap_vcpu_ids = 0;
}

static int enter_phase(tandem_stream_reader *r, struct tandem_stream_order *o,
                       const struct tandem_stream_record *rec, int phase)
{
    static const char *const names[] = {"start", "PAGE_BATCH",   "VCPU_STATE",
                                        "CLOCK", "DEVICE_STATE", "DISK_WRITES"};
    if (o->phase > phase)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "out of order: %s after %s in one state",
                                names[phase], names[o->phase]);
    o->phase = phase;
    return 0;
}

int tandem_stream_order_check(tandem_stream_reader *r, struct tandem_stream_order *o,
                              const struct tandem_stream_record *rec, uint64_t value)
{
    int rc = 0;

    if (rec->type & TANDEM_REC_SKIPPABLE)
        return 0;
    if (o->ended)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "record after END");
    if (!o->seen_config && rec->type != TANDEM_REC_DOMAIN_CONFIG)
        return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "the first record must be DOMAIN_CONFIG");
    switch (rec->type) {
    case TANDEM_REC_DOMAIN_CONFIG:
        if (o->seen_config)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "second DOMAIN_CONFIG");
        o->seen_config = 1;
        break;
    case TANDEM_REC_PAGE_BATCH:
        rc = enter_phase(r, o, rec, PH_PAGES);
        break;
    case TANDEM_REC_VCPU_STATE:
        if ((rc = enter_phase(r, o, rec, PH_VCPU)) < 0)
            return rc;
        for (uint32_t i = 0; i < o->nvcpu_ids; i++)
            if (o->vcpu_ids[i] == (uint32_t)value)
                return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                        "vCPU %u appears twice in one state", (uint32_t)value);
        if (o->nvcpu_ids == o->cap_vcpu_ids) {
            uint32_t cap = o->cap_vcpu_ids ? 2 * o->cap_vcpu_ids : 8;
            uint32_t *ids = realloc(o->vcpu_ids, cap * sizeof(*ids));
            if (!ids)
                return stream_rec_error(r, rec, TANDEM_ERR_NOMEM, "out of memory");
            o->vcpu_ids = ids;
            o->cap_vcpu_ids = cap;
        }
        o->vcpu_ids[o->nvcpu_ids++] = (uint32_t)value;
        break;
    case TANDEM_REC_CLOCK:
        if (o->phase != PH_VCPU)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "CLOCK must follow the state's VCPU_STATE records");
        o->phase = PH_CLOCK;
        break;
    case TANDEM_REC_DEVICE_STATE:
    case TANDEM_REC_DISK_WRITES:
        if (o->phase < PH_CLOCK)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "must follow the state's CLOCK");
        rc = enter_phase(r, o, rec, rec->type == TANDEM_REC_DEVICE_STATE ? PH_DEVICE : PH_DISK);
        break;
    case TANDEM_REC_CHECKPOINT:
        if (o->phase < PH_CLOCK)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "CHECKPOINT before the state's VCPU_STATE and CLOCK");
        if (o->kind != TANDEM_STREAM_CHECKPOINTED && o->checkpoints > 0)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO, "a second CHECKPOINT in a %s stream",
                                    o->kind == TANDEM_STREAM_LIVE ? "live" : "save");
        if (o->have_epoch && value <= o->last_epoch)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "epoch %llu does not follow epoch %llu",
                                    (unsigned long long)value, (unsigned long long)o->last_epoch);
        o->have_epoch = 1;
        o->last_epoch = value;
        o->checkpoints++;
        o->phase = PH_START;
        o->nvcpu_ids = 0;
        break;
    case TANDEM_REC_END:
        if (o->checkpoints == 0 || o->phase != PH_START)
            return stream_rec_error(r, rec, TANDEM_ERR_PROTO,
                                    "END must directly follow a CHECKPOINT");
        o->ended = 1;
        break;
    }
    return rc;
}

int tandem_stream_order_finish(tandem_stream_reader *r, struct tandem_stream_order *o)
{
    if (o->ended)
        return 0;
    return tandem_error(r->ctx, TANDEM_ERR_PROTO,
                        "stream offset %llu: stream ends without CHECKPOINT and END",
                        (unsigned long long)r->offset);
}

/* ------------------------------------------------------------------ validator */

void tandem_stream_summary_dispose(struct tandem_stream_summary *s)
{
    if (!s)
        return;
    free(s->config_json);
    memset(s, 0, sizeof(*s));
}

static int count_page(uint64_t pfn, const void *data, void *opaque)
{
    struct tandem_stream_summary *s = opaque;

    s->pages++;
    s->zero_pages += data == NULL;
    if (pfn > s->max_pfn)
        s->max_pfn = pfn;
    return 0;
}

static int count_extent(uint32_t disk, uint32_t ss, const struct tandem_stream_extent *e,
                        void *opaque)
{
    ((struct tandem_stream_summary *)opaque)->disk_extents++;
    return 0;
}

int tandem_stream_validate(tandem_ctx *ctx, int fd, struct tandem_stream_summary *sum)
{
    struct tandem_stream_summary local = {0}, *s = sum ? sum : &local;
    struct tandem_stream_order order = {0};
    struct tandem_stream_reader *r = NULL;
    struct tandem_stream_record rec;
    uint64_t vcpus_in_state = 0;
    int rc;

    tandem_stream_summary_dispose(s);
    if ((rc = tandem_stream_reader_open(ctx, fd, &r)) < 0)
        goto out;
    if ((rc = tandem_stream_read_header(r, &s->header)) < 0)
        goto out;
    tandem_stream_order_init(&order, s->header.flags & TANDEM_STREAM_F_KIND_MASK);
    do {
        uint64_t value = 0;
        if ((rc = tandem_stream_next(r, &rec)) < 0)
            goto out;
        switch (rec.type) {
        case TANDEM_REC_DOMAIN_CONFIG: {
            const char *json;
            size_t len;
            if ((rc = tandem_stream_decode_config(r, &rec, &json, &len)) < 0)
                goto out;
            if (!s->config_json && !(s->config_json = strndup(json, len))) {
                rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory for the domain config");
                goto out;
            }
            break;
        }
        case TANDEM_REC_PAGE_BATCH:
            if ((rc = tandem_stream_decode_pages(r, &rec, count_page, s)) < 0)
                goto out;
            s->page_batches++;
            break;
        case TANDEM_REC_VCPU_STATE: {
            uint32_t id;
            if ((rc = tandem_stream_decode_vcpu(r, &rec, &id, NULL, NULL)) < 0)
                goto out;
            value = id;
            vcpus_in_state++;
            break;
        }
        case TANDEM_REC_CLOCK: {
            struct tandem_stream_clock c;
            if ((rc = tandem_stream_decode_clock(r, &rec, &c)) < 0)
                goto out;
            break;
        }
        case TANDEM_REC_DEVICE_STATE: {
            struct tandem_stream_device d;
            if ((rc = tandem_stream_decode_device(r, &rec, &d)) < 0)
                goto out;
            s->devices++;
            break;
        }
        case TANDEM_REC_DISK_WRITES:
            if ((rc = tandem_stream_decode_disk(r, &rec, count_extent, s)) < 0)
                goto out;
            break;
        case TANDEM_REC_CHECKPOINT:
            if ((rc = tandem_stream_decode_checkpoint(r, &rec, &value)) < 0)
                goto out;
            break;
        case TANDEM_REC_HEARTBEAT: {
            uint64_t seq, ns;
            if ((rc = tandem_stream_decode_heartbeat(r, &rec, &seq, &ns)) < 0)
                goto out;
            break;
        }
        }
        if ((rc = tandem_stream_order_check(r, &order, &rec, value)) < 0)
            goto out;
        if (rec.type == TANDEM_REC_CHECKPOINT) {
            s->checkpoints++;
            s->last_epoch = value;
            s->vcpus = vcpus_in_state;
            vcpus_in_state = 0;
        }
    } while (rec.type != TANDEM_REC_END);
    if ((rc = tandem_stream_order_finish(r, &order)) < 0)
        goto out;
    /* A file holds one stream: nothing may follow END (on a socket this waits for EOF). */
    uint8_t extra;
    ssize_t n = stream_read_full(r, &extra, 1);
    if (n < 0) {
        rc = (int)n;
        goto out;
    }
    if (n > 0) {
        r->offset--;
        rc = tandem_error(ctx, TANDEM_ERR_PROTO, "stream offset %llu: data after the END record",
                          (unsigned long long)r->offset);
        goto out;
    }
    rc = 0;
out:
    if (r) {
        s->bytes = r->offset;
        s->records = r->index;
        s->skipped = r->skipped;
    }
    tandem_stream_order_dispose(&order);
    tandem_stream_reader_free(r);
    if (!sum)
        tandem_stream_summary_dispose(&local);
    return rc;
}

/* ------------------------------------------------------------------ staging */

/* A staged VCPU_STATE, CLOCK, DEVICE_STATE or DISK_WRITES record (already validated). */
struct stage_rec {
    uint32_t type;
    uint32_t length;
    uint8_t *body;
};

#define STAGE_NO_DATA UINT32_MAX

struct tandem_stream_stage {
    tandem_stream_reader *r;
    struct tandem_stream_order order;
    char *config;
    int complete;
    uint64_t epoch;
    /* Pages: slots in first-arrival order, an open-addressing pfn index, a data arena. */
    uint64_t *slot_pfn;
    uint32_t *slot_data; /* data page index, STAGE_NO_DATA for a zero page */
    size_t nslots, cap_slots;
    uint32_t *index; /* slot + 1, 0 = empty; cap_index is a power of two */
    size_t cap_index;
    uint8_t *data;
    size_t ndata, cap_data;
    struct stage_rec *recs;
    size_t nrecs, cap_recs;
};

int tandem_stream_stage_alloc(tandem_stream_reader *r, tandem_stream_stage **out)
{
    tandem_stream_stage *st = calloc(1, sizeof(*st));

    if (!st)
        return tandem_error(r->ctx, TANDEM_ERR_NOMEM, "out of memory for a stream stage");
    st->r = r;
    tandem_stream_order_init(&st->order, r->flags & TANDEM_STREAM_F_KIND_MASK);
    *out = st;
    return 0;
}

void tandem_stream_stage_discard(tandem_stream_stage *st)
{
    for (size_t i = 0; i < st->nrecs; i++)
        free(st->recs[i].body);
    st->nrecs = 0;
    st->nslots = 0;
    st->ndata = 0;
    if (st->index)
        memset(st->index, 0, st->cap_index * sizeof(*st->index));
    st->complete = 0;
}

void tandem_stream_stage_free(tandem_stream_stage *st)
{
    if (!st)
        return;
    tandem_stream_stage_discard(st);
    tandem_stream_order_dispose(&st->order);
    free(st->config);
    free(st->slot_pfn);
    free(st->slot_data);
    free(st->index);
    free(st->data);
    free(st->recs);
    free(st);
}

uint64_t tandem_stream_stage_epoch(const tandem_stream_stage *st)
{
    return st->epoch;
}

const char *tandem_stream_stage_config(const tandem_stream_stage *st)
{
    return st->config;
}

static size_t stage_hash(uint64_t pfn, size_t cap)
{
    return (size_t)((pfn * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

/* Make room for one more slot, keeping the index at most half full. */
static int stage_grow_pages(tandem_stream_stage *st)
{
    if (st->nslots == st->cap_slots) {
        size_t cap = st->cap_slots ? 2 * st->cap_slots : 1024;
        uint64_t *p = realloc(st->slot_pfn, cap * sizeof(*p));
        if (p)
            st->slot_pfn = p;
        uint32_t *d = p ? realloc(st->slot_data, cap * sizeof(*d)) : NULL;
        if (!d)
            return TANDEM_ERR_NOMEM;
        st->slot_data = d;
        st->cap_slots = cap;
    }
    if (2 * (st->nslots + 1) > st->cap_index) {
        size_t cap = st->cap_index ? 2 * st->cap_index : 2048;
        uint32_t *idx = calloc(cap, sizeof(*idx));
        if (!idx)
            return TANDEM_ERR_NOMEM;
        for (size_t s = 0; s < st->nslots; s++) {
            size_t h = stage_hash(st->slot_pfn[s], cap);
            while (idx[h])
                h = (h + 1) & (cap - 1);
            idx[h] = (uint32_t)s + 1;
        }
        free(st->index);
        st->index = idx;
        st->cap_index = cap;
    }
    return 0;
}

static int stage_page(uint64_t pfn, const void *data, void *opaque)
{
    tandem_stream_stage *st = opaque;
    size_t ps = st->r->page_size, h;
    uint32_t slot;

    if (stage_grow_pages(st) < 0)
        return TANDEM_ERR_NOMEM;
    h = stage_hash(pfn, st->cap_index);
    while (st->index[h] && st->slot_pfn[st->index[h] - 1] != pfn)
        h = (h + 1) & (st->cap_index - 1);
    if (st->index[h]) {
        slot = st->index[h] - 1;
    } else {
        slot = (uint32_t)st->nslots++;
        st->index[h] = slot + 1;
        st->slot_pfn[slot] = pfn;
        st->slot_data[slot] = STAGE_NO_DATA;
    }
    if (!data) {
        st->slot_data[slot] = STAGE_NO_DATA;
        return 0;
    }
    if (st->slot_data[slot] == STAGE_NO_DATA) {
        if (st->ndata == st->cap_data) {
            size_t cap = st->cap_data ? 2 * st->cap_data : 256;
            uint8_t *d = realloc(st->data, cap * ps);
            if (!d)
                return TANDEM_ERR_NOMEM;
            st->data = d;
            st->cap_data = cap;
        }
        st->slot_data[slot] = (uint32_t)st->ndata++;
    }
    memcpy(st->data + (size_t)st->slot_data[slot] * ps, data, ps);
    return 0;
}

static int stage_keep(tandem_stream_stage *st, const struct tandem_stream_record *rec)
{
    if (st->nrecs == st->cap_recs) {
        size_t cap = st->cap_recs ? 2 * st->cap_recs : 16;
        struct stage_rec *n = realloc(st->recs, cap * sizeof(*n));
        if (!n)
            return stream_rec_error(st->r, rec, TANDEM_ERR_NOMEM, "out of memory to stage it");
        st->recs = n;
        st->cap_recs = cap;
    }
    uint8_t *body = malloc(rec->length ? rec->length : 1);
    if (!body)
        return stream_rec_error(st->r, rec, TANDEM_ERR_NOMEM, "out of memory to stage it");
    memcpy(body, rec->body, rec->length);
    st->recs[st->nrecs++] = (struct stage_rec){rec->type, rec->length, body};
    return 0;
}

int tandem_stream_stage_add(tandem_stream_stage *st, const struct tandem_stream_record *rec)
{
    tandem_stream_reader *r = st->r;
    uint64_t value = 0;
    int rc;

    if (rec->type & TANDEM_REC_SKIPPABLE)
        return 0;
    if (st->complete)
        return stream_rec_error(r, rec, TANDEM_ERR_BUSY,
                                "epoch %llu is staged: commit or discard it first",
                                (unsigned long long)st->epoch);
    switch (rec->type) {
    case TANDEM_REC_DOMAIN_CONFIG: {
        const char *json;
        if ((rc = tandem_stream_decode_config(r, rec, &json, NULL)) < 0 ||
            (rc = tandem_stream_order_check(r, &st->order, rec, 0)) < 0)
            return rc;
        if (!(st->config = strdup(json)))
            return stream_rec_error(r, rec, TANDEM_ERR_NOMEM, "out of memory to stage it");
        return 0;
    }
    case TANDEM_REC_PAGE_BATCH:
        if ((rc = tandem_stream_order_check(r, &st->order, rec, 0)) < 0)
            return rc;
        rc = tandem_stream_decode_pages(r, rec, stage_page, st);
        if (rc == TANDEM_ERR_NOMEM)
            return stream_rec_error(r, rec, rc, "out of memory to stage its pages");
        return rc;
    case TANDEM_REC_VCPU_STATE: {
        uint32_t id;
        rc = tandem_stream_decode_vcpu(r, rec, &id, NULL, NULL);
        value = id;
        break;
    }
    case TANDEM_REC_CLOCK: {
        struct tandem_stream_clock c;
        rc = tandem_stream_decode_clock(r, rec, &c);
        break;
    }
    case TANDEM_REC_DEVICE_STATE: {
        struct tandem_stream_device d;
        rc = tandem_stream_decode_device(r, rec, &d);
        break;
    }
    case TANDEM_REC_DISK_WRITES:
        rc = tandem_stream_decode_disk(r, rec, NULL, NULL);
        break;
    case TANDEM_REC_CHECKPOINT:
        if ((rc = tandem_stream_decode_checkpoint(r, rec, &value)) < 0 ||
            (rc = tandem_stream_order_check(r, &st->order, rec, value)) < 0)
            return rc;
        st->complete = 1;
        st->epoch = value;
        return 1;
    case TANDEM_REC_END:
        if ((rc = tandem_stream_order_check(r, &st->order, rec, 0)) < 0)
            return rc;
        return 2;
    default:
        return stream_rec_error(r, rec, TANDEM_ERR_INVAL, "not a record a stage takes");
    }
    if (rc < 0 || (rc = tandem_stream_order_check(r, &st->order, rec, value)) < 0)
        return rc;
    return stage_keep(st, rec);
}

/* Apply one staged record (validated when it was added). */
static int stage_apply_rec(const struct stage_rec *sr, const struct tandem_stream_apply_ops *ops,
                           void *opaque)
{
    const uint8_t *b = sr->body;
    int rc = 0;

    switch (sr->type) {
    case TANDEM_REC_VCPU_STATE: {
        uint32_t count = get_le32(b + 4), n = 0;
        struct tandem_stream_block *blocks;
        if (!ops->vcpu)
            return 0;
        blocks = calloc(count ? count : 1, sizeof(*blocks));
        if (!blocks)
            return TANDEM_ERR_NOMEM;
        for (uint64_t off = 8, i = 0; i < count; i++) {
            struct tandem_stream_block blk = {get_le32(b + off), get_le32(b + off + 4),
                                              b + off + 8};
            off += 8 + stream_pad8(blk.len);
            if (!(blk.tag & TANDEM_REC_SKIPPABLE))
                blocks[n++] = blk;
        }
        rc = ops->vcpu(get_le32(b), blocks, n, opaque);
        free(blocks);
        return rc;
    }
    case TANDEM_REC_CLOCK: {
        struct tandem_stream_clock c = {get_le64(b), get_le64(b + 8), get_le64(b + 16),
                                        get_le64(b + 24)};
        return ops->clock ? ops->clock(&c, opaque) : 0;
    }
    case TANDEM_REC_DEVICE_STATE: {
        struct tandem_stream_device d = {get_le32(b), get_le32(b + 4), b + 8, sr->length - 8};
        return ops->device ? ops->device(&d, opaque) : 0;
    }
    case TANDEM_REC_DISK_WRITES: {
        uint32_t disk = get_le32(b), ss = get_le32(b + 4), count = get_le32(b + 8);
        if (!ops->disk)
            return 0;
        for (uint64_t off = 16, i = 0; i < count && rc == 0; i++) {
            struct tandem_stream_extent e = {get_le64(b + off), get_le32(b + off + 8),
                                             b + off + 16};
            off += 16 + (uint64_t)e.count * ss;
            rc = ops->disk(disk, ss, &e, opaque);
        }
        return rc;
    }
    }
    return 0;
}

int tandem_stream_stage_commit(tandem_stream_stage *st, const struct tandem_stream_apply_ops *ops,
                               void *opaque)
{
    size_t ps = st->r->page_size;
    int rc = 0;

    if (!st->complete)
        return tandem_error(st->r->ctx, TANDEM_ERR_BUSY,
                            "no complete state is staged (stream offset %llu)",
                            (unsigned long long)st->r->offset);
    for (size_t s = 0; s < st->nslots && rc == 0 && ops->page; s++) {
        uint32_t d = st->slot_data[s];
        rc = ops->page(st->slot_pfn[s], d == STAGE_NO_DATA ? NULL : st->data + (size_t)d * ps,
                       opaque);
    }
    for (size_t i = 0; i < st->nrecs && rc == 0; i++)
        rc = stage_apply_rec(&st->recs[i], ops, opaque);
    if (rc == TANDEM_ERR_NOMEM)
        tandem_error(st->r->ctx, rc, "out of memory applying epoch %llu",
                     (unsigned long long)st->epoch);
    tandem_stream_stage_discard(st);
    return rc;
}
