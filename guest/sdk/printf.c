/* Guest SDK libc subset: printf family (integers and strings) on the console. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tandem_guest.h"

struct tg_file {
    int unused;
};
static struct tg_file console_file;
FILE *const stdout = &console_file;
FILE *const stderr = &console_file;

/* Where formatted bytes go: a bounded buffer (snprintf) or a chunk flushed to the console. */
struct sink {
    char *buf;
    size_t size;  /* capacity of buf */
    size_t pos;   /* bytes stored in buf */
    size_t total; /* bytes produced */
    bool console; /* flush buf to the console when full */
};

static void put(struct sink *s, char c)
{
    s->total++;
    if (s->console) {
        if (s->pos == s->size) {
            tg_console_write(s->buf, s->pos);
            s->pos = 0;
        }
        s->buf[s->pos++] = c;
    } else if (s->pos + 1 < s->size) {
        s->buf[s->pos++] = c;
    }
}

static void put_n(struct sink *s, char c, int n)
{
    while (n-- > 0)
        put(s, c);
}

struct spec {
    bool left, plus, space, zero, alt;
    int width, prec; /* prec < 0: none */
};

static void emit_str(struct sink *s, const struct spec *sp, const char *str)
{
    size_t len = str ? strlen(str) : 6;
    int pad;

    if (!str)
        str = "(null)";
    if (sp->prec >= 0 && (size_t)sp->prec < len)
        len = (size_t)sp->prec;
    pad = sp->width > (int)len ? sp->width - (int)len : 0;
    if (!sp->left)
        put_n(s, ' ', pad);
    for (size_t i = 0; i < len; i++)
        put(s, str[i]);
    if (sp->left)
        put_n(s, ' ', pad);
}

static void emit_num(struct sink *s, const struct spec *sp, uint64_t v, bool neg, unsigned base,
                     bool upper, const char *prefix)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0, len, pad, zeros;
    char sign = neg ? '-' : sp->plus ? '+' : sp->space ? ' ' : 0;
    size_t plen = prefix ? strlen(prefix) : 0;

    while (v) {
        tmp[n++] = digits[v % base];
        v /= base;
    }
    if (n == 0 && sp->prec != 0)
        tmp[n++] = '0';
    zeros = sp->prec > n ? sp->prec - n : 0;
    len = n + zeros + (sign ? 1 : 0) + (int)plen;
    pad = sp->width > len ? sp->width - len : 0;
    if (sp->zero && !sp->left && sp->prec < 0) {
        zeros += pad;
        pad = 0;
    }
    if (!sp->left)
        put_n(s, ' ', pad);
    if (sign)
        put(s, sign);
    for (size_t i = 0; i < plen; i++)
        put(s, prefix[i]);
    put_n(s, '0', zeros);
    while (n)
        put(s, tmp[--n]);
    if (sp->left)
        put_n(s, ' ', pad);
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        struct spec sp = {.prec = -1};
        int lng = 0; /* -2 hh, -1 h, 0 int, 1 long, 2 long long */
        uint64_t u;
        int64_t i;

        if (*fmt != '%') {
            put(s, *fmt);
            continue;
        }
        for (fmt++;; fmt++) {
            if (*fmt == '-')
                sp.left = true;
            else if (*fmt == '+')
                sp.plus = true;
            else if (*fmt == ' ')
                sp.space = true;
            else if (*fmt == '0')
                sp.zero = true;
            else if (*fmt == '#')
                sp.alt = true;
            else
                break;
        }
        if (*fmt == '*') {
            sp.width = va_arg(ap, int);
            if (sp.width < 0) {
                sp.left = true;
                sp.width = -sp.width;
            }
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9')
                sp.width = sp.width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            sp.prec = 0;
            if (*fmt == '*') {
                sp.prec = va_arg(ap, int);
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9')
                    sp.prec = sp.prec * 10 + (*fmt++ - '0');
            }
        }
        for (;; fmt++) {
            if (*fmt == 'h')
                lng--;
            else if (*fmt == 'l')
                lng++;
            else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't')
                lng = 1;
            else
                break;
        }
        switch (*fmt) {
        case 'd':
        case 'i':
            i = lng >= 1 ? (lng >= 2 ? va_arg(ap, long long) : va_arg(ap, long)) : va_arg(ap, int);
            if (lng == -1)
                i = (short)i;
            else if (lng <= -2)
                i = (signed char)i;
            emit_num(s, &sp, i < 0 ? -(uint64_t)i : (uint64_t)i, i < 0, 10, false, NULL);
            break;
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            u = lng >= 1 ? (lng >= 2 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned long))
                         : va_arg(ap, unsigned int);
            if (lng == -1)
                u = (unsigned short)u;
            else if (lng <= -2)
                u = (unsigned char)u;
            if (*fmt == 'u')
                emit_num(s, &sp, u, false, 10, false, NULL);
            else if (*fmt == 'o')
                emit_num(s, &sp, u, false, 8, false, sp.alt && u ? "0" : NULL);
            else
                emit_num(s, &sp, u, false, 16, *fmt == 'X',
                         sp.alt && u ? (*fmt == 'X' ? "0X" : "0x") : NULL);
            break;
        case 'p':
            emit_num(s, &sp, (uintptr_t)va_arg(ap, void *), false, 16, false, "0x");
            break;
        case 'c': {
            char c[2] = {(char)va_arg(ap, int), 0};
            sp.prec = -1;
            if (c[0] == 0) {
                put(s, 0);
                break;
            }
            emit_str(s, &sp, c);
            break;
        }
        case 's':
            emit_str(s, &sp, va_arg(ap, const char *));
            break;
        case '%':
            put(s, '%');
            break;
        case '\0':
            return;
        default: /* unknown conversion: show it */
            put(s, '%');
            put(s, *fmt);
            break;
        }
    }
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = {.buf = buf, .size = size};

    format(&s, fmt, ap);
    if (size)
        buf[s.pos] = '\0';
    return (int)s.total;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int sprintf(char *buf, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, (size_t)-1 >> 1, fmt, ap);
    va_end(ap);
    return n;
}

int vprintf(const char *fmt, va_list ap)
{
    char chunk[512];
    struct sink s = {.buf = chunk, .size = sizeof(chunk), .console = true};

    format(&s, fmt, ap);
    if (s.pos)
        tg_console_write(chunk, s.pos);
    return (int)s.total;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int vfprintf(FILE *f, const char *fmt, va_list ap)
{
    (void)f;
    return vprintf(fmt, ap);
}

int fprintf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

int fputs(const char *str, FILE *f)
{
    (void)f;
    return tg_console_write(str, strlen(str)) < 0 ? EOF : 0;
}

int puts(const char *str)
{
    if (fputs(str, stdout) < 0 || tg_console_write("\n", 1) < 0)
        return EOF;
    return 0;
}

int putchar(int c)
{
    char ch = (char)c;
    return tg_console_write(&ch, 1) < 0 ? EOF : (unsigned char)c;
}

int fflush(FILE *f)
{
    (void)f;
    return 0; /* printf writes through */
}
