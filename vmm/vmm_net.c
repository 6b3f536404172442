/* The vif backend: MAC/MTU/name from the spec, TX through one output hook, RX from the TAP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "vmm.h"

#define ETH_HLEN_ 14u
#define MTU_DEFAULT 1500u
#define MTU_MIN 68u
#define MTU_MAX 65521u /* mtu + 14 must fit the 64 KiB receive buffer */
#define RX_BUF 65536u
#define DEFAULT_BRIDGE "xenbr0" /* xl's default */

/* The default output: straight into the TAP. A full TAP queue drops (like a busy wire). */
static int tap_send(struct vmm_dev *d, const void *frame, size_t len)
{
    ssize_t n;

    do
        n = write(d->vif.tap_fd, frame, len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == ENOBUFS))
        return TANDEM_HC_EAGAIN;
    if (n < 0) {
        vmm_log("vif %s: write: %s", d->vif.ifname, strerror(errno));
        return TANDEM_HC_EIO;
    }
    return 0;
}

static int net_setup(struct vmm *vm, struct vmm_dev *d, char *err, size_t errlen)
{
    const tandem_device_nic *nic = d->nic;
    uint8_t rnd[3];
    int n;

    d->abi.type = TANDEM_DEVICE_VIF;
    if (nic->mtu < 0 ||
        (nic->mtu > 0 && ((unsigned)nic->mtu < MTU_MIN || (unsigned)nic->mtu > MTU_MAX))) {
        snprintf(err, errlen, "vif %d: mtu=%d: must be between %u and %u", d->devid, nic->mtu,
                 MTU_MIN, MTU_MAX);
        return -1;
    }
    d->abi.mtu = nic->mtu ? (uint32_t)nic->mtu : MTU_DEFAULT;
    if (nic->ifname && nic->ifname[0])
        n = snprintf(d->vif.ifname, sizeof(d->vif.ifname), "%s", nic->ifname);
    else
        n = snprintf(d->vif.ifname, sizeof(d->vif.ifname), "vif%d.%d", vm->domid, d->devid);
    if (n < 0 || (size_t)n >= sizeof(d->vif.ifname) || strchr(d->vif.ifname, '/') ||
        strchr(d->vif.ifname, ' ')) {
        snprintf(err, errlen,
                 "vif %d: interface name '%s' is not valid (at most 15 characters, "
                 "no '/' or spaces)",
                 d->devid, nic->ifname ? nic->ifname : d->vif.ifname);
        return -1;
    }
    if (tandem_mac_is_zero(nic->mac)) {
        /* xl's rule: the Xen OUI 00:16:3e and three random bytes. */
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
            snprintf(err, errlen, "vif %s: cannot generate a MAC: %s", d->vif.ifname,
                     strerror(errno));
            return -1;
        }
        d->abi.mac[0] = 0x00;
        d->abi.mac[1] = 0x16;
        d->abi.mac[2] = 0x3e;
        d->abi.mac[3] = rnd[0] & 0x7f;
        d->abi.mac[4] = rnd[1];
        d->abi.mac[5] = rnd[2];
    } else {
        memcpy(d->abi.mac, nic->mac, 6);
        if (d->abi.mac[0] & 1) {
            tandem_mac_format(d->abi.mac, d->vif.mac_str);
            snprintf(err, errlen, "vif %s: mac=%s is a multicast address", d->vif.ifname,
                     d->vif.mac_str);
            return -1;
        }
    }
    tandem_mac_format(d->abi.mac, d->vif.mac_str);
    d->vif.bridge = strdup(nic->bridge && nic->bridge[0] ? nic->bridge : DEFAULT_BRIDGE);
    d->vif.script = nic->script && nic->script[0] ? strdup(nic->script) : NULL;
    d->vif.ip = nic->ip && nic->ip[0] ? strdup(nic->ip) : NULL;
    d->vif.pending = malloc(RX_BUF);
    if (!d->vif.bridge || !d->vif.pending || (nic->script && nic->script[0] && !d->vif.script) ||
        (nic->ip && nic->ip[0] && !d->vif.ip)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    d->vif.out.send = tap_send;
    if (vmm_tap_create(d, vm->domid, vm->p.incoming, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    free(d->vif.bridge);
    free(d->vif.script);
    free(d->vif.ip);
    free(d->vif.pending);
    d->vif.bridge = d->vif.script = d->vif.ip = NULL;
    d->vif.pending = NULL;
    return -1;
}

static void net_teardown(struct vmm *vm, struct vmm_dev *d)
{
    if (d->vif.bridge)
        vmm_tap_destroy(d, vm->domid);
    free(d->vif.bridge);
    free(d->vif.script);
    free(d->vif.ip);
    free(d->vif.pending);
    d->vif.bridge = d->vif.script = d->vif.ip = NULL;
    d->vif.pending = NULL;
    d->vif.pending_len = 0;
}

const struct vmm_dev_ops vmm_net_ops = {
    .kind = "vif",
    .setup = net_setup,
    .teardown = net_teardown,
};

int vmm_net_output(struct vmm_dev *d, const void *frame, size_t len)
{
    int rc;

    if (len < ETH_HLEN_ || len > d->abi.mtu + ETH_HLEN_)
        return TANDEM_HC_EINVAL;
    rc = d->vif.out.send(d, frame, len);
    if (rc == 0)
        d->vif.tx_frames++;
    return rc;
}

/* Pull the next frame from the TAP into the pending buffer; false if none. */
static bool fill_pending(struct vmm_dev *d)
{
    ssize_t n;

    if (d->vif.pending_len)
        return true;
    do
        n = read(d->vif.tap_fd, d->vif.pending, RX_BUF);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    d->vif.pending_len = (size_t)n;
    return true;
}

int vmm_net_receive(struct vmm_dev *d, void *buf, size_t buflen)
{
    size_t len;
    ssize_t n;

    /* A buffer that fits any frame takes it straight from the TAP: one copy, not two. */
    if (!d->vif.pending_len && buflen >= d->abi.mtu + ETH_HLEN_) {
        do
            n = read(d->vif.tap_fd, buf, buflen < RX_BUF ? buflen : RX_BUF);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return TANDEM_HC_EAGAIN;
        d->vif.rx_frames++;
        return (int)n;
    }
    if (!fill_pending(d))
        return TANDEM_HC_EAGAIN;
    len = d->vif.pending_len;
    if (buflen < len)
        return TANDEM_HC_ENOSPC;
    memcpy(buf, d->vif.pending, len);
    d->vif.pending_len = 0;
    d->vif.rx_frames++;
    return (int)len;
}

bool vmm_net_has_input(struct vmm_dev *d)
{
    return fill_pending(d);
}
