/* Guest SDK libc subset: formatted output to the console (no input, no files). */
#ifndef TG_STDIO_H
#define TG_STDIO_H

#include <stdarg.h>
#include <stddef.h>

#define EOF (-1)

/* stdout and stderr both go to the console. */
typedef struct tg_file FILE;
extern FILE *const stdout;
extern FILE *const stderr;

/*
 * Conversions: d i u x X o c s p %, flags - + space 0 #, width and
 * precision (also *), length hh h l ll z j t. No floating point.
 */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int fprintf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vfprintf(FILE *f, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int sprintf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int puts(const char *s);
int putchar(int c);
int fputs(const char *s, FILE *f);
int fflush(FILE *f);

#endif
