/* Internal header of the guest SDK: heap set-up and stack size. */
#ifndef TG_SDK_INTERNAL_H
#define TG_SDK_INTERNAL_H

#include <stdint.h>

#define TG_STACK_SIZE (1ul << 20) /* the top MiB of RAM is the stack */

/* Give the allocator [start, end); called once by start-up before main. */
void tg_heap_init(uintptr_t start, uintptr_t end);

#endif
