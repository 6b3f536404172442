/* Unit tests of tandem-kvclient's history format and loss checker, on crafted histories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvc_history.h"

/* Parse a history given as lines into ops (all must be R records). */
static size_t load(const char *const *lines, struct kvc_op *ops)
{
    size_t n = 0;
    for (; lines[n]; n++)
        assert_int_equal(kvc_history_parse(lines[n], &ops[n]), 1);
    return n;
}

static int check(const char *const *lines, const char *observed, char *why)
{
    struct kvc_op ops[16];
    size_t n = load(lines, ops);
    why[0] = 0;
    return kvc_check_key(ops, n, observed, why, 1200);
}

static void test_parse(void **state)
{
    struct kvc_op op;
    assert_int_equal(kvc_history_parse("R 3 17 100 250 ack SET k1 abc.1 OK\n", &op), 1);
    assert_int_equal(op.conn, 3);
    assert_int_equal(op.id, 17);
    assert_int_equal(op.send_us, 100);
    assert_int_equal(op.reply_us, 250);
    assert_int_equal(op.status, KVC_ACK);
    assert_int_equal(op.op, KVC_SET);
    assert_string_equal(op.key, "k1");
    assert_string_equal(op.arg, "abc.1");
    assert_string_equal(op.reply, "OK");
    assert_int_equal(kvc_history_parse("R 0 2 5 - broken DEL k2 - -\n", &op), 1);
    assert_int_equal(op.reply_us, -1);
    assert_int_equal(op.status, KVC_BROKEN);
    assert_string_equal(op.arg, "");
    assert_string_equal(op.reply, "");
    assert_int_equal(kvc_history_parse("R 0 3 5 9 ack INCR c1 - ERR value is not an integer", &op),
                     1);
    assert_string_equal(op.reply, "ERR value is not an integer");

    assert_int_equal(kvc_history_parse("# tandem-kvclient history v1\n", &op), 0);
    assert_int_equal(kvc_history_parse("E 100 2 broken: closed by the server\n", &op), 0);
    assert_int_equal(kvc_history_parse("\n", &op), 0);
    assert_int_equal(kvc_history_parse("X whatever\n", &op), -1);
    assert_int_equal(kvc_history_parse("R 0 2 5 - ack DEL k2 - -\n", &op), -1); /* ack, no reply */
    assert_int_equal(kvc_history_parse("R 0 2 5 9 broken DEL k2 - OK\n", &op), -1);
    assert_int_equal(kvc_history_parse("R 0 2 5 9 ack FROB k2 - OK\n", &op), -1);
    assert_int_equal(kvc_history_parse("R 0 2 x 9 ack DEL k2 - OK\n", &op), -1);
    assert_int_equal(kvc_history_parse("R 0 2 5 9 ack DEL\n", &op), -1);

    /* write then parse gives the record back */
    struct kvc_op w = {
        .conn = 7, .id = 99, .send_us = 1000, .reply_us = 1500, .status = KVC_ACK, .op = KVC_GET};
    strcpy(w.key, "k9");
    strcpy(w.reply, "VALUE x.y.z");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kvc_history_write(f, &w);
    fclose(f);
    assert_string_equal(buf, "R 7 99 1000 1500 ack GET k9 - VALUE x.y.z\n");
    assert_int_equal(kvc_history_parse(buf, &op), 1);
    assert_memory_equal(&op.reply, &w.reply, sizeof(w.reply));
    free(buf);
}

static void test_load_errors(void **state)
{
    char path[] = "/tmp/kvc-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# tandem-kvclient history v1\nR 0 1 5 9 ack SET k a OK\nR oops\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    struct kvc_op *ops;
    size_t n;
    char err[512];
    assert_int_equal(kvc_history_load(path, &ops, &n, err, sizeof(err)), -1);
    char want[600];
    snprintf(want, sizeof(want), "history '%s' line 3 is not a valid record", path);
    assert_string_equal(err, want);
    unlink(path);
    assert_int_equal(kvc_history_load(path, &ops, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open history"));
}

/* Two writes in sequence: only the later one may be observed. */
static void test_register_sequential(void **state)
{
    const char *const h[] = {"R 0 1 0 10 ack SET k v1 OK", "R 1 2 20 30 ack SET k v2 OK", NULL};
    char why[1200];
    assert_int_equal(check(h, "v2", why), 0);
    assert_int_equal(check(h, "v1", why), 1);
    assert_non_null(strstr(why, "server has 'v1'"));
    assert_non_null(strstr(why, "SET v2 (conn 1 id 2"));
    assert_int_equal(check(h, NULL, why), 1);
    assert_non_null(strstr(why, "key is missing but no DEL"));
    assert_int_equal(check(h, "other", why), 1);
    assert_non_null(strstr(why, "which no write of this history made"));
}

/* Overlapping writes may take effect in either order. */
static void test_register_concurrent(void **state)
{
    const char *const h[] = {"R 0 1 0 10 ack SET k v1 OK", "R 1 2 5 15 ack SET k v2 OK", NULL};
    char why[1200];
    assert_int_equal(check(h, "v1", why), 0);
    assert_int_equal(check(h, "v2", why), 0);
}

/* A write without a reply may or may not have happened. */
static void test_register_unacknowledged(void **state)
{
    const char *const h[] = {"R 0 1 0 10 ack SET k v1 OK", "R 0 2 20 - broken SET k v2 -",
                             "R 1 3 25 - timeout DEL k - -", NULL};
    char why[1200];
    assert_int_equal(check(h, "v1", why), 0);
    assert_int_equal(check(h, "v2", why), 0);
    assert_int_equal(check(h, NULL, why), 0);
    /* but an unacknowledged write does not excuse losing a later acknowledged one */
    const char *const h2[] = {"R 0 1 0 - broken SET k v1 -", "R 1 2 20 30 ack SET k v2 OK", NULL};
    assert_int_equal(check(h2, "v1", why), 0); /* v1 may have landed after v2 */
    const char *const h3[] = {"R 0 1 0 10 ack SET k v0 OK", "R 0 2 20 - broken SET k v1 -",
                              "R 1 3 40 50 ack SET k v2 OK", NULL};
    assert_int_equal(check(h3, "v0", why), 1);
}

/* A write nobody acknowledged, but whose value a client read, must not be lost either. */
static void test_register_witnessed_by_read(void **state)
{
    const char *const h[] = {"R 0 1 0 10 ack SET k v1 OK", "R 0 2 20 - broken SET k v2 -",
                             "R 1 3 30 40 ack GET k - VALUE v2", NULL};
    char why[1200];
    assert_int_equal(check(h, "v2", why), 0);
    assert_int_equal(check(h, "v1", why), 1);
    assert_non_null(strstr(why, "broken, but its value was read at 40 us"));
    /* a read of the older value does not make the newer write certain */
    const char *const h2[] = {"R 0 1 0 10 ack SET k v1 OK", "R 0 2 20 - broken SET k v2 -",
                              "R 1 3 30 40 ack GET k - VALUE v1", NULL};
    assert_int_equal(check(h2, "v1", why), 0);
    /* only a read makes the key checked at all */
    const char *const h3[] = {"R 0 2 20 - timeout SET k v2 -", "R 1 3 30 40 ack GET k - VALUE v2",
                              NULL};
    assert_int_equal(check(h3, NULL, why), 1);
    const char *const h4[] = {"R 0 2 20 - timeout SET k v2 -", "R 1 3 30 40 ack GET k - NOTFOUND",
                              NULL};
    assert_int_equal(check(h4, NULL, why), -1);
}

static void test_register_delete(void **state)
{
    const char *const h[] = {"R 0 1 0 10 ack SET k v1 OK", "R 0 2 20 30 ack DEL k - OK", NULL};
    char why[1200];
    assert_int_equal(check(h, NULL, why), 0);
    assert_int_equal(check(h, "v1", why), 1);
    assert_non_null(strstr(why, "DEL (conn 0 id 2"));
    const char *const h2[] = {"R 0 1 0 10 ack DEL k - NOTFOUND", "R 0 2 20 30 ack SET k v1 OK",
                              NULL};
    assert_int_equal(check(h2, NULL, why), 1);
    assert_non_null(strstr(why, "key is missing (from DEL"));
    assert_int_equal(check(h2, "v1", why), 0);
}

/* A write refused with ERR did not happen; reads are not writes. */
static void test_register_errors_and_reads(void **state)
{
    const char *const h[] = {"R 0 1 0 10 ack SET k v1 OK", "R 0 2 20 30 ack SET k v2 ERR disk full",
                             "R 0 3 40 50 ack GET k - VALUE v1", NULL};
    char why[1200];
    assert_int_equal(check(h, "v1", why), 0);
    assert_int_equal(check(h, "v2", why), 1);
    const char *const none[] = {"R 0 1 0 10 ack GET k - NOTFOUND", "R 0 2 0 - broken SET k v -",
                                "R 0 3 0 10 ack SET k v ERR disk full", NULL};
    assert_int_equal(check(none, NULL, why), -1);
}

static void test_counter(void **state)
{
    const char *const h[] = {"R 0 1 0 10 ack INCR c - VALUE 1", "R 1 2 5 15 ack INCR c - VALUE 2",
                             "R 0 3 20 30 ack INCR c - VALUE 3", NULL};
    char why[1200];
    assert_int_equal(check(h, "3", why), 0);
    assert_int_equal(check(h, "2", why), 1);
    assert_non_null(strstr(why, "counter is 2 but INCR (conn 0 id 3) was acknowledged with 3"));
    assert_int_equal(check(h, NULL, why), 1);
    assert_non_null(strstr(why, "missing"));
    assert_int_equal(check(h, "4", why), 1);
    assert_non_null(strstr(why, "applied twice"));
    assert_int_equal(check(h, "x", why), 1);

    const char *const h2[] = {"R 0 1 0 10 ack INCR c - VALUE 41", "R 0 2 20 - timeout INCR c - -",
                              "R 1 3 20 - broken INCR c - -", NULL};
    assert_int_equal(check(h2, "41", why), 0);
    assert_int_equal(check(h2, "42", why), 0);
    assert_int_equal(check(h2, "43", why), 0);
    assert_int_equal(check(h2, "44", why), 1);
    assert_int_equal(check(h2, "40", why), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_register_sequential),
        cmocka_unit_test(test_register_concurrent),
        cmocka_unit_test(test_register_unacknowledged),
        cmocka_unit_test(test_register_witnessed_by_read),
        cmocka_unit_test(test_register_delete),
        cmocka_unit_test(test_register_errors_and_reads),
        cmocka_unit_test(test_counter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
