/* Internal header of libtandem: the context layout and shared helpers. */
#ifndef TANDEM_LIB_INTERNAL_H
#define TANDEM_LIB_INTERNAL_H

#include "tandem.h"

struct tandem_ctx {
    int errcode;
    char errmsg[1024];
};

#define TDM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
