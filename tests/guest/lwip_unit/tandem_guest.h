/* Host stand-in for the guest SDK header: just what guest/net/net_config.c calls (unit tests). */
#ifndef TANDEM_GUEST_H
#define TANDEM_GUEST_H

#include <stddef.h>

/* As the SDK's: copy the value of KEY=VALUE on the command line into buf; 0 if found, -1 if not. */
int tg_cmdline_str(const char *key, char *buf, size_t len);

/* The command line tg_cmdline_str reads (set by the test). */
extern const char *test_cmdline;

#endif
