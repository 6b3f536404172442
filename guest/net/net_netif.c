/* Guest networking: the lwIP netif over the PV net device, bring-up and address announcements. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/icmp6.h"
#include "lwip/inet_chksum.h"
#include "lwip/init.h"
#include "lwip/ip6.h"
#include "lwip/mld6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/prot/nd6.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#include "arch/sys_arch.h"
#include "net_internal.h"
#include "tandem_dev.h"
#include "tandem_guest.h"

struct tn_state tn;

/* Poll this long between retries of a full TX path. */
#define TX_RETRY_NS (50ull * 1000)
/* A second announcement this long after the first, in case the first met a bridge still learning.
 */
#define REANNOUNCE_MS 1000

static err_t tn_linkoutput(struct netif *netif, struct pbuf *p)
{
    const void *frame = p->payload;
    uint64_t start = 0;
    err_t rc = ERR_IF;

    (void)netif;
    if (p->tot_len > tn.frame_max) {
        tn.stats.tx_dropped++;
        printf("net: dropping a %u-byte frame, larger than MTU + 14 = %zu\n", p->tot_len,
               tn.frame_max);
        goto out;
    }
    /* The device takes one contiguous frame; chains (ARP, ICMP, fragments) are copied together. */
    if (p->next) {
        pbuf_copy_partial(p, tn.txbuf, p->tot_len, 0);
        frame = tn.txbuf;
    }
    for (;;) {
        int hc = tg_net_send(tn.handle, frame, p->tot_len);
        if (hc == 0) {
            tn.stats.tx_frames++;
            rc = ERR_OK;
            break;
        }
        if (hc != TANDEM_HC_EAGAIN) {
            tn.stats.tx_dropped++;
            printf("net: vif %u refused a %u-byte frame (error %d)\n", tn.handle, p->tot_len, hc);
            break;
        }
        /* Full: wait for the backend to drain it, but not forever (TCP retransmits). */
        tn.stats.tx_eagain++;
        uint64_t now = tg_clock_ns();
        if (!start)
            start = now;
        if (now - start > TN_TX_GIVEUP_NS) {
            tn.stats.tx_dropped++;
            printf(
                "net: vif %u TX path full for %llu ms, dropping a %u-byte frame (%llu dropped)\n",
                tn.handle, (unsigned long long)(TN_TX_GIVEUP_NS / 1000000), p->tot_len,
                (unsigned long long)tn.stats.tx_dropped);
            break;
        }
        tg_poll(now + TX_RETRY_NS);
    }
out:
    return rc;
}

static err_t tn_netif_init(struct netif *netif)
{
    const struct tandem_device *dev = tg_dev(tn.handle);

    netif->name[0] = 'e';
    netif->name[1] = 'n';
    netif->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(netif->hwaddr, dev->mac, ETH_HWADDR_LEN);
    netif->mtu = (u16_t)dev->mtu;
#if LWIP_IPV6 && LWIP_ND6_ALLOW_RA_UPDATES
    netif->mtu6 = (u16_t)dev->mtu;
#endif
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6;
    netif->output = etharp_output;
    netif->output_ip6 = ethip6_output;
    netif->linkoutput = tn_linkoutput;
    return ERR_OK;
}

/* An unsolicited neighbour advertisement (RFC 4861 7.2.6) for one of our addresses, to all nodes.
 */
static void send_unsolicited_na(const ip6_addr_t *target)
{
    struct netif *netif = &tn.netif;
    const u16_t optlen = 1; /* in units of 8 bytes: type, length, 6-byte MAC */
    struct pbuf *p = pbuf_alloc(PBUF_IP, sizeof(struct na_header) + optlen * 8, PBUF_RAM);
    ip6_addr_t dest;

    if (!p)
        return;
    struct na_header *na = p->payload;
    struct lladdr_option *opt = (struct lladdr_option *)((u8_t *)p->payload + sizeof(*na));
    memset(p->payload, 0, p->len);
    na->type = ICMP6_TYPE_NA;
    na->code = 0;
    na->flags = ND6_FLAG_OVERRIDE; /* not solicited: nobody asked; override: replace old MACs */
    ip6_addr_copy_to_packed(na->target_address, *target);
    opt->type = ND6_OPTION_TYPE_TARGET_LLADDR;
    opt->length = (u8_t)optlen;
    memcpy(opt->addr, netif->hwaddr, ETH_HWADDR_LEN);

    ip6_addr_set_allnodes_linklocal(&dest);
    ip6_addr_assign_zone(&dest, IP6_MULTICAST, netif);
    na->chksum = ip6_chksum_pseudo(p, IP6_NEXTH_ICMP6, p->len, target, &dest);
    ip6_output_if(p, target, &dest, 255 /* ND hop limit */, 0, IP6_NEXTH_ICMP6, netif);
    pbuf_free(p);
}

void tn_announce(void)
{
    struct netif *netif = &tn.netif;

    if (!netif_is_up(netif) || !netif_is_link_up(netif))
        return;
    if (!ip4_addr_isany_val(*netif_ip4_addr(netif)))
        etharp_gratuitous(netif);
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
        if (ip6_addr_isvalid(netif_ip6_addr_state(netif, i)))
            send_unsolicited_na(netif_ip6_addr(netif, i));
    /* Multicast listener reports, so snooping bridges on the new host forward ND to us. */
    mld6_report_groups(netif);
    tn.stats.announcements++;
}

static void reannounce_timer(void *arg)
{
    (void)arg;
    tn_announce();
}

/* Announce now and once more a second later; called at link up and on a new clock generation. */
void tn_announce_twice(void)
{
    tn_announce();
    sys_untimeout(reannounce_timer, NULL);
    sys_timeout(REANNOUNCE_MS, reannounce_timer, NULL);
}

int tn_init(const struct tn_config *cfg, char *err, size_t errlen)
{
    int h = tg_dev_find(TANDEM_DEVICE_VIF, (unsigned)cfg->vif_nth);
    const struct tandem_device *dev;
    int rc = -1;

    if (h < 0) {
        snprintf(err, errlen, "no network device: the domain has no vif number %d (vif=[...])",
                 cfg->vif_nth);
        goto out;
    }
    dev = tg_dev((unsigned)h);
    if (dev->mtu < 1280 || dev->mtu > 65535) {
        snprintf(err, errlen, "vif %d: MTU %u is outside 1280..65535", h, dev->mtu);
        goto out;
    }
    tn.handle = (unsigned)h;
    tn.frame_max = dev->mtu + 14u;
    tn.txbuf = malloc(tn.frame_max);
    if (!tn.txbuf) {
        snprintf(err, errlen, "out of memory for a %zu-byte TX buffer", tn.frame_max);
        goto out;
    }

    /* Different initial sequence numbers and ephemeral ports on every boot. */
    uint64_t seed = tg_wall_ns() ^ tg_rdtsc();
    srand((unsigned)(seed ^ (seed >> 32)));
    lwip_init();

    netif_add(&tn.netif, cfg->have_ip4 ? &cfg->ip4 : IP4_ADDR_ANY4,
              cfg->have_ip4 ? &cfg->mask4 : IP4_ADDR_ANY4,
              cfg->have_gw4 ? &cfg->gw4 : IP4_ADDR_ANY4, NULL, tn_netif_init, ethernet_input);
    netif_set_default(&tn.netif);

    /*
     * IPv6: the link-local address from the MAC plus the static one, both
     * valid at once without duplicate address detection (as the test hosts'
     * addresses): a domain resumed after failover must not wait for DAD.
     */
    netif_create_ip6_linklocal_address(&tn.netif, 1);
    netif_ip6_addr_set_state(&tn.netif, 0, IP6_ADDR_PREFERRED);
    if (cfg->have_ip6) {
        s8_t idx;
        if (netif_add_ip6_address(&tn.netif, &cfg->ip6, &idx) != ERR_OK) {
            snprintf(err, errlen, "ip6: lwIP has no free address slot");
            goto out;
        }
        netif_ip6_addr_set_state(&tn.netif, idx, IP6_ADDR_PREFERRED);
    }

    netif_set_up(&tn.netif);
    netif_set_link_up(&tn.netif);
    tn.generation = tandem_lwip_clock_generation();
    tn.stats.generation = tn.generation;
    tn_announce_twice();
    rc = 0;
out:
    return rc;
}

struct netif *tn_netif(void)
{
    return &tn.netif;
}

void tn_stats(struct tn_stats *out)
{
    *out = tn.stats;
}

void tn_start(const char *app)
{
    struct tn_config cfg;
    char err[256], a4[IP4ADDR_STRLEN_MAX], a6[IP6ADDR_STRLEN_MAX];
    const u8_t *mac;

    if (tn_config_parse(&cfg, err, sizeof(err)) != 0 || tn_init(&cfg, err, sizeof(err)) != 0) {
        printf("%s: %s\n", app, err);
        tg_halt(TANDEM_HALT_POWEROFF, 2, err);
    }
    mac = tn.netif.hwaddr;
    printf("%s: vif %u mac %02x:%02x:%02x:%02x:%02x:%02x mtu %u", app, tn.handle, mac[0], mac[1],
           mac[2], mac[3], mac[4], mac[5], tn.netif.mtu);
    if (cfg.have_ip4)
        printf(" ip %s/%u", ip4addr_ntoa_r(&cfg.ip4, a4, sizeof(a4)), cfg.prefix4);
    if (cfg.have_gw4)
        printf(" gw %s", ip4addr_ntoa_r(&cfg.gw4, a4, sizeof(a4)));
    if (cfg.have_ip6) {
        ip6addr_ntoa_r(&cfg.ip6, a6, sizeof(a6));
        for (char *c = a6; *c; c++) /* lwIP prints upper case; RFC 5952 says lower */
            *c = (char)tolower((unsigned char)*c);
        printf(" ip6 %s/%u", a6, cfg.prefix6);
    }
    printf("\n");
}
