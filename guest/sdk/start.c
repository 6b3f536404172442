/* Guest start-up after crt0: checks boot info, sets up the heap and argv, runs main, halts. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem_guest.h"
#include "sdk_internal.h"

#define MAX_ARGS 64

static const struct tandem_boot_info *boot_info;
static char cmdline_copy[TANDEM_ABI_CMDLINE_MAX];

const struct tandem_boot_info *tg_boot_info(void)
{
    return boot_info;
}

/* Find "key=" at a word start in the command line; returns the value or NULL. */
static const char *cmdline_find(const char *key, size_t *vlen)
{
    const char *s = boot_info->cmdline;
    size_t klen = strlen(key);

    while (*s) {
        while (*s == ' ')
            s++;
        if (strncmp(s, key, klen) == 0 && s[klen] == '=') {
            const char *v = s + klen + 1;
            *vlen = strcspn(v, " ");
            return v;
        }
        s += strcspn(s, " ");
    }
    return NULL;
}

long tg_cmdline_long(const char *key, long def)
{
    size_t vlen;
    const char *v = cmdline_find(key, &vlen);
    char *end;
    long x;

    if (!v || vlen == 0)
        return def;
    x = strtol(v, &end, 0);
    return (size_t)(end - v) == vlen ? x : def;
}

int tg_cmdline_str(const char *key, char *buf, size_t len)
{
    size_t vlen;
    const char *v = cmdline_find(key, &vlen);

    if (!v || len == 0)
        return -1;
    if (vlen >= len)
        vlen = len - 1;
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return 0;
}

void tg_start(const struct tandem_boot_info *bi);
void tg_start(const struct tandem_boot_info *bi)
{
    static char *argv[MAX_ARGS + 1];
    extern char _end[];
    int argc = 0;
    char *s, *save = NULL;

    boot_info = bi;
    if (bi->magic != TANDEM_BOOT_MAGIC || bi->abi_version != TANDEM_ABI_VERSION)
        tg_halt(TANDEM_HALT_CRASH, 1, "boot info has a wrong magic or ABI version");
    tg_heap_init((uintptr_t)_end, bi->mem_size - TG_STACK_SIZE);
    memcpy(cmdline_copy, bi->cmdline, sizeof(cmdline_copy));
    cmdline_copy[sizeof(cmdline_copy) - 1] = '\0';
    argv[argc++] = "guest";
    for (s = strtok_r(cmdline_copy, " ", &save); s && argc < MAX_ARGS;
         s = strtok_r(NULL, " ", &save))
        argv[argc++] = s;
    argv[argc] = NULL;
    tg_exit(main(argc, argv));
}

void tg_exit(int code)
{
    tg_halt(TANDEM_HALT_POWEROFF, code, NULL);
}

void exit(int code)
{
    tg_exit(code);
}

void abort(void)
{
    tg_halt(TANDEM_HALT_CRASH, 134, "abort() called");
}

void tg_panic(const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("PANIC: %s\n", msg);
    tg_halt(TANDEM_HALT_CRASH, 1, msg);
}

void tg_assert_fail(const char *expr, const char *file, int line)
{
    tg_panic("assertion failed: %s (%s:%d)", expr, file, line);
}
