/*
 * bench_hypercall: tandem-vmm's hypercall round trip (measured inside the
 * hcbench guest) and domain create time, from exec of tandem-vmm to the
 * guest's first instruction (boottime guest), for 64 MiB and 1 GiB guests.
 * With TANDEM (the CLI) also through the toolstack: exec of `tandem create
 * FILE` (config parsed, domain folder, daemonised VMM) -> first instruction.
 * Usage: bench_hypercall VMM GUEST_DIR [RUNS [TANDEM]]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

/* Run VMM on an image; child's stdout into out. *exec_tsc = TSC just before execv. */
static int run(const char *vmm, const char *image, const char *mem, const char *cmdline, char *out,
               size_t outlen, uint64_t *exec_tsc)
{
    int opipe[2], tpipe[2], status;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    if (pipe(opipe) < 0 || pipe(tpipe) < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char *argv[] = {(char *)vmm, "--kernel",  (char *)image,   "--memory",
                        (char *)mem, "--cmdline", (char *)cmdline, NULL};
        uint64_t tsc;
        dup2(opipe[1], 1);
        close(opipe[0]);
        close(tpipe[0]);
        tsc = __rdtsc();
        if (write(tpipe[1], &tsc, sizeof(tsc)) != sizeof(tsc))
            _exit(126);
        close(tpipe[1]);
        execv(vmm, argv);
        _exit(127);
    }
    close(opipe[1]);
    close(tpipe[1]);
    if (read(tpipe[0], exec_tsc, sizeof(*exec_tsc)) != sizeof(*exec_tsc))
        *exec_tsc = 0;
    close(tpipe[0]);
    while (len + 1 < outlen && (n = read(opipe[0], out + len, outlen - len - 1)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(opipe[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_hypercall: %s %s failed: %s\n", vmm, image, out);
        return -1;
    }
    return 0;
}

/* Run argv with env TANDEM_RUNDIR/TANDEM_VMM; stdout into out (may be NULL). */
static int run_cli(char *const argv[], char *out, size_t outlen, uint64_t *exec_tsc)
{
    int opipe[2], tpipe[2], status;
    size_t len = 0;
    ssize_t n;
    pid_t pid;
    char sink[4096];

    if (pipe(opipe) < 0 || pipe(tpipe) < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        uint64_t tsc;
        dup2(opipe[1], 1);
        dup2(opipe[1], 2);
        close(opipe[0]);
        close(tpipe[0]);
        tsc = __rdtsc();
        if (write(tpipe[1], &tsc, sizeof(tsc)) != sizeof(tsc))
            _exit(126);
        close(tpipe[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(opipe[1]);
    close(tpipe[1]);
    if (read(tpipe[0], exec_tsc, sizeof(*exec_tsc)) != sizeof(*exec_tsc))
        *exec_tsc = 0;
    close(tpipe[0]);
    if (!out) {
        out = sink;
        outlen = sizeof(sink);
    }
    /* The daemonised VMM may keep the pipe open: read only until the CLI exits. */
    while (len + 1 < outlen && (n = read(opipe[0], out + len, outlen - len - 1)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(opipe[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_hypercall: %s %s failed: %s\n", argv[0], argv[1], out);
        return -1;
    }
    return 0;
}

/* One create through the CLI; returns ms from exec to the guest's first instruction, or < 0. */
static double create_via_cli(const char *tandem, const char *guests, const char *mib,
                             const char *tmp)
{
    char cfg[4096], kernel[4096], out[65536], tandem_buf[4096];
    char *create[] = {tandem_buf, "create", cfg, NULL};
    char *log[] = {tandem_buf, "console", "--log", "benchboot", NULL};
    char *destroy[] = {tandem_buf, "destroy", "benchboot", NULL};
    unsigned long long entry, khz;
    uint64_t t0, dummy;
    FILE *f;
    char *p;
    double ms = -1;

    snprintf(tandem_buf, sizeof(tandem_buf), "%s", tandem);
    snprintf(kernel, sizeof(kernel), "%s/boottime.elf", guests);
    snprintf(cfg, sizeof(cfg), "%s/boot.cfg", tmp);
    f = fopen(cfg, "w");
    if (!f)
        return -1;
    fprintf(f,
            "name = \"benchboot\"\nmemory = %s\nvcpus = 1\nkernel = \"%s\"\n"
            "on_poweroff = \"preserve\"\n",
            mib, kernel);
    fclose(f);
    if (run_cli(create, NULL, 0, &t0) < 0)
        return -1;
    /* the guest prints and powers off at once; preserved, so its log stays */
    for (int tries = 0; tries < 100; tries++) {
        if (run_cli(log, out, sizeof(out), &dummy) < 0)
            break;
        p = strstr(out, "entry_tsc ");
        if (p && sscanf(p, "entry_tsc %llu tsc_khz %llu", &entry, &khz) == 2 && khz &&
            entry >= t0) {
            ms = (double)(entry - t0) / (double)khz;
            break;
        }
        usleep(50000);
    }
    run_cli(destroy, NULL, 0, &dummy);
    return ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char image[4096], out[65536];
    const char *sizes[] = {"64", "1024"};
    int runs = argc > 3 ? atoi(argv[3]) : 5, i, s;
    double vals[64];

    if (argc < 3 || runs <= 0 || runs > 64) {
        fprintf(stderr, "usage: bench_hypercall VMM GUEST_DIR [RUNS<=64]\n");
        return 2;
    }

    snprintf(image, sizeof(image), "%s/hcbench.elf", argv[2]);
    for (i = 0; i < runs; i++) {
        uint64_t t;
        unsigned long long ns;
        char *p;
        if (run(argv[1], image, "64", "calls=20000", out, sizeof(out), &t) < 0)
            return 1;
        p = strstr(out, "hypercall_round_trip_ns ");
        if (!p || sscanf(p, "hypercall_round_trip_ns %llu", &ns) != 1) {
            fprintf(stderr, "bench_hypercall: unexpected hcbench output: %s\n", out);
            return 1;
        }
        vals[i] = (double)ns / 1000.0;
    }
    qsort(vals, (size_t)runs, sizeof(vals[0]), cmp_double);
    printf("hypercall round trip (POLL, userspace exit): median %.1f us, min %.1f us, max %.1f us"
           " over %d runs of 20000 calls\n",
           vals[runs / 2], vals[0], vals[runs - 1], runs);

    snprintf(image, sizeof(image), "%s/boottime.elf", argv[2]);
    for (s = 0; s < 2; s++) {
        for (i = 0; i < runs; i++) {
            uint64_t t0;
            unsigned long long entry, khz;
            char *p;
            if (run(argv[1], image, sizes[s], "", out, sizeof(out), &t0) < 0)
                return 1;
            p = strstr(out, "entry_tsc ");
            if (!p || sscanf(p, "entry_tsc %llu tsc_khz %llu", &entry, &khz) != 2 || !khz ||
                entry < t0) {
                fprintf(stderr, "bench_hypercall: unexpected boottime output: %s\n", out);
                return 1;
            }
            vals[i] = (double)(entry - t0) / (double)khz; /* ms */
        }
        qsort(vals, (size_t)runs, sizeof(vals[0]), cmp_double);
        printf("create time (exec of tandem-vmm -> guest's first instruction), %s MiB: median "
               "%.1f ms, min %.1f ms, max %.1f ms over %d runs\n",
               sizes[s], vals[runs / 2], vals[0], vals[runs - 1], runs);
    }
    if (argc > 4) {
        char tmp[] = "/tmp/tandem-bench-XXXXXX", rundir[64];
        if (!mkdtemp(tmp))
            return 1;
        snprintf(rundir, sizeof(rundir), "%s/run", tmp);
        setenv("TANDEM_RUNDIR", rundir, 1);
        setenv("TANDEM_VMM", argv[1], 1);
        for (s = 0; s < 2; s++) {
            for (i = 0; i < runs; i++) {
                vals[i] = create_via_cli(argv[4], argv[2], sizes[s], tmp);
                if (vals[i] < 0) {
                    fprintf(stderr, "bench_hypercall: create through %s failed\n", argv[4]);
                    return 1;
                }
            }
            qsort(vals, (size_t)runs, sizeof(vals[0]), cmp_double);
            printf("create time (exec of `tandem create FILE` -> guest's first instruction), %s "
                   "MiB: median %.1f ms, min %.1f ms, max %.1f ms over %d runs\n",
                   sizes[s], vals[runs / 2], vals[0], vals[runs - 1], runs);
        }
    }
    return 0;
}
