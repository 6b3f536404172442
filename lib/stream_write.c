/* Stream writer: header, buffered output over an fd and every record type but PAGE_BATCH. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "stream_internal.h"

static const uint8_t zero_pad[8];

const char *tandem_stream_rec_name(uint32_t type)
{
    switch (type) {
    case TANDEM_REC_DOMAIN_CONFIG:
        return "DOMAIN_CONFIG";
    case TANDEM_REC_PAGE_BATCH:
        return "PAGE_BATCH";
    case TANDEM_REC_VCPU_STATE:
        return "VCPU_STATE";
    case TANDEM_REC_CLOCK:
        return "CLOCK";
    case TANDEM_REC_DEVICE_STATE:
        return "DEVICE_STATE";
    case TANDEM_REC_DISK_WRITES:
        return "DISK_WRITES";
    case TANDEM_REC_CHECKPOINT:
        return "CHECKPOINT";
    case TANDEM_REC_END:
        return "END";
    case TANDEM_REC_HEARTBEAT:
        return "HEARTBEAT";
    }
    return "unknown";
}

static int writev_all(tandem_stream_writer *w, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t done;
        if (w->is_socket) {
            /* A peer that went away must be an error, not a SIGPIPE that kills the VMM. */
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
            done = sendmsg(w->fd, &mh, MSG_NOSIGNAL);
        } else {
            done = writev(w->fd, iov, n);
        }
        if (done < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
                if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                    continue;
            }
            w->broken = 1;
            return tandem_error_errno(w->ctx, TANDEM_ERR_IO, errno,
                                      "stream write at offset %llu failed",
                                      (unsigned long long)w->written);
        }
        w->written += (uint64_t)done;
        while (n > 0 && (size_t)done >= iov->iov_len) {
            done -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= (size_t)done;
        }
    }
    return 0;
}

int tandem_stream_flush(tandem_stream_writer *w)
{
    int rc;

    if (w->broken)
        return tandem_error(w->ctx, TANDEM_ERR_IO, "stream writer is unusable after a write error");
    rc = writev_all(w, w->iov, w->niov);
    w->niov = 0;
    w->buf_used = 0;
    return rc;
}

/* Append to the iovec queue, merging with the previous piece when contiguous. */
static int queue(tandem_stream_writer *w, const void *p, size_t len)
{
    int rc;

    if (len == 0)
        return 0;
    if (w->niov > 0) {
        struct iovec *last = &w->iov[w->niov - 1];
        if ((const uint8_t *)last->iov_base + last->iov_len == (const uint8_t *)p) {
            last->iov_len += len;
            w->bytes += len;
            return 0;
        }
    }
    if (w->niov == STREAM_MAX_IOV) {
        rc = tandem_stream_flush(w);
        if (rc < 0)
            return rc;
    }
    w->iov[w->niov].iov_base = (void *)p;
    w->iov[w->niov].iov_len = len;
    w->niov++;
    w->bytes += len;
    return 0;
}

int stream_w_copy(tandem_stream_writer *w, const void *p, size_t len)
{
    int rc;

    if (w->broken)
        return tandem_error(w->ctx, TANDEM_ERR_IO, "stream writer is unusable after a write error");
    while (len > 0) {
        size_t room = STREAM_WBUF_SIZE - w->buf_used, n = len < room ? len : room;
        if (room == 0 || w->niov == STREAM_MAX_IOV) {
            rc = tandem_stream_flush(w);
            if (rc < 0)
                return rc;
            continue;
        }
        memcpy(w->buf + w->buf_used, p, n);
        rc = queue(w, w->buf + w->buf_used, n);
        if (rc < 0)
            return rc;
        w->buf_used += n;
        p = (const uint8_t *)p + n;
        len -= n;
    }
    return 0;
}

int stream_w_ref(tandem_stream_writer *w, const void *p, size_t len)
{
    if (w->broken)
        return tandem_error(w->ctx, TANDEM_ERR_IO, "stream writer is unusable after a write error");
    return queue(w, p, len);
}

int stream_w_pad(tandem_stream_writer *w, size_t len)
{
    return stream_w_copy(w, zero_pad, stream_pad8(len) - len);
}

void stream_rec_header(uint8_t hdr[STREAM_REC_HDR_LEN], uint32_t type, uint32_t len, uint64_t csum)
{
    put_le32(hdr, type);
    put_le32(hdr + 4, len);
    put_le64(hdr + 8, csum);
}

uint64_t stream_rec_csum(uint32_t type, uint32_t len, const struct iovec *parts, int nparts)
{
    XXH3_state_t st;
    uint8_t head[8];

    put_le32(head, type);
    put_le32(head + 4, len);
    XXH3_64bits_reset(&st);
    stream_xxh3_update(&st, head, sizeof(head));
    for (int i = 0; i < nparts; i++)
        stream_xxh3_update(&st, parts[i].iov_base, parts[i].iov_len);
    return XXH3_64bits_digest(&st);
}

/* A whole record from body pieces, all copied into the staging buffer. */
static int write_parts(tandem_stream_writer *w, uint32_t type, const struct iovec *parts,
                       int nparts)
{
    uint8_t hdr[STREAM_REC_HDR_LEN];
    uint64_t len = 0;
    int rc;

    for (int i = 0; i < nparts; i++)
        len += parts[i].iov_len;
    if (len > TANDEM_STREAM_MAX_RECORD)
        return tandem_error(
            w->ctx, TANDEM_ERR_INVAL, "%s record of %llu bytes is over the %u-byte limit",
            tandem_stream_rec_name(type), (unsigned long long)len, TANDEM_STREAM_MAX_RECORD);
    stream_rec_header(hdr, type, (uint32_t)len,
                      stream_rec_csum(type, (uint32_t)len, parts, nparts));
    rc = stream_w_copy(w, hdr, sizeof(hdr));
    for (int i = 0; i < nparts && rc == 0; i++)
        rc = stream_w_copy(w, parts[i].iov_base, parts[i].iov_len);
    if (rc == 0)
        rc = stream_w_pad(w, (size_t)len);
    return rc;
}

int tandem_stream_write_record(tandem_stream_writer *w, uint32_t type, const void *body, size_t len)
{
    struct iovec part = {(void *)body, len};

    if (type == 0)
        return tandem_error(w->ctx, TANDEM_ERR_INVAL, "stream record type 0 is invalid");
    return write_parts(w, type, &part, len ? 1 : 0);
}

int tandem_stream_writer_open(tandem_ctx *ctx, int fd, const struct tandem_stream_params *params,
                              tandem_stream_writer **out)
{
    struct tandem_stream_params def = {0};
    tandem_stream_writer *w = NULL;
    uint8_t hdr[STREAM_HDR_LEN] = {0};
    uint32_t flags;
    int rc;

    if (!params)
        params = &def;
    uint32_t ps = params->page_size ? params->page_size : 4096;
    if (ps < 4096 || ps > 65536 || (ps & (ps - 1))) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                          "stream page size %u is not a power of two in 4096..65536", ps);
        goto out;
    }
    if (params->kind > TANDEM_STREAM_CHECKPOINTED) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                          "stream kind %u is not 0 (save), 1 (live) or "
                          "2 (checkpointed)",
                          params->kind);
        goto out;
    }
    if (params->compression > TANDEM_COMPRESS_ZSTD) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                          "stream compression %u is not 0 (none), 1 (lz4) or 2 (zstd)",
                          params->compression);
        goto out;
    }
    w = calloc(1, sizeof(*w));
    if (!w || !(w->buf = malloc(STREAM_WBUF_SIZE))) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory for a stream writer");
        goto out;
    }
    w->ctx = ctx;
    w->fd = fd;
    struct stat stbuf;
    w->is_socket = fstat(fd, &stbuf) == 0 && S_ISSOCK(stbuf.st_mode);
    w->page_size = ps;
    w->kind = params->kind;
    w->compression = params->compression;
    w->level = params->level;

    flags = params->kind | (params->compression ? TANDEM_STREAM_F_COMPRESSED : 0);
    memcpy(hdr, STREAM_MAGIC, 8);
    put_le32(hdr + 8, TANDEM_STREAM_VERSION);
    put_le32(hdr + 12, ps);
    put_le32(hdr + 16, flags);
    put_le32(hdr + 20, 0);
    put_le64(hdr + STREAM_HDR_CSUM_OFF, stream_xxh3(hdr, STREAM_HDR_CSUM_OFF));
    rc = stream_w_copy(w, hdr, sizeof(hdr));
    if (rc < 0)
        goto out;
    *out = w;
    w = NULL;
out:
    tandem_stream_writer_free(w);
    return rc;
}

void tandem_stream_writer_free(tandem_stream_writer *w)
{
    if (!w)
        return;
    ZSTD_freeCCtx(w->zctx);
    free(w->buf);
    free(w->cbuf);
    free(w->gbuf);
    free(w);
}

uint64_t tandem_stream_bytes(const tandem_stream_writer *w)
{
    return w->bytes;
}

int tandem_stream_write_config(tandem_stream_writer *w, const char *json, size_t len)
{
    if (len < 2 || memchr(json, '\0', len))
        return tandem_error(w->ctx, TANDEM_ERR_INVAL,
                            "domain config for the stream is not JSON text (%zu bytes%s)", len,
                            len >= 2 ? ", contains NUL" : "");
    return tandem_stream_write_record(w, TANDEM_REC_DOMAIN_CONFIG, json, len);
}

/* Expected length of a known sub-block tag, 0 for variable, -1 for unknown. */
static long vcpu_tag_len(uint32_t tag)
{
    switch (tag) {
    case TANDEM_VCPU_REGS:
        return 144;
    case TANDEM_VCPU_SREGS:
        return 312;
    case TANDEM_VCPU_SREGS2:
        return 320;
    case TANDEM_VCPU_XCRS:
        return 392;
    case TANDEM_VCPU_EVENTS:
        return 64;
    case TANDEM_VCPU_DEBUGREGS:
        return 128;
    case TANDEM_VCPU_MP_STATE:
        return 4;
    case TANDEM_VCPU_XSAVE:
    case TANDEM_VCPU_MSRS:
        return 0;
    }
    return -1;
}

const char *stream_vcpu_tag_name(uint32_t tag)
{
    switch (tag) {
    case TANDEM_VCPU_REGS:
        return "REGS";
    case TANDEM_VCPU_SREGS:
        return "SREGS";
    case TANDEM_VCPU_SREGS2:
        return "SREGS2";
    case TANDEM_VCPU_XSAVE:
        return "XSAVE";
    case TANDEM_VCPU_XCRS:
        return "XCRS";
    case TANDEM_VCPU_MSRS:
        return "MSRS";
    case TANDEM_VCPU_EVENTS:
        return "VCPU_EVENTS";
    case TANDEM_VCPU_DEBUGREGS:
        return "DEBUGREGS";
    case TANDEM_VCPU_MP_STATE:
        return "MP_STATE";
    }
    return "unknown";
}

const char *stream_vcpu_block_problem(uint32_t tag, uint32_t len, const void *data)
{
    long want = vcpu_tag_len(tag);

    if (want < 0)
        return (tag & TANDEM_REC_SKIPPABLE) ? NULL : "unknown sub-block tag";
    if (want > 0)
        return len == (uint32_t)want ? NULL : "wrong length for its KVM structure";
    if (tag == TANDEM_VCPU_XSAVE)
        return (len >= 4096 && len <= STREAM_MAX_XSAVE && len % 64 == 0)
                   ? NULL
                   : "XSAVE length not a multiple of 64 in 4096..1048576";
    if (len < 8)
        return "MSRS shorter than its 8-byte header";
    uint32_t n = get_le32(data);
    if (n > STREAM_MAX_MSRS)
        return "MSRS count over 4096";
    if (len != 8 + 16 * n)
        return "MSRS length is not 8 + 16 x count";
    return NULL;
}

int tandem_stream_write_vcpu(tandem_stream_writer *w, uint32_t vcpu_id,
                             const struct tandem_stream_block *blocks, size_t n)
{
    struct iovec *parts = NULL;
    uint8_t *heads = NULL;
    int rc, np = 0;
    uint8_t head[8];

    if (n > 64) {
        rc = tandem_error(w->ctx, TANDEM_ERR_INVAL, "vCPU %u: %zu sub-blocks (at most 64)", vcpu_id,
                          n);
        goto out;
    }
    parts = calloc(1 + 3 * n, sizeof(*parts));
    heads = calloc(n ? n : 1, 8);
    if (!parts || !heads) {
        rc = tandem_error(w->ctx, TANDEM_ERR_NOMEM, "out of memory for vCPU %u state", vcpu_id);
        goto out;
    }
    put_le32(head, vcpu_id);
    put_le32(head + 4, (uint32_t)n);
    parts[np++] = (struct iovec){head, 8};
    for (size_t i = 0; i < n; i++) {
        const char *why = stream_vcpu_block_problem(blocks[i].tag, blocks[i].len, blocks[i].data);
        if (why) {
            rc = tandem_error(
                w->ctx, TANDEM_ERR_INVAL, "vCPU %u sub-block %s (tag %u, %u bytes): %s", vcpu_id,
                stream_vcpu_tag_name(blocks[i].tag), blocks[i].tag, blocks[i].len, why);
            goto out;
        }
        put_le32(heads + 8 * i, blocks[i].tag);
        put_le32(heads + 8 * i + 4, blocks[i].len);
        parts[np++] = (struct iovec){heads + 8 * i, 8};
        if (blocks[i].len)
            parts[np++] = (struct iovec){(void *)blocks[i].data, blocks[i].len};
        if (stream_pad8(blocks[i].len) != blocks[i].len)
            parts[np++] =
                (struct iovec){(void *)zero_pad, stream_pad8(blocks[i].len) - blocks[i].len};
    }
    rc = write_parts(w, TANDEM_REC_VCPU_STATE, parts, np);
out:
    free(parts);
    free(heads);
    return rc;
}

int tandem_stream_write_clock(tandem_stream_writer *w, const struct tandem_stream_clock *c)
{
    uint8_t b[STREAM_CLOCK_LEN];

    put_le64(b, c->guest_ns);
    put_le64(b + 8, c->tsc_khz);
    put_le64(b + 16, c->generation);
    put_le64(b + 24, c->wall_ns);
    return tandem_stream_write_record(w, TANDEM_REC_CLOCK, b, sizeof(b));
}

int tandem_stream_write_device(tandem_stream_writer *w, const struct tandem_stream_device *d)
{
    uint8_t head[8];
    struct iovec parts[2] = {{head, 8}, {(void *)d->data, d->len}};

    if (d->kind < TANDEM_DEVICE_CONSOLE || d->kind > TANDEM_DEVICE_BLOCK)
        return tandem_error(w->ctx, TANDEM_ERR_INVAL,
                            "device kind %u is not 1 (console), 2 (net) or 3 (block)", d->kind);
    put_le32(head, d->kind);
    put_le32(head + 4, d->id);
    return write_parts(w, TANDEM_REC_DEVICE_STATE, parts, d->len ? 2 : 1);
}

int tandem_stream_write_disk(tandem_stream_writer *w, uint32_t disk, uint32_t sector_size,
                             const struct tandem_stream_extent *ext, size_t n)
{
    struct iovec *parts = NULL;
    uint8_t *heads = NULL, head[16];
    int rc, np = 0;

    if (sector_size != 512 && sector_size != 4096) {
        rc = tandem_error(w->ctx, TANDEM_ERR_INVAL, "disk %u: sector size %u is not 512 or 4096",
                          disk, sector_size);
        goto out;
    }
    if (n == 0 || n > (1u << 20)) {
        rc = tandem_error(w->ctx, TANDEM_ERR_INVAL, "disk %u: %zu extents (want 1..1048576)", disk,
                          n);
        goto out;
    }
    parts = calloc(1 + 2 * n, sizeof(*parts));
    heads = calloc(n, 16);
    if (!parts || !heads) {
        rc = tandem_error(w->ctx, TANDEM_ERR_NOMEM, "out of memory for disk %u writes", disk);
        goto out;
    }
    put_le32(head, disk);
    put_le32(head + 4, sector_size);
    put_le32(head + 8, (uint32_t)n);
    put_le32(head + 12, 0);
    parts[np++] = (struct iovec){head, 16};
    for (size_t i = 0; i < n; i++) {
        if (ext[i].count == 0) {
            rc =
                tandem_error(w->ctx, TANDEM_ERR_INVAL, "disk %u extent %zu at sector %llu is empty",
                             disk, i, (unsigned long long)ext[i].sector);
            goto out;
        }
        put_le64(heads + 16 * i, ext[i].sector);
        put_le32(heads + 16 * i + 8, ext[i].count);
        put_le32(heads + 16 * i + 12, 0);
        parts[np++] = (struct iovec){heads + 16 * i, 16};
        parts[np++] = (struct iovec){(void *)ext[i].data, (size_t)ext[i].count * sector_size};
    }
    rc = write_parts(w, TANDEM_REC_DISK_WRITES, parts, np);
out:
    free(parts);
    free(heads);
    return rc;
}

int tandem_stream_write_checkpoint(tandem_stream_writer *w, uint64_t epoch)
{
    uint8_t b[8];

    put_le64(b, epoch);
    return tandem_stream_write_record(w, TANDEM_REC_CHECKPOINT, b, sizeof(b));
}

int tandem_stream_write_end(tandem_stream_writer *w)
{
    int rc = tandem_stream_write_record(w, TANDEM_REC_END, NULL, 0);
    return rc < 0 ? rc : tandem_stream_flush(w);
}

int tandem_stream_write_heartbeat(tandem_stream_writer *w, uint64_t seq, uint64_t mono_ns)
{
    uint8_t b[16];

    put_le64(b, seq);
    put_le64(b + 8, mono_ns);
    return tandem_stream_write_record(w, TANDEM_REC_HEARTBEAT, b, sizeof(b));
}
