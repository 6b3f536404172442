/* Guest SDK libc subset: a first-fit heap with boundary tags (coalesces on free). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

/*
 * Every block: an 8-byte header and an 8-byte footer holding its total
 * size | USED. Payloads are 16-byte aligned. A sentinel "used" header of
 * size 0 ends the heap. Simple and linear: fine for sample guests and a
 * network stack that keeps its own pools.
 */
#define ALIGN 16u
#define USED 1u
#define HDR 8u
#define MIN_BLOCK 32u

static uint8_t *heap_start, *heap_end;
static uint8_t *rover; /* where the last search ended (next fit) */

static uint64_t *hdr(uint8_t *b)
{
    return (uint64_t *)b;
}
static uint64_t bsize(uint8_t *b)
{
    return *hdr(b) & ~(uint64_t)USED;
}
static int bused(uint8_t *b)
{
    return *hdr(b) & USED;
}
static void set_block(uint8_t *b, uint64_t size, int used)
{
    *hdr(b) = size | (used ? USED : 0);
    *(uint64_t *)(b + size - HDR) = size | (used ? USED : 0);
}

void tg_heap_init(uintptr_t start, uintptr_t end)
{
    /* the first payload (start + HDR) must be 16-aligned */
    start = ((start + HDR + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1)) - HDR;
    end &= ~(uintptr_t)(ALIGN - 1);
    if (end <= start + MIN_BLOCK + HDR) {
        heap_start = heap_end = NULL;
        return;
    }
    heap_start = (uint8_t *)start;
    heap_end = (uint8_t *)end - HDR; /* sentinel */
    set_block(heap_start, (uint64_t)(heap_end - heap_start), 0);
    *hdr(heap_end) = USED;
    rover = heap_start;
}

static uint8_t *search(uint8_t *from, uint8_t *to, uint64_t need)
{
    uint8_t *b;

    for (b = from; b < to; b += bsize(b))
        if (!bused(b) && bsize(b) >= need)
            return b;
    return NULL;
}

void *malloc(size_t size)
{
    uint64_t need, sz;
    uint8_t *b;

    if (!heap_start || size > (uint64_t)(heap_end - heap_start))
        return NULL;
    need = (size + 2 * HDR + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
    if (need < MIN_BLOCK)
        need = MIN_BLOCK;
    b = search(rover, heap_end, need);
    if (!b)
        b = search(heap_start, rover, need);
    if (!b)
        return NULL;
    sz = bsize(b);
    if (sz - need >= MIN_BLOCK) {
        set_block(b, need, 1);
        set_block(b + need, sz - need, 0);
    } else {
        set_block(b, sz, 1);
    }
    rover = b;
    return b + HDR;
}

void free(void *p)
{
    uint8_t *b, *next;
    uint64_t sz;

    if (!p)
        return;
    b = (uint8_t *)p - HDR;
    sz = bsize(b);
    next = b + sz;
    if (next < heap_end && !bused(next))
        sz += bsize(next);
    if (b > heap_start) {
        uint64_t prev_tag = *(uint64_t *)(b - HDR);
        if (!(prev_tag & USED)) {
            b -= prev_tag;
            sz += prev_tag;
        }
    }
    set_block(b, sz, 0);
    if (rover > b && rover < b + sz)
        rover = b;
}

void *calloc(size_t n, size_t size)
{
    void *p;

    if (size && n > SIZE_MAX / size)
        return NULL;
    p = malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *realloc(void *p, size_t size)
{
    uint64_t have;
    void *q;

    if (!p)
        return malloc(size);
    if (size == 0) {
        free(p);
        return NULL;
    }
    have = bsize((uint8_t *)p - HDR) - 2 * HDR;
    if (size <= have)
        return p;
    q = malloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, have);
    free(p);
    return q;
}
