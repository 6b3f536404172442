/* Unit tests of Remus's output buffer and disk-write hold (vmm_netbuf.c, vmm_diskbuf.c); no KVM
 * needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm_remus.h"

/* ---- stubs of the VMM pieces these files call --------------------------------------------------
 */

void vmm_log(const char *fmt, ...)
{
    (void)fmt;
}

static int wakes; /* vmm_io_wake calls: a stalled TX ring is told to retry */

void vmm_io_wake(struct vmm *vm)
{
    (void)vm;
    wakes++;
}

int vmm_block_write(struct vmm_dev *d, uint64_t offset, const void *buf, uint64_t len)
{
    return pwrite(d->blk.fd, buf, len, (off_t)offset) == (ssize_t)len ? 0 : TANDEM_HC_EIO;
}

/* ---- netbuf --------------------------------------------------------------------------------- */

static char sent[64][8]; /* what reached the "TAP", in order */
static int nsent;
static int fulls;

static int tap_send(struct vmm_dev *d, const void *frame, size_t len)
{
    (void)d;
    if (nsent < 64)
        memcpy(sent[nsent], frame, len < 8 ? len : 8);
    nsent++;
    return 0;
}

static void on_full(struct vmm *vm)
{
    (void)vm;
    fulls++;
}

static void send_str(struct vmm_dev *d, const char *s)
{
    char frame[64] = {0};

    snprintf(frame, sizeof(frame), "%s", s);
    assert_int_equal(d->vif.out.send(d, frame, sizeof(frame)), 0);
}

static void test_netbuf_epochs(void **state)
{
    static struct vmm vm;
    static struct vmm_dev d;
    struct vmm_netbuf_stats st;
    char err[VMM_ERRLEN];

    (void)state;
    nsent = 0;
    d.vif.out.send = tap_send;
    assert_int_equal(vmm_netbuf_ops.setup(&vm, &d, err, sizeof(err)), 0);
    send_str(&d, "a1");
    send_str(&d, "a2");
    assert_int_equal(nsent, 0);             /* held */
    vmm_netbuf_ops.postsuspend(&vm, &d, 1); /* a1, a2 belong to epoch 1 */
    send_str(&d, "b1");
    vmm_netbuf_ops.postsuspend(&vm, &d, 2);
    send_str(&d, "c1");
    vmm_netbuf_stats(&d, &st);
    assert_int_equal(st.held_frames, 4);
    vmm_netbuf_ops.commit(&vm, &d, 1);
    assert_int_equal(nsent, 2);
    assert_string_equal(sent[0], "a1");
    assert_string_equal(sent[1], "a2");
    vmm_netbuf_ops.commit(&vm, &d, 1); /* idempotent */
    assert_int_equal(nsent, 2);
    vmm_netbuf_ops.commit(&vm, &d, 2);
    assert_int_equal(nsent, 3);
    assert_string_equal(sent[2], "b1");
    /* Backup lost: everything held goes out, and later frames go straight to the TAP. */
    vmm_netbuf_ops.teardown(&vm, &d, true);
    assert_int_equal(nsent, 4);
    assert_string_equal(sent[3], "c1");
    assert_ptr_equal(d.vif.out.send, tap_send);
    send_str(&d, "d1");
    assert_int_equal(nsent, 5);
}

static void test_netbuf_full_stalls(void **state)
{
    static struct vmm vm;
    static struct vmm_dev d;
    static char big[60000];
    char err[VMM_ERRLEN];
    int rc = 0, n = 0;
    struct vmm_netbuf_stats st;

    (void)state;
    nsent = 0;
    fulls = 0;
    d.vif.out.send = tap_send;
    vmm_netbuf_full_hook = on_full;
    assert_int_equal(vmm_netbuf_ops.setup(&vm, &d, err, sizeof(err)), 0);
    while ((rc = d.vif.out.send(&d, big, sizeof(big))) == 0)
        n++;
    /* Bounded: EAGAIN (the guest retries), the engine is asked to end the epoch; nothing dropped.
     */
    assert_int_equal(rc, TANDEM_HC_EAGAIN);
    assert_int_equal(n, VMM_NETBUF_CAP / sizeof(big));
    assert_int_equal(fulls, 1);
    vmm_netbuf_stats(&d, &st);
    assert_int_equal(st.stalls, 1);
    assert_int_equal(st.held_frames, (uint64_t)n);
    vmm_netbuf_ops.postsuspend(&vm, &d, 1);
    wakes = 0;
    vmm_netbuf_ops.commit(&vm, &d, 1);
    assert_int_equal(nsent, n);
    assert_true(wakes >= 1); /* the I/O thread retries the ring that stalled */
    vmm_netbuf_stats(&d, &st);
    assert_int_equal(st.released_frames, (uint64_t)n);
    assert_int_equal(d.vif.out.send(&d, big, sizeof(big)), 0);
    vmm_netbuf_ops.teardown(&vm, &d, false);
    vmm_netbuf_full_hook = NULL;
}

/* ---- disk hold (backup) ------------------------------------------------------------------------
 */

static void test_diskhold_commit_and_discard(void **state)
{
    static struct vmm vm;
    char path[] = "/tmp/tandem-remus-unit-XXXXXX", err[VMM_ERRLEN], buf[1024];
    uint8_t a[512], b[1024];
    struct tandem_stream_extent e;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(ftruncate(fd, 8192), 0);
    vm.num_devs = 2;
    vm.devs[0].abi.type = TANDEM_DEVICE_VIF;
    vm.devs[1].abi.type = TANDEM_DEVICE_DISK; /* disk index 0 */
    vm.devs[1].blk.fd = fd;
    vm.devs[1].blk.capacity = 8192;
    vm.devs[1].blk.path = path;
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    e = (struct tandem_stream_extent){1, 1, a}; /* sector 1 */
    assert_int_equal(vmm_diskhold_add(&vm, 0, 512, &e, false, err, sizeof(err)), 0);
    e = (struct tandem_stream_extent){1, 2, b}; /* sectors 1-2: a later write wins */
    assert_int_equal(vmm_diskhold_add(&vm, 0, 512, &e, false, err, sizeof(err)), 0);
    assert_int_equal(pread(fd, buf, sizeof(buf), 512), sizeof(buf));
    assert_int_equal(buf[0], 0); /* nothing applied before the commit */
    assert_int_equal(vmm_diskhold_commit(&vm, err, sizeof(err)), 0);
    assert_int_equal(pread(fd, buf, sizeof(buf), 512), sizeof(buf));
    assert_memory_equal(buf, b, sizeof(b));
    /* A partial state is dropped at failover: its writes never reach the image. */
    e = (struct tandem_stream_extent){0, 1, a};
    assert_int_equal(vmm_diskhold_add(&vm, 0, 512, &e, false, err, sizeof(err)), 0);
    assert_int_equal(vmm_diskhold_discard(), 512);
    assert_int_equal(vmm_diskhold_commit(&vm, err, sizeof(err)), 0);
    assert_int_equal(pread(fd, buf, 512, 0), 512);
    assert_int_equal(buf[0], 0);
    /* Writes outside the disk, or for a disk that does not exist, name what was wrong. */
    e = (struct tandem_stream_extent){16, 1, a};
    assert_int_equal(vmm_diskhold_add(&vm, 0, 512, &e, false, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not fit"));
    assert_int_equal(vmm_diskhold_add(&vm, 3, 512, &e, false, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no such disk"));
    assert_int_equal(vmm_diskhold_add(&vm, 0, 512, &e, true, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not fit"));
    /* direct (the first state: the initial copy): written at once, nothing held. */
    e = (struct tandem_stream_extent){4, 1, a};
    assert_int_equal(vmm_diskhold_add(&vm, 0, 512, &e, true, err, sizeof(err)), 0);
    assert_int_equal(pread(fd, buf, 512, 4 * 512), 512);
    assert_memory_equal(buf, a, 512);
    assert_int_equal(vmm_diskhold_discard(), 0);
    assert_int_equal(vmm_diskhold_commit(&vm, err, sizeof(err)), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netbuf_epochs),
        cmocka_unit_test(test_netbuf_full_stalls),
        cmocka_unit_test(test_diskhold_commit_and_discard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
