/* Unit tests of the xl.cfg parser: grammar, errors (exact text), +=, overrides, lookups, JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tandem.h"

static tandem_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    return tandem_ctx_alloc(&ctx);
}

static int teardown(void **state)
{
    (void)state;
    tandem_ctx_free(ctx);
    return 0;
}

static tandem_cfg *parse_ok(const char *text)
{
    tandem_cfg *cfg = NULL;
    int rc = tandem_cfg_parse_string(ctx, "t.cfg", text, strlen(text), &cfg);
    if (rc)
        fail_msg("unexpected parse error for <<%s>>: %s", text, tandem_ctx_error(ctx));
    return cfg;
}

/* Parse text expecting failure with exactly message msg. */
static void parse_err(const char *text, size_t len, const char *msg)
{
    tandem_cfg *cfg = NULL;
    int rc = tandem_cfg_parse_string(ctx, "t.cfg", text, len, &cfg);
    if (rc == 0) {
        tandem_cfg_free(cfg);
        fail_msg("<<%s>> parsed but should fail with %s", text, msg);
    }
    assert_int_equal(rc, TANDEM_ERR_INVAL);
    assert_null(cfg);
    assert_string_equal(tandem_ctx_error(ctx), msg);
}
#define PARSE_ERR(text, msg) parse_err(text, strlen(text), msg)

static const char *str(const tandem_cfg *cfg, const char *name)
{
    const char *s = NULL;
    int rc = tandem_cfg_get_string(ctx, cfg, name, &s);
    if (rc)
        fail_msg("get_string %s: %d %s", name, rc, tandem_ctx_error(ctx));
    return s;
}

static long num(const tandem_cfg *cfg, const char *name)
{
    long v = 0;
    int rc = tandem_cfg_get_long(ctx, cfg, name, &v);
    if (rc)
        fail_msg("get_long %s: %d %s", name, rc, tandem_ctx_error(ctx));
    return v;
}

static void test_basic(void **state)
{
    tandem_cfg *cfg = parse_ok("# a comment line\n"
                               "name = \"vm1\"   # trailing comment\n"
                               "memory=256;vcpus = 0x2 ; maxmem = 010\n"
                               "\n"
                               "kernel = 'guest.elf'\n"
                               "_under_Score9 = 7");
    (void)state;
    assert_string_equal(tandem_cfg_source(cfg), "t.cfg");
    assert_int_equal(tandem_cfg_count(cfg), 6);
    assert_string_equal(tandem_cfg_name_at(cfg, 0), "name");
    assert_string_equal(tandem_cfg_name_at(cfg, 5), "_under_Score9");
    assert_null(tandem_cfg_name_at(cfg, 6));
    assert_string_equal(str(cfg, "name"), "vm1");
    assert_int_equal(num(cfg, "memory"), 256);
    assert_int_equal(num(cfg, "vcpus"), 2);
    assert_int_equal(num(cfg, "maxmem"), 8); /* strtol base 0, as xl */
    assert_string_equal(str(cfg, "vcpus"), "0x2");
    assert_string_equal(str(cfg, "kernel"), "guest.elf");
    assert_int_equal(tandem_cfg_line(cfg, "name"), 2);
    assert_int_equal(tandem_cfg_line(cfg, "maxmem"), 3);
    assert_int_equal(tandem_cfg_line(cfg, "kernel"), 5);
    assert_int_equal(tandem_cfg_line(cfg, "_under_Score9"), 6);
    assert_int_equal(tandem_cfg_line(cfg, "nothere"), 0);
    tandem_cfg_free(cfg);
}

static void test_empty_and_blank(void **state)
{
    const char *texts[] = {"", "\n\n\n", "# only a comment", "# c\n# d\n", ";;;\n;", "  \t \n"};
    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        tandem_cfg *cfg = parse_ok(texts[i]);
        char *json = tandem_cfg_to_json(cfg);
        assert_int_equal(tandem_cfg_count(cfg), 0);
        assert_string_equal(json, "[]");
        free(json);
        tandem_cfg_free(cfg);
    }
}

static void test_numbers(void **state)
{
    tandem_cfg *cfg = parse_ok("a = 0\nb = 123456789\nc = 0x7fffffff\nd = 12abc\ne = 1e5\n"
                               "f = 99999999999999999999999\ng = \"42\"\nh = \" 42\"\n");
    long v;
    (void)state;
    assert_int_equal(num(cfg, "a"), 0);
    assert_int_equal(num(cfg, "b"), 123456789);
    assert_int_equal(num(cfg, "c"), 0x7fffffff);
    /* xl's number token is [0-9][0-9a-fx]*: 12abc is one token that is not a valid number. */
    assert_string_equal(str(cfg, "d"), "12abc");
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "d", &v), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:4: d: expected a number, got '12abc'");
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "e", &v), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "f", &v), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx),
                        "t.cfg:6: f: expected a number, got '99999999999999999999999', which is "
                        "out of range");
    assert_int_equal(num(cfg, "g"), 42); /* a quoted number reads as a number, as in xl */
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "h", &v), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "zz", &v), TANDEM_ERR_NOTFOUND);
    tandem_cfg_free(cfg);
    /* Values quoted in lookup messages stay on one line and are shortened. */
    cfg = parse_ok("m = \"a\\nb\"\nl = '0123456789012345678901234567890123456789xyz'\n");
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "m", &v), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:1: m: expected a number, got 'a\\x0ab'");
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "l", &v), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:2: l: expected a number, got "
                                               "'0123456789012345678901234567890123456789...'");
    tandem_cfg_free(cfg);
}

static void test_bool(void **state)
{
    tandem_cfg *cfg = parse_ok("a = 0\nb = 1\nc = 2\nd = \"yes\"\n");
    int b = -1;
    (void)state;
    assert_int_equal(tandem_cfg_get_bool(ctx, cfg, "a", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(tandem_cfg_get_bool(ctx, cfg, "b", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(tandem_cfg_get_bool(ctx, cfg, "c", &b), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:3: c: expected 0 or 1, got 2");
    assert_int_equal(tandem_cfg_get_bool(ctx, cfg, "d", &b), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:4: d: expected a number, got 'yes'");
    assert_int_equal(tandem_cfg_get_bool(ctx, cfg, "e", &b), TANDEM_ERR_NOTFOUND);
    tandem_cfg_free(cfg);
}

static void test_escapes(void **state)
{
    tandem_cfg *cfg = parse_ok("a = \"q\\\"s\\'b\\\\\"\n"
                               "b = 'tab\\there\\nnl'\n"
                               "c = \"\\a\\b\\f\\r\\v\"\n"
                               "d = \"\\x41\\x7a\\x7A\"\n"
                               "e = \"\\101\\60\\0601\\7\"\n"
                               "g = \"#not a comment; nor = this\"\n"
                               "h = ''\n");
    (void)state;
    assert_string_equal(str(cfg, "a"), "q\"s'b\\");
    assert_string_equal(str(cfg, "b"), "tab\there\nnl");
    assert_string_equal(str(cfg, "c"), "\a\b\f\r\v");
    assert_string_equal(str(cfg, "d"), "Azz");
    assert_string_equal(str(cfg, "e"), "A001\007");
    assert_string_equal(str(cfg, "g"), "#not a comment; nor = this");
    assert_string_equal(str(cfg, "h"), "");
    tandem_cfg_free(cfg);
    /* 'it''s' is two strings in a row: not one value. */
    PARSE_ERR("f = 'it''s'\n", "t.cfg:1: config parsing error near ''s'': syntax error, unexpected "
                               "STRING, expecting end of file or NEWLINE or ';'");
}

static void test_escape_errors(void **state)
{
    (void)state;
    PARSE_ERR("a = 1\nb = \"x\\qy\"\n", "t.cfg:2: config parsing error near '\"x\\qy\"': invalid "
                                        "character after backslash in quoted string");
    PARSE_ERR("a = '\\x4'", "t.cfg:1: config parsing error near ''\\x4'': invalid digit after "
                            "backslash hex numerical character escape in quoted string (\\x takes "
                            "two hex digits)");
    PARSE_ERR("a = '\\xg0'", "t.cfg:1: config parsing error near ''\\xg0'': invalid digit after "
                             "backslash hex numerical character escape in quoted string (\\x takes "
                             "two hex digits)");
    PARSE_ERR("a = '\\0'", "t.cfg:1: config parsing error near ''\\0'': escape of a NUL character "
                           "in quoted string");
    PARSE_ERR("a = '\\x00'", "t.cfg:1: config parsing error near ''\\x00'': escape of a NUL "
                             "character in quoted string");
    PARSE_ERR("a = '\\400'", "t.cfg:1: config parsing error near ''\\400'': octal character escape "
                             "above \\377 in quoted string");
    PARSE_ERR("a = '\\8'", "t.cfg:1: config parsing error near ''\\8'': invalid character after "
                           "backslash in quoted string");
}

static void test_string_lexical_errors(void **state)
{
    (void)state;
    PARSE_ERR("name = \"my vm\nb=1\n", "t.cfg:1: config parsing error near '\"my': lexical "
                                       "error: unterminated quoted string (strings end on the line "
                                       "they start)");
    PARSE_ERR("a = 1\n\nname = 'abc", "t.cfg:3: config parsing error near ''abc': lexical error: "
                                      "unterminated quoted string (strings end on the line they "
                                      "start)");
    /* A backslash cannot hide the end of the line. */
    PARSE_ERR("a = 'abc\\\n'", "t.cfg:1: config parsing error near ''abc\\': lexical error: "
                               "unterminated quoted string (strings end on the line they start)");
    parse_err("a = 'x\0y'", 9,
              "t.cfg:1: config parsing error near ''x\\x00': lexical error: NUL "
              "byte in quoted string");
}

static void test_lexical_errors(void **state)
{
    (void)state;
    PARSE_ERR("memory = -1\n", "t.cfg:1: config parsing error near '-1': lexical error: unexpected "
                               "character '-' (Python code is not supported in xl.cfg files)");
    PARSE_ERR("a = 1\nb = 1.5\n", "t.cfg:2: config parsing error near '.5': lexical error: "
                                  "unexpected character '.' (Python code is not supported in "
                                  "xl.cfg files)");
    PARSE_ERR("a = 1 + 2", "t.cfg:1: config parsing error near '+': lexical error: unexpected "
                           "character '+' (Python code is not supported in xl.cfg files)");
    PARSE_ERR("a = $x y", "t.cfg:1: config parsing error near '$x': lexical error: unexpected "
                          "character '$'");
    PARSE_ERR("a = 1\r", "t.cfg:1: config parsing error near '\\x0d': lexical error: unexpected "
                         "byte 0x0d");
    parse_err("a\0= 1", 5,
              "t.cfg:1: config parsing error near '\\x00=': lexical error: "
              "unexpected byte 0x00");
    PARSE_ERR("\n\n\xff\xfe", "t.cfg:3: config parsing error near '\\xff\\xfe': lexical error: "
                              "unexpected byte 0xff");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    PARSE_ERR("a = 1 b", "t.cfg:1: config parsing error near 'b': syntax error, unexpected IDENT, "
                         "expecting end of file or NEWLINE or ';'");
    PARSE_ERR("a 1", "t.cfg:1: config parsing error near '1': syntax error, unexpected NUMBER, "
                     "expecting += or '='");
    PARSE_ERR("\n= 1", "t.cfg:2: config parsing error near '=': syntax error, unexpected '=', "
                       "expecting end of file or IDENT or NEWLINE or ';'");
    PARSE_ERR("3 = 4", "t.cfg:1: config parsing error near '3': syntax error, unexpected NUMBER, "
                       "expecting end of file or IDENT or NEWLINE or ';'");
    PARSE_ERR("a =\n1", "t.cfg:1: config parsing error near <newline>: syntax error, unexpected "
                        "NEWLINE, expecting STRING or NUMBER or '['");
    /* A comment ends the line; xl shows it as the token. */
    PARSE_ERR("b=2\n\na = # c \n", "t.cfg:3: config parsing error near '# c': syntax error, "
                                   "unexpected NEWLINE, expecting STRING or NUMBER or '['");
    PARSE_ERR("a = ", "t.cfg:1: config parsing error near end of file: syntax error, unexpected "
                      "end of file, expecting STRING or NUMBER or '['");
    PARSE_ERR("a", "t.cfg:1: config parsing error near end of file: syntax error, unexpected end "
                   "of file, expecting += or '='");
    PARSE_ERR("a = b", "t.cfg:1: config parsing error near 'b': syntax error, unexpected IDENT, "
                       "expecting STRING or NUMBER or '['");
    PARSE_ERR("a = 0xFF", "t.cfg:1: config parsing error near 'FF': syntax error, unexpected "
                          "IDENT, expecting end of file or NEWLINE or ';'");
    PARSE_ERR("a == 1", "t.cfg:1: config parsing error near '=': syntax error, unexpected '=', "
                        "expecting STRING or NUMBER or '['");
    PARSE_ERR("a = ]", "t.cfg:1: config parsing error near ']': syntax error, unexpected ']', "
                       "expecting STRING or NUMBER or '['");
}

static void test_lists(void **state)
{
    tandem_cfg *cfg = parse_ok("disk = [ 'a,raw,xvda,rw', \"b\" ]\n"
                               "empty = []\n"
                               "empty2 = [\n\n]\n"
                               "multi = [\n"
                               "    'x',   # first\n"
                               "\n"
                               "    2\n"
                               "    ,\n"
                               "    'z',\n"
                               "]\n"
                               "nested = [[1, [2, []]], 'q',]\n"
                               "one = ['solo']\n");
    const tandem_cfg_value *l, *e, *inner;
    (void)state;
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "disk", &l), 0);
    assert_int_equal(tandem_cfg_value_kind(l), TANDEM_CFG_LIST);
    assert_int_equal(tandem_cfg_value_count(l), 2);
    assert_null(tandem_cfg_value_string(l));
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 0)), "a,raw,xvda,rw");
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 1)), "b");
    assert_null(tandem_cfg_value_elem(l, 2));
    assert_null(tandem_cfg_value_elem(l, -1));
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "empty", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 0);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "empty2", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 0);
    assert_int_equal(tandem_cfg_value_line(l), 3);
    assert_int_equal(tandem_cfg_line(cfg, "multi"), 6);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "multi", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 3);
    assert_int_equal(tandem_cfg_value_line(l), 6);
    e = tandem_cfg_value_elem(l, 0);
    assert_int_equal(tandem_cfg_value_line(e), 7);
    assert_int_equal(tandem_cfg_value_quoted(e), 1);
    e = tandem_cfg_value_elem(l, 1);
    assert_int_equal(tandem_cfg_value_line(e), 9);
    assert_int_equal(tandem_cfg_value_quoted(e), 0);
    assert_string_equal(tandem_cfg_value_string(e), "2");
    assert_int_equal(tandem_cfg_value_line(tandem_cfg_value_elem(l, 2)), 11);
    assert_int_equal(tandem_cfg_line(cfg, "nested"), 13);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "nested", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 2);
    e = tandem_cfg_value_elem(l, 0);
    assert_int_equal(tandem_cfg_value_kind(e), TANDEM_CFG_LIST);
    inner = tandem_cfg_value_elem(e, 1);
    assert_int_equal(tandem_cfg_value_count(inner), 2);
    assert_int_equal(tandem_cfg_value_count(tandem_cfg_value_elem(inner, 1)), 0);
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 1)), "q");
    tandem_cfg_free(cfg);
}

static void test_list_errors(void **state)
{
    (void)state;
    PARSE_ERR("a = [1,,2]", "t.cfg:1: config parsing error near ',': syntax error, unexpected ',', "
                            "expecting STRING or NUMBER or NEWLINE or '[' or ']'");
    PARSE_ERR("a = [1,,]", "t.cfg:1: config parsing error near ',': syntax error, unexpected ',', "
                           "expecting STRING or NUMBER or NEWLINE or '[' or ']'");
    PARSE_ERR("a = [\n1,\n,\n]", "t.cfg:3: config parsing error near ',': syntax error, unexpected "
                                 "',', expecting STRING or NUMBER or NEWLINE or '[' or ']'");
    PARSE_ERR("a = [,]", "t.cfg:1: config parsing error near ',': syntax error, unexpected ',', "
                         "expecting STRING or NUMBER or NEWLINE or '[' or ']'");
    PARSE_ERR("a = [1 2]", "t.cfg:1: config parsing error near '2': syntax error, unexpected "
                           "NUMBER, expecting NEWLINE or ']' or ','");
    PARSE_ERR("a = [1\n 'x']", "t.cfg:2: config parsing error near ''x'': syntax error, "
                               "unexpected STRING, expecting NEWLINE or ']' or ','");
    PARSE_ERR("a = [1],", "t.cfg:1: config parsing error near ',': syntax error, unexpected ',', "
                          "expecting end of file or NEWLINE or ';'");
    PARSE_ERR("a = [1; 2]", "t.cfg:1: config parsing error near ';': syntax error, unexpected "
                            "';', expecting NEWLINE or ']' or ','");
    PARSE_ERR("a = [b]", "t.cfg:1: config parsing error near 'b': syntax error, unexpected IDENT, "
                         "expecting STRING or NUMBER or NEWLINE or '[' or ']'");
    /* An unclosed list: the error is on the last line with text. */
    PARSE_ERR("a = [1,\n  2,\n", "t.cfg:2: config parsing error near end of file: syntax error, "
                                 "unexpected end of file, expecting STRING or NUMBER or NEWLINE or "
                                 "'[' or ']'");
    PARSE_ERR("a = [1,\n  2", "t.cfg:2: config parsing error near end of file: syntax error, "
                              "unexpected end of file, expecting NEWLINE or ']' or ','");
}

static void test_deep_nesting(void **state)
{
    char buf[512];
    tandem_cfg *cfg;
    const tandem_cfg_value *l;
    size_t o = 0;
    (void)state;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "a = ");
    for (int i = 0; i < 64; i++)
        buf[o++] = '[';
    buf[o++] = '1';
    for (int i = 0; i < 64; i++)
        buf[o++] = ']';
    buf[o] = '\0';
    cfg = parse_ok(buf);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "a", &l), 0);
    for (int i = 1; i < 64; i++)
        l = tandem_cfg_value_elem(l, 0);
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 0)), "1");
    tandem_cfg_free(cfg);
    o = 0;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "a = ");
    for (int i = 0; i < 65; i++)
        buf[o++] = '[';
    buf[o] = '\0';
    PARSE_ERR(buf, "t.cfg:1: config parsing error near '[': lists nested more than 64 deep");
}

static void test_repeated_keys(void **state)
{
    tandem_cfg *cfg =
        parse_ok("memory = 128\nname = 'a'\nmemory = 256\nname = 'b'\nmemory = 512\n");
    (void)state;
    assert_int_equal(tandem_cfg_count(cfg), 2);
    assert_string_equal(tandem_cfg_name_at(cfg, 0), "memory");
    assert_string_equal(tandem_cfg_name_at(cfg, 1), "name");
    assert_int_equal(num(cfg, "memory"), 512);
    assert_int_equal(tandem_cfg_line(cfg, "memory"), 5);
    assert_string_equal(str(cfg, "name"), "b");
    assert_int_equal(tandem_cfg_line(cfg, "name"), 4);
    tandem_cfg_free(cfg);
    /* A later = of another kind simply replaces. */
    cfg = parse_ok("a = [1]\na = 'x'\nb = 'y'\nb = ['z']\n");
    assert_string_equal(str(cfg, "a"), "x");
    {
        const tandem_cfg_value *l;
        assert_int_equal(tandem_cfg_get_list(ctx, cfg, "b", &l), 0);
        assert_int_equal(tandem_cfg_value_count(l), 1);
    }
    tandem_cfg_free(cfg);
}

static void test_append(void **state)
{
    tandem_cfg *cfg = parse_ok("extra = 'console=hvc0'\n"
                               "extra += ' quiet'\n"
                               "disk = ['a']\n"
                               "disk += ['b', ['c']]\n"
                               "disk += []\n"
                               "new += 'first'\n"
                               "newl += [1]\n"
                               "n = 1\n"
                               "n += 2\n"
                               "r = ['x']\nr += ['y']\nr = ['z']\nr += ['w']\n");
    const tandem_cfg_value *l;
    long v;
    (void)state;
    assert_string_equal(str(cfg, "extra"), "console=hvc0 quiet");
    assert_int_equal(tandem_cfg_line(cfg, "extra"), 2);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "disk", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 3);
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 0)), "a");
    assert_int_equal(tandem_cfg_value_line(tandem_cfg_value_elem(l, 0)), 3);
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 1)), "b");
    assert_int_equal(tandem_cfg_value_line(tandem_cfg_value_elem(l, 1)), 4);
    assert_int_equal(tandem_cfg_value_kind(tandem_cfg_value_elem(l, 2)), TANDEM_CFG_LIST);
    assert_int_equal(tandem_cfg_line(cfg, "disk"), 5);
    /* += with nothing before acts as =. */
    assert_string_equal(str(cfg, "new"), "first");
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "newl", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 1);
    /* Numbers concatenate as text; xl refuses them as numbers, and so do we. */
    assert_string_equal(str(cfg, "n"), "12");
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "n", &v), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:9: n: expected a number, got '12' built "
                                               "with +=");
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "r", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 2);
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 0)), "z");
    assert_string_equal(tandem_cfg_value_string(tandem_cfg_value_elem(l, 1)), "w");
    tandem_cfg_free(cfg);

    PARSE_ERR("a = 'x'\n\na += ['y']\n", "t.cfg:3: config parsing error near '+=': cannot add a "
                                         "list to 'a', which is a string (set at t.cfg:1)");
    PARSE_ERR("a = [1]\na += 2\n", "t.cfg:2: config parsing error near '+=': cannot add a string "
                                   "to 'a', which is a list (set at t.cfg:1)");
}

static void test_lookup_kinds(void **state)
{
    tandem_cfg *cfg = parse_ok("s = 'x'\nl = ['a', 'b']\nn = ['a', ['b'], 'c']\nnum = 3\n");
    const tandem_cfg_value *l;
    const char *s;
    char **sl = NULL;
    int n = -1;
    long lv;
    (void)state;
    assert_int_equal(tandem_cfg_get_string(ctx, cfg, "l", &s), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:2: l: expected a single value, got a list");
    assert_int_equal(tandem_cfg_get_long(ctx, cfg, "l", &lv), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:2: l: expected a number, got a list");
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "s", &l), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:1: s: expected a list, got 'x'");
    tandem_ctx_clear_error(ctx);
    assert_int_equal(tandem_cfg_get_string(ctx, cfg, "none", &s), TANDEM_ERR_NOTFOUND);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "none", &l), TANDEM_ERR_NOTFOUND);
    assert_int_equal(tandem_cfg_get_string_list(ctx, cfg, "none", &sl, &n), TANDEM_ERR_NOTFOUND);
    assert_string_equal(tandem_ctx_error(ctx), ""); /* NOTFOUND records no message */

    assert_int_equal(tandem_cfg_get_string_list(ctx, cfg, "l", &sl, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(sl[0], "a");
    assert_string_equal(sl[1], "b");
    assert_null(sl[2]);
    tandem_cfg_free_string_list(sl);
    assert_int_equal(tandem_cfg_get_string_list(ctx, cfg, "s", &sl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(sl[0], "x");
    assert_null(sl[1]);
    tandem_cfg_free_string_list(sl);
    assert_int_equal(tandem_cfg_get_string_list(ctx, cfg, "num", &sl, &n), 0);
    assert_string_equal(sl[0], "3");
    tandem_cfg_free_string_list(sl);
    sl = NULL;
    assert_int_equal(tandem_cfg_get_string_list(ctx, cfg, "n", &sl, &n), TANDEM_ERR_INVAL);
    assert_null(sl);
    assert_string_equal(tandem_ctx_error(ctx), "t.cfg:3: n[1]: expected a string, got a list");
    tandem_cfg_free(cfg);
}

static void test_line_numbers(void **state)
{
    tandem_cfg *cfg = parse_ok("\r\n# c\r\n\n"
                               "a = [\n"
                               "  1,\n"
                               "  [\n"
                               "    2\n"
                               "  ]\n"
                               "]; b = 'x'\n"
                               "c = 1\r\n");
    const tandem_cfg_value *l;
    (void)state;
    assert_int_equal(tandem_cfg_line(cfg, "a"), 4);
    assert_int_equal(tandem_cfg_line(cfg, "b"), 9);
    assert_int_equal(tandem_cfg_line(cfg, "c"), 10);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "a", &l), 0);
    assert_int_equal(tandem_cfg_value_line(tandem_cfg_value_elem(l, 1)), 6);
    assert_int_equal(tandem_cfg_value_line(tandem_cfg_value_elem(tandem_cfg_value_elem(l, 1), 0)),
                     7);
    tandem_cfg_free(cfg);
    PARSE_ERR("a = [\n 1,\n 2\n]\nb = 1 c\n", "t.cfg:5: config parsing error near 'c': syntax "
                                              "error, unexpected IDENT, expecting end of file or "
                                              "NEWLINE or ';'");
}

static void test_long_lines(void **state)
{
    size_t n = 200000;
    char *text = malloc(n + 64), *big = NULL;
    tandem_cfg *cfg;
    (void)state;
    assert_non_null(text);
    strcpy(text, "cmdline = '");
    memset(text + 11, 'x', n);
    strcpy(text + 11 + n, "'\n");
    cfg = parse_ok(text);
    assert_int_equal(strlen(str(cfg, "cmdline")), n);
    tandem_cfg_free(cfg);
    /* A long bad token is shortened in the message. */
    text[11 + n] = '\0';
    assert_int_equal(tandem_cfg_parse_string(ctx, "t.cfg", text, strlen(text), &cfg),
                     TANDEM_ERR_INVAL);
    assert_non_null(strstr(tandem_ctx_error(ctx), "near ''xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                                  "xxxxxxxxxxxxxxxxxxx...': lexical error"));
    assert_true(strlen(tandem_ctx_error(ctx)) < 300);
    free(text);
    /* Many settings on many lines. */
    big = malloc(40 * 5000 + 1);
    assert_non_null(big);
    big[0] = '\0';
    for (int i = 0, o = 0; i < 5000; i++)
        o += sprintf(big + o, "opt%d = %d\n", i, i);
    cfg = parse_ok(big);
    assert_int_equal(tandem_cfg_count(cfg), 5000);
    assert_int_equal(num(cfg, "opt4321"), 4321);
    assert_int_equal(tandem_cfg_line(cfg, "opt4321"), 4322);
    tandem_cfg_free(cfg);
    free(big);
}

static void test_binary_junk(void **state)
{
    unsigned char junk[4096];
    uint32_t x = 12345;
    (void)state;
    for (int round = 0; round < 200; round++) {
        tandem_cfg *cfg = NULL;
        size_t len = (size_t)(x % sizeof(junk));
        int rc;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = (unsigned char)(x >> 16);
        }
        rc = tandem_cfg_parse_string(ctx, "junk", (const char *)junk, len, &cfg);
        if (rc == 0) {
            char *json = tandem_cfg_to_json(cfg);
            assert_non_null(json);
            free(json);
            tandem_cfg_free(cfg);
        } else {
            assert_int_equal(rc, TANDEM_ERR_INVAL);
            assert_null(cfg);
            assert_memory_equal(tandem_ctx_error(ctx), "junk:", 5);
            assert_null(strchr(tandem_ctx_error(ctx), '\n'));
        }
    }
}

static void test_files(void **state)
{
    char dir[] = "/tmp/tandem-cfg-XXXXXX", path[128];
    tandem_cfg *cfg = NULL;
    FILE *f;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/missing.cfg", dir);
    assert_int_equal(tandem_cfg_parse_file(ctx, path, &cfg), TANDEM_ERR_NOTFOUND);
    assert_null(cfg);
    {
        char want[256];
        snprintf(want, sizeof(want),
                 "%s: unable to open configuration file: No such file or directory", path);
        assert_string_equal(tandem_ctx_error(ctx), want);
    }
    snprintf(path, sizeof(path), "%s/vm.cfg", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("name = 'vm'\nmemory = 64\nvcpus = x\n", f);
    fclose(f);
    assert_int_equal(tandem_cfg_parse_file(ctx, path, &cfg), TANDEM_ERR_INVAL);
    {
        char want[256];
        snprintf(want, sizeof(want),
                 "%s:3: config parsing error near 'x': syntax error, unexpected IDENT, expecting "
                 "STRING or NUMBER or '['",
                 path);
        assert_string_equal(tandem_ctx_error(ctx), want);
    }
    f = fopen(path, "w");
    fputs("name = 'vm'\nmemory = 64\n", f);
    fclose(f);
    assert_int_equal(tandem_cfg_parse_file(ctx, path, &cfg), 0);
    assert_string_equal(tandem_cfg_source(cfg), path);
    assert_int_equal(num(cfg, "memory"), 64);
    tandem_cfg_free(cfg);
    /* A directory is not a config file. */
    cfg = NULL;
    assert_int_equal(tandem_cfg_parse_file(ctx, dir, &cfg), TANDEM_ERR_IO);
    assert_null(cfg);
    assert_non_null(strstr(tandem_ctx_error(ctx), "Is a directory"));
    unlink(path);
    rmdir(dir);
}

static void test_overrides(void **state)
{
    tandem_cfg *cfg = parse_ok("name = 'vm'\nmemory = 128\ndisk = ['a']\nextra = 'x'\n");
    const tandem_cfg_value *l;
    (void)state;
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "memory=256", 1), 0);
    assert_int_equal(num(cfg, "memory"), 256);
    assert_int_equal(tandem_cfg_line(cfg, "memory"), 1);
    assert_string_equal(tandem_cfg_source_of(cfg, "memory"), "<command line>");
    assert_string_equal(tandem_cfg_source_of(cfg, "name"), "t.cfg");
    assert_string_equal(tandem_cfg_source_of(cfg, "unset"), "t.cfg");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "name=\"x y\"", 2), 0);
    assert_string_equal(str(cfg, "name"), "x y");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "disk+=[\"b,raw,xvdb,rw\"]", 3), 0);
    assert_int_equal(tandem_cfg_get_list(ctx, cfg, "disk", &l), 0);
    assert_int_equal(tandem_cfg_value_count(l), 2);
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "a=1; b=2", 4), 0);
    assert_int_equal(num(cfg, "a"), 1);
    assert_int_equal(num(cfg, "b"), 2);
    /* Not config syntax: taken as the string. */
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "name=foo", 5), 0);
    assert_string_equal(str(cfg, "name"), "foo");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "kernel=/boot/guest.elf", 6), 0);
    assert_string_equal(str(cfg, "kernel"), "/boot/guest.elf");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "extra+= quiet=1 a,b", 7), 0);
    assert_string_equal(str(cfg, "extra"), "xquiet=1 a,b");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "cmdline=", 8), 0);
    assert_string_equal(str(cfg, "cmdline"), "");
    assert_string_equal(tandem_ctx_error(ctx), "");
    /* The number text stays a string to get_long: memory=256M is refused at lookup. */
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "memory=256M", 9), 0);
    {
        long v;
        assert_int_equal(tandem_cfg_get_long(ctx, cfg, "memory", &v), TANDEM_ERR_INVAL);
        assert_string_equal(tandem_ctx_error(ctx),
                            "<command line>:9: memory: expected a number, got '256M'");
    }
    /* disk was last set by override 3. */
    assert_int_equal(tandem_cfg_line(cfg, "disk"), 3);
    assert_string_equal(tandem_cfg_source_of(cfg, "disk"), "<command line>");
    tandem_cfg_free(cfg);
}

static void test_override_errors(void **state)
{
    tandem_cfg *cfg = parse_ok("name = 'vm'\ndisk = ['a']\n");
    char *before = tandem_cfg_to_json(cfg), *after;
    (void)state;
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "disk=[\"a\",,]", 1), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx),
                        "<command line>:1: config parsing error near ',': syntax error, unexpected "
                        "',', expecting STRING or NUMBER or NEWLINE or '[' or ']'");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "=5", 2), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx),
                        "<command line>:2: config parsing error near '=': syntax error, "
                        "unexpected '=', expecting end of file or IDENT or NEWLINE or ';'");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "name 'x'", 3), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "name='x", 4), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx),
                        "<command line>:4: config parsing error near ''x': lexical error: "
                        "unterminated quoted string (strings end on the line they start)");
    /* A failing override changes nothing, even after a good first half. */
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "memory=1; disk=[", 5), TANDEM_ERR_INVAL);
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "name+=['x']", 6), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx),
                        "<command line>:6: config parsing error near '+=': cannot add a list to "
                        "'name', which is a string (set at t.cfg:1)");
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "disk+=bare", 7), TANDEM_ERR_INVAL);
    assert_string_equal(tandem_ctx_error(ctx),
                        "<command line>:7: config parsing error near '+=': cannot add a string to "
                        "'disk', which is a list (set at t.cfg:2)");
    after = tandem_cfg_to_json(cfg);
    assert_string_equal(before, after);
    assert_int_equal(tandem_cfg_line(cfg, "memory"), 0);
    free(before);
    free(after);
    tandem_cfg_free(cfg);
}

static void test_json(void **state)
{
    tandem_cfg *cfg = parse_ok("name = \"vm\"\nmemory = 0x100\nq = \"256\"\nbad = 12abc\n"
                               "extra = 'a'\nextra += 'b'\n"
                               "disk = [ 'x', 7, [] ]\nu = \"\\xff\\xc3\\xa9\"\n");
    json_t *root, *e;
    json_error_t jerr;
    char *text;
    (void)state;
    assert_int_equal(tandem_cfg_apply_override(ctx, cfg, "memory=64", 1), 0);
    text = tandem_cfg_to_json(cfg);
    assert_non_null(text);
    assert_non_null(strstr(text, "\n    {\n        \"name\": \"name\",\n")); /* 4-space indent */
    root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_array_size(root), 9);
    e = json_array_get(root, 0);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "name");
    assert_string_equal(json_string_value(json_object_get(e, "op")), "=");
    assert_string_equal(json_string_value(json_object_get(e, "value")), "vm");
    assert_int_equal(json_integer_value(json_object_get(e, "line")), 1);
    assert_string_equal(json_string_value(json_object_get(e, "source")), "t.cfg");
    e = json_array_get(root, 1);
    assert_true(json_is_integer(json_object_get(e, "value")));
    assert_int_equal(json_integer_value(json_object_get(e, "value")), 256);
    e = json_array_get(root, 2);
    assert_true(json_is_string(json_object_get(e, "value")));
    assert_string_equal(json_string_value(json_object_get(e, "value")), "256");
    e = json_array_get(root, 3);
    assert_string_equal(json_string_value(json_object_get(e, "value")), "12abc");
    e = json_array_get(root, 5);
    assert_string_equal(json_string_value(json_object_get(e, "op")), "+=");
    assert_string_equal(json_string_value(json_object_get(e, "value")), "b");
    assert_int_equal(json_integer_value(json_object_get(e, "line")), 6);
    e = json_object_get(json_array_get(root, 6), "value");
    assert_int_equal(json_array_size(e), 3);
    assert_string_equal(json_string_value(json_array_get(e, 0)), "x");
    assert_int_equal(json_integer_value(json_array_get(e, 1)), 7);
    assert_int_equal(json_array_size(json_array_get(e, 2)), 0);
    e = json_array_get(root, 7);
    assert_string_equal(json_string_value(json_object_get(e, "value")), "\xef\xbf\xbd\xc3\xa9");
    e = json_array_get(root, 8);
    assert_string_equal(json_string_value(json_object_get(e, "source")), "<command line>");
    assert_int_equal(json_integer_value(json_object_get(e, "value")), 64);
    json_decref(root);
    free(text);
    tandem_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_empty_and_blank),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_escape_errors),
        cmocka_unit_test(test_string_lexical_errors),
        cmocka_unit_test(test_lexical_errors),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_repeated_keys),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_lookup_kinds),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_binary_junk),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
