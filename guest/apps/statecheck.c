/*
 * statecheck: keeps checking that integer, x87, SSE/AVX registers, MXCSR,
 * a memory region and the clock stay consistent while the domain runs
 * (and is paused, saved, restored, migrated). Prints progress every
 * second and "MISMATCH ..." then crashes on the first inconsistency.
 * Command line: seconds=T (0 = forever), mem=M (MiB checked, default 8),
 * selftest=r13|ymm|mem (corrupt that state once, to show the check fires).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem_guest.h"

#define NS ((uint64_t)1000000000)
#define PAGE 4096u
#define WORDS (PAGE / 8)

struct sc_table {
    uint64_t gpr[6];                                 /*   0 */
    int64_t x87[3];                                  /*  48 */
    uint32_t mxcsr;                                  /*  72 */
    uint32_t pad;                                    /*  76 */
    uint64_t poll_arg;                               /*  80 */
    uint64_t counter;                                /*  88 */
    uint64_t scratch[4];                             /*  96 */
    uint8_t ymm[8][32] __attribute__((aligned(32))); /* 128 */
};
_Static_assert(__builtin_offsetof(struct sc_table, ymm) == 128, "layout used by statecheck_regs.S");

uint64_t sc_regs_run(struct sc_table *t, uint64_t iterations, uint64_t corrupt_at,
                     uint64_t corrupt_what);

struct sc_zmm_table {
    uint8_t zmm[8][64]; /*   0 */
    uint64_t k[3];      /* 512 */
    uint64_t pad;       /* 536 */
    uint64_t poll_arg;  /* 544 */
} __attribute__((aligned(64)));
_Static_assert(__builtin_offsetof(struct sc_zmm_table, poll_arg) == 544, "statecheck_zmm.S");

uint64_t sc_zmm_run(struct sc_zmm_table *t, uint64_t iterations);
static struct sc_zmm_table ztable;

static struct sc_table table __attribute__((aligned(64)));
static struct tandem_hc_poll poll_arg;

static const char *const check_names[] = {
    "ok",    "rbx",   "rbp",   "r12",   "r13",   "r14",     "r15",     "ymm8",    "ymm9",  "ymm10",
    "ymm11", "ymm12", "ymm13", "ymm14", "ymm15", "x87 st0", "x87 st1", "x87 st2", "mxcsr",
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static void setup_table(uint64_t seed)
{
    int i, j;

    for (i = 0; i < 6; i++)
        table.gpr[i] = mix(seed + (uint64_t)i);
    for (i = 0; i < 3; i++)
        table.x87[i] = (int64_t)(mix(seed + 10 + (uint64_t)i) >> 12); /* exact in 64-bit int */
    table.mxcsr = 0x9fc0; /* FTZ, DAZ, all exceptions masked: not the reset value 0x1f80 */
    table.poll_arg = (uintptr_t)&poll_arg;
    for (i = 0; i < 8; i++)
        for (j = 0; j < 4; j++) {
            uint64_t v = mix(seed * 131 + (uint64_t)(i * 4 + j) + 100);
            memcpy(&table.ymm[i][j * 8], &v, 8);
        }
}

/* AVX-512F in CPUID and ZMM state (XCR0 bits 5-7) enabled: then zmm16-31 and k0-7 exist. */
static int has_avx512(void)
{
    uint32_t a, b, c, d, lo, hi;

    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    if (!(b & (1u << 16)))
        return 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe0) == 0xe0;
}

static void setup_ztable(uint64_t seed)
{
    int i, j;

    for (i = 0; i < 8; i++)
        for (j = 0; j < 8; j++) {
            uint64_t v = mix(seed * 257 + (uint64_t)(i * 8 + j) + 1000);
            memcpy(&ztable.zmm[i][j * 8], &v, 8);
        }
    for (i = 0; i < 3; i++)
        ztable.k[i] = mix(seed + 2000 + (uint64_t)i);
    ztable.poll_arg = (uintptr_t)&poll_arg;
}

static int has_avx(void)
{
    uint32_t a, b, c, d;

    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    return (c & (1u << 28)) && (c & (1u << 27)); /* AVX and OSXSAVE */
}

/* Memory check: page p holds mix(p, w, gen[p]) in every word. */
static uint64_t *mem;
static uint32_t *gen;
static uint64_t mem_pages;

static uint64_t word_value(uint64_t p, uint64_t w, uint32_t g)
{
    return mix((p << 20) ^ (w << 40) ^ g);
}

static void fill_page(uint64_t p)
{
    uint64_t w;
    for (w = 0; w < WORDS; w++)
        mem[p * WORDS + w] = word_value(p, w, gen[p]);
}

static int check_page(uint64_t p)
{
    uint64_t w;
    for (w = 0; w < WORDS; w++)
        if (mem[p * WORDS + w] != word_value(p, w, gen[p])) {
            printf("MISMATCH memory: page %" PRIu64 " word %" PRIu64 " is 0x%" PRIx64
                   ", expected 0x%" PRIx64 " (generation %u)\n",
                   p, w, mem[p * WORDS + w], word_value(p, w, gen[p]), gen[p]);
            return -1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    long seconds = tg_cmdline_long("seconds", 0), mem_mib = tg_cmdline_long("mem", 8);
    uint64_t start, now, last_report, last_clock, rounds = 0, cursor = 0, p, rc;
    uint32_t clock_gen;
    int avx512 = has_avx512();
    char selftest[8] = "";
    uint64_t corrupt_what = 0;

    (void)argc;
    (void)argv;
    if (!has_avx())
        tg_panic("statecheck needs AVX (and OSXSAVE) to check vector registers");
    if (mem_mib <= 0)
        tg_panic("statecheck: mem must be positive");
    mem_pages = (uint64_t)mem_mib * (1ull << 20) / PAGE;
    mem = malloc(mem_pages * PAGE);
    gen = calloc(mem_pages, sizeof(*gen));
    if (!mem || !gen)
        tg_panic("statecheck: cannot allocate mem=%ld MiB", mem_mib);
    for (p = 0; p < mem_pages; p++)
        fill_page(p);
    printf("statecheck: checking registers (integer, x87, SSE, AVX%s), %ld MiB of memory and the "
           "clock%s\n",
           avx512 ? ", AVX-512" : "", mem_mib, seconds ? "" : " until stopped");

    tg_cmdline_str("selftest", selftest, sizeof(selftest));
    if (strcmp(selftest, "r13") == 0)
        corrupt_what = 1;
    else if (strcmp(selftest, "ymm") == 0)
        corrupt_what = 2;
    else if (strcmp(selftest, "mem") == 0)
        mem[3 * WORDS + 7] ^= 1; /* page 3: checked in the first round */
    else if (selftest[0])
        tg_panic("statecheck: selftest=%s: expected r13, ymm or mem", selftest);

    start = last_report = last_clock = tg_clock_ns();
    clock_gen = tg_clock_generation();
    for (;;) {
        setup_table(mix(rounds));
        rc = sc_regs_run(&table, 1u << 20, rounds == 1 && corrupt_what ? 12345 : 0, corrupt_what);
        if (rc) {
            printf("MISMATCH register %s (check %" PRIu64 ") after %" PRIu64 " iterations\n",
                   rc < sizeof(check_names) / sizeof(check_names[0]) ? check_names[rc] : "?", rc,
                   table.counter);
            tg_halt(TANDEM_HALT_CRASH, 2, "statecheck: register mismatch");
        }
        if (avx512) {
            setup_ztable(mix(rounds) ^ 0x5a5a);
            rc = sc_zmm_run(&ztable, 1u << 18);
            if (rc) {
                printf("MISMATCH register %s%" PRIu64 "\n", rc <= 8 ? "zmm" : "k",
                       rc <= 8 ? rc + 15 : rc - 8);
                tg_halt(TANDEM_HALT_CRASH, 2, "statecheck: AVX-512 register mismatch");
            }
        }
        /* verify and rewrite a slice of memory each round; all of it every 64 rounds */
        for (p = 0; p < (mem_pages + 63) / 64; p++) {
            if (check_page(cursor) < 0)
                tg_halt(TANDEM_HALT_CRASH, 3, "statecheck: memory mismatch");
            gen[cursor]++;
            fill_page(cursor);
            cursor = cursor + 1 == mem_pages ? 0 : cursor + 1;
        }
        now = tg_clock_ns();
        if (tg_clock_generation() == clock_gen && now < last_clock) {
            printf("MISMATCH clock: went back from %" PRIu64 " to %" PRIu64 " ns\n", last_clock,
                   now);
            tg_halt(TANDEM_HALT_CRASH, 4, "statecheck: clock went backwards");
        }
        clock_gen = tg_clock_generation();
        last_clock = now;
        rounds++;
        if (now - last_report >= NS) {
            printf("statecheck: %" PRIu64 " rounds, %" PRIu64 " register checks, ok\n", rounds,
                   table.counter);
            last_report = now;
        }
        if (seconds && now - start >= (uint64_t)seconds * NS)
            break;
    }
    printf("statecheck: %" PRIu64 " rounds without a mismatch\n", rounds);
    printf("SUCCESS\n");
    return 0;
}
