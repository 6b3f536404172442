/* sdktest: checks the guest SDK's libc subset (formatting, parsing, strings, heap) inside a guest.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem_guest.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAILED: %s (line %d)\n", #cond, __LINE__);                                     \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void check_fmt(const char *want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check_fmt(const char *want, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (strcmp(buf, want) != 0 || n != (int)strlen(want)) {
        printf("FAILED: format \"%s\" gave \"%s\" (%d), want \"%s\"\n", fmt, buf, n, want);
        failures++;
    }
}

static void test_printf(void)
{
    char small[5];

    check_fmt("42 -7 0", "%d %i %u", 42, -7, 0u);
    check_fmt("ff FF 0xff 017", "%x %X %#x %#o", 255u, 255u, 255u, 15u);
    check_fmt("[   42][42   ][00042][+42][ 42]", "[%5d][%-5d][%05d][%+d][% d]", 42, 42, 42, 42, 42);
    check_fmt("-9223372036854775808", "%lld", LLONG_MIN);
    check_fmt("18446744073709551615", "%llu", ULLONG_MAX);
    check_fmt("ffffffffffffffff", "%" PRIx64, UINT64_MAX);
    check_fmt("-128 255 -1 65535", "%hhd %hhu %hd %hu", 128, 255, 65535, 65535);
    check_fmt("123 4096", "%zu %ld", (size_t)123, 4096L);
    check_fmt("[abc][  abc][abc  ][ab]", "[%s][%5s][%-5s][%.2s]", "abc", "abc", "abc", "abc");
    {
        const char *volatile none = NULL; /* volatile: gcc would warn about a literal NULL */
        check_fmt("(null)", "%s", none);
    }
    check_fmt("x%y", "x%%y");
    check_fmt("c=A", "c=%c", 'A');
    check_fmt("0x1000", "%p", (void *)0x1000);
    check_fmt("[  7][007]", "[%*d][%.*d]", 3, 7, 3, 7);
    check_fmt("", "%.0d", 0);
    CHECK(snprintf(small, sizeof(small), "%s", "truncated") == 9);
    CHECK(strcmp(small, "trun") == 0);
    CHECK(snprintf(NULL, 0, "%d", 12345) == 5);
}

static void test_strtol(void)
{
    char *end;

    CHECK(strtol("  -123xyz", &end, 10) == -123 && strcmp(end, "xyz") == 0);
    CHECK(strtol("0x1F", &end, 0) == 31 && *end == '\0');
    CHECK(strtol("017", NULL, 0) == 15);
    CHECK(strtol("z", &end, 36) == 35);
    CHECK(strtol("abc", &end, 10) == 0 && strcmp(end, "abc") == 0);
    errno = 0;
    CHECK(strtoll("99999999999999999999", NULL, 10) == LLONG_MAX && errno == ERANGE);
    errno = 0;
    CHECK(strtoll("-9223372036854775808", NULL, 10) == LLONG_MIN && errno == 0);
    errno = 0;
    CHECK(strtoull("18446744073709551615", NULL, 10) == ULLONG_MAX && errno == 0);
    CHECK(atoi("  +77") == 77);
    CHECK(tg_cmdline_long("n", 0) == 1234);
    CHECK(tg_cmdline_long("missing", -5) == -5);
    CHECK(tg_cmdline_long("word", -1) == -1); /* not a number */
}

static void test_strings(void)
{
    char buf[32], *save, *tok;
    char text[] = "a,b,,c";

    CHECK(strlen("hello") == 5 && strnlen("hello", 3) == 3);
    CHECK(strcmp("abc", "abd") < 0 && strcmp("b", "a") > 0 && strcmp("x", "x") == 0);
    CHECK(strncmp("abcdef", "abcxyz", 3) == 0 && strcasecmp("HeLLo", "hello") == 0);
    strcpy(buf, "hello");
    CHECK(strchr(buf, 'l') == buf + 2 && strrchr(buf, 'l') == buf + 3 && !strchr(buf, 'z'));
    CHECK(strchr(buf, '\0') == buf + 5);
    CHECK(strstr("find the needle", "needle") != NULL && strstr("abc", "x") == NULL);
    CHECK(strspn("aaab", "a") == 3 && strcspn("abc,d", ",") == 3);
    strcpy(buf, "foo");
    strcat(buf, "bar");
    CHECK(strcmp(buf, "foobar") == 0);
    memset(buf, 'x', sizeof(buf));
    strncpy(buf, "ab", 5);
    CHECK(buf[0] == 'a' && buf[2] == 0 && buf[4] == 0 && buf[5] == 'x');
    strcpy(buf, "0123456789");
    memmove(buf + 2, buf, 5); /* overlapping, forwards */
    CHECK(memcmp(buf, "0101234789", 10) == 0);
    memmove(buf, buf + 2, 5); /* overlapping, backwards */
    CHECK(memcmp(buf, "0123434789", 10) == 0);
    CHECK(memchr("abc", 'c', 3) != NULL && memchr("abc", 'd', 3) == NULL);
    tok = strtok_r(text, ",", &save);
    CHECK(tok && strcmp(tok, "a") == 0);
    tok = strtok_r(NULL, ",", &save);
    CHECK(tok && strcmp(tok, "b") == 0);
    tok = strtok_r(NULL, ",", &save);
    CHECK(tok && strcmp(tok, "c") == 0);
    CHECK(strtok_r(NULL, ",", &save) == NULL);
    CHECK(isdigit('7') && !isdigit('a') && isxdigit('F') && isspace('\t') && toupper('q') == 'Q');
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_heap(void)
{
    enum { N = 2000 };
    static uint8_t *blocks[N];
    static size_t sizes[N];
    int values[100], i, j;
    uint8_t *p, *q;

    /* random alloc/free/realloc with contents checked */
    srand(1);
    for (i = 0; i < 20000; i++) {
        j = rand() % N;
        if (blocks[j]) {
            for (size_t k = 0; k < sizes[j]; k++)
                if (blocks[j][k] != (uint8_t)(j + k)) {
                    printf("FAILED: heap block %d corrupted at %zu\n", j, k);
                    failures++;
                    return;
                }
            if (rand() % 2) {
                free(blocks[j]);
                blocks[j] = NULL;
                continue;
            }
            sizes[j] = (size_t)(rand() % 5000);
            p = realloc(blocks[j], sizes[j] ? sizes[j] : 1);
            CHECK(p != NULL);
            blocks[j] = p;
        } else {
            sizes[j] = (size_t)(rand() % 5000);
            blocks[j] = malloc(sizes[j]);
            CHECK(blocks[j] != NULL);
            CHECK(((uintptr_t)blocks[j] & 15) == 0);
        }
        for (size_t k = 0; k < sizes[j]; k++)
            blocks[j][k] = (uint8_t)(j + k);
    }
    for (i = 0; i < N; i++)
        free(blocks[i]);
    /* everything coalesced back: one big allocation fits again */
    p = malloc(tg_boot_info()->mem_size / 4);
    CHECK(p != NULL);
    free(p);
    q = calloc(1000, 8);
    CHECK(q != NULL);
    for (i = 0; i < 8000; i++)
        if (q[i]) {
            CHECK(q[i] == 0);
            break;
        }
    free(q);
    CHECK(malloc((size_t)-1 / 2) == NULL);
    CHECK(calloc((size_t)-1 / 2, 4) == NULL);
    for (i = 0; i < 100; i++)
        values[i] = (i * 37) % 101;
    qsort(values, 100, sizeof(int), cmp_int);
    for (i = 1; i < 100; i++)
        CHECK(values[i - 1] <= values[i]);
}

int main(int argc, char **argv)
{
    CHECK(argc == 3 && strcmp(argv[1], "n=1234") == 0 && strcmp(argv[2], "word=x1") == 0);
    test_printf();
    test_strtol();
    test_strings();
    test_heap();
    assert(failures >= 0);
    if (failures) {
        printf("sdktest: %d failures\n", failures);
        return 1;
    }
    printf("SUCCESS\n");
    return 0;
}
