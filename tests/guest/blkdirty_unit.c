/* Unit tests of the VMM's dirty-block tracking (vmm_blkdirty.c): marks, fetch ranges, clearing,
 * caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm.h"
#include "vmm_blkdirty.h"

#define BS VMM_BLKDIRTY_BLOCK

static struct vmm vm;

/* Two disks in slots 0 and 2, a non-disk in slot 1. Tracking is not set up here. */
static void make_vm(uint64_t cap0, uint64_t cap2)
{
    memset(&vm, 0, sizeof(vm));
    vm.num_devs = 3;
    for (unsigned k = 0; k < 3; k++) {
        vm.devs[k].abi.handle = k;
        vm.devs[k].blk.fd = -1;
    }
    vm.devs[0].is_setup = vm.devs[2].is_setup = true;
    vm.devs[0].abi.type = vm.devs[2].abi.type = TANDEM_DEVICE_DISK;
    vm.devs[0].blk.fd = vm.devs[2].blk.fd = 99; /* only checked for >= 0 */
    vm.devs[0].blk.path = "/d0";
    vm.devs[2].blk.path = "/d2";
    vm.devs[0].blk.capacity = cap0;
    vm.devs[2].blk.capacity = cap2;
}

static json_t *op(const char *name)
{
    json_t *req = json_pack("{s:s,s:s}", "cmd", "disk-dirty", "op", name);
    json_t *rep = vmm_blkdirty_request(&vm, req);
    json_decref(req);
    assert_non_null(rep);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    return rep;
}

/* The ranges of disk `path` in a fetch reply, as "first+count,..." text. */
static void ranges_of(json_t *rep, const char *path, char *out, size_t len)
{
    json_t *d, *r;
    size_t i, j;

    out[0] = '\0';
    json_array_foreach(json_object_get(rep, "disks"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "path")), path) != 0)
            continue;
        json_array_foreach(json_object_get(d, "ranges"), j, r)
        {
            size_t n = strlen(out);
            snprintf(out + n, len - n, "%s%lld+%lld", n ? "," : "",
                     (long long)json_integer_value(json_array_get(r, 0)),
                     (long long)json_integer_value(json_array_get(r, 1)));
        }
    }
}

static void marks_become_ranges_and_clear(void **state)
{
    char got[512];
    json_t *rep;

    (void)state;
    make_vm(64ull << 20, 10 * BS + 512);    /* a partial last block on disk 2 */
    vmm_blkdirty_mark(&vm.devs[0], 0, 512); /* not tracking yet: lost */
    rep = op("start");
    assert_int_equal(json_integer_value(json_object_get(rep, "block_size")), BS);
    assert_int_equal(json_array_size(json_object_get(rep, "disks")), 2);
    json_decref(rep);

    vmm_blkdirty_mark(&vm.devs[0], 5 * BS + 512, 512);  /* block 5 */
    vmm_blkdirty_mark(&vm.devs[0], 6 * BS - 512, 1024); /* blocks 5 and 6 */
    vmm_blkdirty_mark(&vm.devs[0], 63 * BS, 3 * BS);    /* 63..65, across a bitmap word */
    vmm_blkdirty_mark(&vm.devs[0], 1023ull * BS, BS);   /* the last block */
    vmm_blkdirty_mark(&vm.devs[2], 10 * BS, 512);       /* the partial last block */
    vmm_blkdirty_mark(&vm.devs[1], 0, 512);             /* not a disk: ignored */
    rep = op("fetch");
    assert_false(json_is_true(json_object_get(rep, "more")));
    ranges_of(rep, "/d0", got, sizeof(got));
    assert_string_equal(got, "5+2,63+3,1023+1");
    ranges_of(rep, "/d2", got, sizeof(got));
    assert_string_equal(got, "10+1");
    json_decref(rep);

    rep = op("fetch"); /* cleared by the fetch */
    ranges_of(rep, "/d0", got, sizeof(got));
    assert_string_equal(got, "");
    json_decref(rep);

    json_decref(op("stop"));
    vmm_blkdirty_mark(&vm.devs[0], 0, BS);
    rep = op("fetch"); /* stopped: nothing tracked, nothing listed */
    assert_int_equal(json_array_size(json_object_get(rep, "disks")), 0);
    json_decref(rep);

    rep = op("start"); /* again: starts clean */
    json_decref(rep);
    rep = op("fetch");
    ranges_of(rep, "/d0", got, sizeof(got));
    assert_string_equal(got, "");
    json_decref(rep);
    json_decref(op("stop"));
}

/* More ranges than one reply holds: "more", and the rest comes with the next fetch. */
static void a_full_reply_leaves_the_rest_set(void **state)
{
    uint64_t seen = 0, fetches = 0;
    json_t *rep;

    (void)state;
    make_vm(8192ull * BS, BS);
    json_decref(op("start"));
    for (uint64_t b = 0; b < 8192; b += 2) /* 4096 single-block ranges */
        vmm_blkdirty_mark(&vm.devs[0], b * BS, 512);
    for (;;) {
        json_t *d, *r;
        size_t i, j;
        rep = op("fetch");
        fetches++;
        json_array_foreach(json_object_get(rep, "disks"), i, d)
        {
            json_array_foreach(json_object_get(d, "ranges"), j, r)
            {
                assert_int_equal(json_integer_value(json_array_get(r, 0)), (json_int_t)(seen * 2));
                assert_int_equal(json_integer_value(json_array_get(r, 1)), 1);
                seen++;
            }
        }
        if (!json_is_true(json_object_get(rep, "more"))) {
            json_decref(rep);
            break;
        }
        json_decref(rep);
        assert_true(fetches < 10);
    }
    assert_int_equal(seen, 4096);
    assert_true(fetches >= 3); /* at most 2000 ranges per reply */
    json_decref(op("stop"));
}

static void bad_requests_are_refused(void **state)
{
    json_t *req = json_pack("{s:s,s:s}", "cmd", "disk-dirty", "op", "explode"), *rep;

    (void)state;
    make_vm(BS, BS);
    rep = vmm_blkdirty_request(&vm, req);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(rep, "error")), "unknown"));
    json_decref(rep);
    json_decref(req);
    req = json_pack("{s:s}", "cmd", "disk-dirty");
    rep = vmm_blkdirty_request(&vm, req);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    json_decref(rep);
    json_decref(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(marks_become_ranges_and_clear),
        cmocka_unit_test(a_full_reply_leaves_the_rest_set),
        cmocka_unit_test(bad_requests_are_refused),
    };
    vmm_log_open(-1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
