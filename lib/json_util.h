/* Internal JSON helpers of libtandem, used by the generated type code (tandem_types.c). */
#ifndef TANDEM_LIB_JSON_UTIL_H
#define TANDEM_LIB_JSON_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem.h"

/* Longest field path we report ("nics[1].mac"); longer paths are truncated. */
#define TDM_JSON_PATH_MAX 256

/* buf = "path.key", or "key" when path is "". */
void tdm_json_path(char *buf, size_t n, const char *path, const char *key);
/* buf = "path[i]". */
void tdm_json_path_index(char *buf, size_t n, const char *path, size_t i);

/* "a string", "an integer", ... for messages. */
const char *tdm_json_kind(const json_t *j);

/* Record TANDEM_ERR_INVAL with "path: " in front of the message (nothing when path is ""). */
int tdm_json_error(tandem_ctx *ctx, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "path: expected <what>, got <kind of j>" */
int tdm_json_type_error(tandem_ctx *ctx, const char *path, const char *what, const json_t *j);
/* "path: unknown key "key" (tname has no such field)" */
int tdm_json_unknown_key(tandem_ctx *ctx, const char *path, const char *key, const char *tname);

/*
 * Field parsers: check the JSON type and range of j and store it. 0 or
 * TANDEM_ERR_INVAL (message names path) / TANDEM_ERR_NOMEM. A string
 * parser frees the old *out first.
 */
int tdm_json_parse_string(tandem_ctx *ctx, const char *path, const json_t *j, char **out);
int tdm_json_parse_defbool(tandem_ctx *ctx, const char *path, const json_t *j, tandem_defbool *out);
int tdm_json_parse_bool(tandem_ctx *ctx, const char *path, const json_t *j, bool *out);
int tdm_json_parse_int(tandem_ctx *ctx, const char *path, const json_t *j, int *out);
int tdm_json_parse_uint32(tandem_ctx *ctx, const char *path, const json_t *j, uint32_t *out);
int tdm_json_parse_uint64(tandem_ctx *ctx, const char *path, const json_t *j, uint64_t *out);
int tdm_json_parse_mac(tandem_ctx *ctx, const char *path, const json_t *j, tandem_mac out);
int tdm_json_parse_uuid(tandem_ctx *ctx, const char *path, const json_t *j, tandem_uuid out);
/* An array of strings and nulls into (*items, *num), replacing (and freeing) what was there. */
int tdm_json_parse_strarray(tandem_ctx *ctx, const char *path, const json_t *j, char ***items,
                            int *num);

/*
 * json_object_set_new that also fails on a NULL value (the result of a
 * failed constructor). 0, or -1 with value released.
 */
int tdm_json_set(json_t *obj, const char *key, json_t *value);
/* As tdm_json_set, but an empty object value is dropped (libxl omits default sub-structs). */
int tdm_json_set_nonempty(json_t *obj, const char *key, json_t *value);
/* JSON values of builtins; NULL when the value has no JSON form or on allocation failure. */
json_t *tdm_json_uint(uint64_t v);
json_t *tdm_json_string_or_null(const char *s);
json_t *tdm_json_mac(const tandem_mac mac);
json_t *tdm_json_uuid(const tandem_uuid uuid);
/* Dump j indented by 4 and release it; NULL if j is NULL or on allocation failure. */
char *tdm_json_dump(json_t *j);
/* Parse text (duplicate keys rejected) into *out; errors name what and the line/column. */
int tdm_json_load(tandem_ctx *ctx, const char *text, const char *what, json_t **out);

/* *dst = strdup(src) (NULL stays NULL). 0 or TANDEM_ERR_NOMEM. */
int tdm_str_copy(char **dst, const char *src);
/* Append a copy of s (NULL allowed) to (*items, *num). 0, or TANDEM_ERR_NOMEM, nothing changed. */
int tdm_strarray_append(char ***items, int *num, const char *s);
/* Both NULL, or both equal strings. */
int tdm_str_equal(const char *a, const char *b);
/* Same tri-state (default, true, false). */
int tdm_defbool_equal(tandem_defbool a, tandem_defbool b);

#endif
