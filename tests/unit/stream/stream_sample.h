/* Builds small valid streams of every record type, for the stream unit tests and corpus generator.
 */
#ifndef TANDEM_TEST_STREAM_SAMPLE_H
#define TANDEM_TEST_STREAM_SAMPLE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tandem_stream.h"

#define SAMPLE_PS 4096
#define SAMPLE_MAX_RECS 64
#define SAMPLE_CONFIG "{\"c_info\":{\"name\":\"sample\"},\"b_info\":{\"max_memkb\":1024}}"

/* Offsets of every record header the sample wrote, and the end of the stream. */
struct sample_layout {
    uint64_t rec_off[SAMPLE_MAX_RECS];
    uint32_t rec_type[SAMPLE_MAX_RECS];
    int nrec;
    uint64_t end;
};

/* Deterministic page contents: page i of a pattern (zero when zero != 0). */
static inline void sample_page(uint8_t *p, uint64_t pfn, int zero)
{
    if (zero) {
        memset(p, 0, SAMPLE_PS);
        return;
    }
    for (int i = 0; i < SAMPLE_PS; i++)
        p[i] = (uint8_t)(pfn * 31 + (uint64_t)i * 7 + (uint64_t)(i >> 8));
}

static inline void sample_note(tandem_stream_writer *w, struct sample_layout *l, uint32_t type)
{
    if (l && l->nrec < SAMPLE_MAX_RECS) {
        l->rec_off[l->nrec] = tandem_stream_bytes(w);
        l->rec_type[l->nrec] = type;
        l->nrec++;
    }
}

/*
 * One state of `vcpus` vCPUs, three pages (one zero) per state, a console
 * and a net device, one disk extent, then CHECKPOINT(epoch). Returns 0 or
 * the writer's error.
 */
static inline int sample_state(tandem_stream_writer *w, struct sample_layout *l, int vcpus,
                               uint64_t epoch)
{
    static uint8_t pages[3][SAMPLE_PS], regs[144], sregs[320], xsave[4096], events[64],
        msrs[8 + 2 * 16], mp[4], sector[2 * 512];
    uint64_t pfns[3] = {epoch * 10 + 1, epoch * 10 + 2, epoch * 10 + 3};
    const void *pp[3] = {pages[0], pages[1], pages[2]};
    int rc;

    for (int i = 0; i < 3; i++)
        sample_page(pages[i], pfns[i], i == 1);
    sample_note(w, l, TANDEM_REC_PAGE_BATCH);
    if ((rc = tandem_stream_write_pages(w, pfns, pp, 3)) < 0)
        return rc;
    for (int v = 0; v < vcpus; v++) {
        memset(regs, 0x10 + v, sizeof(regs));
        memset(sregs, 0x20 + v, sizeof(sregs));
        memset(xsave, 0x30 + v, sizeof(xsave));
        memset(events, 0x40 + v, sizeof(events));
        memset(msrs, 0, sizeof(msrs));
        msrs[0] = 2;
        msrs[8] = 0x10; /* IA32_TSC */
        msrs[16] = (uint8_t)(0x99 + v);
        msrs[24] = 0x1b; /* APIC_BASE */
        msrs[32] = 0xee;
        mp[0] = 0;
        struct tandem_stream_block blocks[] = {
            {TANDEM_VCPU_REGS, sizeof(regs), regs},
            {TANDEM_VCPU_SREGS2, sizeof(sregs), sregs},
            {TANDEM_VCPU_XSAVE, sizeof(xsave), xsave},
            {TANDEM_VCPU_MSRS, sizeof(msrs), msrs},
            {TANDEM_VCPU_EVENTS, sizeof(events), events},
            {TANDEM_VCPU_MP_STATE, sizeof(mp), mp},
        };
        sample_note(w, l, TANDEM_REC_VCPU_STATE);
        if ((rc = tandem_stream_write_vcpu(w, (uint32_t)v, blocks, 6)) < 0)
            return rc;
    }
    struct tandem_stream_clock clk = {1000000 * epoch + 5, 2400000, epoch, 1700000000000000000ull};
    sample_note(w, l, TANDEM_REC_CLOCK);
    if ((rc = tandem_stream_write_clock(w, &clk)) < 0)
        return rc;
    struct tandem_stream_device con = {TANDEM_DEVICE_CONSOLE, 0, "console!", 8};
    struct tandem_stream_device net = {TANDEM_DEVICE_NET, 0, "net-state-13b", 13};
    sample_note(w, l, TANDEM_REC_DEVICE_STATE);
    if ((rc = tandem_stream_write_device(w, &con)) < 0)
        return rc;
    sample_note(w, l, TANDEM_REC_DEVICE_STATE);
    if ((rc = tandem_stream_write_device(w, &net)) < 0)
        return rc;
    memset(sector, 0xab, sizeof(sector));
    struct tandem_stream_extent ext = {100 + epoch, 2, sector};
    sample_note(w, l, TANDEM_REC_DISK_WRITES);
    if ((rc = tandem_stream_write_disk(w, 0, 512, &ext, 1)) < 0)
        return rc;
    sample_note(w, l, TANDEM_REC_CHECKPOINT);
    return tandem_stream_write_checkpoint(w, epoch);
}

/*
 * A complete stream on fd: config, `states` states (kind CHECKPOINTED when
 * states > 1), a heartbeat, END. compression applies to page batches.
 */
static inline int sample_stream(tandem_ctx *ctx, int fd, int states, uint32_t compression,
                                struct sample_layout *l)
{
    struct tandem_stream_params p = {
        SAMPLE_PS, states > 1 ? TANDEM_STREAM_CHECKPOINTED : TANDEM_STREAM_SAVE, compression, 0};
    tandem_stream_writer *w = NULL;
    int rc;

    if (l)
        memset(l, 0, sizeof(*l));
    if ((rc = tandem_stream_writer_open(ctx, fd, &p, &w)) < 0)
        return rc;
    sample_note(w, l, TANDEM_REC_DOMAIN_CONFIG);
    rc = tandem_stream_write_config(w, SAMPLE_CONFIG, strlen(SAMPLE_CONFIG));
    for (int s = 0; s < states && rc == 0; s++) {
        rc = sample_state(w, l, 2, (uint64_t)s + 1);
        if (rc == 0 && s == 0) {
            sample_note(w, l, TANDEM_REC_HEARTBEAT);
            rc = tandem_stream_write_heartbeat(w, 1, 123456789);
        }
    }
    if (rc == 0) {
        sample_note(w, l, TANDEM_REC_END);
        rc = tandem_stream_write_end(w);
    }
    if (l && rc == 0)
        l->end = tandem_stream_bytes(w);
    tandem_stream_writer_free(w);
    return rc;
}

#endif
