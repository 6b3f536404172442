/* Lifecycle API against fake_vmm (no KVM): create, info, list, pause, rename, destroy, failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "domain_internal.h"

struct fixture {
    tandem_ctx *ctx;
    char root[256];
};

static char *fake_vmm; /* $TANDEM_VMM at start; tests may change the variable */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(tandem_ctx_alloc(&f->ctx), 0);
    snprintf(f->root, sizeof(f->root), "/tmp/tandem-lifecycle-test.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    setenv("TANDEM_RUNDIR", f->root, 1);
    setenv("TANDEM_VMM", fake_vmm, 1);
    setenv("TANDEM_CREATE_TIMEOUT_MS", "1500", 1);
    setenv("TANDEM_CONTROL_TIMEOUT_MS", "700", 1);
    setenv("TANDEM_DESTROY_TIMEOUT_MS", "700", 1);
    *state = f;
    return 0;
}

/* Nothing may remain but the lock and the two empty folders. */
static void assert_clean(const char *root)
{
    uint32_t *ids;
    int n;
    char cmd[400];

    assert_int_equal(tdm_rundir_ids(NULL, root, &ids, &n), 0);
    if (n)
        fail_msg("%d domain folders left in %s (first: %u)", n, root, ids[0]);
    free(ids);
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/names')\"", root);
    assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo *list = NULL;
    char cmd[400];
    int n = 0;

    /* Kill whatever a failed test left running. */
    if (tandem_domain_list(f->ctx, &list, &n) == 0)
        for (int i = 0; i < n; i++)
            tandem_domain_destroy(f->ctx, list[i].domid);
    tandem_dominfo_list_free(list, n);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    assert_int_equal(system(cmd), 0);
    tandem_ctx_free(f->ctx);
    free(f);
    return 0;
}

static int create(struct fixture *f, const char *name, const char *mode, unsigned flags,
                  uint32_t *domid)
{
    tandem_domain_config cfg;
    int rc;

    tandem_domain_config_init(&cfg);
    cfg.c_info.name = strdup(name);
    cfg.b_info.kernel = strdup("guest.elf"); /* relative: must arrive absolute */
    cfg.b_info.max_memkb = 65536;
    if (mode)
        cfg.b_info.cmdline = strdup(mode);
    rc = tandem_domain_create(f->ctx, &cfg, flags, domid);
    tandem_domain_config_dispose(&cfg);
    return rc;
}

static void assert_error_has(tandem_ctx *ctx, const char *needle)
{
    if (!strstr(tandem_ctx_error(ctx), needle))
        fail_msg("message '%s' lacks '%s'", tandem_ctx_error(ctx), needle);
}

static void test_create_info_destroy(void **state)
{
    struct fixture *f = *state;
    tandem_domain_config cfg;
    tandem_dominfo info;
    uint32_t id, id2;
    char cwd[1024], want[1100], *path = NULL;

    assert_int_equal(create(f, "alpha", NULL, 0, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(tandem_domain_lookup(f->ctx, "alpha", &id2), 0);
    assert_int_equal(id2, 1);
    assert_int_equal(tandem_domain_lookup(f->ctx, "1", &id2), 0);

    tandem_dominfo_init(&info);
    assert_int_equal(tandem_domain_info(f->ctx, id, &info), 0);
    assert_int_equal(info.domid, 1);
    assert_string_equal(info.name, "alpha");
    assert_int_equal(info.state, TANDEM_DOMAIN_STATE_RUNNING);
    assert_true(info.vmm_pid > 0);
    assert_false(tandem_uuid_is_zero(info.uuid)); /* from the runtime directory */
    tandem_dominfo_dispose(&info);

    tandem_domain_config_init(&cfg);
    assert_int_equal(tandem_domain_get_config(f->ctx, id, &cfg), 0);
    assert_string_equal(cfg.c_info.name, "alpha");
    assert_false(tandem_uuid_is_zero(cfg.c_info.uuid)); /* generated */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(want, sizeof(want), "%s/guest.elf", cwd);
    assert_string_equal(cfg.b_info.kernel, want);
    tandem_domain_config_dispose(&cfg);

    assert_int_equal(tandem_domain_console_path(f->ctx, id, &path), 0);
    {
        char *text = NULL;
        assert_int_equal(tdm_read_file(NULL, path, &text), 0);
        assert_string_equal(text, "hello from alpha");
        free(text);
    }
    free(path);
    assert_int_equal(tandem_domain_alive(f->ctx, id), 1);

    assert_int_equal(tandem_domain_destroy(f->ctx, id), 0);
    assert_int_equal(tandem_domain_alive(f->ctx, id), 0);
    assert_int_equal(tandem_domain_lookup(f->ctx, "alpha", &id2), TANDEM_ERR_NOTFOUND);
    assert_string_equal(tandem_ctx_error(f->ctx), "no domain named 'alpha'");
    assert_int_equal(tandem_domain_lookup(f->ctx, "1", &id2), TANDEM_ERR_NOTFOUND);
    assert_string_equal(tandem_ctx_error(f->ctx), "no domain with id 1");
    assert_int_equal(tandem_domain_destroy(f->ctx, id), TANDEM_ERR_NOTFOUND);
    assert_clean(f->root);
}

static void test_pause_unpause_paused_create(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo info;
    uint32_t id;

    tandem_dominfo_init(&info);
    assert_int_equal(create(f, "p", NULL, TANDEM_CREATE_PAUSED, &id), 0);
    assert_int_equal(tandem_domain_info(f->ctx, id, &info), 0);
    assert_int_equal(info.state, TANDEM_DOMAIN_STATE_PAUSED);
    assert_int_equal(tandem_domain_pause(f->ctx, id), TANDEM_ERR_FAIL);
    assert_string_equal(tandem_ctx_error(f->ctx), "domain 'p' (id 1): domain is already paused");
    assert_int_equal(tandem_domain_unpause(f->ctx, id), 0);
    assert_int_equal(tandem_domain_info(f->ctx, id, &info), 0);
    assert_int_equal(info.state, TANDEM_DOMAIN_STATE_RUNNING);
    assert_int_equal(tandem_domain_pause(f->ctx, id), 0);
    assert_int_equal(tandem_domain_info(f->ctx, id, &info), 0);
    assert_int_equal(info.state, TANDEM_DOMAIN_STATE_PAUSED);
    tandem_dominfo_dispose(&info);
    assert_int_equal(tandem_domain_destroy(f->ctx, id), 0);
    assert_clean(f->root);
}

static void test_duplicate_and_list(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo *list = NULL;
    uint32_t a, b, c;
    int n = 0;

    assert_int_equal(create(f, "one", NULL, 0, &a), 0);
    assert_int_equal(create(f, "two", NULL, 0, &b), 0);
    assert_int_equal(create(f, "one", NULL, 0, &c), TANDEM_ERR_EXISTS);
    assert_string_equal(tandem_ctx_error(f->ctx), "a domain named 'one' already exists (id 1)");
    assert_int_equal(tandem_domain_list(f->ctx, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].domid, a);
    assert_string_equal(list[0].name, "one");
    assert_int_equal(list[1].domid, b);
    assert_string_equal(list[1].name, "two");
    tandem_dominfo_list_free(list, n);
    assert_int_equal(tandem_domain_destroy(f->ctx, a), 0);
    assert_int_equal(tandem_domain_destroy(f->ctx, b), 0);
    assert_int_equal(tandem_domain_list(f->ctx, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_null(list);
    assert_clean(f->root);
}

static void test_rename(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo info;
    tandem_domain_config cfg;
    uint32_t a, b, id;

    assert_int_equal(create(f, "old", NULL, 0, &a), 0);
    assert_int_equal(create(f, "other", NULL, 0, &b), 0);
    assert_int_equal(tandem_domain_rename(f->ctx, a, "other"), TANDEM_ERR_EXISTS);
    assert_error_has(f->ctx, "a domain named 'other' already exists (id 2)");
    assert_int_equal(tandem_domain_rename(f->ctx, a, "no/slash"), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_domain_rename(f->ctx, a, "vmm-says-no"), TANDEM_ERR_FAIL);
    assert_error_has(f->ctx, "fake refuses that name");
    assert_int_equal(tandem_domain_lookup(f->ctx, "vmm-says-no", &id), TANDEM_ERR_NOTFOUND);
    assert_int_equal(tandem_domain_rename(f->ctx, a, "old"), 0); /* no-op */
    assert_int_equal(tandem_domain_rename(f->ctx, a, "new"), 0);
    assert_int_equal(tandem_domain_lookup(f->ctx, "old", &id), TANDEM_ERR_NOTFOUND);
    assert_int_equal(tandem_domain_lookup(f->ctx, "new", &id), 0);
    assert_int_equal(id, a);
    tandem_dominfo_init(&info);
    assert_int_equal(tandem_domain_info(f->ctx, a, &info), 0);
    assert_string_equal(info.name, "new");
    tandem_dominfo_dispose(&info);
    tandem_domain_config_init(&cfg);
    assert_int_equal(tandem_domain_get_config(f->ctx, a, &cfg), 0);
    assert_string_equal(cfg.c_info.name, "new");
    tandem_domain_config_dispose(&cfg);
    /* The old name is free for a new domain. */
    assert_int_equal(create(f, "old", NULL, 0, &id), 0);
    assert_int_equal(id, 3);
    assert_int_equal(tandem_domain_destroy(f->ctx, a), 0);
    assert_int_equal(tandem_domain_destroy(f->ctx, b), 0);
    assert_int_equal(tandem_domain_destroy(f->ctx, id), 0);
    assert_clean(f->root);
}

static void test_create_failures_leave_nothing(void **state)
{
    struct fixture *f = *state;
    uint32_t id;

    assert_int_equal(create(f, "r", "refuse", 0, &id), TANDEM_ERR_FAIL);
    assert_string_equal(tandem_ctx_error(f->ctx), "domain 'r': fake refuses to start 'r'");
    assert_clean(f->root);

    assert_int_equal(create(f, "d", "die", 0, &id), TANDEM_ERR_FAIL);
    assert_error_has(f->ctx, "domain 'd': the VMM exited during start-up");
    assert_error_has(f->ctx, "fake-vmm: dying on purpose"); /* from vmm.log */
    assert_clean(f->root);

    assert_int_equal(create(f, "h", "hang", 0, &id), TANDEM_ERR_TIMEOUT);
    assert_error_has(f->ctx, "domain 'h': the VMM");
    assert_error_has(f->ctx, "did not report ready within 1500 ms; killed it");
    assert_clean(f->root);

    assert_int_equal(create(f, "12", NULL, 0, &id), TANDEM_ERR_INVAL);
    assert_error_has(f->ctx, "all digits");

    {
        /* Executable bit but not a program: execv fails in the child, which reports it. */
        char bogus[300];
        FILE *fp;
        snprintf(bogus, sizeof(bogus), "%s/bogus-vmm", f->root);
        fp = fopen(bogus, "w");
        assert_non_null(fp);
        fputs("\x7f"
              "ELF garbage",
              fp);
        fclose(fp);
        assert_int_equal(chmod(bogus, 0755), 0);
        setenv("TANDEM_VMM", bogus, 1);
        assert_int_equal(create(f, "x", NULL, 0, &id), TANDEM_ERR_FAIL);
        assert_error_has(f->ctx, "domain 'x': cannot execute '");
        assert_error_has(f->ctx, "bogus-vmm': Exec format error");
        unlink(bogus);
        assert_clean(f->root);
    }

    setenv("TANDEM_VMM", "/nonexistent/tandem-vmm", 1);
    assert_int_equal(create(f, "n", NULL, 0, &id), TANDEM_ERR_NOTFOUND);
    assert_error_has(f->ctx, "'/nonexistent/tandem-vmm'");
    assert_clean(f->root);
}

static void test_vmm_exit_is_reaped(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo *list = NULL;
    uint32_t id;
    int n;

    assert_int_equal(create(f, "brief", "exit-soon", 0, &id), 0);
    usleep(800 * 1000);
    assert_int_equal(tandem_domain_lookup(f->ctx, "brief", &id), TANDEM_ERR_NOTFOUND);
    assert_string_equal(tandem_ctx_error(f->ctx),
                        "domain 'brief' (id 1) has exited (poweroff, code 0: fake poweroff)");
    assert_clean(f->root); /* the lookup reaped it */
    assert_int_equal(create(f, "brief", "exit-soon", 0, &id), 0);
    assert_int_equal(tandem_domain_alive(f->ctx, id), 1);
    usleep(800 * 1000);
    assert_int_equal(tandem_domain_alive(f->ctx, id), 0);
    assert_clean(f->root); /* so did seeing it gone */
    assert_int_equal(tandem_domain_list(f->ctx, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_clean(f->root);
}

static void test_killed_vmm_is_reaped(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo info, *list = NULL;
    uint32_t id;
    int n;

    assert_int_equal(create(f, "victim", NULL, 0, &id), 0);
    tandem_dominfo_init(&info);
    assert_int_equal(tandem_domain_info(f->ctx, id, &info), 0);
    assert_int_equal(kill(info.vmm_pid, SIGKILL), 0);
    assert_true(tdm_wait_pid_gone(info.vmm_pid, 2000));
    tandem_dominfo_dispose(&info);
    assert_int_equal(tandem_domain_list(f->ctx, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_clean(f->root);
}

static void test_deaf_and_stubborn_vmm(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo *list = NULL;
    uint32_t a, b;
    int n;

    assert_int_equal(create(f, "deaf", "deaf", 0, &a), 0);
    assert_int_equal(tandem_domain_pause(f->ctx, a), TANDEM_ERR_TIMEOUT);
    assert_error_has(f->ctx, "domain 'deaf' (id 1): control request 'pause': no reply");
    /* list does not fail on one silent VMM */
    assert_int_equal(tandem_domain_list(f->ctx, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].state, TANDEM_DOMAIN_STATE_UNKNOWN);
    assert_string_equal(list[0].name, "deaf");
    tandem_dominfo_list_free(list, n);
    assert_int_equal(tandem_domain_destroy(f->ctx, a), TANDEM_ERR_TIMEOUT);
    assert_error_has(f->ctx, "killed it with SIGKILL and removed its runtime files");
    assert_clean(f->root);

    assert_int_equal(create(f, "stubborn", "stubborn", 0, &b), 0);
    assert_int_equal(tandem_domain_destroy(f->ctx, b), TANDEM_ERR_TIMEOUT);
    assert_error_has(f->ctx, "did not exit within 700 ms of destroy");
    assert_clean(f->root);
}

static void test_vmm_not_accepting(void **state)
{
    struct fixture *f = *state;
    tandem_dominfo info;
    uint32_t id;
    int timeouts = 0;

    /* Once its backlog is full a blocking connect would hang: every call must still time out. */
    assert_int_equal(create(f, "stuck", "noaccept", 0, &id), 0);
    setenv("TANDEM_CONTROL_TIMEOUT_MS", "100", 1);
    tandem_dominfo_init(&info);
    for (int i = 0; i < 40; i++)
        timeouts += tandem_domain_info(f->ctx, id, &info) == TANDEM_ERR_TIMEOUT;
    tandem_dominfo_dispose(&info);
    assert_int_equal(timeouts, 40);
    assert_error_has(f->ctx, "accepted no connection within 100 ms");
    assert_int_equal(tandem_domain_alive(f->ctx, id), 1);
    assert_int_equal(tandem_domain_destroy(f->ctx, id), TANDEM_ERR_TIMEOUT);
    assert_clean(f->root);
}

static void test_control_fd_passing_and_errors(void **state)
{
    struct fixture *f = *state;
    json_t *req, *reply = NULL;
    uint32_t id;
    char *dir, buf[16] = {0};
    int p[2];

    assert_int_equal(create(f, "fds", NULL, 0, &id), 0);
    dir = tdm_domain_path(f->root, id, NULL);
    assert_int_equal(pipe(p), 0);
    req = json_pack("{s:s}", "cmd", "write-fd");
    assert_int_equal(tdm_control_call(f->ctx, dir, req, &reply, &p[1], 1), 0);
    assert_true(json_is_true(json_object_get(reply, "ok")));
    json_decref(reply);
    assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 5);
    assert_string_equal(buf, "fd-ok");
    json_decref(req);
    close(p[0]);
    close(p[1]);

    /* The same through the domain-level request, as save/migrate will use it. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(
        tdm_domain_request_ex(f->ctx, f->root, id, "write-fd", NULL, &p[1], 1, 2000, &reply), 0);
    json_decref(reply);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 5);
    assert_string_equal(buf, "fd-ok");
    close(p[0]);
    close(p[1]);

    req = json_pack("{s:s}", "cmd", "garbage");
    assert_int_equal(tdm_control_call(f->ctx, dir, req, &reply, NULL, 0), TANDEM_ERR_PROTO);
    assert_error_has(f->ctx, "is not a JSON object");
    json_decref(req);
    req = json_pack("{s:s}", "cmd", "nonsense");
    assert_int_equal(tdm_control_call(f->ctx, dir, req, &reply, NULL, 0), TANDEM_ERR_FAIL);
    assert_string_equal(tandem_ctx_error(f->ctx), "unknown command nonsense");
    json_decref(req);
    free(dir);
    assert_int_equal(tandem_domain_destroy(f->ctx, id), 0);
    req = json_pack("{s:s}", "cmd", "info");
    dir = tdm_domain_path(f->root, id, NULL);
    assert_int_equal(tdm_control_call(f->ctx, dir, req, &reply, NULL, 0), TANDEM_ERR_NOTFOUND);
    json_decref(req);
    free(dir);
    assert_clean(f->root);
}

static void test_concurrent_creates(void **state)
{
    struct fixture *f = *state;
    pid_t pids[8];
    int ok = 0;

    /* 8 processes create distinct names, then 2 race for one name. */
    for (int i = 0; i < 8; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            tandem_ctx *ctx;
            char name[16];
            uint32_t id;
            tandem_ctx_free(f->ctx);
            if (tandem_ctx_alloc(&ctx))
                _exit(2);
            f->ctx = ctx;
            snprintf(name, sizeof(name), "c%d", i);
            _exit(create(f, name, NULL, 0, &id) == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < 8; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    assert_int_equal(ok, 8);
    {
        tandem_dominfo *list = NULL;
        int n;
        assert_int_equal(tandem_domain_list(f->ctx, &list, &n), 0);
        assert_int_equal(n, 8);
        for (int i = 0; i < 8; i++)
            assert_int_equal(list[i].domid, (uint32_t)i + 1);
        for (int i = 0; i < n; i++)
            assert_int_equal(tandem_domain_destroy(f->ctx, list[i].domid), 0);
        tandem_dominfo_list_free(list, n);
    }
    assert_clean(f->root);

    ok = 0;
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            uint32_t id;
            tandem_ctx *ctx;
            if (tandem_ctx_alloc(&ctx))
                _exit(2);
            f->ctx = ctx;
            _exit(create(f, "twin", NULL, 0, &id) == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    assert_int_equal(ok, 1);
    {
        uint32_t id;
        assert_int_equal(tandem_domain_lookup(f->ctx, "twin", &id), 0);
        assert_int_equal(tandem_domain_destroy(f->ctx, id), 0);
    }
    assert_clean(f->root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_info_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_unpause_paused_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_failures_leave_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmm_exit_is_reaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_vmm_is_reaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deaf_and_stubborn_vmm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmm_not_accepting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_fd_passing_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creates, setup, teardown),
    };
    if (!getenv("TANDEM_VMM") || access(getenv("TANDEM_VMM"), X_OK)) {
        printf("SKIP: TANDEM_VMM does not name the fake VMM\n");
        return 77;
    }
    fake_vmm = strdup(getenv("TANDEM_VMM"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
