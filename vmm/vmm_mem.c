/* Guest RAM (memfd, pre-populated), the bounds-checked accessor and the VMM's dirty bitmap. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

#define PAGE_SHIFT 12

int vmm_mem_init(struct vmm_mem *m, uint64_t size, char *err, size_t errlen)
{
    int rc = -1;

    m->fd = -1;
    m->base = NULL;
    m->size = size;
    m->dirty_words = ((size >> PAGE_SHIFT) + 63) / 64;
    m->dirty = calloc(m->dirty_words ? m->dirty_words : 1, sizeof(uint64_t));
    if (!m->dirty) {
        snprintf(err, errlen, "out of memory for the dirty bitmap");
        goto out;
    }
    m->fd = memfd_create("tandem-guest-ram", MFD_CLOEXEC);
    if (m->fd < 0) {
        snprintf(err, errlen, "memfd_create: %s", strerror(errno));
        goto out;
    }
    /*
     * Pre-populate: fallocate allocates and zeroes every page now (and fails
     * now, not with SIGBUS later). No MAP_POPULATE: on this host mapping the
     * pages up front cost ~1 s per GiB and saved the guest nothing, because
     * KVM's first access of a page costs the same either way (docs/vmm.md).
     */
    if (fallocate(m->fd, 0, 0, (off_t)size) < 0) {
        snprintf(err, errlen, "cannot allocate %llu MiB of guest memory: %s",
                 (unsigned long long)(size >> 20), strerror(errno));
        goto out;
    }
    m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (m->base == MAP_FAILED) {
        m->base = NULL;
        snprintf(err, errlen, "cannot map %llu MiB of guest memory: %s",
                 (unsigned long long)(size >> 20), strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        vmm_mem_free(m);
    return rc;
}

void vmm_mem_free(struct vmm_mem *m)
{
    if (m->base)
        munmap(m->base, m->size);
    if (m->fd >= 0)
        close(m->fd);
    free(m->dirty);
    m->base = NULL;
    m->fd = -1;
    m->dirty = NULL;
}

void *vmm_gpa_ptr(struct vmm_mem *m, tandem_gpa_t gpa, uint64_t len)
{
    /* Written so that no sum can overflow: gpa <= size, then len <= size - gpa. */
    if (gpa > m->size || len > m->size - gpa)
        return NULL;
    return m->base + gpa;
}

void vmm_dirty_mark(struct vmm_mem *m, tandem_gpa_t gpa, uint64_t len)
{
    uint64_t first, last, pg;

    if (len == 0)
        return;
    first = gpa >> PAGE_SHIFT;
    last = (gpa + len - 1) >> PAGE_SHIFT;
    for (pg = first; pg <= last; pg++)
        __atomic_fetch_or(&m->dirty[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
}

void *vmm_gpa_ptr_w(struct vmm_mem *m, tandem_gpa_t gpa, uint64_t len)
{
    void *p = vmm_gpa_ptr(m, gpa, len);

    if (p)
        vmm_dirty_mark(m, gpa, len);
    return p;
}

uint64_t vmm_dirty_count(struct vmm_mem *m, bool clear)
{
    uint64_t n = 0, i, w;

    for (i = 0; i < m->dirty_words; i++) {
        w = clear ? __atomic_exchange_n(&m->dirty[i], 0, __ATOMIC_RELAXED)
                  : __atomic_load_n(&m->dirty[i], __ATOMIC_RELAXED);
        n += (uint64_t)__builtin_popcountll(w);
    }
    return n;
}
