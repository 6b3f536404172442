/* Unit tests of the checkpoint stream: round trips, wire bytes at documented offsets, corruption.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lz4.h>
#include <xxhash.h>
#include <zstd.h>

#include "stream_sample.h"
#include "tandem.h"
#include "tandem_stream.h"

static tandem_ctx *ctx;

static int setup(void **state)
{
    return tandem_ctx_alloc(&ctx);
}

static int teardown(void **state)
{
    tandem_ctx_free(ctx);
    return 0;
}

static int new_memfd(void)
{
    int fd = memfd_create("stream-test", 0);
    assert_true(fd >= 0);
    return fd;
}

/* A memfd holding len bytes of buf, positioned at 0. */
static int memfd_with(const void *buf, size_t len)
{
    int fd = new_memfd();
    assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
    return fd;
}

/* Whole contents of fd (rewinds it); *len gets the size. */
static uint8_t *slurp(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc((size_t)end + 1);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)end, 0), end);
    lseek(fd, 0, SEEK_SET);
    *len = (size_t)end;
    return b;
}

static uint8_t *sample_bytes(int states, uint32_t comp, struct sample_layout *l, size_t *len)
{
    int fd = new_memfd();
    assert_int_equal(sample_stream(ctx, fd, states, comp, l), 0);
    uint8_t *b = slurp(fd, len);
    close(fd);
    return b;
}

static int validate_buf(const void *buf, size_t len, struct tandem_stream_summary *sum)
{
    int fd = memfd_with(buf, len);
    tandem_ctx_clear_error(ctx);
    int rc = tandem_stream_validate(ctx, fd, sum);
    close(fd);
    return rc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void wle32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wle64(uint8_t *p, uint64_t v)
{
    wle32(p, (uint32_t)v);
    wle32(p + 4, (uint32_t)(v >> 32));
}

/* Recompute the checksum of the record at off (after a deliberate edit of its body). */
static void reseal(uint8_t *b, size_t off)
{
    uint32_t len = le32(b + off + 4);
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, b + off, 8);
    XXH3_64bits_update(st, b + off + 16, len);
    wle64(b + off + 8, XXH3_64bits_digest(st));
    XXH3_freeState(st);
}

/* Append a raw record (with correct checksum) to a buffer at *pos. */
static void put_record(uint8_t *b, size_t *pos, uint32_t type, const void *body, uint32_t len)
{
    wle32(b + *pos, type);
    wle32(b + *pos + 4, len);
    memcpy(b + *pos + 16, body, len);
    memset(b + *pos + 16 + len, 0, ((len + 7) & ~7u) - len);
    reseal(b, *pos);
    *pos += 16 + ((len + 7) & ~7u);
}

static void assert_msg_has(const char *needle)
{
    const char *msg = tandem_ctx_error(ctx);
    if (!strstr(msg, needle))
        fail_msg("error message \"%s\" lacks \"%s\"", msg, needle);
}

/* ------------------------------------------------------------------ round trips */

struct collect {
    int pages, zero_pages, blocks, extents;
    uint64_t pfn_sum;
    int page_ok;
    uint32_t tags;
};

static int collect_page(uint64_t pfn, const void *data, void *opaque)
{
    struct collect *c = opaque;
    uint8_t want[SAMPLE_PS];

    c->pages++;
    c->pfn_sum += pfn;
    if (!data) {
        c->zero_pages++;
        return 0;
    }
    sample_page(want, pfn, 0);
    if (memcmp(want, data, SAMPLE_PS) != 0)
        c->page_ok = 0;
    return 0;
}

static int collect_block(uint32_t id, const struct tandem_stream_block *b, void *opaque)
{
    struct collect *c = opaque;
    const uint8_t *d = b->data;

    c->blocks++;
    c->tags |= 1u << b->tag;
    if (b->tag == TANDEM_VCPU_REGS && d[0] != 0x10 + id)
        c->page_ok = 0;
    if (b->tag == TANDEM_VCPU_MSRS && (le32(d) != 2 || d[16] != 0x99 + id || d[32] != 0xee))
        c->page_ok = 0;
    if (b->tag == TANDEM_VCPU_XSAVE && (b->len != 4096 || d[4095] != 0x30 + id))
        c->page_ok = 0;
    return 0;
}

static int collect_extent(uint32_t disk, uint32_t ss, const struct tandem_stream_extent *e,
                          void *opaque)
{
    struct collect *c = opaque;
    const uint8_t *d = e->data;
    c->extents++;
    if (disk != 0 || ss != 512 || e->count != 2 || d[0] != 0xab || d[1023] != 0xab)
        c->page_ok = 0;
    return 0;
}

/* Write a two-state stream and read every record back through the decoders. */
static void roundtrip(uint32_t comp)
{
    struct sample_layout l;
    struct collect c = {.page_ok = 1};
    struct tandem_stream_header h;
    struct tandem_stream_record rec;
    tandem_stream_reader *r;
    int fd = new_memfd(), n = 0, devices = 0, clocks = 0, checkpoints = 0, hb = 0;

    assert_int_equal(sample_stream(ctx, fd, 2, comp, &l), 0);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    assert_int_equal(tandem_stream_read_header(r, &h), 0);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.page_size, SAMPLE_PS);
    assert_int_equal(h.flags & TANDEM_STREAM_F_KIND_MASK, TANDEM_STREAM_CHECKPOINTED);
    do {
        assert_int_equal(tandem_stream_next(r, &rec), 0);
        assert_int_equal(rec.offset, l.rec_off[n]);
        assert_int_equal(rec.type, l.rec_type[n]);
        assert_int_equal(rec.index, (uint64_t)n + 1);
        n++;
        switch (rec.type) {
        case TANDEM_REC_DOMAIN_CONFIG: {
            const char *json;
            size_t len;
            assert_int_equal(tandem_stream_decode_config(r, &rec, &json, &len), 0);
            assert_string_equal(json, SAMPLE_CONFIG);
            break;
        }
        case TANDEM_REC_PAGE_BATCH:
            assert_int_equal(tandem_stream_decode_pages(r, &rec, collect_page, &c), 0);
            break;
        case TANDEM_REC_VCPU_STATE: {
            uint32_t id = 99;
            assert_int_equal(tandem_stream_decode_vcpu(r, &rec, &id, collect_block, &c), 0);
            assert_true(id < 2);
            break;
        }
        case TANDEM_REC_CLOCK: {
            struct tandem_stream_clock k;
            assert_int_equal(tandem_stream_decode_clock(r, &rec, &k), 0);
            assert_int_equal(k.guest_ns, 1000000 * (uint64_t)(clocks + 1) + 5);
            assert_int_equal(k.tsc_khz, 2400000);
            assert_int_equal(k.generation, clocks + 1);
            assert_int_equal(k.wall_ns, 1700000000000000000ull);
            clocks++;
            break;
        }
        case TANDEM_REC_DEVICE_STATE: {
            struct tandem_stream_device d;
            assert_int_equal(tandem_stream_decode_device(r, &rec, &d), 0);
            if (devices++ % 2 == 0) {
                assert_int_equal(d.kind, TANDEM_DEVICE_CONSOLE);
                assert_int_equal(d.len, 8);
                assert_memory_equal(d.data, "console!", 8);
            } else {
                assert_int_equal(d.kind, TANDEM_DEVICE_NET);
                assert_int_equal(d.len, 13);
                assert_memory_equal(d.data, "net-state-13b", 13);
            }
            break;
        }
        case TANDEM_REC_DISK_WRITES:
            assert_int_equal(tandem_stream_decode_disk(r, &rec, collect_extent, &c), 0);
            break;
        case TANDEM_REC_CHECKPOINT: {
            uint64_t e;
            assert_int_equal(tandem_stream_decode_checkpoint(r, &rec, &e), 0);
            assert_int_equal(e, (uint64_t)++checkpoints);
            break;
        }
        case TANDEM_REC_HEARTBEAT: {
            uint64_t seq, ns;
            assert_int_equal(tandem_stream_decode_heartbeat(r, &rec, &seq, &ns), 0);
            assert_int_equal(seq, 1);
            assert_int_equal(ns, 123456789);
            hb++;
            break;
        }
        }
    } while (rec.type != TANDEM_REC_END);
    assert_int_equal(n, l.nrec);
    assert_int_equal(tandem_stream_offset(r), l.end);
    /* Reading past END is refused. */
    assert_int_equal(tandem_stream_next(r, &rec), TANDEM_ERR_INVAL);
    assert_true(c.page_ok);
    assert_int_equal(c.pages, 6);
    assert_int_equal(c.zero_pages, 2);
    assert_int_equal(c.pfn_sum, 11 + 12 + 13 + 21 + 22 + 23);
    assert_int_equal(c.blocks, 2 * 2 * 6);
    assert_int_equal(c.tags, (1u << TANDEM_VCPU_REGS) | (1u << TANDEM_VCPU_SREGS2) |
                                 (1u << TANDEM_VCPU_XSAVE) | (1u << TANDEM_VCPU_MSRS) |
                                 (1u << TANDEM_VCPU_EVENTS) | (1u << TANDEM_VCPU_MP_STATE));
    assert_int_equal(c.extents, 2);
    assert_int_equal(devices, 4);
    assert_int_equal(checkpoints, 2);
    assert_int_equal(hb, 1);
    tandem_stream_reader_free(r);
    close(fd);
}

static void test_roundtrip_plain(void **state)
{
    roundtrip(TANDEM_COMPRESS_NONE);
}

static void test_validate_summary(void **state)
{
    struct tandem_stream_summary s = {0};
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(2, TANDEM_COMPRESS_NONE, &l, &len);

    assert_int_equal(validate_buf(b, len, &s), 0);
    assert_int_equal(s.bytes, len);
    assert_int_equal(s.records, (uint64_t)l.nrec);
    assert_int_equal(s.page_batches, 2);
    assert_int_equal(s.pages, 6);
    assert_int_equal(s.zero_pages, 2);
    assert_int_equal(s.max_pfn, 23);
    assert_int_equal(s.vcpus, 2);
    assert_int_equal(s.devices, 4);
    assert_int_equal(s.disk_extents, 2);
    assert_int_equal(s.checkpoints, 2);
    assert_int_equal(s.last_epoch, 2);
    assert_int_equal(s.skipped, 0);
    assert_string_equal(s.config_json, SAMPLE_CONFIG);
    tandem_stream_summary_dispose(&s);
    tandem_stream_summary_dispose(&s);
    free(b);
}

/* ------------------------------------------------------------------ bytes at documented offsets */

static void test_wire_bytes(void **state)
{
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(1, TANDEM_COMPRESS_NONE, &l, &len);
    size_t off;

    /* Stream header, 32 bytes. */
    assert_memory_equal(b, "TANDEMST", 8);
    assert_int_equal(le32(b + 8), 1);
    assert_int_equal(le32(b + 12), 4096);
    assert_int_equal(le32(b + 16), 0); /* save stream, no compression */
    assert_int_equal(le32(b + 20), 0);
    assert_int_equal(le64(b + 24), XXH3_64bits(b, 24));

    /* Record 1: DOMAIN_CONFIG at 32. */
    off = 32;
    assert_int_equal(l.rec_off[0], off);
    assert_int_equal(le32(b + off), 1);
    assert_int_equal(le32(b + off + 4), strlen(SAMPLE_CONFIG));
    assert_memory_equal(b + off + 16, SAMPLE_CONFIG, strlen(SAMPLE_CONFIG));
    {
        XXH3_state_t *st = XXH3_createState();
        XXH3_64bits_reset(st);
        XXH3_64bits_update(st, b + off, 8);
        XXH3_64bits_update(st, b + off + 16, strlen(SAMPLE_CONFIG));
        assert_int_equal(le64(b + off + 8), XXH3_64bits_digest(st));
        XXH3_freeState(st);
    }
    off += 16 + ((strlen(SAMPLE_CONFIG) + 7) & ~7u);
    for (size_t p = 32 + 16 + strlen(SAMPLE_CONFIG); p < off; p++)
        assert_int_equal(b[p], 0);

    /* Record 2: PAGE_BATCH of 3 pages, the middle one zero. */
    assert_int_equal(l.rec_off[1], off);
    assert_int_equal(le32(b + off), 2);
    assert_int_equal(le32(b + off + 4), 16 + 3 * 8 + 2 * 4096);
    uint8_t *bb = b + off + 16;
    assert_int_equal(le32(bb), 3);        /* count */
    assert_int_equal(le32(bb + 4), 0);    /* compression none */
    assert_int_equal(le32(bb + 8), 8192); /* data_length */
    assert_int_equal(le32(bb + 12), 8192);
    assert_int_equal(le64(bb + 16), 11);
    assert_int_equal(le64(bb + 24), 12 | (1ull << 63));
    assert_int_equal(le64(bb + 32), 13);
    uint8_t page[4096];
    sample_page(page, 11, 0);
    assert_memory_equal(bb + 40, page, 4096);
    sample_page(page, 13, 0);
    assert_memory_equal(bb + 40 + 4096, page, 4096);
    off += 16 + 16 + 24 + 8192;

    /* Record 3: VCPU_STATE of vCPU 0. */
    assert_int_equal(l.rec_off[2], off);
    assert_int_equal(le32(b + off), 3);
    uint8_t *vb = b + off + 16;
    assert_int_equal(le32(vb), 0);     /* vcpu id */
    assert_int_equal(le32(vb + 4), 6); /* sub-blocks */
    assert_int_equal(le32(vb + 8), TANDEM_VCPU_REGS);
    assert_int_equal(le32(vb + 12), 144);
    assert_int_equal(vb[16], 0x10);
    size_t sb = 8 + 8 + 144;
    assert_int_equal(le32(vb + sb), TANDEM_VCPU_SREGS2);
    assert_int_equal(le32(vb + sb + 4), 320);
    sb += 8 + 320;
    assert_int_equal(le32(vb + sb), TANDEM_VCPU_XSAVE);
    assert_int_equal(le32(vb + sb + 4), 4096);
    sb += 8 + 4096;
    assert_int_equal(le32(vb + sb), TANDEM_VCPU_MSRS);
    assert_int_equal(le32(vb + sb + 4), 8 + 32);
    assert_int_equal(le32(vb + sb + 8), 2);     /* nmsrs */
    assert_int_equal(le32(vb + sb + 16), 0x10); /* entry 0 index */
    assert_int_equal(le64(vb + sb + 24), 0x99); /* entry 0 value */
    sb += 8 + 40;
    assert_int_equal(le32(vb + sb), TANDEM_VCPU_EVENTS);
    assert_int_equal(le32(vb + sb + 4), 64);
    sb += 8 + 64;
    assert_int_equal(le32(vb + sb), TANDEM_VCPU_MP_STATE);
    assert_int_equal(le32(vb + sb + 4), 4);
    sb += 8 + 8; /* 4 bytes + 4 padding */
    assert_int_equal(le32(b + off + 4), sb);
    off += 16 + sb;

    /* Record 4: vCPU 1; record 5: CLOCK. */
    assert_int_equal(l.rec_off[3], off);
    assert_int_equal(le32(b + off + 16), 1);
    off += 16 + sb;
    assert_int_equal(l.rec_off[4], off);
    assert_int_equal(le32(b + off), 4);
    assert_int_equal(le32(b + off + 4), 32);
    assert_int_equal(le64(b + off + 16), 1000005);
    assert_int_equal(le64(b + off + 24), 2400000);
    assert_int_equal(le64(b + off + 32), 1);
    assert_int_equal(le64(b + off + 40), 1700000000000000000ull);
    off += 16 + 32;

    /* Records 6, 7: DEVICE_STATE console (8 bytes of state) and net (13, padded to 16). */
    assert_int_equal(l.rec_off[5], off);
    assert_int_equal(le32(b + off), 5);
    assert_int_equal(le32(b + off + 4), 16);
    assert_int_equal(le32(b + off + 16), 1);
    assert_int_equal(le32(b + off + 20), 0);
    assert_memory_equal(b + off + 24, "console!", 8);
    off += 16 + 16;
    assert_int_equal(le32(b + off + 4), 21);
    assert_int_equal(le32(b + off + 16), 2);
    assert_memory_equal(b + off + 24, "net-state-13b", 13);
    for (int p = 0; p < 3; p++)
        assert_int_equal(b[off + 16 + 21 + p], 0);
    off += 16 + 24;

    /* Record 8: DISK_WRITES, one extent of 2 sectors at 101. */
    assert_int_equal(l.rec_off[7], off);
    assert_int_equal(le32(b + off), 6);
    assert_int_equal(le32(b + off + 4), 16 + 16 + 1024);
    assert_int_equal(le32(b + off + 16), 0);   /* disk */
    assert_int_equal(le32(b + off + 20), 512); /* sector size */
    assert_int_equal(le32(b + off + 24), 1);   /* extents */
    assert_int_equal(le64(b + off + 32), 101);
    assert_int_equal(le32(b + off + 40), 2);
    assert_int_equal(b[off + 48], 0xab);
    off += 16 + 16 + 16 + 1024;

    /* Record 9: CHECKPOINT epoch 1; 10: HEARTBEAT (type with bit 31); 11: END. */
    assert_int_equal(l.rec_off[8], off);
    assert_int_equal(le32(b + off), 7);
    assert_int_equal(le32(b + off + 4), 8);
    assert_int_equal(le64(b + off + 16), 1);
    off += 24;
    assert_int_equal(le32(b + off), 0x80000001u);
    assert_int_equal(le32(b + off + 4), 16);
    assert_int_equal(le64(b + off + 16), 1);
    assert_int_equal(le64(b + off + 24), 123456789);
    off += 32;
    assert_int_equal(le32(b + off), 8);
    assert_int_equal(le32(b + off + 4), 0);
    assert_int_equal(le64(b + off + 8), XXH3_64bits(b + off, 8));
    off += 16;
    assert_int_equal(off, len);
    free(b);
}

/* ------------------------------------------------------------------ corruption */

/* Index of the record holding byte pos (-1 for the stream header). */
static int record_of(const struct sample_layout *l, size_t pos)
{
    int k = -1;
    for (int i = 0; i < l->nrec; i++)
        if (l->rec_off[i] <= pos)
            k = i;
    return k;
}

static void test_truncated_everywhere(void **state)
{
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(2, TANDEM_COMPRESS_LZ4, &l, &len);
    char want[96];

    assert_int_equal(validate_buf(b, len, NULL), 0);
    for (int i = 0; i < l.nrec; i++) {
        size_t start = l.rec_off[i], next = i + 1 < l.nrec ? l.rec_off[i + 1] : len;
        /* At the boundary: the stream ends after record i. */
        assert_int_not_equal(validate_buf(b, start, NULL), 0);
        snprintf(want, sizeof(want), "stream offset %zu, after record %d", start, i);
        assert_msg_has(want);
        /* Mid record header, just after it, mid body, one byte short. */
        size_t cuts[] = {start + 4, start + 16, (start + 16 + next) / 2, next - 1};
        for (size_t c = 0; c < 4; c++) {
            if (cuts[c] <= start || cuts[c] >= next)
                continue;
            assert_int_equal(validate_buf(b, cuts[c], NULL), TANDEM_ERR_PROTO);
            snprintf(want, sizeof(want), "stream offset %zu, record %d", start, i + 1);
            assert_msg_has(want);
            assert_msg_has("truncated");
        }
    }
    /* Inside the stream header. */
    assert_int_equal(validate_buf(b, 20, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("truncated header");
    assert_int_equal(validate_buf(b, 0, NULL), TANDEM_ERR_PROTO);
    free(b);
}

static void flip_every_byte(uint32_t comp)
{
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(2, comp, &l, &len);
    char want[96];
    int fd = memfd_with(b, len);

    for (size_t pos = 0; pos < len; pos++) {
        uint8_t saved = b[pos];
        b[pos] ^= (uint8_t)(1u << (pos % 8));
        assert_int_equal(pwrite(fd, b + pos, 1, (off_t)pos), 1);
        lseek(fd, 0, SEEK_SET);
        tandem_ctx_clear_error(ctx);
        int rc = tandem_stream_validate(ctx, fd, NULL);
        if (rc == 0)
            fail_msg("flipping byte %zu went unnoticed", pos);
        int k = record_of(&l, pos);
        if (k < 0) {
            if (!strstr(tandem_ctx_error(ctx), "stream offset") &&
                !strstr(tandem_ctx_error(ctx), "newer than this tandem"))
                fail_msg("byte %zu: \"%s\" names no offset", pos, tandem_ctx_error(ctx));
        } else {
            snprintf(want, sizeof(want), "stream offset %llu, record %d (",
                     (unsigned long long)l.rec_off[k], k + 1);
            if (!strstr(tandem_ctx_error(ctx), want))
                fail_msg("byte %zu: \"%s\" does not name \"%s\"", pos, tandem_ctx_error(ctx), want);
        }
        b[pos] = saved;
        assert_int_equal(pwrite(fd, b + pos, 1, (off_t)pos), 1);
    }
    close(fd);
    free(b);
}

static void test_flip_every_byte(void **state)
{
    flip_every_byte(TANDEM_COMPRESS_NONE);
}

static void test_flip_every_byte_zstd(void **state)
{
    flip_every_byte(TANDEM_COMPRESS_ZSTD);
}

static void test_wrong_magic(void **state)
{
    size_t len;
    uint8_t *b = sample_bytes(1, 0, NULL, &len);
    memcpy(b, "QFI\xfb\0\0\0\3", 8);
    assert_int_equal(validate_buf(b, len, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("stream offset 0: not a tandem stream");
    free(b);
}

static void test_future_version(void **state)
{
    size_t len;
    uint8_t *b = sample_bytes(1, 0, NULL, &len);
    wle32(b + 8, 2);
    wle64(b + 24, XXH3_64bits(b, 24));
    assert_int_equal(validate_buf(b, len, NULL), TANDEM_ERR_VERSION);
    assert_string_equal(tandem_ctx_error(ctx),
                        "stream format version 2 is newer than this tandem supports (1)");
    free(b);
}

/* A stream whose record k is replaced by a raw record of the given type and body. */
static uint8_t *with_inserted(uint32_t type, const void *body, uint32_t blen, int before_rec,
                              size_t *outlen)
{
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(1, 0, &l, &len);
    uint8_t *o = calloc(1, len + 16 + blen + 8);
    size_t at = l.rec_off[before_rec], pos = at;

    memcpy(o, b, at);
    put_record(o, &pos, type, body, blen);
    memcpy(o + pos, b + at, len - at);
    *outlen = pos + len - at;
    free(b);
    return o;
}

static void test_unknown_types(void **state)
{
    struct tandem_stream_summary s = {0};
    size_t len;
    uint8_t *b;

    b = with_inserted(0x80000777u, "future control data", 19, 2, &len);
    assert_int_equal(validate_buf(b, len, &s), 0);
    assert_int_equal(s.skipped, 1);
    tandem_stream_summary_dispose(&s);
    free(b);

    b = with_inserted(0x777, "must understand this", 20, 2, &len);
    assert_int_equal(validate_buf(b, len, &s), TANDEM_ERR_PROTO);
    assert_msg_has("record 3 (unknown): unknown record type 0x777 that is not marked skippable");
    tandem_stream_summary_dispose(&s);
    free(b);

    b = with_inserted(0, "", 0, 1, &len);
    assert_int_equal(validate_buf(b, len, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("record 2");
    free(b);
}

static void test_oversize_length(void **state)
{
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(1, 0, &l, &len);
    tandem_stream_reader *r;
    struct tandem_stream_record rec;

    /* A corrupt 4 GiB length must be refused from the header alone, before any allocation. */
    wle32(b + l.rec_off[1] + 4, 0xfffffff0u);
    int fd = memfd_with(b, len);
    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    assert_int_equal(tandem_stream_read_header(r, NULL), 0);
    assert_int_equal(tandem_stream_next(r, &rec), 0);
    assert_int_equal(tandem_stream_next(r, &rec), TANDEM_ERR_PROTO);
    char want[128];
    snprintf(want, sizeof(want),
             "stream offset %llu, record 2 (PAGE_BATCH): length 4294967280 is "
             "over the 67108864-byte limit",
             (unsigned long long)l.rec_off[1]);
    assert_msg_has(want);
    /* Only the record header was consumed. */
    assert_int_equal(tandem_stream_offset(r), l.rec_off[1] + 16);
    /* The reader refuses to go on after an error. */
    assert_int_equal(tandem_stream_next(r, &rec), TANDEM_ERR_PROTO);
    tandem_stream_reader_free(r);
    close(fd);

    /* Exactly the limit is allowed, and then fails as truncated. */
    wle32(b + l.rec_off[1] + 4, TANDEM_STREAM_MAX_RECORD);
    assert_int_equal(validate_buf(b, len, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("truncated");
    free(b);
}

/* ------------------------------------------------------------------ pages */

struct page_check {
    int seen;
    const uint8_t *mem;
};

/* Pages come back in order (pfn = 3 x index) with the same bytes; NULL only for zero pages. */
static int check_page(uint64_t pfn, const void *data, void *o)
{
    struct page_check *chk = o;
    const uint8_t *want = chk->mem + (size_t)chk->seen * 4096;
    static const uint8_t zero[4096];

    if (pfn != (uint64_t)chk->seen * 3)
        return -100;
    if (memcmp(data ? data : zero, want, 4096) != 0)
        return -101;
    chk->seen++;
    return 0;
}

/*
 * Write nzero zero pages interleaved with ndata pages (filled with fill,
 * or random bytes when 0), read them back, and return the stream size.
 */
static uint64_t stream_size_for(uint32_t comp, int nzero, int ndata, uint8_t fill)
{
    int n = nzero + ndata, zeros_left = nzero, data_left = ndata;
    uint8_t *mem = calloc((size_t)n, 4096);
    uint64_t *pfns = calloc((size_t)n, sizeof(*pfns));
    const void **pp = calloc((size_t)n, sizeof(*pp));
    struct tandem_stream_params p = {4096, 0, comp, 0};
    struct page_check chk = {0, mem};
    struct tandem_stream_record rec;
    tandem_stream_writer *w;
    tandem_stream_reader *r;
    int fd = new_memfd();

    for (int i = 0; i < n; i++) {
        pfns[i] = (uint64_t)i * 3;
        pp[i] = mem + (size_t)i * 4096;
        if (zeros_left > 0 && (data_left == 0 || i % 2 == 0)) {
            zeros_left--;
            continue;
        }
        data_left--;
        for (int j = 0; j < 4096; j++)
            mem[(size_t)i * 4096 + j] = fill ? fill : (uint8_t)rand();
        mem[(size_t)i * 4096 + 4095] = 1; /* never all zero */
    }
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), 0);
    assert_int_equal(tandem_stream_write_pages(w, pfns, pp, (size_t)n), 0);
    assert_int_equal(tandem_stream_flush(w), 0);
    uint64_t bytes = tandem_stream_bytes(w);
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)bytes);

    lseek(fd, 0, SEEK_SET);
    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    assert_int_equal(tandem_stream_read_header(r, NULL), 0);
    while (tandem_stream_offset(r) < bytes) {
        assert_int_equal(tandem_stream_next(r, &rec), 0);
        assert_int_equal(rec.type, TANDEM_REC_PAGE_BATCH);
        assert_int_equal(tandem_stream_decode_pages(r, &rec, check_page, &chk), 0);
    }
    assert_int_equal(chk.seen, n);
    tandem_stream_reader_free(r);
    tandem_stream_writer_free(w);
    close(fd);
    free(mem);
    free(pfns);
    free(pp);
    return bytes;
}

static void test_zero_pages_elided(void **state)
{
    /* 2000 pages of which 1000 zero: two batches (1024 + 976); only data pages carry bytes. */
    uint64_t bytes = stream_size_for(TANDEM_COMPRESS_NONE, 1000, 1000, 0);
    assert_int_equal(bytes, 32 + 2 * (16 + 16) + 2000 * 8 + 1000 * 4096);
    /* All zero: no page data at all. */
    bytes = stream_size_for(TANDEM_COMPRESS_NONE, 100, 0, 0);
    assert_int_equal(bytes, 32 + 16 + 16 + 100 * 8);
}

static void test_compression_roundtrip(void **state)
{
    uint64_t plain = 32 + 16 + 16 + 300 * 8 + 300 * 4096;
    /* Compressible pages shrink with both codecs and read back identical. */
    assert_true(stream_size_for(TANDEM_COMPRESS_LZ4, 0, 300, 0x5a) < plain / 10);
    assert_true(stream_size_for(TANDEM_COMPRESS_ZSTD, 0, 300, 0x5a) < plain / 10);
    /* Random pages do not: the writer falls back to storing them. */
    assert_int_equal(stream_size_for(TANDEM_COMPRESS_LZ4, 0, 300, 0), plain);
    assert_int_equal(stream_size_for(TANDEM_COMPRESS_ZSTD, 0, 300, 0), plain);
    roundtrip(TANDEM_COMPRESS_LZ4);
    roundtrip(TANDEM_COMPRESS_ZSTD);
}

/* A page batch record with hand-made (checksum-valid) data section. */
static int batch_with(uint32_t comp, const void *data, uint32_t data_len, uint32_t raw_len,
                      uint64_t entry)
{
    struct sample_layout l;
    size_t len, pos = 0;
    uint8_t *b = sample_bytes(1, 0, &l, &len);
    uint8_t *o = calloc(1, len + 16 + 24 + data_len + 8);
    uint8_t *body = calloc(1, 24 + data_len);
    int rc;

    wle32(body, 1);
    wle32(body + 4, comp);
    wle32(body + 8, data_len);
    wle32(body + 12, raw_len);
    wle64(body + 16, entry);
    memcpy(body + 24, data, data_len);
    memcpy(o, b, l.rec_off[1]);
    pos = l.rec_off[1];
    put_record(o, &pos, TANDEM_REC_PAGE_BATCH, body, 24 + data_len);
    memcpy(o + pos, b + l.rec_off[1], len - l.rec_off[1]);
    rc = validate_buf(o, pos + len - l.rec_off[1], NULL);
    free(body);
    free(o);
    free(b);
    return rc;
}

static void test_corrupt_compressed(void **state)
{
    uint8_t page[4096], comp[8192];
    memset(page, 0x42, sizeof(page));
    int lz = LZ4_compress_default((char *)page, (char *)comp, 4096, sizeof(comp));
    assert_true(lz > 0);

    /* The well-formed batch passes, so the failures below are about the damage alone. */
    assert_int_equal(batch_with(1, comp, (uint32_t)lz, 4096, 7), 0);
    /* lz4 blocks carry no checksum of their own; damage to the token must still be caught. */
    comp[0] ^= 0x30;
    assert_int_equal(batch_with(1, comp, (uint32_t)lz, 4096, 7), TANDEM_ERR_PROTO);
    assert_msg_has("record 2 (PAGE_BATCH): lz4 data is corrupt");
    comp[0] ^= 0x30;
    assert_int_equal(batch_with(1, comp, (uint32_t)lz - 1, 4096, 7), TANDEM_ERR_PROTO);
    assert_msg_has("record 2 (PAGE_BATCH): lz4 data is corrupt");
    /* Declared raw length that does not match the page entries. */
    assert_int_equal(batch_with(1, comp, (uint32_t)lz, 8192, 7), TANDEM_ERR_PROTO);
    assert_msg_has("raw data length 8192 is not 1 non-zero pages");

    size_t zl = ZSTD_compress(comp, sizeof(comp), page, 4096, 3);
    assert_false(ZSTD_isError(zl));
    assert_int_equal(batch_with(2, comp, (uint32_t)zl, 4096, 7), 0);
    comp[zl / 2] ^= 0x55;
    comp[zl - 2] ^= 0x55;
    assert_int_equal(batch_with(2, comp, (uint32_t)zl, 4096, 7), TANDEM_ERR_PROTO);
    assert_msg_has("record 2 (PAGE_BATCH): zstd data");
    /* Garbage, unknown codec, reserved pfn bits, uncompressed length mismatch. */
    memset(comp, 0xee, 64);
    assert_int_equal(batch_with(2, comp, 64, 4096, 7), TANDEM_ERR_PROTO);
    assert_int_equal(batch_with(3, comp, 64, 4096, 7), TANDEM_ERR_PROTO);
    assert_msg_has("unknown compression 3");
    assert_int_equal(batch_with(0, page, 4096, 4096, 7 | (1ull << 55)), TANDEM_ERR_PROTO);
    assert_msg_has("reserved bits");
    assert_int_equal(batch_with(0, page, 4096, 4096, 7), 0);
    assert_int_equal(batch_with(0, page, 4088, 4088, 7), TANDEM_ERR_PROTO);
}

/* ------------------------------------------------------------------ order rules and writer checks
 */

static void test_order_rules(void **state)
{
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(1, 0, &l, &len);
    uint8_t *o = malloc(len * 2);
    size_t pos;
    uint8_t ck[8];

    /* Records: 0 config, 1 pages, 2-3 vcpu, 4 clock, 5-6 device, 7 disk, 8 checkpoint, 9 hb, 10
     * end. */
#define SPAN(i, j) b + l.rec_off[i], (j < l.nrec ? l.rec_off[j] : len) - l.rec_off[i]
#define ADD(i, j)                                                                                  \
    (memcpy(o + pos, SPAN(i, j)), pos += (j < l.nrec ? l.rec_off[j] : len) - l.rec_off[i])
    /* Pages before the config. */
    memcpy(o, b, 32);
    pos = 32;
    ADD(1, 2);
    ADD(0, 1);
    ADD(2, 11);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("record 1 (PAGE_BATCH): the first record must be DOMAIN_CONFIG");

    /* CLOCK before the vCPUs. */
    pos = 32;
    ADD(0, 2);
    ADD(4, 5);
    ADD(2, 4);
    ADD(5, 11);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("record 3 (CLOCK): CLOCK must follow");

    /* Device state before the clock; pages after vCPUs. */
    pos = 32;
    ADD(0, 4);
    ADD(5, 6);
    ADD(4, 5);
    ADD(6, 11);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("(DEVICE_STATE): must follow the state's CLOCK");
    pos = 32;
    ADD(0, 3);
    ADD(1, 2);
    ADD(3, 11);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("out of order: PAGE_BATCH after VCPU_STATE");

    /* The same vCPU twice. */
    pos = 32;
    ADD(0, 3);
    ADD(2, 3);
    ADD(3, 11);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("vCPU 0 appears twice");

    /* END without CHECKPOINT; stream that stops after CHECKPOINT; data after END. */
    pos = 32;
    ADD(0, 8);
    ADD(10, 11);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("(END): END must directly follow a CHECKPOINT");
    pos = 32;
    ADD(0, 10);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("stream ends without an END");
    memcpy(o, b, len);
    o[len] = 0;
    assert_int_equal(validate_buf(o, len + 1, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("data after the END record");

    /* A second state in a save stream; non-increasing epochs in a checkpointed stream. */
    pos = 32;
    ADD(0, 9);
    ADD(1, 9);
    ADD(10, 11);
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("a second CHECKPOINT in a save stream");
    o[16] = TANDEM_STREAM_CHECKPOINTED;
    wle64(o + 24, XXH3_64bits(o, 24));
    assert_int_equal(validate_buf(o, pos, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("epoch 1 does not follow epoch 1");
    wle64(ck, 2);
    size_t second = pos - (len - l.rec_off[10]) - (l.rec_off[9] - l.rec_off[8]);
    memcpy(o + second + 16, ck, 8);
    reseal(o, second);
    assert_int_equal(validate_buf(o, pos, NULL), 0);
#undef ADD
#undef SPAN
    free(o);
    free(b);
}

static void test_writer_checks(void **state)
{
    struct tandem_stream_params p = {4096, 0, 0, 0};
    tandem_stream_writer *w;
    uint8_t regs[144] = {0}, page[4096] = {1};
    const void *pp[1] = {page};
    uint64_t pfn = 1ull << 52;
    int fd = new_memfd();

    p.page_size = 3000;
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), TANDEM_ERR_INVAL);
    assert_msg_has("page size 3000");
    p.page_size = 4096;
    p.compression = 9;
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), TANDEM_ERR_INVAL);
    assert_msg_has("compression 9");
    p.compression = 0;
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), 0);
    struct tandem_stream_block bad = {TANDEM_VCPU_REGS, 140, regs};
    assert_int_equal(tandem_stream_write_vcpu(w, 3, &bad, 1), TANDEM_ERR_INVAL);
    assert_msg_has("vCPU 3 sub-block REGS (tag 1, 140 bytes): wrong length");
    struct tandem_stream_block unk = {77, 8, regs};
    assert_int_equal(tandem_stream_write_vcpu(w, 3, &unk, 1), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_stream_write_pages(w, &pfn, pp, 1), TANDEM_ERR_INVAL);
    assert_msg_has("over 2^52");
    assert_int_equal(tandem_stream_write_config(w, "{\"a\":\0}", 7), TANDEM_ERR_INVAL);
    tandem_stream_writer_free(w);
    close(fd);

    /* I/O error: the writer reports it with the offset and stays broken. */
    assert_int_equal(tandem_stream_writer_open(ctx, -1, &p, &w), 0);
    assert_int_equal(tandem_stream_flush(w), TANDEM_ERR_IO);
    assert_msg_has("stream write at offset");
    assert_int_equal(tandem_stream_write_checkpoint(w, 1), TANDEM_ERR_IO);
    assert_int_equal(tandem_stream_flush(w), TANDEM_ERR_IO);
    tandem_stream_writer_free(w);
}

/* The reader stops exactly at END: bytes that follow on the fd are left for the caller. */
static void test_reader_stops_at_end(void **state)
{
    size_t len;
    uint8_t *b = sample_bytes(1, 0, NULL, &len);
    int fds[2];
    char tail[6] = {0};
    struct tandem_stream_record rec;
    tandem_stream_reader *r;

    uint8_t *o = malloc(len + 5);
    memcpy(o, b, len);
    memcpy(o + len, "hello", 5);
    int fd = memfd_with(o, len + 5);
    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    assert_int_equal(tandem_stream_read_header(r, NULL), 0);
    do
        assert_int_equal(tandem_stream_next(r, &rec), 0);
    while (rec.type != TANDEM_REC_END);
    assert_int_equal(read(fd, tail, 5), 5);
    assert_string_equal(tail, "hello");
    tandem_stream_reader_free(r);
    close(fd);

    /* Through a pipe the same holds. */
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], o, len + 5), (ssize_t)len + 5);
    close(fds[1]);
    assert_int_equal(tandem_stream_validate(ctx, fds[0], NULL), TANDEM_ERR_PROTO);
    assert_msg_has("data after the END record");
    close(fds[0]);
    free(o);
    free(b);
}

/* ------------------------------------------------------------------ pages straight to guest memory
 */

#define GUEST_PAGES 64

struct guest {
    uint8_t mem[GUEST_PAGES][SAMPLE_PS];
    uint64_t limit; /* pfns at or over this have no page */
};

static void *guest_dest(uint64_t pfn, void *opaque)
{
    struct guest *g = opaque;
    return pfn < g->limit ? g->mem[pfn] : NULL;
}

/* Read a whole stream with tandem_stream_next_into(); returns the first error or 0. */
static int read_into(int fd, struct guest *g)
{
    struct tandem_stream_record rec;
    tandem_stream_reader *r;
    int rc;

    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    rc = tandem_stream_read_header(r, NULL);
    while (rc == 0) {
        rc = tandem_stream_next_into(r, &rec, guest_dest, g);
        if (rc == 0 && rec.type == TANDEM_REC_END)
            break;
    }
    tandem_stream_reader_free(r);
    return rc;
}

static void test_next_into(void **state)
{
    static struct guest g;
    uint8_t want[SAMPLE_PS];

    for (uint32_t comp = 0; comp <= TANDEM_COMPRESS_ZSTD; comp++) {
        size_t len;
        uint8_t *b = sample_bytes(2, comp, NULL, &len);
        int fd = memfd_with(b, len);
        memset(&g, 0xff, sizeof(g));
        g.limit = GUEST_PAGES;
        assert_int_equal(read_into(fd, &g), 0);
        for (uint64_t pfn = 0; pfn < GUEST_PAGES; pfn++) {
            int touched =
                pfn == 11 || pfn == 12 || pfn == 13 || pfn == 21 || pfn == 22 || pfn == 23;
            if (touched)
                sample_page(want, pfn, pfn % 10 == 2);
            else
                memset(want, 0xff, sizeof(want));
            if (memcmp(g.mem[pfn], want, SAMPLE_PS) != 0)
                fail_msg("compression %u: page %llu differs", comp, (unsigned long long)pfn);
        }
        close(fd);

        /* A pfn the domain does not have. */
        fd = memfd_with(b, len);
        g.limit = 13;
        assert_int_equal(read_into(fd, &g), TANDEM_ERR_PROTO);
        assert_msg_has("record 2 (PAGE_BATCH): page 0xd is outside the domain's memory");
        close(fd);
        free(b);
    }

    /* Damaged page data: caught by the checksum after the fact, and said so. */
    struct sample_layout l;
    size_t len;
    uint8_t *b = sample_bytes(1, 0, &l, &len);
    b[l.rec_off[1] + 16 + 40 + 100] ^= 1;
    int fd = memfd_with(b, len);
    g.limit = GUEST_PAGES;
    assert_int_equal(read_into(fd, &g), TANDEM_ERR_PROTO);
    assert_msg_has("record 2 (PAGE_BATCH): checksum mismatch (its pages were already written)");
    close(fd);
    /* Cut inside the page data. */
    b[l.rec_off[1] + 16 + 40 + 100] ^= 1;
    fd = memfd_with(b, l.rec_off[1] + 16 + 40 + 5000);
    assert_int_equal(read_into(fd, &g), TANDEM_ERR_PROTO);
    assert_msg_has("record 2 (PAGE_BATCH): truncated");
    close(fd);
    free(b);
}

static void *pipe_dest(uint64_t pfn, void *o)
{
    return *(uint8_t **)o + pfn * SAMPLE_PS;
}

/*
 * Many-page batches through a pipe: readv returns short counts and must
 * resume mid-list. Ascending pfns land as merged pieces, descending ones
 * as one piece per page.
 */
static void pipe_roundtrip(int reverse)
{
    enum { N = 3000 };
    uint8_t *mem = malloc((size_t)N * SAMPLE_PS), *dst = calloc(N, SAMPLE_PS);
    uint64_t *pfns = malloc(N * sizeof(*pfns));
    const void **pp = malloc(N * sizeof(*pp));
    struct tandem_stream_record rec;
    struct tandem_stream_params p = {SAMPLE_PS, 0, 0, 0};
    tandem_stream_writer *w;
    tandem_stream_reader *r;
    int fds[2], status;

    for (int i = 0; i < N; i++) {
        pfns[i] = reverse ? (uint64_t)(N - 1 - i) : (uint64_t)i;
        pp[i] = mem + (size_t)i * SAMPLE_PS;
        sample_page(mem + (size_t)i * SAMPLE_PS, (uint64_t)i, i % 7 == 3);
    }
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int ok = tandem_stream_writer_open(ctx, fds[1], &p, &w) == 0 &&
                 tandem_stream_write_pages(w, pfns, pp, N) == 0 && tandem_stream_flush(w) == 0;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(tandem_stream_reader_open(ctx, fds[0], &r), 0);
    assert_int_equal(tandem_stream_read_header(r, NULL), 0);
    struct {
        uint8_t *dst;
    } g = {dst};
    int batches = 0;
    while (batches < 3) {
        assert_int_equal(tandem_stream_next_into(r, &rec, pipe_dest, &g), 0);
        assert_int_equal(rec.type, TANDEM_REC_PAGE_BATCH);
        batches++;
    }
    for (int i = 0; i < N; i++)
        if (memcmp(dst + (size_t)pfns[i] * SAMPLE_PS, mem + (size_t)i * SAMPLE_PS, SAMPLE_PS) != 0)
            fail_msg("page %d differs", i);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tandem_stream_reader_free(r);
    close(fds[0]);
    free(mem);
    free(dst);
    free(pfns);
    free(pp);
}

static void test_next_into_pipe(void **state)
{
    pipe_roundtrip(1);
    pipe_roundtrip(0);
}

/* A peer that vanished is an error on a socket, not a SIGPIPE; non-blocking fds are waited on. */
static void test_sockets(void **state)
{
    struct tandem_stream_summary sum = {0};
    struct tandem_stream_params p = {4096, 0, 0, 0};
    tandem_stream_writer *w;
    int sv[2], status;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    assert_int_equal(tandem_stream_writer_open(ctx, sv[0], &p, &w), 0);
    assert_int_equal(tandem_stream_write_checkpoint(w, 1), 0);
    assert_int_equal(tandem_stream_flush(w), TANDEM_ERR_IO);
    assert_msg_has("stream write at offset 0 failed");
    tandem_stream_writer_free(w);
    close(sv[0]);

    /* Both ends non-blocking, 4 MiB through a socket buffer far smaller than that. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        _exit(sample_stream(ctx, sv[0], 40, TANDEM_COMPRESS_NONE, NULL) == 0 ? 0 : 1);
    }
    close(sv[0]);
    if (tandem_stream_validate(ctx, sv[1], &sum) != 0)
        fail_msg("validate over a non-blocking socket: %s", tandem_ctx_error(ctx));
    assert_int_equal(sum.checkpoints, 40);
    assert_true(sum.bytes > 40 * 4 * 4096);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tandem_stream_summary_dispose(&sum);
    close(sv[1]);
}

/* ------------------------------------------------------------------ payload decoders */

static tandem_stream_reader *raw_reader;
static int raw_fd = -1;

/* One record with a hand-made body, read back through the framing checks. */
static struct tandem_stream_record raw_record(uint32_t type, const void *body, size_t len)
{
    struct tandem_stream_params p = {4096, 0, 0, 0};
    struct tandem_stream_record rec;
    tandem_stream_writer *w;

    tandem_stream_reader_free(raw_reader);
    if (raw_fd >= 0)
        close(raw_fd);
    raw_fd = new_memfd();
    assert_int_equal(tandem_stream_writer_open(ctx, raw_fd, &p, &w), 0);
    assert_int_equal(tandem_stream_write_record(w, type, body, len), 0);
    assert_int_equal(tandem_stream_flush(w), 0);
    tandem_stream_writer_free(w);
    lseek(raw_fd, 0, SEEK_SET);
    assert_int_equal(tandem_stream_reader_open(ctx, raw_fd, &raw_reader), 0);
    assert_int_equal(tandem_stream_read_header(raw_reader, NULL), 0);
    assert_int_equal(tandem_stream_next(raw_reader, &rec), 0);
    tandem_ctx_clear_error(ctx);
    return rec;
}

static size_t sub(uint8_t *b, size_t off, uint32_t tag, uint32_t len, uint8_t fill)
{
    wle32(b + off, tag);
    wle32(b + off + 4, len);
    memset(b + off + 8, fill, len);
    memset(b + off + 8 + len, 0, ((len + 7) & ~7u) - len);
    return off + 8 + ((len + 7) & ~7u);
}

static int count_blocks(uint32_t id, const struct tandem_stream_block *b, void *opaque)
{
    (*(int *)opaque)++;
    return 0;
}

static void test_decode_vcpu(void **state)
{
    static uint8_t b[16384];
    struct tandem_stream_record rec;
    uint32_t id;
    int n = 0;
    size_t off;

    /* Minimal state plus a skippable unknown sub-block, which is left out. */
    wle32(b, 7);
    wle32(b + 4, 4);
    off = sub(b, 8, TANDEM_VCPU_REGS, 144, 1);
    off = sub(b, off, TANDEM_VCPU_SREGS, 312, 2);
    off = sub(b, off, 0x80000042u, 13, 3);
    off = sub(b, off, TANDEM_VCPU_MP_STATE, 4, 0);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, count_blocks, &n), 0);
    assert_int_equal(id, 7);
    assert_int_equal(n, 3);

    /* An unknown tag without bit 31. */
    wle32(b + 8 + 152 + 320, 0x42);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, NULL, NULL),
                     TANDEM_ERR_PROTO);
    assert_msg_has("vCPU 7: sub-block 2 (unknown, tag 0x42, 13 bytes): unknown sub-block tag");

    /* Missing MP_STATE; a tag twice; wrong XSAVE size; MSRS count and length disagree. */
    wle32(b + 4, 2);
    off = sub(b, 8, TANDEM_VCPU_REGS, 144, 1);
    off = sub(b, off, TANDEM_VCPU_SREGS2, 320, 2);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, NULL, NULL),
                     TANDEM_ERR_PROTO);
    assert_msg_has("lacks REGS, SREGS/SREGS2 or MP_STATE");
    wle32(b + 4, 3);
    off = sub(b, off, TANDEM_VCPU_REGS, 144, 1);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, NULL, NULL),
                     TANDEM_ERR_PROTO);
    assert_msg_has("sub-block REGS appears twice");
    wle32(b + 4, 1);
    off = sub(b, 8, TANDEM_VCPU_XSAVE, 4000, 1);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, NULL, NULL),
                     TANDEM_ERR_PROTO);
    assert_msg_has("XSAVE length not a multiple of 64");
    off = sub(b, 8, TANDEM_VCPU_MSRS, 8 + 16 * 3, 0);
    wle32(b + 16, 4);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, NULL, NULL),
                     TANDEM_ERR_PROTO);
    assert_msg_has("MSRS length is not 8 + 16 x count");

    /* Sub-block length running past the body; block count lying about the body. */
    off = sub(b, 8, TANDEM_VCPU_MP_STATE, 4, 0);
    wle32(b + 12, 400);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, NULL, NULL),
                     TANDEM_ERR_PROTO);
    assert_msg_has("runs past the body");
    wle32(b + 12, 4);
    wle32(b + 4, 0);
    rec = raw_record(TANDEM_REC_VCPU_STATE, b, off);
    assert_int_equal(tandem_stream_decode_vcpu(raw_reader, &rec, &id, NULL, NULL),
                     TANDEM_ERR_PROTO);
    assert_msg_has("16 bytes left after 0 sub-blocks");
    /* Decoding as the wrong type. */
    assert_int_equal(tandem_stream_decode_clock(raw_reader, &rec, &(struct tandem_stream_clock){0}),
                     TANDEM_ERR_INVAL);
    assert_msg_has("(VCPU_STATE): decoded as CLOCK");
}

static void test_decode_others(void **state)
{
    static uint8_t b[4096];
    struct tandem_stream_record rec;
    struct tandem_stream_device dev;
    struct tandem_stream_clock clk;
    const char *json;
    uint64_t epoch, seq, ns;

    rec = raw_record(TANDEM_REC_DOMAIN_CONFIG, "[1,2]", 5);
    assert_int_equal(tandem_stream_decode_config(raw_reader, &rec, &json, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("record 1 (DOMAIN_CONFIG): config is JSON but not an object");
    rec = raw_record(TANDEM_REC_DOMAIN_CONFIG, "{\"a\":", 5);
    assert_int_equal(tandem_stream_decode_config(raw_reader, &rec, &json, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("config is not JSON");
    rec = raw_record(TANDEM_REC_DOMAIN_CONFIG, "{}\0{}", 5);
    assert_int_equal(tandem_stream_decode_config(raw_reader, &rec, &json, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("NUL byte");

    rec = raw_record(TANDEM_REC_CLOCK, b, 24);
    assert_int_equal(tandem_stream_decode_clock(raw_reader, &rec, &clk), TANDEM_ERR_PROTO);
    assert_msg_has("(CLOCK): body is 24 bytes, expected 32");
    rec = raw_record(TANDEM_REC_CHECKPOINT, b, 16);
    assert_int_equal(tandem_stream_decode_checkpoint(raw_reader, &rec, &epoch), TANDEM_ERR_PROTO);
    rec = raw_record(TANDEM_REC_HEARTBEAT, b, 8);
    assert_int_equal(tandem_stream_decode_heartbeat(raw_reader, &rec, &seq, &ns), TANDEM_ERR_PROTO);

    wle32(b, 4);
    rec = raw_record(TANDEM_REC_DEVICE_STATE, b, 8);
    assert_int_equal(tandem_stream_decode_device(raw_reader, &rec, &dev), TANDEM_ERR_PROTO);
    assert_msg_has("device kind 4 is not");
    wle32(b, TANDEM_DEVICE_BLOCK);
    wle32(b + 4, 2);
    rec = raw_record(TANDEM_REC_DEVICE_STATE, b, 8);
    assert_int_equal(tandem_stream_decode_device(raw_reader, &rec, &dev), 0);
    assert_int_equal(dev.kind, TANDEM_DEVICE_BLOCK);
    assert_int_equal(dev.id, 2);
    assert_int_equal(dev.len, 0);

    /* DISK_WRITES: sector size, extent past the body, leftover bytes. */
    memset(b, 0, sizeof(b));
    wle32(b + 4, 1024);
    wle32(b + 8, 1);
    wle64(b + 16, 5);
    wle32(b + 24, 1);
    rec = raw_record(TANDEM_REC_DISK_WRITES, b, 32 + 512);
    assert_int_equal(tandem_stream_decode_disk(raw_reader, &rec, NULL, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("sector size 1024 is not 512 or 4096");
    wle32(b + 4, 512);
    wle32(b + 24, 2);
    rec = raw_record(TANDEM_REC_DISK_WRITES, b, 32 + 512);
    assert_int_equal(tandem_stream_decode_disk(raw_reader, &rec, NULL, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("extent 0 data (2 sectors) runs past the body");
    wle32(b + 24, 1);
    rec = raw_record(TANDEM_REC_DISK_WRITES, b, 32 + 512 + 8);
    assert_int_equal(tandem_stream_decode_disk(raw_reader, &rec, NULL, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("8 bytes left after 1 extents");
    rec = raw_record(TANDEM_REC_DISK_WRITES, b, 32 + 512);
    assert_int_equal(tandem_stream_decode_disk(raw_reader, &rec, NULL, NULL), 0);

    /* END with a body is refused by the framing itself. */
    struct tandem_stream_params p = {4096, 0, 0, 0};
    tandem_stream_writer *w;
    int fd = new_memfd();
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), 0);
    assert_int_equal(tandem_stream_write_record(w, TANDEM_REC_END, b, 8), 0);
    assert_int_equal(tandem_stream_flush(w), 0);
    tandem_stream_writer_free(w);
    tandem_stream_reader *r;
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    assert_int_equal(tandem_stream_read_header(r, NULL), 0);
    assert_int_equal(tandem_stream_next(r, &rec), TANDEM_ERR_PROTO);
    assert_msg_has("record 1 (END): END has a 8-byte body");
    tandem_stream_reader_free(r);
    close(fd);

    tandem_stream_reader_free(raw_reader);
    raw_reader = NULL;
    close(raw_fd);
    raw_fd = -1;
}

/* A live stream: pre-copy rounds of PAGE_BATCH, then exactly one state. */
static void test_live_stream(void **state)
{
    static uint8_t page[SAMPLE_PS];
    struct tandem_stream_params p = {SAMPLE_PS, TANDEM_STREAM_LIVE, 0, 0};
    struct tandem_stream_summary sum = {0};
    tandem_stream_writer *w;
    const void *pp[1] = {page};
    int fd = new_memfd();

    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), 0);
    assert_int_equal(tandem_stream_write_config(w, SAMPLE_CONFIG, strlen(SAMPLE_CONFIG)), 0);
    for (uint64_t round = 0; round < 3; round++) {
        page[0] = (uint8_t)(round + 1);
        assert_int_equal(tandem_stream_write_pages(w, &round, pp, 1), 0);
    }
    assert_int_equal(sample_state(w, NULL, 1, 5), 0);
    assert_int_equal(tandem_stream_write_end(w), 0);
    tandem_stream_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(tandem_stream_validate(ctx, fd, &sum), 0);
    assert_int_equal(sum.header.flags & TANDEM_STREAM_F_KIND_MASK, TANDEM_STREAM_LIVE);
    assert_int_equal(sum.page_batches, 4);
    assert_int_equal(sum.checkpoints, 1);
    assert_int_equal(sum.last_epoch, 5);
    tandem_stream_summary_dispose(&sum);
    close(fd);

    /* Two states are one too many for a live stream. */
    fd = new_memfd();
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), 0);
    assert_int_equal(tandem_stream_write_config(w, SAMPLE_CONFIG, strlen(SAMPLE_CONFIG)), 0);
    assert_int_equal(sample_state(w, NULL, 1, 5), 0);
    assert_int_equal(sample_state(w, NULL, 1, 6), 0);
    assert_int_equal(tandem_stream_write_end(w), 0);
    tandem_stream_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(tandem_stream_validate(ctx, fd, NULL), TANDEM_ERR_PROTO);
    assert_msg_has("(CHECKPOINT): a second CHECKPOINT in a live stream");
    close(fd);
}

/*
 * No syscall per record: on a SOCK_SEQPACKET socket every sendmsg is one
 * packet, so packets counted on the far end are the writer's syscalls.
 */
static int count_packets(int fd, size_t *bytes)
{
    static uint8_t buf[1 << 20];
    int n = 0;
    ssize_t got;

    *bytes = 0;
    while ((got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        n++;
        *bytes += (size_t)got;
    }
    return n;
}

static void test_batched_syscalls(void **state)
{
    static uint8_t pages[10][SAMPLE_PS];
    struct tandem_stream_params p = {SAMPLE_PS, TANDEM_STREAM_CHECKPOINTED, 0, 0};
    tandem_stream_writer *w;
    const void *pp[10];
    uint64_t pfns[10];
    size_t bytes;
    int sv[2], one_mib = 1 << 20;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one_mib, sizeof(one_mib)), 0);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &one_mib, sizeof(one_mib)), 0);
    assert_int_equal(tandem_stream_writer_open(ctx, sv[0], &p, &w), 0);
    for (uint64_t i = 0; i < 100; i++)
        assert_int_equal(tandem_stream_write_heartbeat(w, i, i), 0);
    assert_int_equal(count_packets(sv[1], &bytes), 0); /* all still buffered */
    assert_int_equal(tandem_stream_flush(w), 0);
    assert_int_equal(count_packets(sv[1], &bytes), 1);
    assert_int_equal(bytes, 32 + 100 * 32);

    /* Ten pages (from scattered memory) plus the queued records: still one write. */
    for (int i = 0; i < 10; i++) {
        sample_page(pages[9 - i], (uint64_t)i, 0);
        pp[i] = pages[9 - i];
        pfns[i] = (uint64_t)i;
    }
    assert_int_equal(tandem_stream_write_checkpoint(w, 1), 0);
    assert_int_equal(tandem_stream_write_pages(w, pfns, pp, 10), 0);
    assert_int_equal(count_packets(sv[1], &bytes), 1);
    assert_int_equal(bytes, 24 + 16 + 16 + 80 + 10 * SAMPLE_PS);
    assert_int_equal(tandem_stream_bytes(w), 32 + 100 * 32 + bytes);
    tandem_stream_writer_free(w);
    close(sv[0]);
    close(sv[1]);
}

/* ------------------------------------------------------------------ staging */

struct applied {
    struct guest g;
    int vcpus, devices, extents, pages;
    uint64_t guest_ns;
};

static int ap_page(uint64_t pfn, const void *data, void *o)
{
    struct applied *a = o;
    if (pfn >= GUEST_PAGES)
        return -1;
    if (data)
        memcpy(a->g.mem[pfn], data, SAMPLE_PS);
    else
        memset(a->g.mem[pfn], 0, SAMPLE_PS);
    a->pages++;
    return 0;
}

static int ap_vcpu(uint32_t id, const struct tandem_stream_block *b, size_t n, void *o)
{
    struct applied *a = o;
    /* sample_state: REGS first, filled with 0x10 + id; six known blocks. */
    if (n != 6 || b[0].tag != TANDEM_VCPU_REGS || ((const uint8_t *)b[0].data)[0] != 0x10 + id)
        return -2;
    a->vcpus++;
    return 0;
}

static int ap_clock(const struct tandem_stream_clock *c, void *o)
{
    ((struct applied *)o)->guest_ns = c->guest_ns;
    return 0;
}

static int ap_device(const struct tandem_stream_device *d, void *o)
{
    ((struct applied *)o)->devices++;
    return 0;
}

static int ap_disk(uint32_t disk, uint32_t ss, const struct tandem_stream_extent *e, void *o)
{
    ((struct applied *)o)->extents++;
    return 0;
}

static const struct tandem_stream_apply_ops ap_ops = {ap_page, ap_vcpu, ap_clock, ap_device,
                                                      ap_disk};

/*
 * Feed a stream to a stage, committing each complete state. Returns the
 * number of commits; *err gets the first error (0 if the stream ended).
 */
static int stage_all(int fd, struct applied *a, int *err)
{
    struct tandem_stream_record rec;
    tandem_stream_reader *r;
    tandem_stream_stage *st;
    int commits = 0, rc;

    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    assert_int_equal(tandem_stream_read_header(r, NULL), 0);
    assert_int_equal(tandem_stream_stage_alloc(r, &st), 0);
    for (;;) {
        if ((rc = tandem_stream_next(r, &rec)) < 0 || (rc = tandem_stream_stage_add(st, &rec)) < 0)
            break;
        if (rc == 1) {
            assert_int_equal(tandem_stream_stage_commit(st, &ap_ops, a), 0);
            commits++;
            assert_int_equal(tandem_stream_stage_epoch(st), (uint64_t)commits);
            assert_string_equal(tandem_stream_stage_config(st), SAMPLE_CONFIG);
        }
        if (rc == 2) {
            rc = 0;
            break;
        }
    }
    *err = rc;
    tandem_stream_stage_discard(st);
    tandem_stream_stage_free(st);
    tandem_stream_reader_free(r);
    return commits;
}

static void test_stage_commits(void **state)
{
    static struct applied a;
    struct sample_layout l;
    uint8_t want[SAMPLE_PS];
    size_t len;
    int err;
    uint8_t *b = sample_bytes(3, TANDEM_COMPRESS_LZ4, &l, &len);
    int fd = memfd_with(b, len);

    memset(&a, 0xff, sizeof(a.g));
    a.vcpus = a.devices = a.extents = a.pages = 0;
    assert_int_equal(stage_all(fd, &a, &err), 3);
    assert_int_equal(err, 0);
    assert_int_equal(a.pages, 9);
    assert_int_equal(a.vcpus, 6);
    assert_int_equal(a.devices, 6);
    assert_int_equal(a.extents, 3);
    assert_int_equal(a.guest_ns, 3000005);
    for (uint64_t pfn = 11; pfn <= 33; pfn++) {
        if (pfn % 10 == 0 || pfn % 10 > 3)
            continue;
        sample_page(want, pfn, pfn % 10 == 2);
        assert_memory_equal(a.g.mem[pfn], want, SAMPLE_PS);
    }
    close(fd);

    /*
     * The stream breaks inside the third state (after its pages): the
     * stage refuses, and guest memory holds exactly what epoch 2 left.
     */
    int last = 0;
    for (int i = 0; i < l.nrec; i++)
        if (l.rec_type[i] == TANDEM_REC_PAGE_BATCH)
            last = i;
    fd = memfd_with(b, l.rec_off[last + 2] + 20);
    memset(&a, 0xff, sizeof(a.g));
    a.vcpus = a.pages = 0;
    assert_int_equal(stage_all(fd, &a, &err), 2);
    assert_int_equal(err, TANDEM_ERR_PROTO);
    assert_int_equal(a.pages, 6);
    assert_int_equal(a.guest_ns, 2000005);
    memset(want, 0xff, sizeof(want));
    assert_memory_equal(a.g.mem[31], want, SAMPLE_PS);
    assert_memory_equal(a.g.mem[33], want, SAMPLE_PS);
    close(fd);
    free(b);
}

/* One pfn twice in a state keeps its last contents; staging refuses to run ahead of commits. */
static void test_stage_rules(void **state)
{
    static uint8_t page[SAMPLE_PS], zero[SAMPLE_PS];
    static struct applied a;
    struct tandem_stream_params p = {SAMPLE_PS, TANDEM_STREAM_CHECKPOINTED, 0, 0};
    struct tandem_stream_record rec;
    tandem_stream_writer *w;
    tandem_stream_reader *r;
    tandem_stream_stage *st;
    const void *pp[1] = {page}, *zp[1] = {zero};
    uint64_t pfn = 5, pfn2 = 6;
    int fd = new_memfd(), rc;

    memset(page, 0x77, sizeof(page));
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &p, &w), 0);
    assert_int_equal(tandem_stream_write_config(w, SAMPLE_CONFIG, strlen(SAMPLE_CONFIG)), 0);
    assert_int_equal(tandem_stream_write_pages(w, &pfn, pp, 1), 0);  /* 5: data */
    assert_int_equal(tandem_stream_write_pages(w, &pfn, zp, 1), 0);  /* 5: now zero */
    assert_int_equal(tandem_stream_write_pages(w, &pfn2, zp, 1), 0); /* 6: zero */
    assert_int_equal(tandem_stream_write_pages(w, &pfn2, pp, 1), 0); /* 6: now data */
    assert_int_equal(sample_state(w, NULL, 1, 1), 0);
    assert_int_equal(sample_state(w, NULL, 1, 2), 0);
    assert_int_equal(tandem_stream_write_end(w), 0);
    tandem_stream_writer_free(w);
    lseek(fd, 0, SEEK_SET);

    assert_int_equal(tandem_stream_reader_open(ctx, fd, &r), 0);
    assert_int_equal(tandem_stream_read_header(r, NULL), 0);
    assert_int_equal(tandem_stream_stage_alloc(r, &st), 0);
    assert_int_equal(tandem_stream_stage_commit(st, &ap_ops, &a), TANDEM_ERR_BUSY);
    do {
        assert_int_equal(tandem_stream_next(r, &rec), 0);
        rc = tandem_stream_stage_add(st, &rec);
    } while (rc == 0);
    assert_int_equal(rc, 1);
    /* The next state's first record must wait for the commit. */
    assert_int_equal(tandem_stream_next(r, &rec), 0);
    assert_int_equal(tandem_stream_stage_add(st, &rec), TANDEM_ERR_BUSY);
    assert_msg_has("epoch 1 is staged");
    memset(&a, 0xff, sizeof(a.g));
    a.pages = 0;
    assert_int_equal(tandem_stream_stage_commit(st, &ap_ops, &a), 0);
    assert_int_equal(a.pages, 2 + 3); /* pfns 5, 6 once each, then the sample's three */
    assert_memory_equal(a.g.mem[5], zero, SAMPLE_PS);
    assert_memory_equal(a.g.mem[6], page, SAMPLE_PS);
    assert_int_equal(tandem_stream_stage_add(st, &rec), 0); /* now it is taken */
    tandem_stream_stage_free(st);
    tandem_stream_reader_free(r);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_plain),
        cmocka_unit_test(test_validate_summary),
        cmocka_unit_test(test_wire_bytes),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_flip_every_byte),
        cmocka_unit_test(test_flip_every_byte_zstd),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_future_version),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_oversize_length),
        cmocka_unit_test(test_zero_pages_elided),
        cmocka_unit_test(test_compression_roundtrip),
        cmocka_unit_test(test_corrupt_compressed),
        cmocka_unit_test(test_order_rules),
        cmocka_unit_test(test_writer_checks),
        cmocka_unit_test(test_reader_stops_at_end),
        cmocka_unit_test(test_next_into),
        cmocka_unit_test(test_next_into_pipe),
        cmocka_unit_test(test_sockets),
        cmocka_unit_test(test_decode_vcpu),
        cmocka_unit_test(test_decode_others),
        cmocka_unit_test(test_live_stream),
        cmocka_unit_test(test_batched_syscalls),
        cmocka_unit_test(test_stage_commits),
        cmocka_unit_test(test_stage_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
