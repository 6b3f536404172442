/* Guest SDK libc subset: assert() crashes the domain with the failed expression. */
#ifndef TG_ASSERT_H
#define TG_ASSERT_H

__attribute__((noreturn)) void tg_assert_fail(const char *expr, const char *file, int line);

#endif

#undef assert
#ifdef NDEBUG
#define assert(x) ((void)0)
#else
#define assert(x) ((x) ? (void)0 : tg_assert_fail(#x, __FILE__, __LINE__))
#endif
