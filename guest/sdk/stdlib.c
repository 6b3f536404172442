/* Guest SDK libc subset: number parsing, abs, rand, qsort. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parse an unsigned magnitude; *neg set by a leading '-'. Sets *end like strtoul. */
static unsigned long long parse(const char *s, char **end, int base, int *neg, int *overflow)
{
    const char *p = s, *digits_start;
    unsigned long long v = 0;

    *neg = 0;
    *overflow = 0;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+' || *p == '-')
        *neg = *p++ == '-';
    if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        isxdigit((unsigned char)p[2])) {
        p += 2;
        base = 16;
    } else if (base == 0) {
        base = p[0] == '0' ? 8 : 10;
    }
    digits_start = p;
    for (;; p++) {
        int d;
        if (isdigit((unsigned char)*p))
            d = *p - '0';
        else if (isalpha((unsigned char)*p))
            d = tolower((unsigned char)*p) - 'a' + 10;
        else
            break;
        if (d >= base)
            break;
        if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
            *overflow = 1;
        else
            v = v * (unsigned)base + (unsigned)d;
    }
    if (end)
        *end = (char *)(p == digits_start ? s : p);
    return v;
}

unsigned long long strtoull(const char *s, char **end, int base)
{
    int neg, ovf;
    unsigned long long v = parse(s, end, base, &neg, &ovf);

    if (ovf) {
        errno = ERANGE;
        return ULLONG_MAX;
    }
    return neg ? -v : v;
}

unsigned long strtoul(const char *s, char **end, int base)
{
    return (unsigned long)strtoull(s, end, base);
}

long long strtoll(const char *s, char **end, int base)
{
    int neg, ovf;
    unsigned long long v = parse(s, end, base, &neg, &ovf);

    if (ovf || v > (unsigned long long)LLONG_MAX + (unsigned)neg) {
        errno = ERANGE;
        return neg ? LLONG_MIN : LLONG_MAX;
    }
    return neg ? (long long)(0 - v) : (long long)v;
}

long strtol(const char *s, char **end, int base)
{
    return (long)strtoll(s, end, base);
}

int atoi(const char *s)
{
    return (int)strtol(s, NULL, 10);
}

long atol(const char *s)
{
    return strtol(s, NULL, 10);
}

int abs(int x)
{
    return x < 0 ? -x : x;
}

long labs(long x)
{
    return x < 0 ? -x : x;
}

long long llabs(long long x)
{
    return x < 0 ? -x : x;
}

static uint64_t rand_state = 88172645463325252ull;

int rand(void)
{
    /* xorshift64 */
    rand_state ^= rand_state << 13;
    rand_state ^= rand_state >> 7;
    rand_state ^= rand_state << 17;
    return (int)(rand_state >> 33);
}

void srand(unsigned seed)
{
    rand_state = seed ? seed : 88172645463325252ull;
}

static void swap(char *a, char *b, size_t size)
{
    while (size--) {
        char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

/* Insertion sort for short ranges, else a simple quicksort (guests sort little). */
void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    char *b = base;
    size_t i, j, store;

    if (n < 2)
        return;
    if (n <= 16) {
        for (i = 1; i < n; i++)
            for (j = i; j > 0 && cmp(b + (j - 1) * size, b + j * size) > 0; j--)
                swap(b + (j - 1) * size, b + j * size, size);
        return;
    }
    swap(b + (n / 2) * size, b + (n - 1) * size, size);
    for (i = 0, store = 0; i < n - 1; i++)
        if (cmp(b + i * size, b + (n - 1) * size) < 0)
            swap(b + i * size, b + store++ * size, size);
    swap(b + store * size, b + (n - 1) * size, size);
    qsort(b, store, size, cmp);
    qsort(b + (store + 1) * size, n - store - 1, size, cmp);
}
