/* Unit tests of the runtime directory: names, domid allocation, concurrency, liveness, reaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "domain_internal.h"

struct fixture {
    tandem_ctx *ctx;
    char root[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(tandem_ctx_alloc(&f->ctx), 0);
    /* A nested path also checks that the root is created with its parents. */
    snprintf(f->root, sizeof(f->root), "/tmp/tandem-rundir-test.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    strcat(f->root, "/host/run");
    *state = f;
    return 0;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char top[256];
    snprintf(top, sizeof(top), "%s", f->root);
    *strstr(top, "/host/run") = '\0';
    rm_rf(top);
    tandem_ctx_free(f->ctx);
    free(f);
    return 0;
}

static int exists(const char *root, const char *rel)
{
    char p[512];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    return lstat(p, &sb) == 0;
}

static char *slurp(const char *root, const char *rel)
{
    char p[512], *text = NULL;
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    return tdm_read_file(NULL, p, &text) == 0 ? text : NULL;
}

static void put(const char *root, const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    assert_int_equal(tdm_write_file(NULL, p, text, strlen(text)), 0);
}

/* A pid that certainly does not exist any more (a reaped child's). */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void test_name_check(void **state)
{
    struct fixture *f = *state;
    static const char *good[] = {"web", "a", "web-1.example_2", "9lives", "x9"};
    static const struct {
        const char *name, *msg;
    } bad[] = {
        {"", "missing or empty"},
        {"12", "all digits"},
        {".hidden", "must not start with '.'"},
        {"-opt", "must not start with '-'"},
        {"a/b", "character '/' at position 2"},
        {"a b", "character ' ' at position 2"},
        {"ünï", "character"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too long"},
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(tdm_name_check(f->ctx, good[i]), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tdm_name_check(f->ctx, bad[i].name), TANDEM_ERR_INVAL);
        if (!strstr(tandem_ctx_error(f->ctx), bad[i].msg))
            fail_msg("name '%s': message '%s' lacks '%s'", bad[i].name, tandem_ctx_error(f->ctx),
                     bad[i].msg);
    }
    assert_int_equal(tdm_name_check(f->ctx, NULL), TANDEM_ERR_INVAL);
}

static void test_rundir_env(void **state)
{
    (void)state;
    setenv("TANDEM_RUNDIR", "/tmp/x/y", 1);
    assert_string_equal(tandem_rundir(), "/tmp/x/y");
    {
        char cwd[512], want[600];
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        snprintf(want, sizeof(want), "%s/rel/dir", cwd);
        setenv("TANDEM_RUNDIR", "rel/dir", 1); /* the VMM runs in /: made absolute */
        assert_string_equal(tandem_rundir(), want);
    }
    setenv("TANDEM_RUNDIR", "", 1);
    assert_string_equal(tandem_rundir(), "/run/tandem");
    unsetenv("TANDEM_RUNDIR");
    assert_string_equal(tandem_rundir(), "/run/tandem");
}

static void test_allocate_lowest_free(void **state)
{
    struct fixture *f = *state;
    uint32_t id[4];
    int cfd[4];
    char *t;

    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "a", "u-a", &id[0], &cfd[0]), 0);
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "b", "u-b", &id[1], &cfd[1]), 0);
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "c", "u-c", &id[2], &cfd[2]), 0);
    assert_int_equal(id[0], 1);
    assert_int_equal(id[1], 2);
    assert_int_equal(id[2], 3);
    assert_true(cfd[0] >= 0);
    assert_true(exists(f->root, "lock"));
    t = slurp(f->root, "domains/2/name");
    assert_non_null(t);
    assert_string_equal(t, "b");
    free(t);
    t = slurp(f->root, "domains/2/uuid");
    assert_string_equal(t, "u-b");
    free(t);
    {
        char target[64], p[512];
        ssize_t n;
        snprintf(p, sizeof(p), "%s/names/b", f->root);
        n = readlink(p, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, "../domains/2");
    }
    /* Creation in progress: not dead, never reaped. */
    assert_int_equal(tdm_domain_status(f->root, 2, NULL), TDM_DOM_CREATING);
    assert_int_equal(tdm_rundir_name_lookup(f->ctx, f->root, "b", &id[3]), 0);
    assert_int_equal(id[3], 2);

    /* Release the middle one: its id and name come free and 2 is reused first. */
    /* A remover that came for another domain with this domid leaves it alone. */
    assert_int_equal(tdm_rundir_remove(f->ctx, f->root, 2, "u-other"), 0);
    assert_true(exists(f->root, "domains/2"));
    assert_int_equal(tdm_rundir_remove(f->ctx, f->root, 2, "u-b"), 0);
    close(cfd[1]);
    assert_false(exists(f->root, "domains/2"));
    assert_false(exists(f->root, "names/b"));
    assert_int_equal(tdm_rundir_name_lookup(f->ctx, f->root, "b", &id[3]), TANDEM_ERR_NOTFOUND);
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "b", "u-b2", &id[3], &cfd[3]), 0);
    assert_int_equal(id[3], 2);
    {
        uint32_t *ids;
        int n;
        assert_int_equal(tdm_rundir_ids(f->ctx, f->root, &ids, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(ids[0], 1);
        assert_int_equal(ids[1], 2);
        assert_int_equal(ids[2], 3);
        free(ids);
    }
    close(cfd[0]);
    close(cfd[2]);
    close(cfd[3]);
}

static void test_duplicate_name(void **state)
{
    struct fixture *f = *state;
    uint32_t id, id2 = 0;
    int cfd, cfd2 = -1;

    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "web", "u", &id, &cfd), 0);
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "web", "u", &id2, &cfd2),
                     TANDEM_ERR_EXISTS);
    assert_string_equal(tandem_ctx_error(f->ctx), "a domain named 'web' already exists (id 1)");
    assert_int_equal(cfd2, -1);
    assert_false(exists(f->root, "domains/2")); /* nothing half-made */
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "bad/name", "u", &id2, &cfd2),
                     TANDEM_ERR_INVAL);
    assert_false(exists(f->root, "domains/2"));
    close(cfd);
}

/*
 * Fork n creators that all allocate at once (released together through a
 * pipe), each holding its reservation until the parent has seen all
 * results, as a real create holds it while its VMM starts.
 * ids[i] = domid or 0 on failure; rcs[i] = rc.
 */
static void race(const char *root, int n, const char *const *names, uint32_t *ids, int *rcs)
{
    int go[2], results[2], hold[2];
    pid_t pids[16];

    assert_true(n <= 16);
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(results), 0);
    assert_int_equal(pipe(hold), 0);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct {
                int idx, rc;
                uint32_t id;
            } r = {i, 0, 0};
            tandem_ctx *ctx;
            int cfd = -1;
            char c;
            close(go[1]);
            close(results[0]);
            close(hold[1]);
            if (tandem_ctx_alloc(&ctx))
                _exit(2);
            (void)!read(go[0], &c, 1); /* all start together */
            r.rc = tdm_rundir_allocate(ctx, root, names[i], "uuid", &r.id, &cfd);
            (void)!write(results[1], &r, sizeof(r));
            (void)!read(hold[0], &c, 1); /* EOF when the parent has all results */
            _exit(0);
        }
    }
    close(go[0]);
    close(results[1]);
    close(hold[0]);
    close(go[1]); /* EOF: go */
    for (int i = 0; i < n; i++) {
        struct {
            int idx, rc;
            uint32_t id;
        } r;
        assert_int_equal(read(results[0], &r, sizeof(r)), (ssize_t)sizeof(r));
        ids[r.idx] = r.id;
        rcs[r.idx] = r.rc;
    }
    close(hold[1]);
    close(results[0]);
    for (int i = 0; i < n; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

static void test_concurrent_distinct(void **state)
{
    struct fixture *f = *state;
    static const char *const names[8] = {"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"};
    uint32_t ids[8];
    int rcs[8], seen[9] = {0};

    race(f->root, 8, names, ids, rcs);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(rcs[i], 0);
        assert_true(ids[i] >= 1 && ids[i] <= 8);
        seen[ids[i]]++;
    }
    for (int i = 1; i <= 8; i++)
        assert_int_equal(seen[i], 1);
    /* Each name points at the folder that holds that name. */
    for (int i = 0; i < 8; i++) {
        uint32_t id;
        char rel[64], *t;
        assert_int_equal(tdm_rundir_name_lookup(f->ctx, f->root, names[i], &id), 0);
        assert_int_equal(id, ids[i]);
        snprintf(rel, sizeof(rel), "domains/%u/name", id);
        t = slurp(f->root, rel);
        assert_non_null(t);
        assert_string_equal(t, names[i]);
        free(t);
    }
}

static void test_concurrent_same_name(void **state)
{
    struct fixture *f = *state;
    static const char *const names[6] = {"same", "same", "same", "same", "same", "same"};
    uint32_t ids[6];
    int rcs[6], ok = 0, exists_rc = 0;

    race(f->root, 6, names, ids, rcs);
    for (int i = 0; i < 6; i++) {
        if (rcs[i] == 0)
            ok++;
        else if (rcs[i] == TANDEM_ERR_EXISTS)
            exists_rc++;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(exists_rc, 5);
    /* The creators have exited, so their reservations are dead now; losers left nothing. */
    {
        uint32_t *ids2;
        int n;
        assert_int_equal(tdm_rundir_ids(f->ctx, f->root, &ids2, &n), 0);
        assert_int_equal(n, 1);
        free(ids2);
    }
}

static void test_reap_dead_pid(void **state)
{
    struct fixture *f = *state;
    uint32_t id, id2;
    int cfd, cfd2;
    char pidtext[32];
    pid_t pid;

    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "gone", "u", &id, &cfd), 0);
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "stays", "u", &id2, &cfd2), 0);
    snprintf(pidtext, sizeof(pidtext), "%d\n", (int)dead_pid());
    put(f->root, "domains/1/vmm.pid", pidtext);
    put(f->root, "domains/1/exit-status", "{\"reason\":\"crash\",\"code\":7}");
    tdm_rundir_created(f->root, id, cfd);
    assert_false(exists(f->root, "domains/1/creating"));
    assert_int_equal(tdm_domain_status(f->root, 1, &pid), TDM_DOM_DEAD);
    {
        char *why = tdm_exit_summary(f->root, 1);
        assert_non_null(why);
        assert_string_equal(why, "crash, code 7");
        free(why);
    }
    put(f->root, "domains/1/exit-status",
        "{\"reason\":\"crash\",\"code\":-1,\"message\":\"bad pointer at rip 0x10\"}\n");
    {
        char *why = tdm_exit_summary(f->root, 1);
        assert_string_equal(why, "crash, code -1: bad pointer at rip 0x10");
        free(why);
    }
    put(f->root, "domains/1/exit-status",
        "{\"reason\":\"destroyed\",\"code\":0,\"message\":\"destroyed\"}");
    {
        char *why = tdm_exit_summary(f->root, 1);
        assert_string_equal(why, "destroyed, code 0");
        free(why);
    }
    {
        int lock;
        assert_int_equal(tdm_rundir_lock(f->ctx, f->root, &lock), 0);
        assert_int_equal(tdm_rundir_reap(f->ctx, f->root), 1);
        tdm_rundir_unlock(lock);
    }
    assert_false(exists(f->root, "domains/1"));
    assert_false(exists(f->root, "names/gone"));
    assert_true(exists(f->root, "domains/2"));
    assert_true(exists(f->root, "names/stays"));
    /* The name is free again. */
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "gone", "u", &id, &cfd), 0);
    assert_int_equal(id, 1);
    close(cfd);
    close(cfd2);
}

static void test_reap_creator_died(void **state)
{
    struct fixture *f = *state;
    uint32_t id;
    int cfd;

    /* A creator that died before its VMM wrote a pid: the lock is gone, so is the entry. */
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "orphan", "u", &id, &cfd), 0);
    assert_int_equal(tdm_domain_status(f->root, id, NULL), TDM_DOM_CREATING);
    close(cfd);
    assert_int_equal(tdm_domain_status(f->root, id, NULL), TDM_DOM_DEAD);
    assert_int_equal(tdm_rundir_reap_one(f->ctx, f->root, id), 1);
    assert_false(exists(f->root, "domains/1"));
    assert_false(exists(f->root, "names/orphan"));
    assert_int_equal(tdm_domain_status(f->root, id, NULL), TDM_DOM_ABSENT);
}

static void test_reap_zombie(void **state)
{
    struct fixture *f = *state;
    uint32_t id;
    int cfd;
    char pidtext[32];
    pid_t z = fork();

    assert_true(z >= 0);
    if (z == 0)
        _exit(0);
    usleep(100 * 1000); /* let it become a zombie; not waited for yet */
    assert_false(tdm_pid_alive(z));
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "zomb", "u", &id, &cfd), 0);
    snprintf(pidtext, sizeof(pidtext), "%d", (int)z);
    put(f->root, "domains/1/vmm.pid", pidtext);
    tdm_rundir_created(f->root, id, cfd);
    assert_int_equal(tdm_domain_status(f->root, id, NULL), TDM_DOM_DEAD);
    waitpid(z, NULL, 0);
}

static int listen_at(const char *root, uint32_t domid)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    assert_true(s >= 0);
    assert_true((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/domains/%u/control.sock",
                                 root, domid) < sizeof(sa.sun_path));
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 4), 0);
    return s;
}

static void test_live_and_refused(void **state)
{
    struct fixture *f = *state;
    char pidtext[32];
    uint32_t id;
    int cfd, s, lock;
    pid_t pid;

    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "live", "u", &id, &cfd), 0);
    snprintf(pidtext, sizeof(pidtext), "%d", (int)getpid());
    put(f->root, "domains/1/vmm.pid", pidtext);
    s = listen_at(f->root, id);
    tdm_rundir_created(f->root, id, cfd);
    assert_int_equal(tdm_domain_status(f->root, id, &pid), TDM_DOM_LIVE);
    assert_int_equal(pid, getpid());
    assert_int_equal(tdm_rundir_lock(f->ctx, f->root, &lock), 0);
    assert_int_equal(tdm_rundir_reap(f->ctx, f->root), 0);
    tdm_rundir_unlock(lock);
    assert_true(exists(f->root, "domains/1"));
    /* A live pid whose socket refuses is a recycled pid: the VMM is gone. */
    close(s);
    assert_int_equal(tdm_domain_status(f->root, id, NULL), TDM_DOM_DEAD);
    assert_int_equal(tdm_rundir_reap_one(f->ctx, f->root, id), 1);
    assert_false(exists(f->root, "domains/1"));
}

static void test_dangling_name_link(void **state)
{
    struct fixture *f = *state;
    char p[512];
    uint32_t id;
    int cfd, lock;

    assert_int_equal(tdm_rundir_init(f->ctx, f->root), 0);
    snprintf(p, sizeof(p), "%s/names/ghost", f->root);
    assert_int_equal(symlink("../domains/5", p), 0);
    assert_int_equal(tdm_rundir_lock(f->ctx, f->root, &lock), 0);
    assert_int_equal(tdm_rundir_reap(f->ctx, f->root), 0);
    tdm_rundir_unlock(lock);
    assert_false(exists(f->root, "names/ghost"));
    assert_int_equal(symlink("../domains/5", p), 0);
    /* Create reaps it too, so the name is usable. */
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "ghost", "u", &id, &cfd), 0);
    assert_int_equal(id, 1);
    close(cfd);
}

static void test_release_keeps_foreign_link(void **state)
{
    struct fixture *f = *state;
    uint32_t a, b;
    int ca, cb;

    /* Domain 1's name file says "x" but names/x belongs to domain 2: releasing 1 keeps it. */
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "y", "u", &a, &ca), 0);
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "x", "u", &b, &cb), 0);
    put(f->root, "domains/1/name", "x");
    assert_int_equal(tdm_rundir_remove(f->ctx, f->root, a, "u"), 0);
    assert_false(exists(f->root, "domains/1"));
    assert_true(exists(f->root, "names/x"));
    close(ca);
    close(cb);
}

static void test_rename_links(void **state)
{
    struct fixture *f = *state;
    uint32_t a, b, id;
    int ca, cb;
    char *t;

    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "one", "u", &a, &ca), 0);
    assert_int_equal(tdm_rundir_allocate(f->ctx, f->root, "two", "u", &b, &cb), 0);
    assert_int_equal(tdm_rundir_rename_begin(f->ctx, f->root, a, "two"), TANDEM_ERR_EXISTS);
    assert_string_equal(tandem_ctx_error(f->ctx), "a domain named 'two' already exists (id 2)");
    assert_int_equal(tdm_rundir_rename_begin(f->ctx, f->root, a, "uno"), 0);
    assert_int_equal(tdm_rundir_rename_commit(f->ctx, f->root, a, "one", "uno"), 0);
    assert_false(exists(f->root, "names/one"));
    assert_int_equal(tdm_rundir_name_lookup(f->ctx, f->root, "uno", &id), 0);
    assert_int_equal(id, a);
    t = slurp(f->root, "domains/1/name");
    assert_string_equal(t, "uno");
    free(t);
    assert_int_equal(tdm_rundir_rename_begin(f->ctx, f->root, a, "tmp"), 0);
    tdm_rundir_rename_abort(f->root, "tmp");
    assert_false(exists(f->root, "names/tmp"));
    close(ca);
    close(cb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_name_check, setup, teardown),
        cmocka_unit_test(test_rundir_env),
        cmocka_unit_test_setup_teardown(test_allocate_lowest_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_same_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_dead_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_creator_died, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_zombie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_name_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_keeps_foreign_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_links, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
