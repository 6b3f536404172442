/* Unit tests of lib/domain_restore.c and lib/domain_checkpoint.c that need no KVM: validation,
 * rollback. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/kvm.h>

#include "tandem.h"
#include "tandem_checkpoint.h"
#include "tandem_stream.h"

static char root[64];
static char img[96];

static const char *config_json =
    "{\"c_info\":{\"name\":\"utsave\"},\"b_info\":{\"max_memkb\":32768,\"target_memkb\":32768,"
    "\"max_vcpus\":1,\"kernel\":\"/nonexistent/unit.elf\"}}";

/* A small valid image of the given kind: config, two pages (one zero), vCPU, clock, device. */
static void write_image(const char *path, uint32_t kind)
{
    struct tandem_stream_params sp = {.page_size = 4096, .kind = kind};
    static uint8_t page[4096], zero[4096];
    static struct kvm_regs regs;
    static struct kvm_sregs sregs;
    static struct kvm_mp_state mp;
    struct tandem_stream_block b[3] = {
        {TANDEM_VCPU_REGS, sizeof(regs), &regs},
        {TANDEM_VCPU_SREGS, sizeof(sregs), &sregs},
        {TANDEM_VCPU_MP_STATE, sizeof(mp), &mp},
    };
    const void *pages[2] = {page, zero};
    uint64_t pfns[2] = {16, 17};
    struct tandem_stream_clock clk = {.guest_ns = 5000000000ull, .tsc_khz = 2000000};
    uint64_t total = 0;
    struct tandem_stream_device dev = {TANDEM_DEVICE_CONSOLE, 0, &total, sizeof(total)};
    tandem_stream_writer *w = NULL;
    tandem_ctx *ctx = NULL;
    int fd;

    memset(page, 0xa5, sizeof(page));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    assert_int_equal(tandem_stream_writer_open(ctx, fd, &sp, &w), 0);
    assert_int_equal(tandem_stream_write_config(w, config_json, strlen(config_json)), 0);
    assert_int_equal(tandem_stream_write_pages(w, pfns, pages, 2), 0);
    assert_int_equal(tandem_stream_write_vcpu(w, 0, b, 3), 0);
    assert_int_equal(tandem_stream_write_clock(w, &clk), 0);
    assert_int_equal(tandem_stream_write_device(w, &dev), 0);
    assert_int_equal(tandem_stream_write_checkpoint(w, 1), 0);
    assert_int_equal(tandem_stream_write_end(w), 0);
    tandem_stream_writer_free(w);
    tandem_ctx_free(ctx);
    close(fd);
}

/* Entries in ROOT/sub besides . and .. (0 when it does not exist). */
static int entries(const char *sub)
{
    char path[160];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "%s/%s", root, sub);
    d = opendir(path);
    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void assert_nothing_left(void)
{
    assert_int_equal(entries("domains"), 0);
    assert_int_equal(entries("names"), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/tdmut.XXXXXX");
    assert_non_null(mkdtemp(root));
    setenv("TANDEM_RUNDIR", root, 1);
    setenv("TANDEM_VMM", "/bin/false", 1); /* starts, says nothing, exits 1 */
    snprintf(img, sizeof(img), "%s/image", root);
    write_image(img, TANDEM_STREAM_SAVE);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int restore_file(tandem_ctx *ctx, const char *path, const char *cfg, uint32_t *domid)
{
    int fd = open(path, O_RDONLY), rc;

    assert_true(fd >= 0);
    rc = tandem_domain_restore(ctx, fd, cfg, 0, domid, NULL, NULL);
    close(fd);
    return rc;
}

/* A flipped byte inside each record: refused before anything is created, naming the record. */
static void test_damaged_each_record(void **state)
{
    char bad[128], want[32];
    uint8_t buf[1 << 16];
    ssize_t len;
    uint64_t off = 32;
    int fd, rec = 0;
    tandem_ctx *ctx;
    uint32_t domid = 0;

    (void)state;
    fd = open(img, O_RDONLY);
    len = read(fd, buf, sizeof(buf));
    close(fd);
    assert_true(len > 64 && len < (ssize_t)sizeof(buf));
    snprintf(bad, sizeof(bad), "%s/bad", root);
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    while (off + 16 <= (uint64_t)len) {
        uint32_t type, length;
        uint8_t copy[1 << 16];
        memcpy(&type, buf + off, 4);
        memcpy(&length, buf + off + 4, 4);
        rec++;
        memcpy(copy, buf, (size_t)len);
        copy[length ? off + 16 + length / 2 : off + 9] ^= 0x10;
        fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(write(fd, copy, (size_t)len), len);
        close(fd);
        assert_int_equal(restore_file(ctx, bad, NULL, &domid), TANDEM_ERR_PROTO);
        snprintf(want, sizeof(want), "record %d", rec);
        if (!strstr(tandem_ctx_error(ctx), want) || !strstr(tandem_ctx_error(ctx), "offset"))
            fail_msg("record %d: message '%s' lacks '%s' or the offset", rec, tandem_ctx_error(ctx),
                     want);
        assert_nothing_left();
        off += 16 + ((length + 7u) & ~7u);
        if (type == TANDEM_REC_END)
            break;
    }
    assert_int_equal(rec, 7);
    tandem_ctx_free(ctx);
}

/* Truncated anywhere: refused, nothing created. */
static void test_truncated(void **state)
{
    char bad[128];
    struct stat sb;
    tandem_ctx *ctx;
    uint32_t domid;

    (void)state;
    assert_int_equal(stat(img, &sb), 0);
    snprintf(bad, sizeof(bad), "%s/short", root);
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    for (off_t cut = 0; cut < sb.st_size; cut += 997) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "head -c %lld '%s' > '%s'", (long long)cut, img, bad);
        assert_int_equal(system(cmd), 0);
        assert_true(restore_file(ctx, bad, NULL, &domid) < 0);
        assert_nothing_left();
    }
    tandem_ctx_free(ctx);
}

/* A valid image whose VMM fails: the reservation is rolled back (no folder, no name). */
static void test_vmm_failure_rolls_back(void **state)
{
    tandem_ctx *ctx;
    uint32_t domid = 0;

    (void)state;
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    assert_int_equal(restore_file(ctx, img, NULL, &domid), TANDEM_ERR_FAIL);
    assert_non_null(strstr(tandem_ctx_error(ctx), "utsave"));
    assert_nothing_left();
    tandem_ctx_free(ctx);
}

/* Remus streams are not saved domains; pipes are not files; the override must parse. */
static void test_bad_inputs(void **state)
{
    char path[128], cfg[128];
    tandem_ctx *ctx;
    uint32_t domid;
    int p[2];
    FILE *f;

    (void)state;
    assert_int_equal(tandem_ctx_alloc(&ctx), 0);
    snprintf(path, sizeof(path), "%s/remus", root);
    write_image(path, TANDEM_STREAM_CHECKPOINTED);
    assert_int_equal(restore_file(ctx, path, NULL, &domid), TANDEM_ERR_INVAL);
    assert_non_null(strstr(tandem_ctx_error(ctx), "checkpointed"));
    assert_int_equal(pipe(p), 0);
    assert_int_equal(tandem_domain_restore(ctx, p[0], NULL, 0, &domid, NULL, NULL),
                     TANDEM_ERR_INVAL);
    close(p[0]);
    close(p[1]);
    snprintf(cfg, sizeof(cfg), "%s/bad.cfg", root);
    f = fopen(cfg, "w");
    fputs("memory = = 3\n", f);
    fclose(f);
    assert_true(restore_file(ctx, img, cfg, &domid) < 0);
    assert_non_null(strstr(tandem_ctx_error(ctx), "bad.cfg"));
    assert_nothing_left();
    /* save of a domain that does not exist */
    assert_int_equal(tandem_domain_save(ctx, 4242, 1, 0, NULL, NULL), TANDEM_ERR_NOTFOUND);
    tandem_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_damaged_each_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmm_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
