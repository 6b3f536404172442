/* xl disk spec parser: libxlutil's flex rules (libxlu_disk_l.l) applied as flex does; Remus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * xl parses a disk spec with a flex scanner; its results (including the odd
 * ones that the conformance cases pin down) follow from flex's matching
 * rule: at each position every pattern is tried, the longest match wins
 * and ties go to the pattern listed first. A pattern with trailing context
 * (`r/s`) competes with the length of `r s` but consumes only `r`. The
 * table below lists xl's patterns in xl's order and this file applies the
 * same rule, so the grammar in docs/disk-spec.md is exactly xl's. Note that
 * flex's `.` does not match a newline, while negated classes (`[^,]`) do.
 */

/* State shared by all spec words of one tandem_disk_parse() call (xl's DiskParseContext). */
struct dpc {
    tandem_ctx *ctx;
    tandem_device_disk *disk;
    const char *word; /* the spec word being scanned, for messages */
    int err;          /* first error; later ones are not recorded */
    int had_depr_prefix;
    int access_set;
};

/* What an action tells the scanner: go on, or stop scanning this word (xl's `return 0`). */
enum { SCAN_ON, SCAN_STOP };

static void disk_err(struct dpc *d, int rc, const char *near, const char *msg)
{
    if (d->err)
        return;
    d->err = rc;
    if (near)
        tandem_error(d->ctx, rc, "disk spec \"%s\": %s: \"%s\"", d->word, msg, near);
    else
        tandem_error(d->ctx, rc, "disk spec \"%s\": %s", d->word, msg);
}

/* ---- pattern pieces */

static size_t span_not(const char *s, const char *reject)
{
    return strcspn(s, reject);
}

/* flex `.*`: up to a newline or the end. */
static size_t dot_star(const char *s)
{
    return strcspn(s, "\n");
}

static int is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- actions */

/* xl's savestring: a string may be set once; an empty one may be overwritten. */
static void save_string(struct dpc *d, const char *what, char **slot, const char *value)
{
    char *copy;

    if (*slot && **slot) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s respecified", what);
        disk_err(d, TANDEM_ERR_INVAL, value, msg);
        return;
    }
    copy = strdup(value);
    if (!copy) {
        disk_err(d, TANDEM_ERR_NOMEM, NULL, "out of memory");
        return;
    }
    free(*slot);
    *slot = copy;
}

static void set_format(struct dpc *d, const char *str)
{
    static const struct {
        const char *name;
        tandem_disk_format fmt;
    } formats[] = {
        {"", TANDEM_DISK_FORMAT_RAW},      {"raw", TANDEM_DISK_FORMAT_RAW},
        {"qcow", TANDEM_DISK_FORMAT_QCOW}, {"qcow2", TANDEM_DISK_FORMAT_QCOW2},
        {"vhd", TANDEM_DISK_FORMAT_VHD},   {"empty", TANDEM_DISK_FORMAT_EMPTY},
        {"qed", TANDEM_DISK_FORMAT_QED},
    };

    for (size_t i = 0; i < TDM_ARRAY_SIZE(formats); i++) {
        if (strcmp(str, formats[i].name))
            continue;
        if (d->disk->format != TANDEM_DISK_FORMAT_UNKNOWN && d->disk->format != formats[i].fmt)
            disk_err(d, TANDEM_ERR_INVAL, str, "format respecified");
        else
            d->disk->format = formats[i].fmt;
        return;
    }
    disk_err(d, TANDEM_ERR_INVAL, str, "unknown value for format");
}

static void set_backendtype(struct dpc *d, const char *str)
{
    tandem_disk_backend b;

    /* xl's names are case-sensitive and "unknown" is not one of them. */
    if (tandem_disk_backend_from_string(str, &b) || b == TANDEM_DISK_BACKEND_UNKNOWN ||
        strcmp(str, tandem_disk_backend_to_string(b))) {
        disk_err(d, TANDEM_ERR_INVAL, str, "unknown value for backendtype");
        return;
    }
    if (d->disk->backend != TANDEM_DISK_BACKEND_UNKNOWN && d->disk->backend != b)
        disk_err(d, TANDEM_ERR_INVAL, str, "backend respecified");
    else
        d->disk->backend = b;
}

static void set_access(struct dpc *d, const char *str)
{
    if (!strcmp(str, "r") || !strcmp(str, "ro"))
        d->disk->readwrite = 0;
    else if (!strcmp(str, "rw") || !strcmp(str, "w") || !strcmp(str, ""))
        d->disk->readwrite = 1;
    else
        disk_err(d, TANDEM_ERR_INVAL, str, "unknown value for access");
}

/* A positional vdev "hdc:cdrom" (deprecated): 1 if str had a devtype, else 0 and nothing done. */
static int vdev_and_devtype(struct dpc *d, char *str)
{
    char *colon = strrchr(str, ':');

    if (!colon)
        return 0;
    *colon++ = '\0';
    save_string(d, "vdev", &d->disk->vdev, str);
    if (!strcmp(colon, "cdrom"))
        d->disk->is_cdrom = 1;
    else if (!strcmp(colon, "disk"))
        d->disk->is_cdrom = 0;
    else
        disk_err(d, TANDEM_ERR_INVAL, colon, "unknown deprecated type");
    return 1;
}

static int positional(struct dpc *d, char *text)
{
    tandem_device_disk *disk = d->disk;

    if (d->err) {
        /* previous errors may just lead to subsequent ones */
    } else if (!disk->pdev_path) {
        save_string(d, "target", &disk->pdev_path, text);
    } else if (!d->had_depr_prefix && disk->format == TANDEM_DISK_FORMAT_UNKNOWN) {
        if (!*disk->pdev_path && vdev_and_devtype(d, text))
            disk->format = TANDEM_DISK_FORMAT_EMPTY;
        else
            set_format(d, text);
    } else if (!disk->vdev) {
        if (!vdev_and_devtype(d, text))
            save_string(d, "vdev", &disk->vdev, text);
    } else if (!d->access_set) {
        d->access_set = 1;
        set_access(d, text);
    } else {
        disk_err(d, TANDEM_ERR_INVAL, text, "too many positional parameters");
        return SCAN_STOP;
    }
    return SCAN_ON;
}

/* ---- the rules, in xl's order */

enum rule_kind {
    R_SPACE,      /* [ \t\n]+/([^ \t\n].*)?      ignored */
    R_KV,         /* KEY=[^,]*,?                  value after '=' */
    R_FLAG,       /* WORD,?                       */
    R_TARGET,     /* target=.*                    eats the rest */
    R_UNKNOWN_KV, /* [a-z][-a-z0-9]*=[^,],?       error */
    R_PREFIX,     /* WORD:/.*                     deprecated prefix */
    R_BAD_PREFIX, /* [a-z][a-z0-9]*:/([^a-z0-9].*)?  error */
    R_POSITIONAL, /* [^=,]*,|[^=,]+,?             */
    R_ANY,        /* .                            error: bad disk syntax */
};

enum action {
    A_IGNORE,
    A_FORMAT,
    A_CDROM,
    A_DISK,
    A_BAD_DEVTYPE,
    A_ACCESS,
    A_BACKENDTYPE,
    A_VDEV,
    A_SCRIPT,
    A_DISCARD,
    A_NO_DISCARD,
    A_TRUSTED,
    A_UNTRUSTED,
    A_UNSUPPORTED, /* xl knows it; tandem has nowhere to put it */
    A_TARGET,
    A_UNKNOWN_PARAM,
    A_FORMAT_PREFIX,
    A_SCRIPT_PREFIX,
    A_BAD_PREFIX,
    A_POSITIONAL,
    A_BAD_SYNTAX,
};

struct rule {
    enum rule_kind kind;
    const char *word; /* literal part (key with '=', flag, or prefix with ':') */
    enum action action;
};

static const struct rule rules[] = {
    {R_SPACE, NULL, A_IGNORE},
    {R_KV, "format=", A_FORMAT},
    {R_FLAG, "cdrom", A_CDROM},
    {R_FLAG, "devtype=cdrom", A_CDROM},
    {R_FLAG, "devtype=disk", A_DISK},
    {R_KV, "devtype=", A_BAD_DEVTYPE},
    {R_KV, "access=", A_ACCESS},
    {R_KV, "backend=", A_UNSUPPORTED},
    {R_KV, "backendtype=", A_BACKENDTYPE},
    {R_KV, "specification=", A_UNSUPPORTED},
    {R_KV, "vdev=", A_VDEV},
    {R_KV, "script=", A_SCRIPT},
    {R_FLAG, "direct-io-safe", A_UNSUPPORTED},
    {R_FLAG, "discard", A_DISCARD},
    {R_FLAG, "no-discard", A_NO_DISCARD},
    {R_FLAG, "colo", A_UNSUPPORTED},
    {R_FLAG, "no-colo", A_UNSUPPORTED},
    {R_KV, "colo-host=", A_UNSUPPORTED},
    {R_KV, "colo-port=", A_UNSUPPORTED},
    {R_KV, "colo-export=", A_UNSUPPORTED},
    {R_KV, "active-disk=", A_UNSUPPORTED},
    {R_KV, "hidden-disk=", A_UNSUPPORTED},
    {R_FLAG, "trusted", A_TRUSTED},
    {R_FLAG, "untrusted", A_UNTRUSTED},
    {R_FLAG, "grant_usage=1", A_UNSUPPORTED},
    {R_FLAG, "grant_usage=0", A_UNSUPPORTED},
    {R_TARGET, "target=", A_TARGET},
    {R_UNKNOWN_KV, NULL, A_UNKNOWN_PARAM},
    {R_PREFIX, "raw:", A_FORMAT_PREFIX},
    {R_PREFIX, "qcow:", A_FORMAT_PREFIX},
    {R_PREFIX, "qcow2:", A_FORMAT_PREFIX},
    {R_PREFIX, "vhd:", A_FORMAT_PREFIX},
    {R_PREFIX, "iscsi:", A_SCRIPT_PREFIX},
    {R_PREFIX, "nbd:", A_SCRIPT_PREFIX},
    {R_PREFIX, "enbd:", A_SCRIPT_PREFIX},
    {R_PREFIX, "drbd:", A_SCRIPT_PREFIX},
    {R_PREFIX, "tapdisk:", A_IGNORE},
    {R_PREFIX, "tap:", A_IGNORE},
    {R_PREFIX, "tap2:", A_IGNORE},
    {R_PREFIX, "aio:", A_IGNORE},
    {R_PREFIX, "ioemu:", A_IGNORE},
    {R_PREFIX, "file:", A_IGNORE},
    {R_PREFIX, "phy:", A_IGNORE},
    {R_BAD_PREFIX, NULL, A_BAD_PREFIX},
    {R_POSITIONAL, NULL, A_POSITIONAL},
    {R_ANY, NULL, A_BAD_SYNTAX},
};

/*
 * Match rule r at s. Returns the length flex compares (trailing context
 * included) or 0 for no match; *consumed is what the rule eats.
 */
static size_t match(const struct rule *r, const char *s, size_t *consumed)
{
    size_t n = 0, wl = r->word ? strlen(r->word) : 0;

    switch (r->kind) {
    case R_SPACE:
        n = strspn(s, " \t\n");
        if (!n)
            return 0;
        *consumed = n;
        if (s[n] && !strchr(" \t\n", s[n]))
            return n + 1 + dot_star(s + n + 1);
        return n;
    case R_KV:
        if (strncmp(s, r->word, wl))
            return 0;
        n = wl + span_not(s + wl, ",");
        if (s[n] == ',')
            n++;
        *consumed = n;
        return n;
    case R_FLAG:
        if (strncmp(s, r->word, wl))
            return 0;
        n = wl + (s[wl] == ',');
        *consumed = n;
        return n;
    case R_TARGET:
        if (strncmp(s, r->word, wl))
            return 0;
        *consumed = wl + dot_star(s + wl);
        return *consumed;
    case R_UNKNOWN_KV:
        if (!is_lower(s[0]))
            return 0;
        n = 1;
        while (is_lower(s[n]) || is_digit(s[n]) || s[n] == '-')
            n++;
        if (s[n] != '=' || s[n + 1] == '\0' || s[n + 1] == ',')
            return 0;
        n += 2;
        if (s[n] == ',')
            n++;
        *consumed = n;
        return n;
    case R_PREFIX:
        if (strncmp(s, r->word, wl))
            return 0;
        *consumed = wl;
        return wl + dot_star(s + wl);
    case R_BAD_PREFIX:
        if (!is_lower(s[0]))
            return 0;
        n = 1;
        while (is_lower(s[n]) || is_digit(s[n]))
            n++;
        if (s[n] != ':')
            return 0;
        n++;
        *consumed = n;
        if (s[n] && !is_lower(s[n]) && !is_digit(s[n]))
            return n + 1 + dot_star(s + n + 1);
        return n;
    case R_POSITIONAL:
        n = span_not(s, "=,");
        if (s[n] == ',')
            n++;
        *consumed = n;
        return n;
    case R_ANY:
        if (s[0] == '\0' || s[0] == '\n')
            return 0;
        *consumed = 1;
        return 1;
    }
    return 0;
}

/* Strip one trailing delimiter, as xl's STRIP(). */
static void strip(char *text, char delim)
{
    size_t n = strlen(text);
    if (n > 0 && text[n - 1] == delim)
        text[n - 1] = '\0';
}

static int act(struct dpc *d, const struct rule *r, char *text, const char *rest)
{
    char *value = strchr(text, '=');
    char *script = NULL;

    value = value ? value + 1 : NULL;
    switch (r->action) {
    case A_IGNORE:
        if (r->kind == R_PREFIX)
            d->had_depr_prefix = 1;
        break;
    case A_FORMAT:
        strip(text, ',');
        set_format(d, value);
        break;
    case A_CDROM:
        d->disk->is_cdrom = 1;
        break;
    case A_DISK:
        d->disk->is_cdrom = 0;
        break;
    case A_BAD_DEVTYPE:
        disk_err(d, TANDEM_ERR_INVAL, text, "unknown value for type");
        break;
    case A_ACCESS:
        strip(text, ',');
        set_access(d, value);
        break;
    case A_BACKENDTYPE:
        strip(text, ',');
        set_backendtype(d, value);
        break;
    case A_VDEV:
        strip(text, ',');
        save_string(d, "vdev", &d->disk->vdev, value);
        break;
    case A_SCRIPT:
        strip(text, ',');
        save_string(d, "script", &d->disk->script, value);
        break;
    case A_DISCARD:
        tandem_defbool_set(&d->disk->discard_enable, 1);
        break;
    case A_NO_DISCARD:
        tandem_defbool_set(&d->disk->discard_enable, 0);
        break;
    case A_TRUSTED:
        tandem_defbool_set(&d->disk->trusted, 1);
        break;
    case A_UNTRUSTED:
        tandem_defbool_set(&d->disk->trusted, 0);
        break;
    case A_UNSUPPORTED:
        strip(text, ',');
        disk_err(d, TANDEM_ERR_UNSUPP, text, "parameter known to xl but not supported by tandem");
        break;
    case A_TARGET:
        strip(text, ',');
        save_string(d, "target", &d->disk->pdev_path, value);
        break;
    case A_UNKNOWN_PARAM:
        disk_err(d, TANDEM_ERR_INVAL, text, "unknown parameter");
        break;
    case A_FORMAT_PREFIX:
        strip(text, ':');
        d->had_depr_prefix = 1;
        set_format(d, text);
        break;
    case A_SCRIPT_PREFIX:
        strip(text, ':');
        d->had_depr_prefix = 1;
        if (asprintf(&script, "block-%s", text) < 0) {
            disk_err(d, TANDEM_ERR_NOMEM, NULL, "out of memory");
            return SCAN_STOP;
        }
        save_string(d, "script", &d->disk->script, script);
        free(script);
        break;
    case A_BAD_PREFIX:
        disk_err(d, TANDEM_ERR_INVAL, text, "unknown deprecated disk prefix");
        return SCAN_STOP;
    case A_POSITIONAL:
        strip(text, ',');
        return positional(d, text);
    case A_BAD_SYNTAX: {
        /* xl: BEGIN(LEXERR); yymore(); then `<LEXERR>.*` reports from the bad character on. */
        int len = (int)(1 + dot_star(rest));
        char near[256];
        snprintf(near, sizeof(near), "%s%.*s", text, len - 1, rest);
        disk_err(d, TANDEM_ERR_INVAL, near, "bad disk syntax");
        return SCAN_STOP;
    }
    }
    return SCAN_ON;
}

/* Scan one spec word into d->disk (xl's xlu__disk_yylex). */
static void scan_word(struct dpc *d, const char *spec)
{
    const char *s = spec;

    d->word = spec;
    while (*s) {
        const struct rule *best = NULL;
        size_t best_len = 0, best_consumed = 0;
        char *text;
        int next;

        for (size_t i = 0; i < TDM_ARRAY_SIZE(rules); i++) {
            size_t consumed = 0, len = match(&rules[i], s, &consumed);
            if (len > best_len) {
                best = &rules[i];
                best_len = len;
                best_consumed = consumed;
            }
        }
        if (!best)
            break; /* cannot happen: R_SPACE matches '\n', R_ANY everything else */
        text = strndup(s, best_consumed);
        if (!text) {
            disk_err(d, TANDEM_ERR_NOMEM, NULL, "out of memory");
            return;
        }
        s += best_consumed;
        next = act(d, best, text, s);
        free(text);
        if (next == SCAN_STOP)
            return;
    }
}

/*
 * A Remus replication target "remus:HOST:PORT|IMAGE" (what is left of
 * `tap:remus:HOST:PORT|aio:/path` once xl's deprecated `tap:` prefix is
 * stripped): split it into the local image and the backup's address.
 */
static int parse_remus_target(struct dpc *d)
{
    tandem_device_disk *disk = d->disk;
    const char *t = disk->pdev_path + strlen("remus:");
    const char *bar = strchr(t, '|'), *colon = NULL, *image, *host;
    char *end = NULL, *host_copy = NULL, *image_copy = NULL;
    size_t host_len;
    long port;

    if (!bar) {
        disk_err(d, TANDEM_ERR_INVAL, disk->pdev_path,
                 "Remus target must read remus:HOST:PORT|IMAGE");
        goto out;
    }
    for (const char *p = t; p < bar; p++)
        if (*p == ':')
            colon = p;
    if (!colon || colon == t) {
        disk_err(d, TANDEM_ERR_INVAL, disk->pdev_path,
                 "Remus target needs the backup as HOST:PORT before '|'");
        goto out;
    }
    host = t;
    host_len = (size_t)(colon - t);
    if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    port = is_digit(colon[1]) ? strtol(colon + 1, &end, 10) : 0;
    if (port < 1 || port > 65535 || end != bar) {
        disk_err(d, TANDEM_ERR_INVAL, disk->pdev_path, "Remus port must be 1 to 65535");
        goto out;
    }
    image = bar + 1;
    if (!strncmp(image, "aio:", 4)) {
        image += 4;
    } else if (!strncmp(image, "sync:", 5)) {
        image += 5;
    } else if (is_lower(image[0]) &&
               image[strspn(image, "abcdefghijklmnopqrstuvwxyz0123456789")] == ':') {
        disk_err(d, TANDEM_ERR_INVAL, disk->pdev_path,
                 "Remus replicates raw images only (aio:, sync: or a plain path)");
        goto out;
    }
    if (!*image) {
        disk_err(d, TANDEM_ERR_INVAL, disk->pdev_path, "Remus target has no image after '|'");
        goto out;
    }
    if (disk->format != TANDEM_DISK_FORMAT_RAW || disk->is_cdrom) {
        disk_err(d, TANDEM_ERR_INVAL, disk->pdev_path,
                 "a Remus-replicated disk must be a raw image, not a CD-ROM or another format");
        goto out;
    }
    host_copy = strndup(host, host_len);
    image_copy = strdup(image);
    if (!host_copy || !image_copy) {
        disk_err(d, TANDEM_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    free(disk->remus_host);
    disk->remus_host = host_copy;
    host_copy = NULL;
    free(disk->pdev_path);
    disk->pdev_path = image_copy;
    image_copy = NULL;
    disk->remus_port = (int)port;
out:
    free(host_copy);
    free(image_copy);
    return d->err;
}

int tandem_disk_parse(tandem_ctx *ctx, tandem_device_disk *disk, int nspecs,
                      const char *const *specs)
{
    struct dpc d = {.ctx = ctx, .disk = disk};
    char all[512];
    size_t used = 0;

    all[0] = '\0';
    disk->readwrite = 1;
    for (int i = 0; i < nspecs && !d.err; i++) {
        if (!specs[i]) {
            d.word = "";
            disk_err(&d, TANDEM_ERR_INVAL, NULL, "missing spec word");
            break;
        }
        scan_word(&d, specs[i]);
    }
    if (d.err)
        goto out;

    /* Messages about the whole disk name every word. */
    for (int i = 0; i < nspecs && used < sizeof(all); i++)
        used += (size_t)snprintf(all + used, sizeof(all) - used, "%s%s", i ? " " : "", specs[i]);
    d.word = all;
    if (disk->format == TANDEM_DISK_FORMAT_UNKNOWN)
        disk->format = TANDEM_DISK_FORMAT_RAW;
    if (disk->is_cdrom) {
        disk->removable = 1;
        disk->readwrite = 0;
        if (!disk->pdev_path || !strcmp(disk->pdev_path, ""))
            disk->format = TANDEM_DISK_FORMAT_EMPTY;
    }
    if (!disk->vdev) {
        disk_err(&d, TANDEM_ERR_INVAL, NULL, "no vdev specified");
        goto out;
    }
    if (!disk->pdev_path && !disk->removable) {
        disk_err(&d, TANDEM_ERR_INVAL, NULL, "no target specified (and device not removable)");
        goto out;
    }
    if (disk->pdev_path && !strncmp(disk->pdev_path, "remus:", 6))
        parse_remus_target(&d);
out:
    return d.err;
}
