/* xl.cfg parser: lexer, recursive-descent parser of xl's grammar, settings, lookups, JSON. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

/* Larger files are refused: no sane config is this big and we read it whole. */
#define CFG_MAX_FILE (16u * 1024 * 1024)
/* Deeper list nesting is refused so that hostile input cannot exhaust the stack. */
#define CFG_MAX_DEPTH 64
/* Longest token text quoted in an error message; longer ones end in "...". */
#define CFG_MAX_SHOWN 60

struct tandem_cfg_value {
    enum tandem_cfg_kind kind;
    int line;
    int quoted; /* atom written as a quoted string (else a number token) */
    char *str;  /* atom text */
    int n, cap; /* list */
    tandem_cfg_value **elems;
};

/* One setting as written. */
struct cfg_setting {
    char *name;
    int add; /* written with += */
    int cmdline;
    int line;
    tandem_cfg_value *value;
};

/* The effective value of one name: what the lookups see. */
struct cfg_entry {
    char *name;
    int appended; /* a string built by += onto an earlier value */
    int cmdline;
    int line;
    tandem_cfg_value *value;
};

struct tandem_cfg {
    char *source;
    struct cfg_setting *set;
    int nset, capset;
    struct cfg_entry *ent;
    int nent, capent;
    int *hash; /* open addressing over ent, -1 = empty; hcap is a power of two */
    size_t hcap;
};

/* ------------------------------------------------------------------ values */

static void value_free(tandem_cfg_value *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->n; i++)
        value_free(v->elems[i]);
    free(v->elems);
    free(v->str);
    free(v);
}

static tandem_cfg_value *value_new(enum tandem_cfg_kind kind, int line)
{
    tandem_cfg_value *v = calloc(1, sizeof(*v));
    if (v) {
        v->kind = kind;
        v->line = line;
    }
    return v;
}

/* Append elem to list (taking it); -1 when out of memory (elem is then freed). */
static int list_push(tandem_cfg_value *list, tandem_cfg_value *elem)
{
    if (list->n == list->cap) {
        int ncap = list->cap ? list->cap * 2 : 4;
        tandem_cfg_value **ne;
        if (list->cap > INT_MAX / 4 || !(ne = realloc(list->elems, sizeof(*ne) * (size_t)ncap))) {
            value_free(elem);
            return -1;
        }
        list->elems = ne;
        list->cap = ncap;
    }
    list->elems[list->n++] = elem;
    return 0;
}

static tandem_cfg_value *value_copy(const tandem_cfg_value *v)
{
    tandem_cfg_value *c = value_new(v->kind, v->line);

    if (!c)
        return NULL;
    c->quoted = v->quoted;
    if (v->kind == TANDEM_CFG_STRING) {
        if (!(c->str = strdup(v->str)))
            goto fail;
        return c;
    }
    for (int i = 0; i < v->n; i++) {
        tandem_cfg_value *e = value_copy(v->elems[i]);
        if (!e || list_push(c, e))
            goto fail;
    }
    return c;
fail:
    value_free(c);
    return NULL;
}

/* ------------------------------------------------------------------ store */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int find_entry(const tandem_cfg *cfg, const char *name)
{
    if (!cfg || !cfg->hcap)
        return -1;
    for (size_t i = name_hash(name) & (cfg->hcap - 1);; i = (i + 1) & (cfg->hcap - 1)) {
        int e = cfg->hash[i];
        if (e < 0)
            return -1;
        if (!strcmp(cfg->ent[e].name, name))
            return e;
    }
}

static int hash_insert(tandem_cfg *cfg, int e)
{
    if ((size_t)cfg->nent * 2 >= cfg->hcap) {
        size_t ncap = cfg->hcap ? cfg->hcap * 2 : 64;
        int *nh = malloc(sizeof(*nh) * ncap);
        if (!nh)
            return -1;
        for (size_t i = 0; i < ncap; i++)
            nh[i] = -1;
        free(cfg->hash);
        cfg->hash = nh;
        cfg->hcap = ncap;
        for (int k = 0; k < e; k++) {
            size_t i = name_hash(cfg->ent[k].name) & (ncap - 1);
            while (nh[i] >= 0)
                i = (i + 1) & (ncap - 1);
            nh[i] = k;
        }
    }
    size_t i = name_hash(cfg->ent[e].name) & (cfg->hcap - 1);
    while (cfg->hash[i] >= 0)
        i = (i + 1) & (cfg->hcap - 1);
    cfg->hash[i] = e;
    return 0;
}

static tandem_cfg *cfg_new(const char *source)
{
    tandem_cfg *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    if (!(cfg->source = strdup(source))) {
        free(cfg);
        return NULL;
    }
    return cfg;
}

void tandem_cfg_free(tandem_cfg *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < cfg->nset; i++) {
        free(cfg->set[i].name);
        value_free(cfg->set[i].value);
    }
    for (int i = 0; i < cfg->nent; i++) {
        free(cfg->ent[i].name);
        value_free(cfg->ent[i].value);
    }
    free(cfg->set);
    free(cfg->ent);
    free(cfg->hash);
    free(cfg->source);
    free(cfg);
}

enum store_result { STORE_OK = 0, STORE_NOMEM };

/*
 * Record a setting (taking name and value) and update the effective value
 * of its name: `=` replaces it; `+=` concatenates strings or appends list
 * elements, and acts as `=` when the name is not set yet. The caller has
 * checked that += does not mix a string and a list (check_append). Name
 * and value are freed on failure.
 */
static enum store_result cfg_store(tandem_cfg *cfg, char *name, int add, tandem_cfg_value *value,
                                   int line, int cmdline)
{
    tandem_cfg_value *eff = NULL;
    struct cfg_entry *ent;
    int e = find_entry(cfg, name), appended = 0;

    if (add && e >= 0 && cfg->ent[e].value->kind != value->kind) {
        goto fail;
    } else if (add && e >= 0 && value->kind == TANDEM_CFG_STRING) {
        const char *old = cfg->ent[e].value->str;
        size_t lo = strlen(old), ln = strlen(value->str);
        if (!(eff = value_new(TANDEM_CFG_STRING, line)) || !(eff->str = malloc(lo + ln + 1)))
            goto fail;
        memcpy(eff->str, old, lo);
        memcpy(eff->str + lo, value->str, ln + 1);
        eff->quoted = cfg->ent[e].value->quoted || value->quoted;
        appended = 1;
    } else if (add && e >= 0) {
        if (!(eff = value_copy(cfg->ent[e].value)))
            goto fail;
        eff->line = line;
        for (int i = 0; i < value->n; i++) {
            tandem_cfg_value *c = value_copy(value->elems[i]);
            if (!c || list_push(eff, c))
                goto fail;
        }
    } else if (!(eff = value_copy(value))) {
        goto fail;
    }

    if (cfg->nset == cfg->capset) {
        int ncap = cfg->capset ? cfg->capset * 2 : 16;
        struct cfg_setting *ns;
        if (cfg->capset > INT_MAX / 4 || !(ns = realloc(cfg->set, sizeof(*ns) * (size_t)ncap)))
            goto fail;
        cfg->set = ns;
        cfg->capset = ncap;
    }
    if (e < 0) {
        char *ename;
        if (cfg->nent == cfg->capent) {
            int ncap = cfg->capent ? cfg->capent * 2 : 16;
            struct cfg_entry *ne;
            if (cfg->capent > INT_MAX / 4 || !(ne = realloc(cfg->ent, sizeof(*ne) * (size_t)ncap)))
                goto fail;
            cfg->ent = ne;
            cfg->capent = ncap;
        }
        if (!(ename = strdup(name)))
            goto fail;
        e = cfg->nent;
        cfg->ent[e] = (struct cfg_entry){.name = ename};
        if (hash_insert(cfg, e)) {
            free(ename);
            goto fail;
        }
        cfg->nent++;
    }
    ent = &cfg->ent[e];
    value_free(ent->value);
    ent->value = eff;
    ent->appended = appended;
    ent->cmdline = cmdline;
    ent->line = line;
    cfg->set[cfg->nset++] = (struct cfg_setting){
        .name = name, .add = add, .cmdline = cmdline, .line = line, .value = value};
    return STORE_OK;
fail:
    value_free(eff);
    value_free(value);
    free(name);
    return STORE_NOMEM;
}

/* A copy of cfg (settings replayed in order); NULL when out of memory. */
static tandem_cfg *cfg_clone(const tandem_cfg *cfg)
{
    tandem_cfg *c = cfg_new(cfg->source);

    for (int i = 0; c && i < cfg->nset; i++) {
        const struct cfg_setting *s = &cfg->set[i];
        char *name = strdup(s->name);
        tandem_cfg_value *v = value_copy(s->value);
        if (!name || !v) {
            free(name);
            value_free(v);
            goto fail;
        }
        if (cfg_store(c, name, s->add, v, s->line, s->cmdline) != STORE_OK)
            goto fail;
    }
    return c;
fail:
    tandem_cfg_free(c);
    return NULL;
}

/* ------------------------------------------------------------------ lexer */

enum tok {
    T_EOF,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_NEWLINE,
    T_ADD,
    T_EQ,
    T_SEMI,
    T_LBRACK,
    T_RBRACK,
    T_COMMA,
};

/* Token names as bison's %error-verbose prints xl's grammar symbols. */
static const char *const tok_names[] = {
    [T_EOF] = "end of file", [T_IDENT] = "IDENT", [T_STRING] = "STRING", [T_NUMBER] = "NUMBER",
    [T_NEWLINE] = "NEWLINE", [T_ADD] = "+=",      [T_EQ] = "'='",        [T_SEMI] = "';'",
    [T_LBRACK] = "'['",      [T_RBRACK] = "']'",  [T_COMMA] = "','",
};

struct parser {
    tandem_ctx *ctx;
    tandem_cfg *cfg;
    const char *source; /* name in messages */
    int cmdline;
    const char *text, *p, *end;
    int first_line, line;
    /* current token */
    enum tok tok;
    const char *tstart;
    size_t tlen;
    int tline;
    char *sval; /* decoded string or number text, owned until taken */
};

static int is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* xl's number token is [0-9][0-9a-fx]*; whether it is a valid number is decided by the lookup. */
static int is_number_char(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == 'x';
}

/*
 * Record "SOURCE:LINE: config parsing error near TOKEN: MESSAGE" and return
 * TANDEM_ERR_INVAL. tok/len is the raw token text: a lone newline shows
 * as <newline>, NULL as `end of file`, anything else in single quotes
 * with trailing blanks dropped and unprintable bytes as \xHH.
 */
static int perror_at(struct parser *ps, int line, const char *tok, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int perror_at(struct parser *ps, int line, const char *tok, size_t len, const char *fmt, ...)
{
    char shown[CFG_MAX_SHOWN * 4 + 8], msg[512];
    size_t o = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!tok) {
        snprintf(shown, sizeof(shown), "end of file");
    } else {
        if (len > 0 && tok[len - 1] == '\n')
            len -= len > 1 && tok[len - 2] == '\r' ? 2 : 1;
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            len--;
        if (!len) {
            snprintf(shown, sizeof(shown), "<newline>");
        } else {
            shown[o++] = '\'';
            for (size_t i = 0; i < len && i < CFG_MAX_SHOWN; i++) {
                unsigned char c = (unsigned char)tok[i];
                if (c >= 0x20 && c < 0x7f)
                    shown[o++] = (char)c;
                else
                    o += (size_t)snprintf(shown + o, 5, "\\x%02x", c);
            }
            if (len > CFG_MAX_SHOWN) {
                memcpy(shown + o, "...", 3);
                o += 3;
            }
            shown[o++] = '\'';
            shown[o] = '\0';
        }
    }
    return tandem_error(ps->ctx, TANDEM_ERR_INVAL, "%s:%d: config parsing error near %s: %s",
                        ps->source, line, shown, msg);
}

/* The text from s up to the next blank or newline: what xl quotes after a lexical error. */
static size_t lexerr_chunk(const struct parser *ps, const char *s)
{
    const char *e = s + 1;
    while (e < ps->end && *e != ' ' && *e != '\t' && *e != '\n')
        e++;
    return (size_t)(e - s);
}

/*
 * Decode the quoted string tstart/tlen (quotes included, one line, no
 * NUL) into ps->sval. Escapes as libxlu documents them: \" \' \\ \a \b \f
 * \n \r \t \v, \xHH (exactly two hex digits) and \ooo (one to three octal
 * digits); the resulting byte must not be NUL.
 */
static int dequote(struct parser *ps)
{
    static const char simple_in[] = "\"'\\abfnrtv", simple_out[] = "\"'\\\a\b\f\n\r\t\v";
    const char *m;
    const char *s = ps->tstart + 1, *e = ps->tstart + ps->tlen - 1;
    char *out = malloc(ps->tlen), *q = out;

    if (!out)
        return tandem_error(ps->ctx, TANDEM_ERR_NOMEM, "out of memory");
    while (s < e) {
        unsigned val;
        char c = *s++;
        if (c != '\\') {
            *q++ = c;
            continue;
        }
        c = *s++; /* the lexer guarantees a character after the backslash */
        if (c && (m = strchr(simple_in, c))) {
            *q++ = simple_out[m - simple_in];
            continue;
        }
        switch (c) {
        case 'x':
            val = 0;
            for (int i = 0; i < 2; i++, s++) {
                int d = s < e ? *s : 0;
                if (d >= '0' && d <= '9')
                    val = val * 16 + (unsigned)(d - '0');
                else if ((d | 0x20) >= 'a' && (d | 0x20) <= 'f')
                    val = val * 16 + (unsigned)((d | 0x20) - 'a' + 10);
                else {
                    free(out);
                    return perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                                     "invalid digit after backslash hex numerical character "
                                     "escape in quoted string (\\x takes two hex digits)");
                }
            }
            break;
        default:
            if (c < '0' || c > '7') {
                free(out);
                return perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                                 "invalid character after backslash in quoted string");
            }
            val = (unsigned)(c - '0');
            for (int i = 0; i < 2 && s < e && *s >= '0' && *s <= '7'; i++, s++)
                val = val * 8 + (unsigned)(*s - '0');
            if (val > 0xff) {
                free(out);
                return perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                                 "octal character escape above \\377 in quoted string");
            }
            break;
        }
        if (val == 0) {
            free(out);
            return perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                             "escape of a NUL character in quoted string");
        }
        *q++ = (char)val;
    }
    *q = '\0';
    ps->sval = out;
    return 0;
}

/* Read the next token into ps; 0 or an error already recorded. */
static int lex(struct parser *ps)
{
    const char *p = ps->p;
    int rc = 0;

    free(ps->sval);
    ps->sval = NULL;
    while (p < ps->end && (*p == ' ' || *p == '\t'))
        p++;
    ps->tstart = p;
    ps->tline = ps->line;
    if (p == ps->end) {
        ps->tok = T_EOF;
        ps->tlen = 0;
        goto out;
    }
    switch (*p) {
    case '\n':
        ps->tok = T_NEWLINE;
        p++;
        ps->line++;
        break;
    case '\r':
        if (p + 1 < ps->end && p[1] == '\n') {
            ps->tok = T_NEWLINE;
            p += 2;
            ps->line++;
            break;
        }
        goto bad_char;
    case '#':
        /* A comment runs to the end of the line and counts as that newline. */
        while (p < ps->end && *p != '\n')
            p++;
        ps->tok = T_NEWLINE;
        if (p < ps->end) {
            p++;
            ps->line++;
        }
        break;
    case '+':
        if (p + 1 < ps->end && p[1] == '=') {
            ps->tok = T_ADD;
            p += 2;
            break;
        }
        goto bad_char;
    case '=':
        ps->tok = T_EQ;
        p++;
        break;
    case ';':
        ps->tok = T_SEMI;
        p++;
        break;
    case '[':
        ps->tok = T_LBRACK;
        p++;
        break;
    case ']':
        ps->tok = T_RBRACK;
        p++;
        break;
    case ',':
        ps->tok = T_COMMA;
        p++;
        break;
    case '"':
    case '\'': {
        char quote = *p++;
        while (p < ps->end && *p != quote && *p != '\n') {
            if (*p == '\0') {
                ps->tlen = (size_t)(p + 1 - ps->tstart);
                rc = perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                               "lexical error: NUL byte in quoted string");
                goto out;
            }
            if (*p == '\\' && p + 1 < ps->end && p[1] != '\n')
                p++;
            p++;
        }
        if (p == ps->end || *p != quote) {
            ps->tlen = lexerr_chunk(ps, ps->tstart);
            rc = perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                           "lexical error: unterminated quoted string (strings end on the line "
                           "they start)");
            goto out;
        }
        p++;
        ps->tok = T_STRING;
        ps->tlen = (size_t)(p - ps->tstart);
        rc = dequote(ps);
        goto out;
    }
    default:
        if (is_ident_start((unsigned char)*p)) {
            while (p < ps->end && is_ident_char((unsigned char)*p))
                p++;
            ps->tok = T_IDENT;
        } else if (*p >= '0' && *p <= '9') {
            while (p < ps->end && is_number_char((unsigned char)*p))
                p++;
            ps->tok = T_NUMBER;
        } else {
            goto bad_char;
        }
        ps->tlen = (size_t)(p - ps->tstart);
        if (!(ps->sval = strndup(ps->tstart, ps->tlen)))
            rc = tandem_error(ps->ctx, TANDEM_ERR_NOMEM, "out of memory");
        goto out;
    }
    ps->tlen = (size_t)(p - ps->tstart);
    goto out;

bad_char:
    ps->tlen = lexerr_chunk(ps, p);
    {
        unsigned char c = (unsigned char)*p;
        const char *hint =
            strchr("+-.():", c) ? " (Python code is not supported in xl.cfg files)" : "";
        if (c >= 0x21 && c < 0x7f)
            rc = perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                           "lexical error: unexpected character '%c'%s", c, hint);
        else
            rc = perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                           "lexical error: unexpected byte 0x%02x", c);
    }
out:
    ps->p = p;
    return rc;
}

/* "syntax error, unexpected X, expecting A or B..." at the current token. */
static int syntax_error(struct parser *ps, const char *expecting)
{
    if (ps->tok == T_EOF) {
        /* Blame the last line that has text, not the empty one after the final newline. */
        int line = ps->line;
        if (line > ps->first_line && ps->end > ps->text && ps->end[-1] == '\n')
            line--;
        return perror_at(ps, line, NULL, 0, "syntax error, unexpected end of file, expecting %s",
                         expecting);
    }
    return perror_at(ps, ps->tline, ps->tstart, ps->tlen,
                     "syntax error, unexpected %s, expecting %s", tok_names[ps->tok], expecting);
}

static int skip_newlines(struct parser *ps)
{
    int rc = 0;
    while (!rc && ps->tok == T_NEWLINE)
        rc = lex(ps);
    return rc;
}

/* value: STRING | NUMBER | '[' nlok valuelist ']'. On success *out is the value, the token after it
 * is current. */
static int parse_value(struct parser *ps, int depth, const char *expecting, tandem_cfg_value **out)
{
    tandem_cfg_value *v = NULL, *elem;
    int rc;

    if (ps->tok == T_STRING || ps->tok == T_NUMBER) {
        if (!(v = value_new(TANDEM_CFG_STRING, ps->tline)))
            return tandem_error(ps->ctx, TANDEM_ERR_NOMEM, "out of memory");
        v->quoted = ps->tok == T_STRING;
        v->str = ps->sval;
        ps->sval = NULL;
        if ((rc = lex(ps)))
            goto fail;
        *out = v;
        return 0;
    }
    if (ps->tok != T_LBRACK)
        return syntax_error(ps, expecting);
    if (depth >= CFG_MAX_DEPTH)
        return perror_at(ps, ps->tline, ps->tstart, ps->tlen, "lists nested more than %d deep",
                         CFG_MAX_DEPTH);
    if (!(v = value_new(TANDEM_CFG_LIST, ps->tline)))
        return tandem_error(ps->ctx, TANDEM_ERR_NOMEM, "out of memory");
    if ((rc = lex(ps)) || (rc = skip_newlines(ps)))
        goto fail;
    while (ps->tok != T_RBRACK) {
        /* At most one trailing comma: after one, only ']' or another value may follow. */
        if ((rc = parse_value(ps, depth + 1, "STRING or NUMBER or NEWLINE or '[' or ']'", &elem)))
            goto fail;
        if (list_push(v, elem)) {
            rc = tandem_error(ps->ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((rc = skip_newlines(ps)))
            goto fail;
        if (ps->tok == T_COMMA) {
            if ((rc = lex(ps)) || (rc = skip_newlines(ps)))
                goto fail;
        } else if (ps->tok != T_RBRACK) {
            rc = syntax_error(ps, "NEWLINE or ']' or ','");
            goto fail;
        }
    }
    if ((rc = lex(ps)))
        goto fail;
    *out = v;
    return 0;
fail:
    value_free(v);
    return rc;
}

/*
 * += must add a string to a string or a list to a list: refuse anything
 * else, naming the setting and where its current value comes from.
 */
static int check_append(tandem_ctx *ctx, const tandem_cfg *cfg, const char *source, int line,
                        const char *name, int add, const tandem_cfg_value *v)
{
    int e = find_entry(cfg, name);
    const struct cfg_entry *ent;

    if (!add || e < 0 || cfg->ent[e].value->kind == v->kind)
        return 0;
    ent = &cfg->ent[e];
    return tandem_error(ctx, TANDEM_ERR_INVAL,
                        "%s:%d: config parsing error near '+=': cannot add a %s to '%s', which "
                        "is a %s (set at %s:%d)",
                        source, line, v->kind == TANDEM_CFG_LIST ? "list" : "string", name,
                        ent->value->kind == TANDEM_CFG_LIST ? "list" : "string",
                        ent->cmdline ? TANDEM_CFG_CMDLINE_SOURCE : cfg->source, ent->line);
}

/* assignment: IDENT ('=' | "+=") value, with IDENT the current token. */
static int parse_assignment(struct parser *ps)
{
    char *name = ps->sval;
    int add, line = ps->tline, op_line, rc;
    tandem_cfg_value *v = NULL;
    enum store_result r;

    ps->sval = NULL;
    if ((rc = lex(ps)))
        goto fail;
    if (ps->tok != T_EQ && ps->tok != T_ADD) {
        rc = syntax_error(ps, "+= or '='");
        goto fail;
    }
    add = ps->tok == T_ADD;
    op_line = ps->tline;
    if ((rc = lex(ps)) || (rc = parse_value(ps, 0, "STRING or NUMBER or '['", &v)))
        goto fail;
    if ((rc = check_append(ps->ctx, ps->cfg, ps->source, op_line, name, add, v)))
        goto fail;
    r = cfg_store(ps->cfg, name, add, v, line, ps->cmdline);
    name = NULL;
    v = NULL;
    if (r != STORE_OK)
        return tandem_error(ps->ctx, TANDEM_ERR_NOMEM, "out of memory");
    return 0;
fail:
    free(name);
    value_free(v);
    return rc;
}

/* file: { IDENT ('='|'+=') value | NEWLINE | ';' } with an assignment ended by NEWLINE, ';' or EOF.
 */
static int parse_text(struct parser *ps)
{
    int rc = lex(ps);

    while (!rc && ps->tok != T_EOF) {
        if (ps->tok == T_NEWLINE || ps->tok == T_SEMI) {
            rc = lex(ps);
            continue;
        }
        if (ps->tok != T_IDENT)
            return syntax_error(ps, "end of file or IDENT or NEWLINE or ';'");
        if ((rc = parse_assignment(ps)))
            return rc;
        if (ps->tok != T_EOF && ps->tok != T_NEWLINE && ps->tok != T_SEMI)
            return syntax_error(ps, "end of file or NEWLINE or ';'");
    }
    return rc;
}

/* Parse text into cfg (which may already hold settings); the first line is numbered first_line. */
static int parse_into(tandem_ctx *ctx, tandem_cfg *cfg, const char *source, int cmdline,
                      const char *text, size_t len, int first_line)
{
    struct parser ps = {
        .ctx = ctx,
        .cfg = cfg,
        .source = source,
        .cmdline = cmdline,
        .text = text,
        .p = text,
        .end = text + len,
        .first_line = first_line,
        .line = first_line,
    };
    int rc = parse_text(&ps);

    free(ps.sval);
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int tandem_cfg_parse_string(tandem_ctx *ctx, const char *source_name, const char *text, size_t len,
                            tandem_cfg **out)
{
    tandem_cfg *cfg = cfg_new(source_name ? source_name : "<string>");
    int rc;

    if (!cfg)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    if (len > INT_MAX / 2) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "%s: configuration text too large", cfg->source);
        goto out;
    }
    rc = parse_into(ctx, cfg, cfg->source, 0, text ? text : "", text ? len : 0, 1);
out:
    if (rc)
        tandem_cfg_free(cfg);
    else
        *out = cfg;
    return rc;
}

int tandem_cfg_parse_file(tandem_ctx *ctx, const char *path, tandem_cfg **out)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        rc = e == ENOENT                   ? TANDEM_ERR_NOTFOUND
             : (e == EACCES || e == EPERM) ? TANDEM_ERR_PERM
                                           : TANDEM_ERR_IO;
        return tandem_error_errno(ctx, rc, e, "%s: unable to open configuration file", path);
    }
    for (;;) {
        ssize_t n;
        if (len == cap) {
            char *nb;
            if (cap >= CFG_MAX_FILE) {
                rc = tandem_error(ctx, TANDEM_ERR_IO,
                                  "%s: configuration file is larger than %u bytes", path,
                                  CFG_MAX_FILE);
                goto out;
            }
            cap = cap ? cap * 2 : 4096;
            if (!(nb = realloc(buf, cap + 1))) {
                rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
                goto out;
            }
            buf = nb;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno,
                                    "%s: unable to read configuration file", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = tandem_cfg_parse_string(ctx, path, buf ? buf : "", len, out);
out:
    close(fd);
    free(buf);
    return rc;
}

/* "NAME=VALUE" / "NAME+=VALUE" taken literally: NULL unless keyvalue has that shape. */
static const char *literal_override(const char *kv, size_t *namelen, int *add)
{
    const char *p = kv;

    if (!is_ident_start((unsigned char)*p))
        return NULL;
    while (is_ident_char((unsigned char)*p))
        p++;
    *namelen = (size_t)(p - kv);
    while (*p == ' ' || *p == '\t')
        p++;
    *add = 0;
    if (p[0] == '+' && p[1] == '=') {
        *add = 1;
        p++;
    } else if (*p != '=') {
        return NULL;
    }
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    /* Text that was meant as config syntax keeps its parse error. */
    if (strpbrk(p, "\"'[];\n"))
        return NULL;
    return p;
}

int tandem_cfg_apply_override(tandem_ctx *ctx, tandem_cfg *cfg, const char *keyvalue, int index)
{
    tandem_cfg *work = cfg_clone(cfg), tmp;
    const char *lit;
    size_t namelen;
    int rc, add;

    if (!keyvalue) {
        tandem_cfg_free(work);
        return tandem_error(ctx, TANDEM_ERR_INVAL, "%s:%d: missing override text",
                            TANDEM_CFG_CMDLINE_SOURCE, index);
    }
    if (!work)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    if (index < 1)
        index = 1;
    rc = parse_into(ctx, work, TANDEM_CFG_CMDLINE_SOURCE, 1, keyvalue, strlen(keyvalue), index);
    if (rc == TANDEM_ERR_INVAL && (lit = literal_override(keyvalue, &namelen, &add))) {
        /* Not config syntax: the value is the literal text. Start again from the untouched cfg. */
        char *name = strndup(keyvalue, namelen);
        tandem_cfg_value *v = value_new(TANDEM_CFG_STRING, index);
        tandem_cfg_free(work);
        work = cfg_clone(cfg);
        if (!work || !name || !v || !(v->str = strdup(lit))) {
            free(name);
            value_free(v);
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
        v->quoted = 1;
        rc = check_append(ctx, work, TANDEM_CFG_CMDLINE_SOURCE, index, name, add, v);
        if (rc) {
            free(name);
            value_free(v);
            goto out;
        }
        if (cfg_store(work, name, add, v, index, 1) != STORE_OK) {
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
        tandem_ctx_clear_error(ctx);
    }
    if (rc)
        goto out;
    /* Swap bodies so the caller's pointer now holds the new settings. */
    tmp = *cfg;
    *cfg = *work;
    *work = tmp;
out:
    tandem_cfg_free(work);
    return rc;
}

/* ------------------------------------------------------------------ lookups */

const char *tandem_cfg_source(const tandem_cfg *cfg)
{
    return cfg ? cfg->source : "";
}

const char *tandem_cfg_source_of(const tandem_cfg *cfg, const char *name)
{
    int e = find_entry(cfg, name);
    return e >= 0 && cfg->ent[e].cmdline ? TANDEM_CFG_CMDLINE_SOURCE : tandem_cfg_source(cfg);
}

int tandem_cfg_line(const tandem_cfg *cfg, const char *name)
{
    int e = find_entry(cfg, name);
    return e >= 0 ? cfg->ent[e].line : 0;
}

int tandem_cfg_count(const tandem_cfg *cfg)
{
    return cfg ? cfg->nent : 0;
}

const char *tandem_cfg_name_at(const tandem_cfg *cfg, int i)
{
    return cfg && i >= 0 && i < cfg->nent ? cfg->ent[i].name : NULL;
}

static const struct cfg_entry *lookup(const tandem_cfg *cfg, const char *name)
{
    int e = find_entry(cfg, name);
    return e >= 0 ? &cfg->ent[e] : NULL;
}

static int wrong(tandem_ctx *ctx, const tandem_cfg *cfg, const struct cfg_entry *ent,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int wrong(tandem_ctx *ctx, const tandem_cfg *cfg, const struct cfg_entry *ent,
                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return tandem_error(ctx, TANDEM_ERR_INVAL, "%s:%d: %s: %s",
                        ent->cmdline ? TANDEM_CFG_CMDLINE_SOURCE : cfg->source, ent->line,
                        ent->name, msg);
}

/* Size of the buffer clip() writes: 40 bytes shown as at most 4 characters each, "..." and NUL. */
#define CLIP_BUF (40 * 4 + 4)

/* s made fit for a one-line message: unprintable bytes as \xHH, cut after 40 bytes with "...". */
static const char *clip(const char *s, char buf[CLIP_BUF])
{
    size_t o = 0, i;

    for (i = 0; s[i] && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, 5, "\\x%02x", c);
    }
    memcpy(buf + o, s[i] ? "..." : "", s[i] ? 4 : 1);
    return buf;
}

int tandem_cfg_get_string(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name,
                          const char **out)
{
    const struct cfg_entry *ent = lookup(cfg, name);

    if (!ent)
        return TANDEM_ERR_NOTFOUND;
    if (ent->value->kind != TANDEM_CFG_STRING)
        return wrong(ctx, cfg, ent, "expected a single value, got a list");
    *out = ent->value->str;
    return 0;
}

int tandem_cfg_get_long(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name, long *out)
{
    const struct cfg_entry *ent = lookup(cfg, name);
    char *endp, buf[CLIP_BUF];
    const char *s;
    long v;

    if (!ent)
        return TANDEM_ERR_NOTFOUND;
    if (ent->value->kind != TANDEM_CFG_STRING)
        return wrong(ctx, cfg, ent, "expected a number, got a list");
    s = ent->value->str;
    if (ent->appended)
        return wrong(ctx, cfg, ent, "expected a number, got '%s' built with +=", clip(s, buf));
    errno = 0;
    v = strtol(s, &endp, 0);
    if (endp == s || *endp || isspace((unsigned char)s[0]))
        return wrong(ctx, cfg, ent, "expected a number, got '%s'", clip(s, buf));
    if (errno == ERANGE)
        return wrong(ctx, cfg, ent, "expected a number, got '%s', which is out of range",
                     clip(s, buf));
    *out = v;
    return 0;
}

int tandem_cfg_get_bool(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name, int *out)
{
    long v;
    int rc = tandem_cfg_get_long(ctx, cfg, name, &v);

    if (rc)
        return rc;
    if (v != 0 && v != 1)
        return wrong(ctx, cfg, lookup(cfg, name), "expected 0 or 1, got %ld", v);
    *out = (int)v;
    return 0;
}

int tandem_cfg_get_list(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name,
                        const tandem_cfg_value **out)
{
    const struct cfg_entry *ent = lookup(cfg, name);
    char buf[CLIP_BUF];

    if (!ent)
        return TANDEM_ERR_NOTFOUND;
    if (ent->value->kind != TANDEM_CFG_LIST)
        return wrong(ctx, cfg, ent, "expected a list, got '%s'", clip(ent->value->str, buf));
    *out = ent->value;
    return 0;
}

void tandem_cfg_free_string_list(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

int tandem_cfg_get_string_list(tandem_ctx *ctx, const tandem_cfg *cfg, const char *name,
                               char ***out, int *n)
{
    const struct cfg_entry *ent = lookup(cfg, name);
    const tandem_cfg_value *v;
    char **list = NULL;
    int count, rc = 0;

    if (!ent)
        return TANDEM_ERR_NOTFOUND;
    v = ent->value;
    count = v->kind == TANDEM_CFG_LIST ? v->n : 1;
    if (!(list = calloc((size_t)count + 1, sizeof(*list))))
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
        const tandem_cfg_value *e = v->kind == TANDEM_CFG_LIST ? v->elems[i] : v;
        if (e->kind != TANDEM_CFG_STRING) {
            rc = tandem_error(ctx, TANDEM_ERR_INVAL, "%s:%d: %s[%d]: expected a string, got a list",
                              ent->cmdline ? TANDEM_CFG_CMDLINE_SOURCE : cfg->source, e->line,
                              ent->name, i);
            goto out;
        }
        if (!(list[i] = strdup(e->str))) {
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    if (rc) {
        tandem_cfg_free_string_list(list);
    } else {
        *out = list;
        *n = count;
    }
    return rc;
}

enum tandem_cfg_kind tandem_cfg_value_kind(const tandem_cfg_value *v)
{
    return v->kind;
}

const char *tandem_cfg_value_string(const tandem_cfg_value *v)
{
    return v && v->kind == TANDEM_CFG_STRING ? v->str : NULL;
}

int tandem_cfg_value_quoted(const tandem_cfg_value *v)
{
    return v && v->kind == TANDEM_CFG_STRING ? v->quoted : 0;
}

int tandem_cfg_value_count(const tandem_cfg_value *v)
{
    return v && v->kind == TANDEM_CFG_LIST ? v->n : 0;
}

const tandem_cfg_value *tandem_cfg_value_elem(const tandem_cfg_value *v, int i)
{
    return v && v->kind == TANDEM_CFG_LIST && i >= 0 && i < v->n ? v->elems[i] : NULL;
}

int tandem_cfg_value_line(const tandem_cfg_value *v)
{
    return v ? v->line : 0;
}

/* ------------------------------------------------------------------ JSON */

/* Length of the valid UTF-8 sequence at s (s < e), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *e)
{
    unsigned c = s[0], cp;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(e - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string of s with every byte that is not UTF-8 replaced by U+FFFD. */
static json_t *json_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + strlen(s);
    char *buf = malloc((size_t)(e - p) * 3 + 1), *q = buf;
    json_t *j;

    if (!buf)
        return NULL;
    while (p < e) {
        size_t n = utf8_seq(p, e);
        if (n) {
            memcpy(q, p, n);
            q += n;
            p += n;
        } else {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
            p++;
        }
    }
    j = json_stringn(buf, (size_t)(q - buf));
    free(buf);
    return j;
}

static json_t *value_json(const tandem_cfg_value *v)
{
    json_t *j;

    if (v->kind == TANDEM_CFG_STRING) {
        if (!v->quoted) {
            char *endp;
            long long n;
            errno = 0;
            n = strtoll(v->str, &endp, 0);
            if (endp != v->str && !*endp && errno != ERANGE)
                return json_integer(n);
        }
        return json_text(v->str);
    }
    if (!(j = json_array()))
        return NULL;
    for (int i = 0; i < v->n; i++) {
        if (json_array_append_new(j, value_json(v->elems[i]))) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

char *tandem_cfg_to_json(const tandem_cfg *cfg)
{
    json_t *arr = json_array();
    char *text = NULL;

    if (!arr)
        return NULL;
    for (int i = 0; i < cfg->nset; i++) {
        const struct cfg_setting *s = &cfg->set[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) ||
            json_object_set_new(o, "name", json_text(s->name)) ||
            json_object_set_new(o, "op", json_string(s->add ? "+=" : "=")) ||
            json_object_set_new(o, "value", value_json(s->value)) ||
            json_object_set_new(o, "line", json_integer(s->line)) ||
            json_object_set_new(o, "source",
                                json_text(s->cmdline ? TANDEM_CFG_CMDLINE_SOURCE : cfg->source)))
            goto out;
    }
    text = json_dumps(arr, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
out:
    json_decref(arr);
    return text;
}
