/* Unit tests of tandem-vmm's block backend (vmm_block.c): setup refusals, bounds, read-only, I/O.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm.h"

static char dir[] = "/tmp/tandem-blkunit.XXXXXX";
static char img[256];
static char err[VMM_ERRLEN];

static int setup(void **state)
{
    FILE *f;

    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(img, sizeof(img), "%s/disk.img", dir);
    f = fopen(img, "w");
    if (!f || ftruncate(fileno(f), 1024 * 1024 + 100) < 0) /* a trailing partial sector */
        return -1;
    fclose(f);
    vmm_log_open(-1);
    return 0;
}

static int teardown(void **state)
{
    char path[300];

    (void)state;
    unlink(img);
    snprintf(path, sizeof(path), "%s/small.img", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* A device built from a spec; returns setup's result, message in err. */
static int make(struct vmm_dev *d, tandem_device_disk *spec, const char *path,
                tandem_disk_format fmt, int rw)
{
    tandem_device_disk_init(spec);
    spec->pdev_path = strdup(path);
    spec->vdev = strdup("xvdb");
    spec->format = fmt;
    spec->readwrite = rw;
    memset(d, 0, sizeof(*d));
    d->blk.fd = -1;
    d->disk = spec;
    err[0] = '\0';
    return vmm_block_ops.setup(NULL, d, err, sizeof(err));
}

static void done(struct vmm_dev *d, tandem_device_disk *spec)
{
    vmm_block_ops.teardown(NULL, d);
    tandem_device_disk_dispose(spec);
}

static void test_refusals(void **state)
{
    struct vmm_dev d;
    tandem_device_disk spec;
    char path[300];
    FILE *f;

    (void)state;
    assert_int_equal(make(&d, &spec, img, TANDEM_DISK_FORMAT_QCOW2, 1), -1);
    assert_string_equal(err, "disk xvdb: format 'qcow2' is not supported, only raw");
    done(&d, &spec);
    assert_int_equal(make(&d, &spec, "/nonexistent/x.img", TANDEM_DISK_FORMAT_RAW, 0), -1);
    assert_string_equal(err,
                        "disk xvdb: cannot open /nonexistent/x.img: No such file or directory");
    done(&d, &spec);
    assert_int_equal(make(&d, &spec, dir, TANDEM_DISK_FORMAT_RAW, 0), -1);
    assert_non_null(strstr(err, "neither a regular file nor a block device"));
    done(&d, &spec);
    snprintf(path, sizeof(path), "%s/small.img", dir);
    f = fopen(path, "w");
    fputs("tiny", f);
    fclose(f);
    assert_int_equal(make(&d, &spec, path, TANDEM_DISK_FORMAT_RAW, 1), -1);
    assert_non_null(strstr(err, "smaller than one 512-byte sector"));
    assert_int_equal(d.blk.fd, -1); /* nothing left open */
    done(&d, &spec);
}

static void test_bounds(void **state)
{
    struct vmm_dev d;
    tandem_device_disk spec;
    const uint64_t cap = 1024 * 1024;

    (void)state;
    assert_int_equal(make(&d, &spec, img, TANDEM_DISK_FORMAT_UNKNOWN, 1), 0);
    assert_int_equal(d.blk.capacity, cap); /* the partial sector is cut off */
    assert_int_equal(d.abi.type, TANDEM_DEVICE_DISK);
    assert_int_equal(d.abi.sector_size, 512);
    assert_int_equal(d.abi.flags, 0);
    assert_int_equal(vmm_block_check(&d, 0, cap), 0);
    assert_int_equal(vmm_block_check(&d, cap, 0), 0);
    assert_int_equal(vmm_block_check(&d, cap - 512, 512), 0);
    assert_int_equal(vmm_block_check(&d, cap - 512, 1024), TANDEM_HC_EINVAL);
    assert_int_equal(vmm_block_check(&d, cap + 512, 0), TANDEM_HC_EINVAL);
    assert_int_equal(vmm_block_check(&d, UINT64_MAX - 511, 1024), TANDEM_HC_EINVAL); /* wraps */
    assert_int_equal(vmm_block_check(&d, 512, UINT64_MAX - 511), TANDEM_HC_EINVAL);
    assert_int_equal(vmm_block_check(&d, 1, 512), TANDEM_HC_EINVAL);
    assert_int_equal(vmm_block_check(&d, 0, 511), TANDEM_HC_EINVAL);
    done(&d, &spec);
}

static void test_io_and_readonly(void **state)
{
    struct vmm_dev d;
    tandem_device_disk spec;
    uint8_t out[1024], in[1024];
    FILE *f;

    (void)state;
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(make(&d, &spec, img, TANDEM_DISK_FORMAT_RAW, 1), 0);
    assert_int_equal(vmm_block_write(&d, 4096, out, sizeof(out)), 0);
    assert_int_equal(vmm_block_flush(&d), 0);
    assert_int_equal(vmm_block_read(&d, 4096, in, sizeof(in)), 0);
    assert_memory_equal(in, out, sizeof(in));
    done(&d, &spec);
    /* The bytes are in the file at that offset. */
    f = fopen(img, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 4096, SEEK_SET), 0);
    assert_int_equal(fread(in, 1, sizeof(in), f), sizeof(in));
    fclose(f);
    assert_memory_equal(in, out, sizeof(in));
    /* Read-only: flagged, writes refused, reads work, flush is a no-op. */
    assert_int_equal(make(&d, &spec, img, TANDEM_DISK_FORMAT_RAW, 0), 0);
    assert_int_equal(d.abi.flags, TANDEM_DEVICE_F_READONLY);
    assert_int_equal(vmm_block_write(&d, 0, out, 512), TANDEM_HC_EROFS);
    assert_int_equal(vmm_block_read(&d, 4096, in, sizeof(in)), 0);
    assert_memory_equal(in, out, sizeof(in));
    assert_int_equal(vmm_block_flush(&d), 0);
    done(&d, &spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_io_and_readonly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
