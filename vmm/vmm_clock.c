/* The shared clock page: guest ns from the raw host TSC (pvclock-style mul/shift). */
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "vmm.h"

/* ns = ((tsc_delta <<|>> shift) * mul) >> 32; choose mul in [2^31, 2^32). */
static void scale_for(uint64_t tsc_khz, uint32_t *mul, int32_t *shift)
{
    /* ns per tick * 2^32 = 1e6 * 2^32 / khz */
    unsigned __int128 f = ((unsigned __int128)1000000u << 32) / tsc_khz;
    int32_t s = 0;

    while (f >= (1ull << 32)) {
        f >>= 1;
        s++;
    }
    while (f < (1ull << 31)) {
        f <<= 1;
        s--;
    }
    *mul = (uint32_t)f;
    *shift = s;
}

static uint64_t scale(uint64_t delta, uint32_t mul, int32_t shift)
{
    delta = shift >= 0 ? delta << shift : delta >> -shift;
    return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

void vmm_clock_init(struct vmm *vm)
{
    struct tandem_clock *c = vmm_gpa_ptr_w(&vm->mem, TANDEM_ABI_CLOCK_ADDR, sizeof(*c));
    struct timespec ts;
    uint32_t mul;
    int32_t shift;

    scale_for(vm->tsc_khz, &mul, &shift);
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(c, 0, sizeof(*c));
    c->version = 2;
    c->generation = 0;
    c->tsc_base = __rdtsc();
    c->ns_base = 0;
    c->mul = mul;
    c->shift = shift;
    c->wall_base_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    c->tsc_khz = vm->tsc_khz;
    vm->clock = *c;
}

uint64_t vmm_clock_guest_ns(struct vmm *vm)
{
    /* The VMM's own copy: the guest can scribble on the page, not on this. */
    const struct tandem_clock *c = &vm->clock;
    uint64_t tsc = __rdtsc();

    if (tsc < c->tsc_base)
        return c->ns_base;
    return c->ns_base + scale(tsc - c->tsc_base, c->mul, c->shift);
}

uint64_t vmm_clock_tsc_khz(struct vmm *vm)
{
    return vm->tsc_khz;
}

void vmm_clock_relocate(struct vmm *vm, uint64_t guest_ns, uint64_t tsc_khz)
{
    struct tandem_clock *c = vmm_gpa_ptr_w(&vm->mem, TANDEM_ABI_CLOCK_ADDR, sizeof(*c));
    struct tandem_clock n = vm->clock;
    struct timespec ts;

    /* The vCPU is parked, but follow the seqlock anyway: odd version while rewriting. */
    n.version = (vm->clock.version | 1) + 1;
    n.generation = vm->clock.generation + 1;
    n.tsc_base = __rdtsc();
    n.ns_base = guest_ns;
    n.tsc_khz = tsc_khz;
    scale_for(tsc_khz, &n.mul, &n.shift);
    clock_gettime(CLOCK_REALTIME, &ts);
    n.wall_base_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - guest_ns;
    __atomic_store_n(&c->version, vm->clock.version | 1, __ATOMIC_RELEASE);
    c->generation = n.generation;
    c->tsc_base = n.tsc_base;
    c->ns_base = n.ns_base;
    c->mul = n.mul;
    c->shift = n.shift;
    c->wall_base_ns = n.wall_base_ns;
    c->tsc_khz = n.tsc_khz;
    __atomic_store_n(&c->version, n.version, __ATOMIC_RELEASE);
    vm->clock = n;
    vm->tsc_khz = tsc_khz;
}
