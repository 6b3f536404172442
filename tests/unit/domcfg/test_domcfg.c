/* Unit tests of xl.cfg → tandem_domain_config: every option, defaults and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tandem.h"

struct fixture {
    tandem_ctx *ctx;
    tandem_domain_config cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(tandem_ctx_alloc(&f->ctx), 0);
    tandem_domain_config_init(&f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tandem_domain_config_dispose(&f->cfg);
    tandem_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* Parse text as file "t.cfg" and convert; returns the library's rc. */
static int convert(struct fixture *f, const char *text)
{
    tandem_cfg *cfg = NULL;
    int rc;

    tandem_domain_config_dispose(&f->cfg); /* expect_error converts several texts in one test */
    tandem_domain_config_init(&f->cfg);
    rc = tandem_cfg_parse_string(f->ctx, "t.cfg", text, strlen(text), &cfg);
    if (rc == 0)
        rc = tandem_domain_config_from_cfg(f->ctx, cfg, &f->cfg);
    tandem_cfg_free(cfg);
    return rc;
}

static void expect_error(struct fixture *f, const char *text, const char *msg)
{
    assert_int_not_equal(convert(f, text), 0);
    if (!strstr(tandem_ctx_error(f->ctx), msg))
        fail_msg("error '%s' lacks '%s'", tandem_ctx_error(f->ctx), msg);
}

static void test_minimal_defaults(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(convert(f, "name='web'\nkernel='/guest.elf'\n"), 0);
    assert_string_equal(f->cfg.c_info.name, "web");
    assert_string_equal(f->cfg.b_info.kernel, "/guest.elf");
    assert_int_equal(f->cfg.b_info.target_memkb, 128 * 1024);
    assert_int_equal(f->cfg.b_info.max_memkb, 128 * 1024);
    assert_int_equal(f->cfg.b_info.max_vcpus, 1);
    assert_int_equal(f->cfg.on_poweroff, TANDEM_ACTION_ON_SHUTDOWN_DESTROY);
    assert_int_equal(f->cfg.on_reboot, TANDEM_ACTION_ON_SHUTDOWN_RESTART);
    assert_int_equal(f->cfg.on_crash, TANDEM_ACTION_ON_SHUTDOWN_DESTROY);
    assert_int_equal(f->cfg.num_disks, 0);
    assert_int_equal(f->cfg.num_nics, 0);
    assert_null(f->cfg.b_info.cmdline);
}

static void test_full(void **state)
{
    struct fixture *f = *state;
    const char *text = "name = \"kv\"\n"
                       "uuid = \"12345678-9abc-def0-1234-56789abcdef0\"\n"
                       "memory = 256; maxmem = 512\n"
                       "vcpus = 1\n"
                       "kernel = \"/k.elf\"\n"
                       "extra = \"ip=10.0.0.2/24 port=7000\"\n"
                       "disk = [ '/srv/kv.img,raw,xvda,rw',\n"
                       "         'tap:remus:backup:9000|aio:/srv/log.img,xvdb,w' ]\n"
                       "vif = [ 'mac=00:16:3e:00:00:01,bridge=br0', 'bridge=br1' ]\n"
                       "on_poweroff = 'preserve'\non_crash = \"restart\"\n"
                       "remus_backup = \"backup\"\n";
    assert_int_equal(convert(f, text), 0);
    assert_int_equal(f->cfg.c_info.uuid[0], 0x12);
    assert_int_equal(f->cfg.c_info.uuid[15], 0xf0);
    assert_int_equal(f->cfg.b_info.target_memkb, 256 * 1024);
    assert_int_equal(f->cfg.b_info.max_memkb, 512 * 1024);
    assert_string_equal(f->cfg.b_info.cmdline, "ip=10.0.0.2/24 port=7000");
    assert_int_equal(f->cfg.num_disks, 2);
    assert_string_equal(f->cfg.disks[0].pdev_path, "/srv/kv.img");
    assert_string_equal(f->cfg.disks[0].vdev, "xvda");
    assert_int_equal(f->cfg.disks[0].readwrite, 1);
    assert_string_equal(f->cfg.disks[1].pdev_path, "/srv/log.img");
    assert_string_equal(f->cfg.disks[1].remus_host, "backup");
    assert_int_equal(f->cfg.disks[1].remus_port, 9000);
    assert_int_equal(f->cfg.num_nics, 2);
    assert_int_equal(f->cfg.nics[0].devid, 0);
    assert_int_equal(f->cfg.nics[1].devid, 1);
    assert_int_equal(f->cfg.nics[0].mac[5], 1);
    assert_string_equal(f->cfg.nics[1].bridge, "br1");
    assert_int_equal(f->cfg.on_poweroff, TANDEM_ACTION_ON_SHUTDOWN_PRESERVE);
    assert_int_equal(f->cfg.on_crash, TANDEM_ACTION_ON_SHUTDOWN_RESTART);
    assert_string_equal(f->cfg.remus_backup, "backup");
}

static void test_root_extra_joined(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(convert(f, "name='a'\nkernel='/k'\nroot='/dev/xvda1'\nextra='quiet'\n"), 0);
    assert_string_equal(f->cfg.b_info.cmdline, "root=/dev/xvda1 quiet");
}

static void test_memory_only_maxmem(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(convert(f, "name='a'\nkernel='/k'\nmaxmem=64\n"), 0);
    assert_int_equal(f->cfg.b_info.target_memkb, 64 * 1024);
    assert_int_equal(f->cfg.b_info.max_memkb, 64 * 1024);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "kernel='/k'\n", "t.cfg: name: option is mandatory");
    expect_error(f, "name='a'\n", "t.cfg: kernel: option is mandatory");
    expect_error(f, "name='a'\nkernel='/k'\nmemory=0\n", "t.cfg:3: memory: 0 is out of range");
    expect_error(f, "name='a'\nkernel='/k'\nmemory='lots'\n", "memory");
    expect_error(f, "name='a'\nkernel='/k'\nmemory=256\nmaxmem=128\n",
                 "t.cfg:4: maxmem: 128 MiB is less than memory (256 MiB)");
    expect_error(f, "name='a b'\nkernel='/k'\n", "t.cfg:1: name: domain name 'a b' has character ' '");
    expect_error(f, "name='123'\nkernel='/k'\n", "all digits");
    /* The rules of create and rename: -N create must not accept what create refuses. */
    expect_error(f, "name='.a'\nkernel='/k'\n", "t.cfg:1: name: domain name '.a' must not start with '.'");
    expect_error(f, "name='a'\nkernel='/k'\nuuid='nope'\n", "t.cfg:3: uuid: 'nope' is not a UUID");
    expect_error(f, "name='a'\nkernel='/k'\non_crash='explode'\n",
                 "t.cfg:3: on_crash: unknown action 'explode'");
    expect_error(f, "name='a'\nkernel='/k'\nbogus=1\n", "t.cfg:3: bogus: unknown option");
    expect_error(f, "name='a'\nkernel='/k'\ntype='hvm'\n", "'hvm' guests are not supported");
    expect_error(f, "name='a'\nkernel='/k'\n\ndisk=['foo']\n", "t.cfg:4: disk[0]");
    expect_error(f, "name='a'\nkernel='/k'\nvif=['bridge=br0',\n 'rate=10ZB/s']\n", "t.cfg:4: vif[1]");
    expect_error(f, "name='a'\nkernel='/k'\ndisk=['/a,raw,xvda,w','/b,raw,xvda,w']\n",
                 "vdev 'xvda' is already used by disk[0]");
    expect_error(f, "name='a'\nkernel='/k'\nvif=['devid=1','devid=1']\n",
                 "devid 1 is already used by vif[0]");
    expect_error(f, "name='a'\nkernel='/k'\ncmdline='x'\nextra='y'\n",
                 "cmdline: cannot be combined");
    expect_error(f, "name='a'\nkernel='/k'\nremus_backup='a b'\n", "remus_backup");
    expect_error(f, "name='a'\nkernel='/k'\nvcpus=0\n", "vcpus: 0 is out of range");
}

static void test_kernel_relative_to_config(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/tdm-domcfg-XXXXXX", path[256], kernel[256];
    tandem_cfg *cfg = NULL;
    FILE *fp;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/g.cfg", dir);
    snprintf(kernel, sizeof(kernel), "%s/img-unlikely-name.elf", dir);
    fp = fopen(kernel, "w");
    assert_non_null(fp);
    fclose(fp);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("name='a'\nkernel='img-unlikely-name.elf'\n", fp);
    fclose(fp);
    assert_int_equal(tandem_cfg_parse_file(f->ctx, path, &cfg), 0);
    assert_int_equal(tandem_domain_config_from_cfg(f->ctx, cfg, &f->cfg), 0);
    assert_string_equal(f->cfg.b_info.kernel, kernel);
    tandem_cfg_free(cfg);
    unlink(kernel);
    unlink(path);
    rmdir(dir);
}

static void test_overrides(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/tdm-domcfg-XXXXXX", path[256];
    char *ov[] = {"memory=512", "name=other", "vif=['bridge=xenbr9']"};
    FILE *fp;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/g.cfg", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("name='a'\nkernel='/k'\nmemory=64\n", fp);
    fclose(fp);
    assert_int_equal(tandem_domain_config_load(f->ctx, path, 3, ov, &f->cfg), 0);
    assert_string_equal(f->cfg.c_info.name, "other");
    assert_int_equal(f->cfg.b_info.target_memkb, 512 * 1024);
    assert_int_equal(f->cfg.num_nics, 1);
    assert_string_equal(f->cfg.nics[0].bridge, "xenbr9");
    unlink(path);
    rmdir(dir);
}

static void test_json_roundtrip(void **state)
{
    struct fixture *f = *state;
    tandem_domain_config back;
    char *a, *b;

    assert_int_equal(convert(f, "name='kv'\nkernel='/k'\ndisk=['/d,raw,xvda,w']\nvif=['bridge=br0']\n"), 0);
    a = tandem_domain_config_to_json(&f->cfg);
    assert_non_null(a);
    tandem_domain_config_init(&back);
    assert_int_equal(tandem_domain_config_from_json(f->ctx, &back, a), 0);
    b = tandem_domain_config_to_json(&back);
    assert_string_equal(a, b);
    assert_true(tandem_domain_config_equal(&f->cfg, &back));
    free(a);
    free(b);
    tandem_domain_config_dispose(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_minimal_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_extra_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_only_maxmem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kernel_relative_to_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_roundtrip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
