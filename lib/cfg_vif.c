/* xl vif spec parser: xl's parse_nic_config and libxlutil's xlu_vif_parse_rate. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int is_digits(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

/*
 * "N[GMK]{B,b}/s" into bytes per second, as libxlutil: N is read by
 * strtoull with base 0 (so a leading 0 means octal, as in xl), must be 1 to
 * 2^32-1 before the unit is applied; b means bits.
 */
static int rate_bytes_per_sec(tandem_ctx *ctx, const char *rate, const char *bytes, uint64_t *out)
{
    size_t digits = strspn(bytes, "0123456789");
    const char *unit = bytes + digits, *p;
    unsigned long long v;

    if (*unit == 'G' || *unit == 'M' || *unit == 'K')
        unit++;
    if (digits == 0 || (*unit != 'B' && *unit != 'b') || strcmp(unit + 1, "/s"))
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "vif rate \"%s\": invalid rate \"%s\" (expected a number, then b, B, "
                            "Kb, KB, Mb, MB, Gb or GB, then /s)",
                            rate, bytes);
    errno = 0;
    v = strtoull(bytes, (char **)&p, 0);
    if (v == 0 || v > UINT32_MAX || errno == ERANGE)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "vif rate \"%s\": rate overflow in \"%s\" (the number must be 1 to "
                            "4294967295)",
                            rate, bytes);
    if (*p == 'G')
        v *= 1000ULL * 1000 * 1000;
    else if (*p == 'M')
        v *= 1000ULL * 1000;
    else if (*p == 'K')
        v *= 1000ULL;
    if (p[0] == 'b' || p[1] == 'b')
        v /= 8;
    *out = v;
    return 0;
}

/* "N[mu]?s?" into microseconds (no unit or s: seconds; m: ms; u: us), as libxlutil. */
static int rate_interval_usecs(tandem_ctx *ctx, const char *rate, const char *interval,
                               uint32_t *out)
{
    size_t digits = strspn(interval, "0123456789");
    const char *unit = interval + digits, *p;
    unsigned long long v;

    if (digits == 0 || !(!strcmp(unit, "") || !strcmp(unit, "s") || !strcmp(unit, "m") ||
                         !strcmp(unit, "ms") || !strcmp(unit, "u") || !strcmp(unit, "us")))
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "vif rate \"%s\": invalid replenishment interval \"%s\" (expected a "
                            "number, then us, ms or s)",
                            rate, interval);
    errno = 0;
    v = strtoull(interval, (char **)&p, 0);
    if (v == 0 || v > UINT32_MAX || errno == ERANGE)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "vif rate \"%s\": replenishment interval overflow in \"%s\" (the "
                            "number must be 1 to 4294967295)",
                            rate, interval);
    if (*p == 's' || *p == '\0')
        v *= 1000ULL * 1000;
    else if (*p == 'm')
        v *= 1000ULL;
    if (v > UINT32_MAX)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "vif rate \"%s\": replenishment interval overflow in \"%s\" (at most "
                            "4294967295us)",
                            rate, interval);
    *out = (uint32_t)v;
    return 0;
}

int tandem_rate_parse(tandem_ctx *ctx, const char *rate, uint64_t *bytes_per_interval,
                      uint32_t *interval_usecs)
{
    uint64_t bytes_per_sec = 0;
    uint32_t usecs = 50000; /* xl's default: 50ms */
    char *copy = NULL, *at;
    int rc = 0;

    if (!rate) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "vif rate: none given");
        goto out;
    }
    copy = strdup(rate);
    if (!copy) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "vif rate \"%s\": out of memory", rate);
        goto out;
    }
    at = strchr(copy, '@');
    if (at)
        *at++ = '\0';
    if (!*copy) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "vif rate \"%s\": no rate specified", rate);
        goto out;
    }
    rc = rate_bytes_per_sec(ctx, rate, copy, &bytes_per_sec);
    if (rc)
        goto out;
    if (at) {
        rc = rate_interval_usecs(ctx, rate, at, &usecs);
        if (rc)
            goto out;
    }
    if (bytes_per_sec > UINT64_MAX / usecs) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                          "vif rate \"%s\": rate overflow (bytes per interval exceed 2^64)", rate);
        goto out;
    }
    *bytes_per_interval = bytes_per_sec * usecs / 1000000;
    *interval_usecs = usecs;
out:
    free(copy);
    return rc;
}

/* xl's mac=: six hex octets of one or two digits separated by ':'. */
static int parse_mac(const char *s, tandem_mac out)
{
    tandem_mac mac;

    for (int i = 0; i < 6; i++) {
        size_t n = strspn(s, "0123456789abcdefABCDEF");
        if (n < 1 || n > 2)
            return TANDEM_ERR_INVAL;
        mac[i] = (uint8_t)strtoul(s, NULL, 16);
        s += n;
        if (i < 5 && *s++ != ':')
            return TANDEM_ERR_INVAL;
    }
    if (*s)
        return TANDEM_ERR_INVAL;
    memcpy(out, mac, sizeof(mac));
    return 0;
}

/* xl's parse_ulong, stricter: the whole value must be a decimal number up to INT_MAX. */
static int parse_uint(const char *s, int *out)
{
    unsigned long v;

    if (!is_digits(s))
        return TANDEM_ERR_INVAL;
    errno = 0;
    v = strtoul(s, NULL, 10);
    if (errno == ERANGE || v > INT_MAX)
        return TANDEM_ERR_INVAL;
    *out = (int)v;
    return 0;
}

static int set_string(tandem_ctx *ctx, const char *spec, char **slot, const char *value)
{
    char *copy = strdup(value);

    if (!copy)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "vif spec \"%s\": out of memory", spec);
    free(*slot);
    *slot = copy;
    return 0;
}

/* Keys xl accepts that tandem has no use for: rejected, but with a message saying so. */
static const char *const xl_only_keys[] = {"backend",    "accel",      "netdev",
                                           "forwarddev", "gatewaydev", "colo_"};

/* One "key=value" or flag of a vif spec (xl's parse_nic_config). */
static int parse_token(tandem_ctx *ctx, const char *spec, tandem_device_nic *nic, char *token)
{
    char *value = strchr(token, '=');
    const char *key = token;

    if (!value) {
        if (!strcmp(token, "trusted")) {
            tandem_defbool_set(&nic->trusted, 1);
            return 0;
        }
        if (!strcmp(token, "untrusted")) {
            tandem_defbool_set(&nic->trusted, 0);
            return 0;
        }
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "vif spec \"%s\": unknown option \"%s\" (expected key=value, "
                            "trusted or untrusted)",
                            spec, token);
    }
    *value++ = '\0';
    if (!strcmp(key, "type")) {
        if (!strcmp(value, "vif"))
            nic->nictype = TANDEM_NIC_TYPE_VIF;
        else if (!strcmp(value, "ioemu"))
            nic->nictype = TANDEM_NIC_TYPE_VIF_IOEMU;
        else
            return tandem_error(ctx, TANDEM_ERR_INVAL,
                                "vif spec \"%s\": type: expected vif or ioemu, got \"%s\"", spec,
                                value);
        return 0;
    }
    if (!strcmp(key, "mac")) {
        if (parse_mac(value, nic->mac))
            return tandem_error(ctx, TANDEM_ERR_INVAL,
                                "vif spec \"%s\": mac: expected xx:xx:xx:xx:xx:xx (hex), got "
                                "\"%s\"",
                                spec, value);
        return 0;
    }
    if (!strcmp(key, "bridge"))
        return set_string(ctx, spec, &nic->bridge, value);
    if (!strcmp(key, "ip"))
        return set_string(ctx, spec, &nic->ip, value);
    if (!strcmp(key, "script"))
        return set_string(ctx, spec, &nic->script, value);
    if (!strcmp(key, "vifname"))
        return set_string(ctx, spec, &nic->ifname, value);
    if (!strcmp(key, "model"))
        return set_string(ctx, spec, &nic->model, value);
    if (!strcmp(key, "rate")) {
        int rc =
            tandem_rate_parse(ctx, value, &nic->rate_bytes_per_interval, &nic->rate_interval_usecs);
        if (rc)
            tandem_error_prefix(ctx, "vif spec \"%s\"", spec);
        return rc;
    }
    if (!strcmp(key, "devid") || !strcmp(key, "mtu")) {
        if (parse_uint(value, key[0] == 'd' ? &nic->devid : &nic->mtu))
            return tandem_error(ctx, TANDEM_ERR_INVAL,
                                "vif spec \"%s\": %s: expected a number from 0 to %d, got \"%s\"",
                                spec, key, INT_MAX, value);
        return 0;
    }
    for (size_t i = 0; i < TDM_ARRAY_SIZE(xl_only_keys); i++) {
        size_t n = strlen(xl_only_keys[i]);
        if (xl_only_keys[i][n - 1] == '_' ? !strncmp(key, xl_only_keys[i], n)
                                          : !strcmp(key, xl_only_keys[i]))
            return tandem_error(ctx, TANDEM_ERR_UNSUPP,
                                "vif spec \"%s\": option \"%s\" is known to xl but not supported "
                                "by tandem",
                                spec, key);
    }
    return tandem_error(ctx, TANDEM_ERR_INVAL,
                        "vif spec \"%s\": unknown option \"%s\" (expected mac, bridge, ip, "
                        "vifname, script, model, type, rate, devid, mtu, trusted or untrusted)",
                        spec, key);
}

int tandem_nic_parse(tandem_ctx *ctx, tandem_device_nic *nic, const char *spec)
{
    char *copy = NULL, *token, *save = NULL;
    int rc = 0;

    if (!spec) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "vif spec: none given");
        goto out;
    }
    copy = strdup(spec);
    if (!copy) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "vif spec \"%s\": out of memory", spec);
        goto out;
    }
    /* As xl does for config files: split on ',', skip empty items and leading spaces. */
    for (token = strtok_r(copy, ",", &save); token; token = strtok_r(NULL, ",", &save)) {
        token += strspn(token, " ");
        if (!*token)
            continue;
        rc = parse_token(ctx, spec, nic, token);
        if (rc)
            goto out;
    }
out:
    free(copy);
    return rc;
}
