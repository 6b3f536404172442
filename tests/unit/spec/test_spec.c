/* Disk and vif spec parsers: Xen's conformance cases, Remus targets, error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "tandem.h"

static const char *conformance_dir;
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

static json_t *load_cases(const char *name)
{
    char path[4096];
    json_error_t err;
    json_t *cases;

    snprintf(path, sizeof(path), "%s/%s", conformance_dir, name);
    cases = json_load_file(path, 0, &err);
    if (!cases)
        fail_msg("%s:%d: %s", path, err.line, err.text);
    assert_true(json_is_array(cases));
    assert_true(json_array_size(cases) > 0);
    return cases;
}

/*
 * Parse one case with parse(); 0 if it behaves as the case says, else
 * print why and return 1. text is the device's to_json, obj its gen_json.
 */
typedef int (*parse_fn)(json_t *c, char **text, json_t **obj);

static int check_case(json_t *c, const char *prefix, parse_fn parse)
{
    json_t *expect = json_object_get(c, "expect"), *obj = NULL, *want_v;
    const char *want = json_string_value(json_object_get(c, "stdout_exact"));
    int want_error = json_is_true(json_object_get(c, "error"));
    char *text = NULL, *shown = NULL, *label = json_dumps(c, JSON_COMPACT);
    const char *key;
    int rc, bad = 0;

    tandem_ctx_clear_error(ctx);
    rc = parse(c, &text, &obj);
    if (want_error) {
        if (rc == 0) {
            printf("FAIL %s: parsed, expected an error; got %s\n", label, text);
            bad = 1;
        } else if (!tandem_ctx_error(ctx)[0]) {
            printf("FAIL %s: error without a message\n", label);
            bad = 1;
        }
        goto out;
    }
    if (rc != 0) {
        printf("FAIL %s: %s\n", label, tandem_ctx_error(ctx));
        bad = 1;
        goto out;
    }
    if (asprintf(&shown, "%s: %s\n\n", prefix, text) < 0)
        fail();
    if (want && strcmp(want, shown)) {
        printf("FAIL %s:\nwant %s\ngot  %s\n", label, want, shown);
        bad = 1;
    }
    json_object_foreach(expect, key, want_v)
    {
        if (!json_equal(want_v, json_object_get(obj, key))) {
            printf("FAIL %s: field %s differs; got %s\n", label, key, text);
            bad = 1;
        }
    }
out:
    free(label);
    free(text);
    free(shown);
    json_decref(obj);
    return bad;
}

static int parse_disk_case(json_t *c, char **text, json_t **obj)
{
    json_t *specs = json_object_get(c, "specs");
    const char *words[32];
    int n = 0, rc;
    tandem_device_disk disk;

    if (specs) {
        assert_true(json_array_size(specs) <= 32);
        for (size_t i = 0; i < json_array_size(specs); i++)
            words[n++] = json_string_value(json_array_get(specs, i));
    } else {
        words[n++] = json_string_value(json_object_get(c, "spec"));
    }
    tandem_device_disk_init(&disk);
    rc = tandem_disk_parse(ctx, &disk, n, words);
    if (rc == 0) {
        *text = tandem_device_disk_to_json(&disk);
        *obj = tandem_device_disk_gen_json(&disk);
        assert_non_null(*text);
    }
    tandem_device_disk_dispose(&disk);
    return rc;
}

static int parse_vif_case(json_t *c, char **text, json_t **obj)
{
    tandem_device_nic nic;
    int rc;

    tandem_device_nic_init(&nic);
    rc = tandem_nic_parse(ctx, &nic, json_string_value(json_object_get(c, "spec")));
    if (rc == 0) {
        *text = tandem_device_nic_to_json(&nic);
        *obj = tandem_device_nic_gen_json(&nic);
        assert_non_null(*text);
    }
    tandem_device_nic_dispose(&nic);
    return rc;
}

static void run_cases(const char *file, const char *prefix, parse_fn parse)
{
    json_t *cases = load_cases(file);
    int bad = 0;

    for (size_t i = 0; i < json_array_size(cases); i++)
        bad += check_case(json_array_get(cases, i), prefix, parse);
    printf("%s: %zu cases, %d failed\n", file, json_array_size(cases), bad);
    json_decref(cases);
    assert_int_equal(bad, 0);
}

static void test_disk_conformance(void **state)
{
    run_cases("xl-disk-cases.json", "disk", parse_disk_case);
}

static void test_vif_conformance(void **state)
{
    run_cases("xl-vif-cases.json", "vif", parse_vif_case);
}

/* ---- hand-written disk cases */

/* Parse the words (NULL-terminated) into *disk, which the caller disposes. */
static int disk_words(tandem_device_disk *disk, const char *w0, ...)
{
    const char *words[16];
    int n = 0;
    va_list ap;

    va_start(ap, w0);
    for (const char *w = w0; w && n < 16; w = va_arg(ap, const char *))
        words[n++] = w;
    va_end(ap);
    tandem_device_disk_init(disk);
    tandem_ctx_clear_error(ctx);
    return tandem_disk_parse(ctx, disk, n, words);
}

static void disk_rejects(const char *spec, const char *want)
{
    tandem_device_disk disk;

    assert_int_not_equal(disk_words(&disk, spec, NULL), 0);
    if (!strstr(tandem_ctx_error(ctx), want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", spec, tandem_ctx_error(ctx), want);
    /* Every message names the spec it is about. */
    assert_non_null(strstr(tandem_ctx_error(ctx), spec));
    tandem_device_disk_dispose(&disk);
}

static void test_disk_remus(void **state)
{
    tandem_device_disk disk;
    char *text;

    assert_int_equal(disk_words(&disk, "tap:remus:backup1:9000|aio:/srv/guest.img,xvda,w", NULL),
                     0);
    assert_string_equal(disk.pdev_path, "/srv/guest.img");
    assert_string_equal(disk.vdev, "xvda");
    assert_string_equal(disk.remus_host, "backup1");
    assert_int_equal(disk.remus_port, 9000);
    assert_int_equal(disk.format, TANDEM_DISK_FORMAT_RAW);
    assert_int_equal(disk.readwrite, 1);
    text = tandem_device_disk_to_json(&disk);
    assert_string_equal(text, "{\n"
                              "    \"pdev_path\": \"/srv/guest.img\",\n"
                              "    \"vdev\": \"xvda\",\n"
                              "    \"format\": \"raw\",\n"
                              "    \"readwrite\": 1,\n"
                              "    \"remus_host\": \"backup1\",\n"
                              "    \"remus_port\": 9000\n"
                              "}");
    free(text);
    tandem_device_disk_dispose(&disk);

    assert_int_equal(disk_words(&disk, "tap2:remus:10.0.0.2:7001|aio:/a.img,xvdb,r", NULL), 0);
    assert_string_equal(disk.pdev_path, "/a.img");
    assert_string_equal(disk.remus_host, "10.0.0.2");
    assert_int_equal(disk.remus_port, 7001);
    assert_int_equal(disk.readwrite, 0);
    tandem_device_disk_dispose(&disk);

    assert_int_equal(disk_words(&disk, "remus:backup:7|/plain.img,,xvdc", NULL), 0);
    assert_string_equal(disk.pdev_path, "/plain.img");
    assert_string_equal(disk.remus_host, "backup");
    assert_int_equal(disk.remus_port, 7);
    tandem_device_disk_dispose(&disk);

    /* target= takes anything, so IPv6 literals and commas work there. */
    assert_int_equal(disk_words(&disk, "vdev=xvdd", "target=remus:[::1]:9000|sync:/x,y.img", NULL),
                     0);
    assert_string_equal(disk.remus_host, "::1");
    assert_string_equal(disk.pdev_path, "/x,y.img");
    tandem_device_disk_dispose(&disk);

    /* An ordinary disk has no replication target. */
    assert_int_equal(disk_words(&disk, "/srv/g.img,raw,xvda,w", NULL), 0);
    assert_null(disk.remus_host);
    assert_int_equal(disk.remus_port, 0);
    tandem_device_disk_dispose(&disk);

    disk_rejects("tap:remus:backup|aio:/a.img,xvda,w", "HOST:PORT");
    disk_rejects("tap:remus:backup:0|aio:/a.img,xvda,w", "port must be 1 to 65535");
    disk_rejects("tap:remus:backup:65536|aio:/a.img,xvda,w", "port must be 1 to 65535");
    disk_rejects("tap:remus:backup:12x|aio:/a.img,xvda,w", "port must be 1 to 65535");
    disk_rejects("tap:remus:backup:9000/aio:/a.img,xvda,w", "remus:HOST:PORT|IMAGE");
    disk_rejects("tap:remus:backup:9000|vhd:/a.vhd,xvda,w", "raw images only");
    disk_rejects("tap:remus:backup:9000|aio:,xvda,w", "no image");
    disk_rejects("vdev=xvda,target=remus::9000|aio:/a", "HOST:PORT");
    /* Positionally, xl's lexer takes "remus:" before a non-alphanumeric as a bad prefix. */
    disk_rejects("tap:remus::9000|aio:/a,xvda,w", "unknown deprecated disk prefix: \"remus:\"");
    disk_rejects("qcow2:remus:b:9000|aio:/a,xvda,w", "must be a raw image");
}

static void test_disk_errors(void **state)
{
    disk_rejects("/a.img,raw,xvda,w,extra", "too many positional parameters: \"extra\"");
    disk_rejects("/a.img,vmdk,xvda", "unknown value for format: \"vmdk\"");
    disk_rejects("/a.img,raw,xvda,rx", "unknown value for access: \"rx\"");
    disk_rejects("/a.img,,xvda,devtype=floppy", "unknown value for type");
    disk_rejects("backendtype=nbd,vdev=xvda,target=/a", "unknown value for backendtype: \"nbd\"");
    disk_rejects("backendtype=Phy,vdev=xvda,target=/a", "unknown value for backendtype");
    disk_rejects("format=raw,format=qcow2,vdev=xvda,target=/a", "format respecified");
    disk_rejects("vdev=xvda,vdev=xvdb,target=/a", "vdev respecified");
    disk_rejects("/a.img,,xvda,colour=blue", "unknown parameter");
    disk_rejects("/a.img,,xvda,x=1", "unknown parameter");
    disk_rejects("foo:/a.img,xvda,w", "unknown deprecated disk prefix: \"foo:\"");
    disk_rejects("/a.img,,xvda,=w", "bad disk syntax: \"=w\"");
    disk_rejects("/a.img", "no vdev specified");
    disk_rejects("vdev=xvda", "no target specified");
    disk_rejects("/a.img,,hdc:floppy", "unknown deprecated type: \"floppy\"");
    disk_rejects("/a.img,hdc:cdrom", "unknown value for format: \"hdc:cdrom\"");
    disk_rejects(",,hdc:floppy", "unknown deprecated type: \"floppy\"");
    disk_rejects("/a.img,,xvda,colo", "not supported by tandem");
    disk_rejects("/a.img,,xvda,backend=dom1", "not supported by tandem");
}

static void test_disk_odd_inputs(void **state)
{
    tandem_device_disk disk;

    /* target= eats the rest, commas included; one trailing comma is dropped. */
    assert_int_equal(disk_words(&disk, "vdev=xvda, target=/a,b,c,", NULL), 0);
    assert_string_equal(disk.pdev_path, "/a,b,c");
    tandem_device_disk_dispose(&disk);

    /* Leading whitespace is skipped, an empty target may be respecified. */
    assert_int_equal(disk_words(&disk, "  ,raw, xvda", "target=/late.img", NULL), 0);
    assert_string_equal(disk.pdev_path, "/late.img");
    assert_string_equal(disk.vdev, "xvda");
    tandem_device_disk_dispose(&disk);

    /* A colon inside a target that is not a prefix stays in it. */
    assert_int_equal(disk_words(&disk, "/images/a:b.img,,xvda", NULL), 0);
    assert_string_equal(disk.pdev_path, "/images/a:b.img");
    tandem_device_disk_dispose(&disk);

    /* "cdromx" is not the cdrom flag but a positional target. */
    assert_int_equal(disk_words(&disk, "cdromx,,xvda", NULL), 0);
    assert_string_equal(disk.pdev_path, "cdromx");
    assert_int_equal(disk.is_cdrom, 0);
    tandem_device_disk_dispose(&disk);

    /* Several deprecated prefixes stack; the format keyword and the script prefix both apply. */
    assert_int_equal(disk_words(&disk, "tap:aio:qcow2:/q.img,xvda,w", NULL), 0);
    assert_string_equal(disk.pdev_path, "/q.img");
    assert_int_equal(disk.format, TANDEM_DISK_FORMAT_QCOW2);
    tandem_device_disk_dispose(&disk);
    assert_int_equal(disk_words(&disk, "nbd:host:1234,xvda,w", NULL), 0);
    assert_string_equal(disk.script, "block-nbd");
    assert_string_equal(disk.pdev_path, "host:1234");
    tandem_device_disk_dispose(&disk);

    /* backendtype and access=ro */
    assert_int_equal(disk_words(&disk, "backendtype=qdisk,access=ro,vdev=xvda,target=/a", NULL), 0);
    assert_int_equal(disk.backend, TANDEM_DISK_BACKEND_QDISK);
    assert_int_equal(disk.readwrite, 0);
    tandem_device_disk_dispose(&disk);

    /* devtype=disk clears a cdrom given earlier. */
    assert_int_equal(disk_words(&disk, "cdrom", "devtype=disk", "vdev=xvda", "target=/a", NULL), 0);
    assert_int_equal(disk.is_cdrom, 0);
    assert_int_equal(disk.removable, 0);
    tandem_device_disk_dispose(&disk);

    /* No words at all, and an empty word. */
    assert_int_not_equal(disk_words(&disk, NULL), 0);
    tandem_device_disk_dispose(&disk);
    assert_int_not_equal(disk_words(&disk, "", NULL), 0);
    assert_non_null(strstr(tandem_ctx_error(ctx), "no vdev"));
    tandem_device_disk_dispose(&disk);
}

/* ---- hand-written vif cases */

static void vif_rejects(const char *spec, const char *want)
{
    tandem_device_nic nic;

    tandem_device_nic_init(&nic);
    tandem_ctx_clear_error(ctx);
    assert_int_not_equal(tandem_nic_parse(ctx, &nic, spec), 0);
    if (!strstr(tandem_ctx_error(ctx), want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", spec, tandem_ctx_error(ctx), want);
    assert_non_null(strstr(tandem_ctx_error(ctx), spec));
    tandem_device_nic_dispose(&nic);
}

static void test_vif_fields(void **state)
{
    tandem_device_nic nic;
    char *text;

    tandem_device_nic_init(&nic);
    assert_int_equal(tandem_nic_parse(ctx, &nic,
                                      "mac=00:16:3E:1:2:ff, bridge=br0,ip=10.0.0.5,vifname=v1,"
                                      "script=vif-bridge,model=e1000,type=ioemu,devid=3,mtu=9000,"
                                      "rate=10Mb/s@20ms,trusted"),
                     0);
    text = tandem_device_nic_to_json(&nic);
    assert_string_equal(text, "{\n"
                              "    \"devid\": 3,\n"
                              "    \"mtu\": 9000,\n"
                              "    \"model\": \"e1000\",\n"
                              "    \"mac\": \"00:16:3e:01:02:ff\",\n"
                              "    \"ip\": \"10.0.0.5\",\n"
                              "    \"bridge\": \"br0\",\n"
                              "    \"ifname\": \"v1\",\n"
                              "    \"script\": \"vif-bridge\",\n"
                              "    \"nictype\": \"vif_ioemu\",\n"
                              "    \"rate_bytes_per_interval\": 25000,\n"
                              "    \"rate_interval_usecs\": 20000,\n"
                              "    \"trusted\": \"True\"\n"
                              "}");
    free(text);
    /* Later values replace earlier ones; empty items are skipped. */
    assert_int_equal(tandem_nic_parse(ctx, &nic, "bridge=br1,,type=vif,untrusted,"), 0);
    assert_string_equal(nic.bridge, "br1");
    assert_int_equal(nic.nictype, TANDEM_NIC_TYPE_VIF);
    assert_false(tandem_defbool_val(nic.trusted, 1));
    tandem_device_nic_dispose(&nic);
}

static void test_vif_errors(void **state)
{
    vif_rejects("mac=zz:16:3e:00:00:01", "mac: expected xx:xx:xx:xx:xx:xx");
    vif_rejects("mac=00:16:3e:00:00", "mac:");
    vif_rejects("mac=00:16:3e:00:00:01:02", "mac:");
    vif_rejects("mac=000:16:3e:00:00:01", "mac:");
    vif_rejects("type=tap", "type: expected vif or ioemu, got \"tap\"");
    vif_rejects("devid=-1", "devid: expected a number");
    vif_rejects("mtu=15OO", "mtu: expected a number");
    vif_rejects("mtu=99999999999", "mtu:");
    vif_rejects("bridge=br0,colour=blue", "unknown option \"colour\"");
    vif_rejects("foo", "unknown option \"foo\"");
    vif_rejects("accel=x", "not supported by tandem");
    vif_rejects("rate=10MB/s@10h", "invalid replenishment interval \"10h\"");
    vif_rejects("rate=10MB", "invalid rate \"10MB\"");
    vif_rejects("rate=0B/s", "rate overflow");
    vif_rejects("rate=@5ms", "no rate specified");
}

static void test_rate(void **state)
{
    uint64_t bytes = 1;
    uint32_t usecs = 1;

    assert_int_equal(tandem_rate_parse(ctx, "1B/s@1s", &bytes, &usecs), 0);
    assert_int_equal(bytes, 1);
    assert_int_equal(usecs, 1000000);
    assert_int_equal(tandem_rate_parse(ctx, "8b/s@10", &bytes, &usecs), 0);
    assert_int_equal(bytes, 10);
    assert_int_equal(usecs, 10000000);
    assert_int_equal(tandem_rate_parse(ctx, "100KB/s@250u", &bytes, &usecs), 0);
    assert_int_equal(bytes, 25);
    assert_int_equal(usecs, 250);
    assert_int_equal(tandem_rate_parse(ctx, "4294967295GB/s@4us", &bytes, &usecs), 0);
    assert_int_equal(bytes, 4294967295ULL * 4000);
    /* xl reads the number with base 0: a leading 0 is octal. */
    assert_int_equal(tandem_rate_parse(ctx, "010B/s@1s", &bytes, &usecs), 0);
    assert_int_equal(bytes, 8);
    /* Outputs are untouched on failure. */
    bytes = 77;
    usecs = 77;
    assert_int_not_equal(tandem_rate_parse(ctx, "1B/s@4295s", &bytes, &usecs), 0);
    assert_int_not_equal(tandem_rate_parse(ctx, "1B/s@", &bytes, &usecs), 0);
    assert_int_not_equal(tandem_rate_parse(ctx, "1XB/s", &bytes, &usecs), 0);
    assert_int_not_equal(tandem_rate_parse(ctx, "18446744073709551616B/s", &bytes, &usecs), 0);
    assert_int_equal(bytes, 77);
    assert_int_equal(usecs, 77);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_conformance), cmocka_unit_test(test_vif_conformance),
        cmocka_unit_test(test_disk_remus),       cmocka_unit_test(test_disk_errors),
        cmocka_unit_test(test_disk_odd_inputs),  cmocka_unit_test(test_vif_fields),
        cmocka_unit_test(test_vif_errors),       cmocka_unit_test(test_rate),
    };
    struct stat st;

    conformance_dir = argc > 1 ? argv[1] : getenv("TANDEM_CONFORMANCE_DIR");
    if (!conformance_dir || stat(conformance_dir, &st) || !S_ISDIR(st.st_mode)) {
        printf("skip: conformance folder %s not found (pass it as argument 1)\n",
               conformance_dir ? conformance_dir : "(none given)");
        return 77;
    }
    return cmocka_run_group_tests_name("spec", tests, setup, teardown);
}
