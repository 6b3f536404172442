/* xl.cfg files: parsing, command-line overrides and typed lookups (lib/cfg_file.c). */
#ifndef TANDEM_CFG_H
#define TANDEM_CFG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tandem_ctx tandem_ctx;

/*
 * The grammar, the differences from xl and the error format are in
 * docs/xl-cfg.md. In short: `NAME = VALUE` or `NAME += VALUE` settings
 * separated by newlines or ';', `#` comments, values that are numbers,
 * quoted strings or (nested) lists.
 *
 * Every parse error is recorded in the context as one line
 *     FILE:LINE: config parsing error near 'TOKEN': MESSAGE
 * (TOKEN is `<newline>` or `end of file` without quotes for those two)
 * and the call returns TANDEM_ERR_INVAL.
 */

/* A parsed file plus overrides: the settings as written and each name's effective value. */
typedef struct tandem_cfg tandem_cfg;
/* An atom (number or string, both read as text) or a list of values. */
typedef struct tandem_cfg_value tandem_cfg_value;

enum tandem_cfg_kind { TANDEM_CFG_STRING, TANDEM_CFG_LIST };

/* Source name used for settings that come from tandem_cfg_apply_override(). */
#define TANDEM_CFG_CMDLINE_SOURCE "<command line>"

/*
 * Read and parse the file at path; on success *out is a new config the
 * caller frees with tandem_cfg_free(). Messages name the file by path.
 * Fails with TANDEM_ERR_NOTFOUND (no such file), TANDEM_ERR_PERM,
 * TANDEM_ERR_IO (unreadable, or larger than 16 MiB), TANDEM_ERR_INVAL
 * (parse error) or TANDEM_ERR_NOMEM; *out is then left untouched.
 */
int tandem_cfg_parse_file(tandem_ctx *ctx, const char *path, tandem_cfg **out);

/*
 * Parse len bytes of text (need not be NUL-terminated; NUL bytes in it are
 * errors) as a config file named source_name in messages. Same results as
 * tandem_cfg_parse_file() apart from the file errors.
 */
int tandem_cfg_parse_string(tandem_ctx *ctx, const char *source_name, const char *text, size_t len,
                            tandem_cfg **out);

/*
 * Apply one command-line override, as `xl create FILE KEY=VALUE...` does:
 * keyvalue is parsed as config text after everything already in cfg, so
 * "memory=256", "name=\"x\"", "disk=[\"a,raw,xvda,rw\"]", "a=1; b=2" and
 * "extra+=\" quiet\"" all work. As a convenience, "KEY=VALUE" or
 * "KEY+=VALUE" whose VALUE is not valid config syntax and holds no quote,
 * '[', ']', ';' or newline is taken as the string VALUE (name=foo sets
 * "foo", cmdline=console=hvc0 quiet sets "console=hvc0 quiet").
 * index is the 1-based position of this override among all overrides:
 * its settings are recorded with source TANDEM_CFG_CMDLINE_SOURCE and
 * line index (further lines of a multi-line override count on from
 * there), and parse errors read "<command line>:INDEX: config parsing
 * error near ...". On failure (TANDEM_ERR_INVAL, TANDEM_ERR_NOMEM) cfg is
 * unchanged.
 */
int tandem_cfg_apply_override(tandem_ctx *ctx, tandem_cfg *cfg, const char *keyvalue, int index);

/* Free a config and every value in it; NULL is fine. */
void tandem_cfg_free(tandem_cfg *cfg);

/* Name of the file (or string source) the config was parsed from, for messages. Never NULL. */
const char *tandem_cfg_source(const tandem_cfg *cfg);
/*
 * Source of the effective setting of name: the file name, or
 * TANDEM_CFG_CMDLINE_SOURCE when an override set it last; the file name if
 * name is not set. Pair it with tandem_cfg_line() in messages.
 */
const char *tandem_cfg_source_of(const tandem_cfg *cfg, const char *name);

/*
 * Lookups of the effective value of name (repeated settings: the last
 * wins; `+=` appends to it). Each returns 0 and sets *out, or
 * TANDEM_ERR_NOTFOUND when name is not set (no message recorded), or
 * TANDEM_ERR_INVAL with the message "SOURCE:LINE: NAME: expected ..., got ..."
 * when the value has the wrong kind. Returned pointers stay valid until
 * the config is freed or an override is applied.
 */
/* A single value (number or string) as text. */
int tandem_cfg_get_string(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name,
                          const char **out);
/*
 * A single value that is an integer as strtol(s, NULL, 0) reads it
 * (decimal, 0x hex, leading-0 octal; a quoted "256" counts, as in xl),
 * entirely, within the range of long. A string built with += is refused.
 */
int tandem_cfg_get_long(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name, long *out);
/* An integer that is 0 or 1; *out is 0 or 1. */
int tandem_cfg_get_bool(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name, int *out);
/* A list (of any elements); walk it with tandem_cfg_value_count()/_elem(). */
int tandem_cfg_get_list(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name,
                        const tandem_cfg_value **out);
/*
 * A list whose elements are all single values, or a single value taken as
 * a one-element list. *out is a new NULL-terminated array of *n new
 * strings; free it with tandem_cfg_free_string_list(). A nested list gives
 * TANDEM_ERR_INVAL naming the element ("NAME[2]: expected a string, got a list").
 */
int tandem_cfg_get_string_list(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name,
                               char ***out, int *n);
/* Free what tandem_cfg_get_string_list() returned; NULL is fine. */
void tandem_cfg_free_string_list(char **list);

/* Line of the effective setting of name (of its value's first token), 0 if name is not set. */
int tandem_cfg_line(const tandem_cfg *cfg, const char *name);

/* Accessors of one value. */
enum tandem_cfg_kind tandem_cfg_value_kind(const tandem_cfg_value *v);
/* Text of an atom (quotes removed, escapes decoded); NULL for lists. */
const char *tandem_cfg_value_string(const tandem_cfg_value *v);
/* 1 if the atom was written as a quoted string, 0 for a number token or a list. */
int tandem_cfg_value_quoted(const tandem_cfg_value *v);
/* Number of elements of a list, 0 for an atom. */
int tandem_cfg_value_count(const tandem_cfg_value *v);
/* Element i of a list, NULL if i is out of range or v is an atom. */
const tandem_cfg_value *tandem_cfg_value_elem(const tandem_cfg_value *v, int i);
/* Line where the value starts (for a list, its '['). */
int tandem_cfg_value_line(const tandem_cfg_value *v);

/*
 * The names that are set, each once, in the order they were first set
 * (0 <= i < count). Whether a name is known is for the caller to decide.
 */
int tandem_cfg_count(const tandem_cfg *cfg);
const char *tandem_cfg_name_at(const tandem_cfg *cfg, int i);

/*
 * Every setting as written, repeated and += ones included, in order, as a
 * pretty-printed (4-space indent) JSON array of
 *     {"name": N, "op": "=" or "+=", "value": V, "line": L, "source": S}
 * where V is a JSON string for a quoted string, a JSON integer for a
 * number token that reads as an integer (0x10 gives 16), the token text as
 * a JSON string for other number tokens (e.g. 12abc), and an array for a
 * list. Bytes that are not UTF-8 are shown as U+FFFD. Returns malloc'd
 * text the caller frees, or NULL when out of memory.
 */
char *tandem_cfg_to_json(const tandem_cfg *cfg);

#ifdef __cplusplus
}
#endif

#endif
