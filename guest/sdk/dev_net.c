/* Guest SDK network device: send and receive whole Ethernet frames on a vif from the boot info. */
#include "tandem_dev.h"
#include "tandem_guest.h"

static struct tandem_hc_net net_args;

static int net_call(unsigned nr, unsigned handle, uintptr_t buf, size_t len)
{
    net_args.handle = handle;
    net_args.pad0 = 0;
    net_args.data = buf;
    net_args.len = len;
    net_args.ret = TANDEM_HC_ENOSYS;
    tg_hypercall(nr, &net_args);
    return (int)net_args.ret;
}

int tg_net_send(unsigned handle, const void *frame, size_t len)
{
    int rc = net_call(TANDEM_HC_NET_WRITE, handle, (uintptr_t)frame, len);

    return rc < 0 ? rc : 0;
}

int tg_net_recv(unsigned handle, void *buf, size_t buflen)
{
    return net_call(TANDEM_HC_NET_READ, handle, (uintptr_t)buf, buflen);
}
