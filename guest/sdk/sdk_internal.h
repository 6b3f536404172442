/* Internal header of the guest SDK: heap set-up and stack size. */
#ifndef TG_SDK_INTERNAL_H
#define TG_SDK_INTERNAL_H

#include <stdint.h>

#include "tandem_abi.h"

#define TG_STACK_SIZE (1ul << 20) /* the top MiB of RAM is the stack */

/*
 * The ring of device handle (dev_ring.c), set up on first use; NULL when
 * the device has none (the VMM refused, tg_rings=0, or not a device):
 * callers then use the per-request hypercalls.
 */
struct tandem_ring *tg_ring(unsigned handle);

/* Ring a device's doorbell: an `out` KVM turns into an ioeventfd signal without leaving the kernel.
 */
static inline void tg_doorbell(unsigned handle)
{
    __asm__ volatile("outl %0, %w1"
                     :
                     : "a"((uint32_t)handle), "Nd"((uint16_t)TANDEM_HC_PORT(TANDEM_HC_DOORBELL))
                     : "memory");
}

/* Give the allocator [start, end); called once by start-up before main. */
void tg_heap_init(uintptr_t start, uintptr_t end);

#endif
