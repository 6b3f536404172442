/* The VMM's I/O thread: epoll over TAP fds; wakes a vCPU sleeping in POLL when a frame arrives. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm.h"

struct vmm_io {
    pthread_t thread;
    int epoll_fd;
    int stop_fd; /* eventfd: ends the thread */
};

static void *io_main(void *opaque)
{
    struct vmm *vm = opaque;
    struct epoll_event ev[16];
    uint64_t one = 1;

    for (;;) {
        int n = epoll_wait(vm->io->epoll_fd, ev, 16, -1);
        bool kick = false;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vmm_log("I/O thread: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u32 == UINT32_MAX)
                return NULL;
            kick = true; /* edge-triggered: one event per newly arrived frame burst */
        }
        if (kick && write(vm->kick_fd, &one, sizeof(one)) < 0)
            vmm_log("I/O thread: kick eventfd: %s", strerror(errno));
    }
    return NULL;
}

int vmm_io_start(struct vmm *vm, char *err, size_t errlen)
{
    struct vmm_io *io;
    struct epoll_event ev;
    int rc;

    io = calloc(1, sizeof(*io));
    if (!io) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    io->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    io->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (io->epoll_fd < 0 || io->stop_fd < 0) {
        snprintf(err, errlen, "I/O thread: %s", strerror(errno));
        goto fail;
    }
    ev.events = EPOLLIN;
    ev.data.u32 = UINT32_MAX;
    if (epoll_ctl(io->epoll_fd, EPOLL_CTL_ADD, io->stop_fd, &ev) < 0)
        goto fail_errno;
    for (unsigned k = 0; k < vm->num_devs; k++) {
        if (vm->devs[k].abi.type != TANDEM_DEVICE_VIF)
            continue;
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u32 = k;
        if (epoll_ctl(io->epoll_fd, EPOLL_CTL_ADD, vm->devs[k].vif.tap_fd, &ev) < 0)
            goto fail_errno;
    }
    vm->io = io;
    rc = pthread_create(&io->thread, NULL, io_main, vm);
    if (rc != 0) {
        vm->io = NULL;
        snprintf(err, errlen, "cannot start the I/O thread: %s", strerror(rc));
        goto fail;
    }
    return 0;
fail_errno:
    snprintf(err, errlen, "I/O thread: epoll_ctl: %s", strerror(errno));
fail:
    if (io->epoll_fd >= 0)
        close(io->epoll_fd);
    if (io->stop_fd >= 0)
        close(io->stop_fd);
    free(io);
    return -1;
}

void vmm_io_stop(struct vmm *vm)
{
    struct vmm_io *io = vm->io;
    uint64_t one = 1;

    if (!io)
        return;
    if (write(io->stop_fd, &one, sizeof(one)) < 0)
        vmm_log("I/O thread: stop: %s", strerror(errno));
    pthread_join(io->thread, NULL);
    close(io->epoll_fd);
    close(io->stop_fd);
    free(io);
    vm->io = NULL;
}
