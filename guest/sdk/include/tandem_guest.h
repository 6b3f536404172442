/* Tandem guest SDK: hypercall wrappers, clock, boot info and command line for guest programs. */
#ifndef TANDEM_GUEST_H
#define TANDEM_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "tandem_abi.h"

/*
 * A guest program defines `int main(int argc, char **argv)`. argv holds
 * the command line split at spaces (argv[0] is "guest"). Returning from
 * main powers the domain off with main's value as the exit code.
 */
int main(int argc, char **argv);

/* Boot info written by the VMM (never NULL after start-up). */
const struct tandem_boot_info *tg_boot_info(void);

/* The value of KEY=VALUE on the command line as a long, or def when absent or not a number. */
long tg_cmdline_long(const char *key, long def);
/* Copy the value of KEY=VALUE into buf (NUL-terminated); 0 if found, -1 otherwise. */
int tg_cmdline_str(const char *key, char *buf, size_t len);

/* Write to the console; returns len or a negative TANDEM_HC_E* code. */
long tg_console_write(const void *buf, size_t len);

/*
 * Sleep until guest time deadline_ns or a device event, whichever comes
 * first (may return early). Returns the set of devices with pending input.
 */
uint64_t tg_poll(uint64_t deadline_ns);
/* Sleep until guest time deadline_ns (loops over tg_poll). */
void tg_sleep_until(uint64_t deadline_ns);
void tg_sleep_ns(uint64_t ns);

/* Stop the domain. message may be NULL. */
__attribute__((noreturn)) void tg_halt(enum tandem_halt_reason reason, int code,
                                       const char *message);
__attribute__((noreturn)) void tg_exit(int code); /* poweroff with code */
__attribute__((noreturn)) void tg_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2))); /* print and halt as crashed */

/* Guest time in ns since boot (monotonic while the clock generation is unchanged). */
uint64_t tg_clock_ns(void);
/* UNIX time in ns. */
uint64_t tg_wall_ns(void);
/* Bumped by the VMM when the domain resumes elsewhere (restore, migration, failover). */
uint32_t tg_clock_generation(void);

/* Raw TSC at the guest's first instruction (for the create-time benchmark). */
extern uint64_t tg_entry_tsc;

static inline uint64_t tg_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* Issue hypercall nr with the argument struct at arg (must lie below 4 GiB). */
static inline void tg_hypercall(unsigned nr, void *arg)
{
    __asm__ volatile("outl %0, %w1"
                     :
                     : "a"((uint32_t)(uintptr_t)arg), "Nd"((uint16_t)TANDEM_HC_PORT(nr))
                     : "memory");
}

#endif
