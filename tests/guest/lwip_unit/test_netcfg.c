/* Unit tests of the guest's ip=/gw=/ip6= parsing (guest/net/net_config.c) on the host, no KVM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lwip/ip4_addr.h"
#include "lwip/ip6_addr.h"
#include "tandem_guest.h"
#include "tandem_net.h"

const char *test_cmdline = "";

/* The SDK's rule (guest/sdk/start.c): "key=" at a word start, value up to the next space. */
int tg_cmdline_str(const char *key, char *buf, size_t len)
{
    const char *s = test_cmdline;
    size_t klen = strlen(key);

    while (*s) {
        while (*s == ' ')
            s++;
        if (strncmp(s, key, klen) == 0 && s[klen] == '=') {
            const char *v = s + klen + 1;
            size_t vlen = strcspn(v, " ");
            if (len == 0)
                return -1;
            if (vlen >= len)
                vlen = len - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return 0;
        }
        s += strcspn(s, " ");
    }
    return -1;
}

static int parse(const char *cmdline, struct tn_config *cfg, char *err, size_t errlen)
{
    test_cmdline = cmdline;
    err[0] = '\0';
    return tn_config_parse(cfg, err, errlen);
}

static void ipv4_with_prefix_and_gateway(void **state)
{
    struct tn_config cfg;
    char err[256];

    (void)state;
    assert_int_equal(parse("port=7 ip=10.1.2.3/16 gw=10.1.0.1", &cfg, err, sizeof(err)), 0);
    assert_true(cfg.have_ip4);
    assert_true(cfg.have_gw4);
    assert_false(cfg.have_ip6);
    assert_int_equal(cfg.prefix4, 16);
    assert_int_equal(ip4_addr_get_u32(&cfg.ip4), lwip_htonl(0x0a010203));
    assert_int_equal(ip4_addr_get_u32(&cfg.mask4), lwip_htonl(0xffff0000));
    assert_int_equal(ip4_addr_get_u32(&cfg.gw4), lwip_htonl(0x0a010001));
}

static void ipv4_prefix_edges(void **state)
{
    struct tn_config cfg;
    char err[256];

    (void)state;
    assert_int_equal(parse("ip=192.168.0.9", &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.prefix4, 24); /* default */
    assert_int_equal(ip4_addr_get_u32(&cfg.mask4), lwip_htonl(0xffffff00));
    assert_int_equal(parse("ip=192.168.0.9/0", &cfg, err, sizeof(err)), 0);
    assert_int_equal(ip4_addr_get_u32(&cfg.mask4), 0);
    assert_int_equal(parse("ip=192.168.0.9/32", &cfg, err, sizeof(err)), 0);
    assert_int_equal(ip4_addr_get_u32(&cfg.mask4), 0xffffffffu);
    assert_int_equal(parse("ip=0.0.0.0/8 ip=1.1.1.1/8", &cfg, err, sizeof(err)), 0); /* first wins */
    assert_int_equal(ip4_addr_get_u32(&cfg.ip4), 0);
}

static void ipv6_only(void **state)
{
    struct tn_config cfg;
    char err[256];
    ip6_addr_t want;

    (void)state;
    assert_int_equal(parse("ip6=fd99::100/64", &cfg, err, sizeof(err)), 0);
    assert_false(cfg.have_ip4);
    assert_true(cfg.have_ip6);
    assert_int_equal(cfg.prefix6, 64);
    IP6_ADDR(&want, lwip_htonl(0xfd990000), 0, 0, lwip_htonl(0x100));
    assert_true(ip6_addr_cmp_zoneless(&cfg.ip6, &want));
    assert_int_equal(parse("ip6=2001:db8::1 ip=10.0.0.1/8", &cfg, err, sizeof(err)), 0);
    assert_true(cfg.have_ip4 && cfg.have_ip6);
    assert_int_equal(cfg.prefix6, 64);
}

static void errors_name_key_and_value(void **state)
{
    static const struct {
        const char *cmdline, *err;
    } cases[] = {
        {"", "no address: the command line needs ip=ADDR/PREFIX and/or ip6=ADDR/64 (extra=)"},
        {"ip= port=7", "ip=: not an IPv4 address (expected ADDR/PREFIX, e.g. 10.0.0.2/24)"},
        {"ip=10.0.0", "ip=10.0.0: not an IPv4 address (expected ADDR/PREFIX, e.g. 10.0.0.2/24)"},
        {"ip=10.0.0.1.2", "ip=10.0.0.1.2: not an IPv4 address (expected ADDR/PREFIX, e.g. 10.0.0.2/24)"},
        {"ip=10.0.0.256/8", "ip=10.0.0.256: not an IPv4 address (expected ADDR/PREFIX, e.g. 10.0.0.2/24)"},
        {"ip=0x0a.0.0.1", "ip=0x0a.0.0.1: not an IPv4 address (expected ADDR/PREFIX, e.g. 10.0.0.2/24)"},
        {"ip=10.0.0.1/33", "ip=10.0.0.1: prefix length must be a number from 0 to 32"},
        {"ip=10.0.0.1/-1", "ip=10.0.0.1: prefix length must be a number from 0 to 32"},
        {"ip=10.0.0.1/", "ip=10.0.0.1: prefix length must be a number from 0 to 32"},
        {"ip=10.0.0.1/2x", "ip=10.0.0.1: prefix length must be a number from 0 to 32"},
        {"ip=10.0.0.1/8 gw=gateway", "gw=gateway: not an IPv4 address"},
        {"gw=10.0.0.1 ip6=fd00::1", "gw=10.0.0.1: a gateway needs an IPv4 address (ip=ADDR/PREFIX)"},
        {"ip6=fd00::g/64", "ip6=fd00::g: not an IPv6 address (expected ADDR/64, e.g. fd00::2/64)"},
        {"ip6=10.0.0.1/64", "ip6=10.0.0.1: not an IPv6 address (expected ADDR/64, e.g. fd00::2/64)"},
        {"ip6=fd00::1/128", "ip6=fd00::1: prefix length must be 64 (lwIP's on-link rule)"},
        {"ip6=ff02::1/64",
         "ip6=ff02::1: must be a unicast global or ULA address (link-local is automatic)"},
        {"ip6=::/64", "ip6=::: must be a unicast global or ULA address (link-local is automatic)"},
        {"ip6=fe80::1/64",
         "ip6=fe80::1: must be a unicast global or ULA address (link-local is automatic)"},
    };
    struct tn_config cfg;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(cases[i].cmdline, &cfg, err, sizeof(err));
        if (rc != -1 || strcmp(err, cases[i].err) != 0)
            fail_msg("cmdline \"%s\": rc %d, message \"%s\", expected \"%s\"", cases[i].cmdline, rc,
                     err, cases[i].err);
    }
}

static void overlong_values_are_refused(void **state)
{
    char line[400], err[256];
    struct tn_config cfg;

    (void)state;
    /* An address followed by junk long enough that the value buffer truncates it. */
    snprintf(line, sizeof(line), "ip=10.0.0.1/%0200d", 8);
    assert_int_equal(parse(line, &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "ip=: value too long (expected ADDR/PREFIX, e.g. 10.0.0.2/24)");
    snprintf(line, sizeof(line), "ip6=fd00::1/%0200d", 64);
    assert_int_equal(parse(line, &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "ip6=: value too long (expected ADDR/64, e.g. fd00::2/64)");
    /* A short error buffer truncates the message, never overflows. */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    assert_int_equal(parse("ip=10.0.0", &cfg, tiny, sizeof(tiny)), -1);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_with_prefix_and_gateway),
        cmocka_unit_test(ipv4_prefix_edges),
        cmocka_unit_test(ipv6_only),
        cmocka_unit_test(errors_name_key_and_value),
        cmocka_unit_test(overlong_values_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
