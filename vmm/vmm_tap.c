/* A vif's host side: TAP device, bridge port through libnl-route-3, duplicate-MAC check, script. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <linux/neighbour.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm.h"

/*
 * The host side of every vif has this MAC (as Xen's vif-bridge does) so
 * the bridge never takes it as its own address; the guest's MAC is kept
 * in the port's ifalias, where the duplicate check of other domains on
 * the same bridge finds it before the guest has sent a single frame.
 */
static const uint8_t host_side_mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
#define ALIAS_PREFIX "tandem mac="

extern char **environ;

static int mac_from_addr(struct nl_addr *a, uint8_t out[6])
{
    if (!a || nl_addr_get_len(a) != 6)
        return -1;
    memcpy(out, nl_addr_get_binary_addr(a), 6);
    return 0;
}

/*
 * Who on the bridge already uses mac: a port's own address, a Tandem
 * port's guest MAC (ifalias), an FDB entry (static, or learned from a
 * station behind a port), or the bridge's own address. Writes a
 * description into who and returns 1 when found. A learned entry does not
 * count for an incoming domain (restore, migration, Remus failover): its
 * MAC was learned from the host it is arriving from.
 */
static int mac_on_bridge(struct nl_sock *sk, struct nl_cache *links, struct rtnl_link *br,
                         const uint8_t mac[6], bool incoming, char *who, size_t wholen)
{
    int bri = rtnl_link_get_ifindex(br), found = 0;
    char alias_want[64], mac_str[TANDEM_MAC_STRLEN], port[IFNAMSIZ];
    struct nl_cache *fdb = NULL;
    struct nl_object *obj;
    uint8_t m[6];

    tandem_mac_format(mac, mac_str);
    snprintf(alias_want, sizeof(alias_want), ALIAS_PREFIX "%s", mac_str);
    for (obj = nl_cache_get_first(links); obj; obj = nl_cache_get_next(obj)) {
        struct rtnl_link *l = (struct rtnl_link *)obj;
        const char *alias = rtnl_link_get_ifalias(l);

        if (rtnl_link_get_master(l) != bri)
            continue;
        if (mac_from_addr(rtnl_link_get_addr(l), m) == 0 && memcmp(m, mac, 6) == 0) {
            snprintf(who, wholen, "port %s", rtnl_link_get_name(l));
            return 1;
        }
        if (alias && strcmp(alias, alias_want) == 0) {
            snprintf(who, wholen, "the guest behind port %s", rtnl_link_get_name(l));
            return 1;
        }
    }
    /* The bridge's forwarding database: an AF_BRIDGE neighbour dump. */
    if (nl_cache_alloc_name("route/neigh", &fdb) == 0) {
        nl_cache_set_arg1(fdb, AF_BRIDGE);
        if (nl_cache_refill(sk, fdb) < 0)
            vmm_log("bridge %s: cannot read the FDB; checking ports only", rtnl_link_get_name(br));
    }
    for (obj = fdb ? nl_cache_get_first(fdb) : NULL; obj && !found; obj = nl_cache_get_next(obj)) {
        struct rtnl_neigh *n = (struct rtnl_neigh *)obj;
        bool learned = !(rtnl_neigh_get_state(n) & (NUD_NOARP | NUD_PERMANENT));

        if (rtnl_neigh_get_master(n) != bri || mac_from_addr(rtnl_neigh_get_lladdr(n), m) != 0 ||
            memcmp(m, mac, 6) != 0)
            continue;
        if (!rtnl_link_i2name(links, rtnl_neigh_get_ifindex(n), port, sizeof(port)))
            snprintf(port, sizeof(port), "%d", rtnl_neigh_get_ifindex(n));
        if (learned && incoming) {
            vmm_log("MAC %s was learned on %s port %s: the domain is arriving from another host",
                    mac_str, rtnl_link_get_name(br), port);
            continue;
        }
        snprintf(who, wholen, "%s on port %s",
                 learned ? "a station the bridge has learned" : "a static FDB entry", port);
        found = 1;
    }
    if (fdb)
        nl_cache_free(fdb);
    if (found)
        return 1;
    /* After the ports: a bridge without an address of its own borrows the lowest port's. */
    if (mac_from_addr(rtnl_link_get_addr(br), m) == 0 && memcmp(m, mac, 6) == 0) {
        snprintf(who, wholen, "the bridge %s itself", rtnl_link_get_name(br));
        return 1;
    }
    return 0;
}

/* Run `script action` with Xen-like environment; 0 when it exited 0. */
static int run_script(struct vmm_dev *d, int domid, const char *action, char *err, size_t errlen)
{
    char e_vif[64], e_br[128], e_mac[64], e_ip[128], e_dom[32], e_dev[32], e_mtu[32];
    const char *argv[] = {d->vif.script, action, NULL};
    int status;
    pid_t pid;

    snprintf(e_vif, sizeof(e_vif), "vif=%s", d->vif.ifname);
    snprintf(e_br, sizeof(e_br), "bridge=%s", d->vif.bridge);
    snprintf(e_mac, sizeof(e_mac), "mac=%s", d->vif.mac_str);
    snprintf(e_ip, sizeof(e_ip), "ip=%s", d->vif.ip ? d->vif.ip : "");
    snprintf(e_dom, sizeof(e_dom), "domid=%d", domid);
    snprintf(e_dev, sizeof(e_dev), "devid=%d", d->devid);
    snprintf(e_mtu, sizeof(e_mtu), "mtu=%u", d->abi.mtu);
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "vif %s: script %s: fork: %s", d->vif.ifname, d->vif.script,
                 strerror(errno));
        return -1;
    }
    if (pid == 0) {
        putenv(e_vif);
        putenv(e_br);
        putenv(e_mac);
        putenv(e_ip);
        putenv(e_dom);
        putenv(e_dev);
        putenv(e_mtu);
        setenv("XENBUS_TYPE", "vif", 1);
        setenv("netdev", d->vif.ifname, 1);
        /* The script's output must not land on the guest's console or the library's pipe. */
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        execv(d->vif.script, (char *const *)argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(err, errlen, "vif %s: script %s: waitpid: %s", d->vif.ifname, d->vif.script,
                     strerror(errno));
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        snprintf(err, errlen, "vif %s: script %s %s could not be run (missing or not executable?)",
                 d->vif.ifname, d->vif.script, action);
    else if (WIFEXITED(status))
        snprintf(err, errlen, "vif %s: script %s %s failed with status %d", d->vif.ifname,
                 d->vif.script, action, WEXITSTATUS(status));
    else
        snprintf(err, errlen, "vif %s: script %s %s was killed by signal %d", d->vif.ifname,
                 d->vif.script, action, WTERMSIG(status));
    return -1;
}

int vmm_tap_create(struct vmm_dev *d, int domid, bool incoming, char *err, size_t errlen)
{
    struct nl_sock *sk = NULL;
    struct nl_cache *links = NULL;
    struct rtnl_link *br = NULL, *tap = NULL, *change = NULL;
    struct nl_addr *hw = NULL;
    struct ifreq ifr;
    char who[128], alias[64];
    int fd = -1, rc = -1, nlrc;

    sk = nl_socket_alloc();
    if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0) {
        snprintf(err, errlen, "vif %s: cannot open a netlink socket", d->vif.ifname);
        goto out;
    }
    nlrc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
    if (nlrc < 0) {
        snprintf(err, errlen, "vif %s: cannot list network links: %s", d->vif.ifname,
                 nl_geterror(nlrc));
        goto out;
    }
    br = rtnl_link_get_by_name(links, d->vif.bridge);
    if (!br) {
        snprintf(err, errlen, "vif %s: bridge '%s' does not exist", d->vif.ifname, d->vif.bridge);
        goto out;
    }
    if (!rtnl_link_get_type(br) || strcmp(rtnl_link_get_type(br), "bridge") != 0) {
        snprintf(err, errlen, "vif %s: '%s' is not a bridge", d->vif.ifname, d->vif.bridge);
        goto out;
    }
    if (mac_on_bridge(sk, links, br, d->abi.mac, incoming, who, sizeof(who))) {
        snprintf(err, errlen, "vif %s: MAC %s is already in use on bridge %s (by %s)",
                 d->vif.ifname, d->vif.mac_str, d->vif.bridge, who);
        goto out;
    }

    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "vif %s: cannot open /dev/net/tun: %s", d->vif.ifname,
                 strerror(errno));
        goto out;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", d->vif.ifname);
    if (rtnl_link_get_by_name(links, d->vif.ifname)) {
        snprintf(err, errlen, "vif %s: a network interface with that name already exists",
                 d->vif.ifname);
        goto out;
    }
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        snprintf(err, errlen, "vif %s: cannot create the TAP device: %s", d->vif.ifname,
                 strerror(errno));
        goto out;
    }
    nlrc = rtnl_link_get_kernel(sk, 0, d->vif.ifname, &tap);
    if (nlrc < 0) {
        snprintf(err, errlen, "vif %s: TAP device vanished: %s", d->vif.ifname, nl_geterror(nlrc));
        goto out;
    }
    d->vif.ifindex = rtnl_link_get_ifindex(tap);
    change = rtnl_link_alloc();
    hw = nl_addr_build(AF_LLC, host_side_mac, 6);
    if (!change || !hw) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(alias, sizeof(alias), ALIAS_PREFIX "%s", d->vif.mac_str);
    rtnl_link_set_addr(change, hw);
    rtnl_link_set_mtu(change, d->abi.mtu);
    rtnl_link_set_ifalias(change, alias);
    nlrc = rtnl_link_change(sk, tap, change, 0);
    if (nlrc < 0) {
        snprintf(err, errlen, "vif %s: cannot set MTU %u and address: %s", d->vif.ifname,
                 d->abi.mtu, nl_geterror(nlrc));
        goto out;
    }
    rtnl_link_put(change);
    change = rtnl_link_alloc();
    if (!change) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rtnl_link_set_master(change, rtnl_link_get_ifindex(br));
    rtnl_link_set_flags(change, IFF_UP);
    nlrc = rtnl_link_change(sk, tap, change, 0);
    if (nlrc < 0) {
        snprintf(err, errlen, "vif %s: cannot attach it to bridge %s and bring it up: %s",
                 d->vif.ifname, d->vif.bridge, nl_geterror(nlrc));
        goto out;
    }
    d->vif.tap_fd = fd;
    fd = -1;
    if (d->vif.script) {
        if (run_script(d, domid, "online", err, errlen) < 0) {
            /* Undo a half-done online (offline call) and remove the TAP. */
            d->vif.script_online = true;
            vmm_tap_destroy(d, domid);
            goto out;
        }
        d->vif.script_online = true;
    }
    vmm_log("vif %s: mac %s, mtu %u, bridge %s%s%s", d->vif.ifname, d->vif.mac_str, d->abi.mtu,
            d->vif.bridge, d->vif.script ? ", script " : "", d->vif.script ? d->vif.script : "");
    rc = 0;
out:
    if (fd >= 0)
        close(fd); /* a non-persistent TAP disappears with its last fd */
    if (hw)
        nl_addr_put(hw);
    if (change)
        rtnl_link_put(change);
    if (tap)
        rtnl_link_put(tap);
    if (br)
        rtnl_link_put(br);
    if (links)
        nl_cache_free(links);
    if (sk)
        nl_socket_free(sk);
    return rc;
}

void vmm_tap_destroy(struct vmm_dev *d, int domid)
{
    char err[VMM_ERRLEN];

    if (d->vif.script_online) {
        d->vif.script_online = false;
        if (run_script(d, domid, "offline", err, sizeof(err)) < 0)
            vmm_log("%s", err);
    }
    if (d->vif.tap_fd >= 0)
        close(d->vif.tap_fd); /* the TAP is not persistent: this removes it */
    d->vif.tap_fd = -1;
}
