/* netecho: answers ARP and ICMP echo by hand on the first vif; ip=A.B.C.D secs=N pings=N. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem_dev.h"
#include "tandem_guest.h"

static uint8_t frame[65536] __attribute__((aligned(64)));
static uint8_t mac[6];
static uint8_t myip[4];

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t csum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;

    for (size_t i = 0; i + 1 < len; i += 2)
        s += be16(p + i);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static int parse_ip(const char *s, uint8_t out[4])
{
    for (int i = 0; i < 4; i++) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v > 255 || (i < 3 && *end != '.') || (i == 3 && *end && *end != '/'))
            return -1;
        out[i] = (uint8_t)v;
        s = end + 1;
    }
    return 0;
}

/* Turn the request in frame into its reply in place; returns the reply length or 0. */
static size_t answer(size_t len, unsigned *pings)
{
    uint8_t *eth = frame, *l3 = frame + 14;

    if (len < 14 + 28)
        return 0;
    if (be16(eth + 12) == 0x0806) { /* ARP request for our address */
        if (be16(l3 + 6) != 1 || memcmp(l3 + 24, myip, 4) != 0)
            return 0;
        memcpy(eth, eth + 6, 6);
        memcpy(eth + 6, mac, 6);
        l3[7] = 2;                   /* reply */
        memcpy(l3 + 18, l3 + 8, 10); /* target = sender (MAC + IP) */
        memcpy(l3 + 8, mac, 6);
        memcpy(l3 + 14, myip, 4);
        return 42;
    }
    if (be16(eth + 12) == 0x0800 && (l3[0] >> 4) == 4 && l3[9] == 1 &&
        memcmp(l3 + 16, myip, 4) == 0) {
        size_t ihl = (size_t)(l3[0] & 15) * 4, tot = be16(l3 + 2);
        uint8_t *icmp = l3 + ihl, tmp[4];
        uint16_t c;
        if (tot + 14 > len || ihl < 20 || tot < ihl + 8 || icmp[0] != 8)
            return 0;
        memcpy(eth, eth + 6, 6);
        memcpy(eth + 6, mac, 6);
        memcpy(tmp, l3 + 12, 4);
        memcpy(l3 + 12, l3 + 16, 4);
        memcpy(l3 + 16, tmp, 4);
        l3[8] = 64;
        l3[10] = l3[11] = 0;
        c = csum(l3, ihl);
        l3[10] = (uint8_t)(c >> 8);
        l3[11] = (uint8_t)c;
        icmp[0] = 0; /* echo reply */
        icmp[2] = icmp[3] = 0;
        c = csum(icmp, tot - ihl);
        icmp[2] = (uint8_t)(c >> 8);
        icmp[3] = (uint8_t)c;
        (*pings)++;
        return 14 + tot;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char ip[32] = "";
    long secs = tg_cmdline_long("secs", 30), want_pings = tg_cmdline_long("pings", 0);
    int h = tg_dev_find(TANDEM_DEVICE_VIF, 0);
    unsigned pings = 0, frames = 0;
    uint64_t end;

    (void)argc;
    (void)argv;
    if (h < 0 || tg_cmdline_str("ip", ip, sizeof(ip)) < 0 || parse_ip(ip, myip) < 0) {
        printf("FAIL: need a vif and ip=A.B.C.D\n");
        return 1;
    }
    memcpy(mac, tg_dev((unsigned)h)->mac, 6);
    printf("netecho: %s mtu %u mac %02x:%02x:%02x:%02x:%02x:%02x ip %s\n",
           tg_dev((unsigned)h)->name, tg_dev((unsigned)h)->mtu, mac[0], mac[1], mac[2], mac[3],
           mac[4], mac[5], ip);
    end = tg_clock_ns() + (uint64_t)secs * 1000000000ull;
    while (tg_clock_ns() < end && (want_pings == 0 || pings < (unsigned)want_pings)) {
        int n = tg_net_recv((unsigned)h, frame, sizeof(frame));
        if (n == TANDEM_HC_EAGAIN) {
            tg_poll(end);
            continue;
        }
        if (n < 0) {
            printf("FAIL: tg_net_recv: %d\n", n);
            return 1;
        }
        frames++;
        size_t r = answer((size_t)n, &pings);
        if (r) {
            int rc;
            while ((rc = tg_net_send((unsigned)h, frame, r)) == TANDEM_HC_EAGAIN)
                tg_poll(tg_clock_ns() + 100000);
            if (rc < 0) {
                printf("FAIL: tg_net_send: %d\n", rc);
                return 1;
            }
        }
    }
    printf("netecho: %u frames, %u pings answered\n", frames, pings);
    if (want_pings && pings < (unsigned)want_pings) {
        printf("FAIL: only %u of %ld pings\n", pings, want_pings);
        return 1;
    }
    printf("SUCCESS\n");
    return 0;
}
