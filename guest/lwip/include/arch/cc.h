/* lwIP compiler/platform glue for Tandem PV guests (types, byte order, diagnostics, randomness). */
#ifndef TANDEM_LWIP_ARCH_CC_H
#define TANDEM_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* x86-64 only. (Host builds of parts of lwIP, for unit tests, get it from <endian.h>.) */
#ifndef BYTE_ORDER
#define BYTE_ORDER LITTLE_ENDIAN
#endif

/* The SDK has stdint.h and inttypes.h (format macros), limits.h and ctype.h. */
#define LWIP_NO_STDINT_H 0
#define LWIP_NO_INTTYPES_H 0
#define LWIP_NO_LIMITS_H 0
#define LWIP_NO_CTYPE_H 0
/*
 * The SDK has no unistd.h but its limits.h defines SSIZE_MAX, so lwIP expects
 * ssize_t from elsewhere. C11 allows repeating an identical typedef, so this
 * stays valid if the SDK adds its own.
 */
#define LWIP_NO_UNISTD_H 1
typedef long ssize_t;

/* Guest code has no errno values of its own for lwIP's BSD layer (not built). */
#define LWIP_ERRNO_STDINCLUDE 1

#define LWIP_PLATFORM_DIAG(x)                                                                      \
    do {                                                                                           \
        printf x;                                                                                  \
    } while (0)

/* An lwIP assertion is a guest bug: report it on the console and stop the guest. */
#define LWIP_PLATFORM_ASSERT(x)                                                                    \
    do {                                                                                           \
        printf("lwip assertion \"%s\" failed at %s:%d\n", x, __FILE__, __LINE__);                  \
        abort();                                                                                   \
    } while (0)

/* Initial sequence numbers and ports: the netif glue must srand() from tg_wall_ns() at start. */
#define LWIP_RAND() ((u32_t)rand())

#endif
