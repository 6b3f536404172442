/* JSON helpers of the generated type code, and the builtin IDL types (defbool, MAC, UUID). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"
#include "json_util.h"

/* ---- defbool */

void tandem_defbool_set(tandem_defbool *db, int b)
{
    *db = b ? 1 : -1;
}

void tandem_defbool_unset(tandem_defbool *db)
{
    *db = 0;
}

void tandem_defbool_setdefault(tandem_defbool *db, int b)
{
    if (*db == 0)
        tandem_defbool_set(db, b);
}

int tandem_defbool_is_default(tandem_defbool db)
{
    return db == 0;
}

int tandem_defbool_val(tandem_defbool db, int def)
{
    if (db == 0)
        return def ? 1 : 0;
    return db > 0;
}

const char *tandem_defbool_to_string(tandem_defbool db)
{
    if (db == 0)
        return "<default>";
    return db > 0 ? "True" : "False";
}

int tdm_defbool_equal(tandem_defbool a, tandem_defbool b)
{
    return (a > 0) == (b > 0) && (a < 0) == (b < 0);
}

/* ---- MAC and UUID */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Parse hex byte pairs into out (a layout has at most 16); dashes or colons
 * must sit exactly where layout has them. out is untouched on failure.
 */
static int parse_hex_layout(const char *s, const char *layout, uint8_t *out)
{
    uint8_t tmp[16];
    size_t n = 0;

    if (!s || strlen(s) != strlen(layout))
        return TANDEM_ERR_INVAL;
    for (size_t i = 0; layout[i]; i++) {
        if (layout[i] != 'x') {
            if (s[i] != layout[i])
                return TANDEM_ERR_INVAL;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0 || layout[i + 1] != 'x')
            return TANDEM_ERR_INVAL;
        tmp[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    memcpy(out, tmp, n);
    return 0;
}

static const char MAC_LAYOUT[] = "xx:xx:xx:xx:xx:xx";
static const char UUID_LAYOUT[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

int tandem_mac_parse(const char *s, tandem_mac out)
{
    return parse_hex_layout(s, MAC_LAYOUT, out);
}

void tandem_mac_format(const tandem_mac mac, char buf[TANDEM_MAC_STRLEN])
{
    snprintf(buf, TANDEM_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
             mac[3], mac[4], mac[5]);
}

int tandem_mac_is_zero(const tandem_mac mac)
{
    static const uint8_t zero[6];
    return !memcmp(mac, zero, sizeof(zero));
}

int tandem_uuid_parse(const char *s, tandem_uuid out)
{
    return parse_hex_layout(s, UUID_LAYOUT, out);
}

void tandem_uuid_format(const tandem_uuid u, char buf[TANDEM_UUID_STRLEN])
{
    snprintf(buf, TANDEM_UUID_STRLEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

int tandem_uuid_is_zero(const tandem_uuid uuid)
{
    static const uint8_t zero[16];
    return !memcmp(uuid, zero, sizeof(zero));
}

int tandem_uuid_from_string(const char *s, tandem_uuid *out)
{
    return tandem_uuid_parse(s, *out);
}

int tandem_mac_from_string(const char *s, tandem_mac *out)
{
    return tandem_mac_parse(s, *out);
}

int tandem_uuid_generate(tandem_uuid out)
{
    size_t got = 0;

    while (got < 16) {
        ssize_t r = getrandom(out + got, 16 - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return TANDEM_ERR_IO;
        }
        got += (size_t)r;
    }
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    return 0;
}

/* ---- paths and messages */

void tdm_json_path(char *buf, size_t n, const char *path, const char *key)
{
    snprintf(buf, n, "%s%s%s", path, path[0] ? "." : "", key);
}

void tdm_json_path_index(char *buf, size_t n, const char *path, size_t i)
{
    snprintf(buf, n, "%s[%zu]", path, i);
}

const char *tdm_json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "an unknown JSON value";
}

int tdm_json_error(tandem_ctx *ctx, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return tandem_error(ctx, TANDEM_ERR_INVAL, "%s%s%s", path, path[0] ? ": " : "", msg);
}

int tdm_json_type_error(tandem_ctx *ctx, const char *path, const char *what, const json_t *j)
{
    if (json_is_string(j))
        return tdm_json_error(ctx, path, "expected %s, got the string \"%s\"", what,
                              json_string_value(j));
    if (json_is_integer(j))
        return tdm_json_error(ctx, path, "expected %s, got the integer %lld", what,
                              (long long)json_integer_value(j));
    return tdm_json_error(ctx, path, "expected %s, got %s", what, tdm_json_kind(j));
}

int tdm_json_unknown_key(tandem_ctx *ctx, const char *path, const char *key, const char *tname)
{
    return tdm_json_error(ctx, path, "unknown key \"%s\" (%s has no such field)", key, tname);
}

/* ---- field parsers */

int tdm_json_parse_string(tandem_ctx *ctx, const char *path, const json_t *j, char **out)
{
    char *copy;

    if (!json_is_string(j))
        return tdm_json_type_error(ctx, path, "a string", j);
    copy = strdup(json_string_value(j));
    if (!copy)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "%s: out of memory", path);
    free(*out);
    *out = copy;
    return 0;
}

int tdm_json_parse_defbool(tandem_ctx *ctx, const char *path, const json_t *j, tandem_defbool *out)
{
    const char *s = json_string_value(j);

    if (json_is_boolean(j)) {
        tandem_defbool_set(out, json_is_true(j));
        return 0;
    }
    if (!s)
        return tdm_json_type_error(ctx, path, "\"True\", \"False\" or \"<default>\"", j);
    if (!strcmp(s, "True"))
        tandem_defbool_set(out, 1);
    else if (!strcmp(s, "False"))
        tandem_defbool_set(out, 0);
    else if (!strcmp(s, "<default>"))
        tandem_defbool_unset(out);
    else
        return tdm_json_error(ctx, path,
                              "expected \"True\", \"False\" or \"<default>\", got \"%s\"", s);
    return 0;
}

int tdm_json_parse_bool(tandem_ctx *ctx, const char *path, const json_t *j, bool *out)
{
    if (!json_is_boolean(j))
        return tdm_json_type_error(ctx, path, "true or false", j);
    *out = json_is_true(j);
    return 0;
}

static int parse_integer(tandem_ctx *ctx, const char *path, const json_t *j, long long lo,
                         unsigned long long hi, unsigned long long *out, const char *what)
{
    json_int_t v;

    if (!json_is_integer(j))
        return tdm_json_type_error(ctx, path, what, j);
    v = json_integer_value(j);
    if (v < lo || (v >= 0 && (unsigned long long)v > hi))
        return tdm_json_error(ctx, path, "expected %s, got %lld (out of range)", what,
                              (long long)v);
    *out = (unsigned long long)v;
    return 0;
}

int tdm_json_parse_int(tandem_ctx *ctx, const char *path, const json_t *j, int *out)
{
    unsigned long long v = 0;
    int rc = parse_integer(ctx, path, j, INT_MIN, INT_MAX, &v, "an integer (32-bit signed)");
    if (rc == 0)
        *out = (int)(long long)v;
    return rc;
}

int tdm_json_parse_uint32(tandem_ctx *ctx, const char *path, const json_t *j, uint32_t *out)
{
    unsigned long long v = 0;
    int rc = parse_integer(ctx, path, j, 0, UINT32_MAX, &v, "an integer from 0 to 4294967295");
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

int tdm_json_parse_uint64(tandem_ctx *ctx, const char *path, const json_t *j, uint64_t *out)
{
    unsigned long long v = 0;
    int rc = parse_integer(ctx, path, j, 0, INT64_MAX, &v, "a non-negative integer");
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

/* A string that parse (tandem_mac_parse, tandem_uuid_parse) accepts, stored in out. */
static int parse_hex_string(tandem_ctx *ctx, const char *path, const json_t *j, const char *what,
                            int (*parse)(const char *, uint8_t *), uint8_t *out)
{
    if (!json_is_string(j))
        return tdm_json_type_error(ctx, path, what, j);
    if (parse(json_string_value(j), out))
        return tdm_json_error(ctx, path, "expected %s, got \"%s\"", what, json_string_value(j));
    return 0;
}

int tdm_json_parse_mac(tandem_ctx *ctx, const char *path, const json_t *j, tandem_mac out)
{
    return parse_hex_string(ctx, path, j, "a MAC address \"xx:xx:xx:xx:xx:xx\"", tandem_mac_parse,
                            out);
}

int tdm_json_parse_uuid(tandem_ctx *ctx, const char *path, const json_t *j, tandem_uuid out)
{
    return parse_hex_string(ctx, path, j, "a UUID \"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\"",
                            tandem_uuid_parse, out);
}

int tdm_json_parse_strarray(tandem_ctx *ctx, const char *path, const json_t *j, char ***items,
                            int *num)
{
    char elem[TDM_JSON_PATH_MAX];
    int rc = 0;

    if (!json_is_array(j))
        return tdm_json_type_error(ctx, path, "an array of strings", j);
    for (int i = 0; i < *num; i++)
        free((*items)[i]);
    free(*items);
    *items = NULL;
    *num = 0;
    for (size_t i = 0; i < json_array_size(j); i++) {
        const json_t *v = json_array_get(j, i);
        if (!json_is_string(v) && !json_is_null(v)) {
            tdm_json_path_index(elem, sizeof(elem), path, i);
            rc = tdm_json_type_error(ctx, elem, "a string or null", v);
            goto out;
        }
        if (tdm_strarray_append(items, num, json_string_value(v))) {
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "%s: out of memory", path);
            goto out;
        }
    }
out:
    return rc;
}

/* ---- generation */

int tdm_json_set(json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return -1;
    return json_object_set_new(obj, key, value);
}

int tdm_json_set_nonempty(json_t *obj, const char *key, json_t *value)
{
    if (value && json_object_size(value) == 0) {
        json_decref(value);
        return 0;
    }
    return tdm_json_set(obj, key, value);
}

json_t *tdm_json_uint(uint64_t v)
{
    if (v > (uint64_t)INT64_MAX)
        return NULL;
    return json_integer((json_int_t)v);
}

json_t *tdm_json_string_or_null(const char *s)
{
    return s ? json_string(s) : NULL;
}

json_t *tdm_json_mac(const tandem_mac mac)
{
    char buf[TANDEM_MAC_STRLEN];
    tandem_mac_format(mac, buf);
    return json_string(buf);
}

json_t *tdm_json_uuid(const tandem_uuid uuid)
{
    char buf[TANDEM_UUID_STRLEN];
    tandem_uuid_format(uuid, buf);
    return json_string(buf);
}

char *tdm_json_dump(json_t *j)
{
    char *text;

    if (!j)
        return NULL;
    text = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    json_decref(j);
    return text;
}

int tdm_json_load(tandem_ctx *ctx, const char *text, const char *what, json_t **out)
{
    json_error_t err;

    *out = NULL;
    if (!text)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "JSON for %s: no text given", what);
    *out = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (!*out)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "JSON for %s, line %d column %d: %s", what,
                            err.line, err.column, err.text);
    return 0;
}

/* ---- strings */

int tdm_str_copy(char **dst, const char *src)
{
    char *copy = NULL;

    if (src) {
        copy = strdup(src);
        if (!copy)
            return TANDEM_ERR_NOMEM;
    }
    free(*dst);
    *dst = copy;
    return 0;
}

int tdm_strarray_append(char ***items, int *num, const char *s)
{
    char *copy = NULL, **grown;

    if (*num >= INT_MAX - 1)
        return TANDEM_ERR_NOMEM;
    if (s && !(copy = strdup(s)))
        return TANDEM_ERR_NOMEM;
    grown = realloc(*items, ((size_t)*num + 1) * sizeof(*grown));
    if (!grown) {
        free(copy);
        return TANDEM_ERR_NOMEM;
    }
    grown[(*num)++] = copy;
    *items = grown;
    return 0;
}

int tdm_str_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return !strcmp(a, b);
}
