/* Hand-written JSON cases of the IDL types: libxl layout, and errors that name the field path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tandem.h"

static tandem_ctx *ctx;

static int setup(void **state)
{
    return tandem_ctx_alloc(&ctx);
}

static int teardown(void **state)
{
    tandem_ctx_free(ctx);
    return 0;
}

/* Parsing text must fail with INVAL and a message containing want. */
static void config_rejects(const char *text, const char *want)
{
    tandem_domain_config c;

    tandem_domain_config_init(&c);
    tandem_ctx_clear_error(ctx);
    assert_int_equal(tandem_domain_config_from_json(ctx, &c, text), TANDEM_ERR_INVAL);
    if (!strstr(tandem_ctx_error(ctx), want))
        fail_msg("message \"%s\" lacks \"%s\"", tandem_ctx_error(ctx), want);
    tandem_domain_config_dispose(&c);
}

static void test_errors_name_the_path(void **state)
{
    config_rejects("{\"nics\": [{}, {\"mac\": \"zz\"}]}",
                   "nics[1].mac: expected a MAC address \"xx:xx:xx:xx:xx:xx\", got \"zz\"");
    config_rejects("{\"nics\": [{\"mac\": \"00:16:3e:00:00\"}]}", "nics[0].mac:");
    config_rejects("{\"nics\": [{\"mac\": \"00:16:3e:00:00:0g\"}]}", "nics[0].mac:");
    config_rejects("{\"disks\": [{\"vdev\": 3}]}",
                   "disks[0].vdev: expected a string, got the integer 3");
    config_rejects("{\"disks\": [{\"format\": \"vmdk\"}]}", "disks[0].format: expected one of");
    config_rejects("{\"disks\": [{\"readwrite\": \"1\"}]}",
                   "disks[0].readwrite: expected an integer");
    config_rejects("{\"disks\": [{\"readwrite\": 4294967296}]}", "out of range");
    config_rejects("{\"disks\": [{\"trusted\": \"yes\"}]}", "disks[0].trusted: expected \"True\"");
    config_rejects("{\"disks\": {}}", "disks: expected an array, got an object");
    config_rejects("{\"disks\": [[]]}", "disks[0]: expected an object");
    config_rejects("{\"c_info\": {\"uuid\": \"not-a-uuid\"}}", "c_info.uuid: expected a UUID");
    config_rejects("{\"c_info\": {\"nmae\": \"x\"}}", "c_info: unknown key \"nmae\"");
    config_rejects("{\"bogus\": 1}", "unknown key \"bogus\"");
    config_rejects("{\"on_crash\": \"explode\"}", "on_crash: expected one of");
    config_rejects("{\"on_crash\": 1}", "on_crash: expected one of");
    config_rejects("{\"b_info\": {\"max_memkb\": -1}}", "b_info.max_memkb:");
    config_rejects("{\"name\": \"a\", \"name\": \"b\"}", "duplicate");
    config_rejects("[1, 2]", "expected an object");
    config_rejects("{\"nics\": [", "line 1");
    config_rejects("", "JSON for tandem_domain_config");
}

static void test_nic_json_layout(void **state)
{
    tandem_device_nic n, back;
    char *text;

    tandem_device_nic_init(&n);
    tandem_device_nic_init(&back);
    assert_int_equal(n.devid, -1);
    assert_int_equal(tandem_mac_parse("00:16:3E:0a:0B:ff", n.mac), 0);
    n.bridge = strdup("");
    tandem_defbool_set(&n.trusted, 0);
    n.rate_bytes_per_interval = 100000;
    text = tandem_device_nic_to_json(&n);
    assert_non_null(text);
    assert_string_equal(text, "{\n"
                              "    \"mac\": \"00:16:3e:0a:0b:ff\",\n"
                              "    \"bridge\": \"\",\n"
                              "    \"rate_bytes_per_interval\": 100000,\n"
                              "    \"trusted\": \"False\"\n"
                              "}");
    assert_int_equal(tandem_device_nic_from_json(ctx, &back, text), 0);
    assert_true(tandem_device_nic_equal(&n, &back));
    free(text);
    /* devid 0 differs from its init value -1, so it is printed. */
    n.devid = 0;
    text = tandem_device_nic_to_json(&n);
    assert_non_null(strstr(text, "\"devid\": 0"));
    free(text);
    tandem_device_nic_dispose(&n);
    tandem_device_nic_dispose(&back);
}

static void test_parse_resets_and_accepts_defaults(void **state)
{
    tandem_dominfo d;

    tandem_dominfo_init(&d);
    assert_int_equal(d.shutdown_reason, TANDEM_SHUTDOWN_REASON_UNKNOWN);
    d.name = strdup("old");
    assert_int_equal(
        tandem_dominfo_from_json(ctx, &d,
                                 "{\"domid\": 7, \"shutdown_reason\": \"poweroff\","
                                 " \"protected_by_remus\": \"<default>\","
                                 " \"uuid\": \"0A1B2C3D-0000-4000-8000-00000000000f\"}"),
        0);
    assert_null(d.name);
    assert_int_equal(d.domid, 7);
    assert_int_equal(d.shutdown_reason, TANDEM_SHUTDOWN_REASON_POWEROFF);
    assert_true(tandem_defbool_is_default(d.protected_by_remus));
    assert_int_equal(d.uuid[0], 0x0a);
    assert_int_equal(d.uuid[15], 0x0f);
    tandem_dominfo_dispose(&d);
}

static void test_builtins(void **state)
{
    tandem_uuid u, v;
    char buf[TANDEM_UUID_STRLEN];
    tandem_defbool db = 0;

    assert_int_equal(tandem_uuid_generate(u), 0);
    assert_false(tandem_uuid_is_zero(u));
    tandem_uuid_format(u, buf);
    assert_int_equal(buf[14], '4');
    assert_int_equal(tandem_uuid_from_string(buf, &v), 0);
    assert_memory_equal(u, v, sizeof(u));
    assert_int_equal(tandem_uuid_parse("0a1b2c3d-0000-4000-8000-00000000000", v), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_uuid_parse("0a1b2c3d00000-4000-8000-00000000000f", v),
                     TANDEM_ERR_INVAL);
    assert_int_equal(tandem_mac_parse("00:16:3e:00:00:01 ", u), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_mac_parse(NULL, u), TANDEM_ERR_INVAL);

    assert_int_equal(tandem_defbool_val(db, 1), 1);
    assert_int_equal(tandem_defbool_val(db, 0), 0);
    tandem_defbool_setdefault(&db, 0);
    assert_int_equal(tandem_defbool_val(db, 1), 0);
    tandem_defbool_setdefault(&db, 1);
    assert_int_equal(tandem_defbool_val(db, 1), 0);
    tandem_defbool_set(&db, 1);
    assert_string_equal(tandem_defbool_to_string(db), "True");
    tandem_defbool_unset(&db);
    assert_true(tandem_defbool_is_default(db));
}

static void test_append_and_copy(void **state)
{
    tandem_domain_config a, b;
    tandem_device_disk *d;

    tandem_domain_config_init(&a);
    d = tandem_domain_config_disks_append(&a);
    assert_non_null(d);
    d->vdev = strdup("xvda");
    d = tandem_domain_config_disks_append(&a);
    assert_non_null(d);
    d->pdev_path = strdup("/img");
    assert_int_equal(a.num_disks, 2);
    assert_string_equal(a.disks[0].vdev, "xvda");
    assert_int_equal(tandem_domain_config_copy(&b, &a), 0);
    assert_true(tandem_domain_config_equal(&a, &b));
    assert_ptr_not_equal(a.disks[1].pdev_path, b.disks[1].pdev_path);
    free(b.disks[1].pdev_path);
    b.disks[1].pdev_path = strdup("/other");
    assert_false(tandem_domain_config_equal(&a, &b));
    tandem_domain_config_dispose(&a);
    tandem_domain_config_dispose(&b);
    assert_int_equal(a.num_disks, 0);
    assert_null(a.disks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_name_the_path),
        cmocka_unit_test(test_nic_json_layout),
        cmocka_unit_test(test_parse_resets_and_accepts_defaults),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_append_and_copy),
    };
    return cmocka_run_group_tests_name("types_json", tests, setup, teardown);
}
