/* Hypercall dispatch: every argument and buffer goes through the bounds-checked accessor. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm.h"

#define HALT_MESSAGE_MAX 256u

static const char *const hc_names[] = {
    [TANDEM_HC_CONSOLE_WRITE] = "console_write", [TANDEM_HC_POLL] = "poll",
    [TANDEM_HC_HALT] = "halt",                   [TANDEM_HC_BLOCK_READ] = "block_read",
    [TANDEM_HC_BLOCK_WRITE] = "block_write",     [TANDEM_HC_BLOCK_FLUSH] = "block_flush",
    [TANDEM_HC_NET_WRITE] = "net_write",         [TANDEM_HC_NET_READ] = "net_read",
    [TANDEM_HC_RING_SETUP] = "ring_setup",       [TANDEM_HC_DOORBELL] = "doorbell",
};

bool vmm_crash(struct vmm *vm, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(vm->halt_msg, sizeof(vm->halt_msg), fmt, ap);
    va_end(ap);
    vm->halt = VMM_HALT_CRASH;
    vm->halt_code = -1;
    return false;
}

static uint64_t guest_rip(struct vmm *vm)
{
    struct kvm_regs regs;

    if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0)
        return 0;
    return regs.rip;
}

static bool bad_pointer(struct vmm *vm, unsigned nr, const char *what, uint64_t gpa, uint64_t len)
{
    return vmm_crash(vm,
                     "bad pointer: %s %s [0x%llx, +%llu) is outside guest RAM (%llu MiB) "
                     "at rip 0x%llx",
                     hc_names[nr], what, (unsigned long long)gpa, (unsigned long long)len,
                     (unsigned long long)(vm->mem.size >> 20),
                     (unsigned long long)guest_rip(vm));
}

/* Copy the argument struct in; false (domain crashed) when it is out of range or misaligned. */
static bool get_args(struct vmm *vm, unsigned nr, uint32_t gpa, void *buf, size_t len)
{
    const void *p = vmm_gpa_ptr(&vm->mem, gpa, len);

    if (!p)
        return bad_pointer(vm, nr, "argument", gpa, len);
    if (gpa % 8 != 0)
        return vmm_crash(vm, "bad pointer: %s argument 0x%x is not 8-byte aligned", hc_names[nr],
                         gpa);
    memcpy(buf, p, len);
    return true;
}

/* Write an output field back (range already validated by get_args). */
static void put_field(struct vmm *vm, uint32_t gpa, size_t off, const void *val, size_t len)
{
    memcpy(vmm_gpa_ptr_w(&vm->mem, (uint64_t)gpa + off, len), val, len);
}

static bool hc_console_write(struct vmm *vm, uint32_t arg)
{
    struct tandem_hc_console_write a;
    const void *data;

    if (!get_args(vm, TANDEM_HC_CONSOLE_WRITE, arg, &a, sizeof(a)))
        return false;
    if (a.len > TANDEM_HC_CONSOLE_MAX) {
        a.ret = TANDEM_HC_EINVAL;
    } else {
        data = vmm_gpa_ptr(&vm->mem, a.data, a.len);
        if (!data)
            return bad_pointer(vm, TANDEM_HC_CONSOLE_WRITE, "buffer", a.data, a.len);
        vmm_console_write(&vm->con, data, a.len);
        a.ret = (int64_t)a.len;
    }
    put_field(vm, arg, offsetof(struct tandem_hc_console_write, ret), &a.ret, sizeof(a.ret));
    return true;
}

static bool hc_poll(struct vmm *vm, uint32_t arg)
{
    struct tandem_hc_poll a;

    if (!get_args(vm, TANDEM_HC_POLL, arg, &a, sizeof(a)))
        return false;
    /* Input already waiting: return at once, the guest has work to do. */
    a.ready_set = vmm_dev_ready_set(vm);
    if (!a.ready_set) {
        vmm_run_wait(vm, a.deadline_ns);
        a.ready_set = vmm_dev_ready_set(vm);
    }
    a.ret = 0;
    put_field(vm, arg, offsetof(struct tandem_hc_poll, ready_set), &a.ready_set,
              sizeof(a.ready_set) + sizeof(a.ret));
    return true;
}

static bool hc_halt(struct vmm *vm, uint32_t arg)
{
    struct tandem_hc_halt a;
    const char *msg;
    uint64_t len;

    if (!get_args(vm, TANDEM_HC_HALT, arg, &a, sizeof(a)))
        return false;
    len = a.message_len < HALT_MESSAGE_MAX ? a.message_len : HALT_MESSAGE_MAX;
    msg = vmm_gpa_ptr(&vm->mem, a.message, len);
    if (!msg)
        return bad_pointer(vm, TANDEM_HC_HALT, "message", a.message, len);
    switch (a.reason) {
    case TANDEM_HALT_POWEROFF:
        vm->halt = VMM_HALT_POWEROFF;
        break;
    case TANDEM_HALT_REBOOT:
        vm->halt = VMM_HALT_REBOOT;
        break;
    case TANDEM_HALT_CRASH:
        vm->halt = VMM_HALT_CRASH;
        break;
    default:
        return vmm_crash(vm, "halt with unknown reason %u", a.reason);
    }
    vm->halt_code = a.code;
    if (len > 0)
        snprintf(vm->halt_msg, sizeof(vm->halt_msg), "%.*s", (int)len, msg);
    else if (vm->halt == VMM_HALT_CRASH)
        snprintf(vm->halt_msg, sizeof(vm->halt_msg), "guest reported a crash (code %d)", a.code);
    else
        vm->halt_msg[0] = '\0';
    return false;
}

/* BLOCK_READ/WRITE/FLUSH: one synchronous request on a disk (vmm_block.c). */
static bool hc_block(struct vmm *vm, unsigned nr, uint32_t arg)
{
    struct tandem_hc_block a;
    struct vmm_dev *d;
    void *buf;

    if (!get_args(vm, nr, arg, &a, sizeof(a)))
        return false;
    d = vmm_dev_get(vm, a.handle, TANDEM_DEVICE_DISK);
    if (!d) {
        a.ret = TANDEM_HC_EINVAL;
    } else if (nr == TANDEM_HC_BLOCK_FLUSH) {
        a.ret = vmm_block_flush(d);
    } else if ((a.ret = vmm_block_check(d, a.offset, a.len)) == 0) {
        if (nr == TANDEM_HC_BLOCK_WRITE && d->blk.readonly) {
            a.ret = TANDEM_HC_EROFS;
        } else {
            /* A read writes guest memory: through the dirty-marking accessor. */
            buf = nr == TANDEM_HC_BLOCK_READ ? vmm_gpa_ptr_w(&vm->mem, a.data, a.len)
                                             : vmm_gpa_ptr(&vm->mem, a.data, a.len);
            if (!buf)
                return bad_pointer(vm, nr, "buffer", a.data, a.len);
            a.ret = nr == TANDEM_HC_BLOCK_READ ? vmm_block_read(d, a.offset, buf, a.len)
                                               : vmm_block_write(d, a.offset, buf, a.len);
        }
    }
    put_field(vm, arg, offsetof(struct tandem_hc_block, ret), &a.ret, sizeof(a.ret));
    return true;
}

/* NET_WRITE/NET_READ: one frame (vmm_net.c). */
static bool hc_net(struct vmm *vm, unsigned nr, uint32_t arg)
{
    struct tandem_hc_net a;
    struct vmm_dev *d;
    void *buf;

    if (!get_args(vm, nr, arg, &a, sizeof(a)))
        return false;
    d = vmm_dev_get(vm, a.handle, TANDEM_DEVICE_VIF);
    if (!d || d->ring) { /* a vif with a ring is served through it only */
        a.ret = TANDEM_HC_EINVAL;
    } else if (nr == TANDEM_HC_NET_WRITE) {
        buf = vmm_gpa_ptr(&vm->mem, a.data, a.len);
        if (!buf)
            return bad_pointer(vm, nr, "frame", a.data, a.len);
        a.ret = vmm_net_output(d, buf, a.len);
        if (a.ret == 0)
            a.ret = (int64_t)a.len;
    } else {
        /* Frames are at most 64 KiB; a larger buffer is only checked for what can be used. */
        uint64_t len = a.len < 65536 ? a.len : 65536;
        buf = vmm_gpa_ptr_w(&vm->mem, a.data, len);
        if (!buf)
            return bad_pointer(vm, nr, "buffer", a.data, len);
        a.ret = vmm_net_receive(d, buf, len);
    }
    put_field(vm, arg, offsetof(struct tandem_hc_net, ret), &a.ret, sizeof(a.ret));
    return true;
}

/* RING_SETUP: the fast data path for one device (vmm_io.c, docs/devices.md). */
static bool hc_ring_setup(struct vmm *vm, uint32_t arg)
{
    struct tandem_hc_ring_setup a;
    struct vmm_dev *d;

    if (!get_args(vm, TANDEM_HC_RING_SETUP, arg, &a, sizeof(a)))
        return false;
    d = a.handle < vm->num_devs && vm->devs[a.handle].is_setup ? &vm->devs[a.handle] : NULL;
    a.ret = d ? vmm_io_ring_setup(vm, d, a.ring, a.size) : TANDEM_HC_EINVAL;
    put_field(vm, arg, offsetof(struct tandem_hc_ring_setup, ret), &a.ret, sizeof(a.ret));
    return true;
}

bool vmm_hypercall(struct vmm *vm, unsigned nr, uint32_t arg)
{
    switch (nr) {
    case TANDEM_HC_CONSOLE_WRITE:
        return hc_console_write(vm, arg);
    case TANDEM_HC_POLL:
        return hc_poll(vm, arg);
    case TANDEM_HC_HALT:
        return hc_halt(vm, arg);
    case TANDEM_HC_BLOCK_READ:
    case TANDEM_HC_BLOCK_WRITE:
    case TANDEM_HC_BLOCK_FLUSH:
        return hc_block(vm, nr, arg);
    case TANDEM_HC_NET_WRITE:
    case TANDEM_HC_NET_READ:
        return hc_net(vm, nr, arg);
    case TANDEM_HC_RING_SETUP:
        return hc_ring_setup(vm, arg);
    case TANDEM_HC_DOORBELL:
        /* eax is a handle, not a pointer; normally KVM's ioeventfd takes it in the kernel */
        vmm_io_doorbell(vm, arg);
        return true;
    }
    return vmm_crash(vm, "unknown hypercall %u (port 0x%x)", nr, TANDEM_HC_PORT(nr));
}
