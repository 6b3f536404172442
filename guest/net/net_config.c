/* Guest networking: static IPv4/IPv6 addressing from the guest command line (ip=, gw=, ip6=). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/ip4_addr.h"
#include "lwip/ip6_addr.h"
#include "tandem_guest.h"
#include "tandem_net.h"

/* Longest value we accept; tg_cmdline_str truncates, so a full buffer means "too long". */
#define VALUE_MAX 128

/* Split "ADDR/PREFIX" in place; *prefix = -1 when there is no "/PREFIX", -2 when it is not a
 * number. */
static char *split_prefix(char *v, long *prefix)
{
    char *slash = strchr(v, '/');
    char *end;

    *prefix = -1;
    if (!slash)
        return v;
    *slash = '\0';
    *prefix = strtol(slash + 1, &end, 10);
    if (!isdigit((unsigned char)slash[1]) || *end != '\0' || *prefix > 1000)
        *prefix = -2; /* digits only: "-1" and "+8" are not prefix lengths */
    return v;
}

/*
 * lwIP's parsers are lenient (inet_aton's "10.1" forms, trailing junk after an
 * IPv6 address), so the text is checked first: four decimal parts 0..255.
 */
static int parse_ip4(const char *text, ip4_addr_t *out)
{
    const char *s = text;
    int parts = 0;

    while (parts < 4) {
        int digits = 0, v = 0;
        while (isdigit((unsigned char)*s) && digits < 4) {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255)
            return 0;
        parts++;
        if (parts < 4 && *s++ != '.')
            return 0;
    }
    return *s == '\0' && ip4addr_aton(text, out);
}

/* Hex digits, ':' and '.' (embedded IPv4) only, with at least one ':'; then lwIP. */
static int parse_ip6(const char *s, ip6_addr_t *out)
{
    if (!*s || strspn(s, "0123456789abcdefABCDEF:.") != strlen(s) || !strchr(s, ':'))
        return 0;
    return ip6addr_aton(s, out);
}

/* Fetch key's value into buf; 1 if present, 0 if absent, -1 if longer than VALUE_MAX - 1. */
static int get_value(const char *key, char *buf)
{
    if (tg_cmdline_str(key, buf, VALUE_MAX) != 0)
        return 0;
    return strlen(buf) >= VALUE_MAX - 1 ? -1 : 1;
}

int tn_config_parse(struct tn_config *cfg, char *err, size_t errlen)
{
    char v[VALUE_MAX];
    long prefix;
    int rc = -1, got;

    memset(cfg, 0, sizeof(*cfg));
    cfg->vif_nth = 0;

    got = get_value("ip", v);
    if (got < 0) {
        snprintf(err, errlen, "ip=: value too long (expected ADDR/PREFIX, e.g. 10.0.0.2/24)");
        goto out;
    }
    if (got) {
        char *addr = split_prefix(v, &prefix);
        if (prefix == -1)
            prefix = 24;
        if (!parse_ip4(addr, &cfg->ip4)) {
            snprintf(err, errlen,
                     "ip=%s: not an IPv4 address (expected ADDR/PREFIX, e.g. 10.0.0.2/24)", addr);
            goto out;
        }
        if (prefix < 0 || prefix > 32) {
            snprintf(err, errlen, "ip=%s: prefix length must be a number from 0 to 32", addr);
            goto out;
        }
        ip4_addr_set_u32(&cfg->mask4, prefix ? lwip_htonl(0xffffffffu << (32 - prefix)) : 0);
        cfg->prefix4 = (unsigned)prefix;
        cfg->have_ip4 = 1;
    }

    got = get_value("gw", v);
    if (got < 0 || (got && !parse_ip4(v, &cfg->gw4))) {
        snprintf(err, errlen, "gw=%s: not an IPv4 address", got < 0 ? "..." : v);
        goto out;
    }
    if (got && !cfg->have_ip4) {
        snprintf(err, errlen, "gw=%s: a gateway needs an IPv4 address (ip=ADDR/PREFIX)", v);
        goto out;
    }
    cfg->have_gw4 = got;

    got = get_value("ip6", v);
    if (got < 0) {
        snprintf(err, errlen, "ip6=: value too long (expected ADDR/64, e.g. fd00::2/64)");
        goto out;
    }
    if (got) {
        char *addr = split_prefix(v, &prefix);
        if (prefix == -1)
            prefix = 64;
        if (!parse_ip6(addr, &cfg->ip6)) {
            snprintf(err, errlen, "ip6=%s: not an IPv6 address (expected ADDR/64, e.g. fd00::2/64)",
                     addr);
            goto out;
        }
        /* lwIP treats every configured address as the /64 it lies in (nd6 on-link test). */
        if (prefix != 64) {
            snprintf(err, errlen, "ip6=%s: prefix length must be 64 (lwIP's on-link rule)", addr);
            goto out;
        }
        if (ip6_addr_ismulticast(&cfg->ip6) || ip6_addr_isany(&cfg->ip6) ||
            ip6_addr_islinklocal(&cfg->ip6)) {
            snprintf(err, errlen,
                     "ip6=%s: must be a unicast global or ULA address (link-local is automatic)",
                     addr);
            goto out;
        }
        cfg->prefix6 = (unsigned)prefix;
        cfg->have_ip6 = 1;
    }

    if (!cfg->have_ip4 && !cfg->have_ip6) {
        snprintf(err, errlen,
                 "no address: the command line needs ip=ADDR/PREFIX and/or ip6=ADDR/64 (extra=)");
        goto out;
    }
    rc = 0;
out:
    return rc;
}
