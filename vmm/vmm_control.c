/* Control socket (SOCK_SEQPACKET, one JSON object per message) and the VMM's main loop. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tandem.h"
#include "vmm.h"
#include "vmm_blkdirty.h"
#include "vmm_remus.h"

#define CONTROL_MSG_MAX 65536
#define CONTROL_CLIENTS 16
#define CONTROL_FDS_MAX 8

static int listen_fd = -1;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/*
 * Rename: put the new name into DIR/config.json (written aside, then
 * renamed), since that file is what `list -l` shows and what save and
 * migration embed as DOMAIN_CONFIG; a restored copy must come back under
 * the new name. Direct mode (no DIR) has no file. Returns 0, or -1 with
 * err set and the file unchanged.
 */
static int rename_in_config(struct vmm *vm, const char *name, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    json_error_t jerr;
    json_t *cfg = NULL, *c_info;
    int rc = -1;

    if (!vm->dir)
        return 0;
    snprintf(path, sizeof(path), "%s/config.json", vm->dir);
    snprintf(tmp, sizeof(tmp), "%s.rename", path);
    cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    c_info = json_object_get(cfg, "c_info");
    if (!json_is_object(c_info)) {
        snprintf(err, errlen, "rename: %.300s: %s", path, cfg ? "no c_info object" : jerr.text);
        goto out;
    }
    if (json_object_set_new(c_info, "name", json_string(name)) < 0 ||
        json_dump_file(cfg, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0) {
        snprintf(err, errlen, "rename: cannot rewrite %.300s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    json_decref(cfg);
    return rc;
}

int vmm_control_open(struct vmm *vm, char *err, size_t errlen)
{
    struct sockaddr_un sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", vm->dir) >=
        sizeof(sa.sun_path)) {
        snprintf(err, errlen, "domain dir %s: path too long for a UNIX socket", vm->dir);
        return -1;
    }
    listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", sa.sun_path, strerror(errno));
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    memcpy(sock_path, sa.sun_path, sizeof(sock_path));
    if (listen(listen_fd, CONTROL_CLIENTS) < 0) {
        snprintf(err, errlen, "listen on %s: %s", sa.sun_path, strerror(errno));
        vmm_control_close(vm);
        return -1;
    }
    return 0;
}

void vmm_control_close(struct vmm *vm)
{
    (void)vm;
    if (listen_fd < 0)
        return;
    close(listen_fd);
    listen_fd = -1;
    unlink(sock_path);
}

static const char *state_name(enum vmm_state s)
{
    switch (s) {
    case VMM_STATE_RUNNING:
        return "running";
    case VMM_STATE_PAUSED:
        return "paused";
    case VMM_STATE_SHUTDOWN:
        return "shutdown";
    case VMM_STATE_CRASHED:
        return "crashed";
    }
    return "unknown";
}

static json_t *info_json(struct vmm *vm)
{
    tandem_dominfo info;
    enum vmm_state st;
    json_t *j;

    tandem_dominfo_init(&info);
    pthread_mutex_lock(&vm->lock);
    st = vm->state;
    pthread_mutex_unlock(&vm->lock);
    info.domid = (uint32_t)vm->domid;
    info.name = vm->p.name;
    memcpy(info.uuid, vm->p.uuid, 16);
    switch (st) {
    case VMM_STATE_RUNNING:
        info.state = TANDEM_DOMAIN_STATE_RUNNING;
        break;
    case VMM_STATE_PAUSED:
        info.state = TANDEM_DOMAIN_STATE_PAUSED;
        break;
    case VMM_STATE_SHUTDOWN:
        info.state = TANDEM_DOMAIN_STATE_SHUTDOWN;
        info.shutdown_reason = vm->halt == VMM_HALT_REBOOT ? TANDEM_SHUTDOWN_REASON_REBOOT
                                                            : TANDEM_SHUTDOWN_REASON_POWEROFF;
        break;
    case VMM_STATE_CRASHED:
        info.state = TANDEM_DOMAIN_STATE_CRASHED;
        info.shutdown_reason = TANDEM_SHUTDOWN_REASON_CRASH;
        break;
    }
    info.max_memkb = vm->mem.size >> 10;
    info.current_memkb = vm->mem.size >> 10;
    info.vcpu_online = 1;
    info.cpu_time_ns = vmm_run_cpu_time_ns(vm);
    info.vmm_pid = (int)getpid();
    tandem_defbool_set(&info.protected_by_remus, vmm_remus_protected()); /* docs/remus.md */
    j = tandem_dominfo_gen_json(&info);
    info.name = NULL; /* borrowed */
    tandem_dominfo_dispose(&info);
    return j;
}

static json_t *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_reply(const char *fmt, ...)
{
    char msg[VMM_ERRLEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

/* Handle one request; *destroy set when the VMM must tear down after replying. */
static json_t *handle_request(struct vmm *vm, const char *text, size_t len, bool *destroy)
{
    json_error_t jerr;
    json_t *req, *reply = NULL, *name;
    const char *cmd;
    enum vmm_state st;

    req = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(req)) {
        reply = error_reply("request is not a JSON object: %s", req ? "wrong type" : jerr.text);
        goto out;
    }
    cmd = json_string_value(json_object_get(req, "cmd"));
    if (!cmd) {
        reply = error_reply("request has no \"cmd\" string");
        goto out;
    }
    pthread_mutex_lock(&vm->lock);
    st = vm->state;
    pthread_mutex_unlock(&vm->lock);

    if (strcmp(cmd, "info") == 0) {
        json_t *info = info_json(vm);
        reply = info ? json_pack("{s:b,s:o}", "ok", 1, "info", info)
                     : error_reply("cannot encode domain info");
    } else if (strcmp(cmd, "pause") == 0) {
        if (st == VMM_STATE_SHUTDOWN || st == VMM_STATE_CRASHED) {
            reply = error_reply("pause: domain '%s' is not running (state %s)", vm->p.name,
                                state_name(st));
        } else {
            vmm_run_pause(vm);
            vmm_log("paused");
            reply = json_pack("{s:b}", "ok", 1);
        }
    } else if (strcmp(cmd, "unpause") == 0) {
        if (st == VMM_STATE_SHUTDOWN || st == VMM_STATE_CRASHED) {
            reply = error_reply("unpause: domain '%s' is not running (state %s)", vm->p.name,
                                state_name(st));
        } else {
            vmm_run_unpause(vm);
            vmm_log("unpaused");
            reply = json_pack("{s:b}", "ok", 1);
        }
    } else if (strcmp(cmd, "devices") == 0) {
        json_t *devs = vmm_dev_json(vm); /* docs/devices.md */
        reply = devs ? json_pack("{s:b,s:o}", "ok", 1, "devices", devs)
                     : error_reply("cannot encode the device list");
    } else if (strcmp(cmd, "remus-status") == 0) {
        reply = vmm_remus_status(vm); /* docs/remus.md */
    } else if (strcmp(cmd, "disk-dirty") == 0) {
        reply = vmm_blkdirty_request(vm, req); /* migration --copy-storage, docs/control.md */
    } else if (strcmp(cmd, "destroy") == 0) {
        *destroy = true;
        reply = json_pack("{s:b}", "ok", 1);
    } else if (strcmp(cmd, "rename") == 0) {
        char *copy, cerr[512];
        name = json_object_get(req, "name");
        if (!json_is_string(name) || json_string_length(name) == 0) {
            reply = error_reply("rename: \"name\" must be a non-empty string");
        } else if (!(copy = strdup(json_string_value(name)))) {
            reply = error_reply("rename: out of memory");
        } else if (rename_in_config(vm, copy, cerr, sizeof(cerr)) < 0) {
            free(copy);
            reply = error_reply("%s", cerr);
        } else {
            vmm_log("renamed from '%s' to '%s'", vm->p.name, copy);
            free(vm->p.name);
            vm->p.name = copy;
            reply = json_pack("{s:b}", "ok", 1);
        }
    } else {
        reply = error_reply("unknown command '%s' (known: info, devices, pause, unpause, "
                            "destroy, rename, save, remus, remus-status, remus-follow, "
                            "disk-dirty)",
                            cmd);
    }
out:
    json_decref(req);
    return reply;
}

/* Send one reply (consumed) to a client, waiting a little if progress messages filled its socket. */
static void send_reply(int fd, json_t *reply)
{
    char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;

    json_decref(reply);
    if (!text)
        text = strdup("{\"ok\":false,\"error\":\"out of memory\"}");
    if (text && send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) {
        struct pollfd out = {.fd = fd, .events = POLLOUT};
        if (errno != EAGAIN || poll(&out, 1, 5000) <= 0 ||
            send(fd, text, strlen(text), MSG_NOSIGNAL) < 0)
            vmm_log("control reply: %s", errno ? strerror(errno) : "timed out");
    }
    free(text);
}

/* Commands that would fight a running save over the vCPU or the name. */
static bool conflicts_with_save(const char *cmd)
{
    return strcmp(cmd, "pause") == 0 || strcmp(cmd, "unpause") == 0 ||
           strcmp(cmd, "rename") == 0 || strcmp(cmd, "remus") == 0;
}

/* Receive one message from a client; returns false when the client is gone. */
static bool serve_client(struct vmm *vm, int fd, bool *destroy)
{
    static char buf[CONTROL_MSG_MAX + 1];
    char cbuf[CMSG_SPACE(CONTROL_FDS_MAX * sizeof(int))];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *cm;
    json_t *reply, *req = NULL;
    const char *cmd = NULL;
    bool later = false;
    ssize_t n;
    int rfds[CONTROL_FDS_MAX], nrfds = 0;

    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (n <= 0)
        return false;
    /* Only `save` takes an fd (the stream); all are closed after the request. */
    for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t i, nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (i = 0; i < nfd; i++) {
                int rfd;
                memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (nrfds < CONTROL_FDS_MAX)
                    rfds[nrfds++] = rfd;
                else
                    close(rfd);
            }
        }
    }
    if ((size_t)n <= CONTROL_MSG_MAX && !(mh.msg_flags & MSG_TRUNC) &&
        (req = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL)) && json_is_object(req))
        cmd = json_string_value(json_object_get(req, "cmd"));
    if ((size_t)n > CONTROL_MSG_MAX || (mh.msg_flags & MSG_TRUNC))
        reply = error_reply("request larger than %d bytes", CONTROL_MSG_MAX);
    else if (cmd && vmm_save_busy() && conflicts_with_save(cmd))
        reply = error_reply("%s: a save of domain '%s' is in progress; try again when it ends",
                            cmd, vm->p.name);
    else if (cmd && strcmp(cmd, "save") == 0 && vmm_remus_active())
        /* Both would own the dirty log: a save's would hide pages from the Remus backup. */
        reply = error_reply("save: domain '%s' is protected by Remus; a save or migration must "
                            "wait until protection ends (docs/remus.md)",
                            vm->p.name);
    else if (cmd && strcmp(cmd, "save") == 0)
        later = !(reply = vmm_save_start(vm, fd, req, rfds, nrfds)); /* vmm_save.c */
    else if (req && json_is_object(req) &&
             strcmp(json_string_value(json_object_get(req, "cmd")) ?: "", "remus") == 0)
        reply = vmm_remus_request(vm, fd, req, rfds, nrfds); /* vmm_remus.c, docs/remus.md */
    else if (cmd && strcmp(cmd, "remus-follow") == 0)
        later = !(reply = vmm_remus_follow(vm, fd)); /* replied itself when attached */
    else
        reply = handle_request(vm, buf, (size_t)n, destroy);
    json_decref(req);
    while (nrfds > 0)
        close(rfds[--nrfds]);
    if (!later) /* a started save replies when it ends (vmm_save_finish) */
        send_reply(fd, reply);
    return true;
}

/* The guest stopped on its own: apply on_poweroff/on_reboot/on_crash. True when the VMM should exit. */
static bool guest_stopped(struct vmm *vm)
{
    enum vmm_action act;
    char err[VMM_ERRLEN];

    vmm_run_join(vm);
    vmm_log("guest stopped: %s, code %d%s%s", vmm_halt_name(vm->halt), vm->halt_code,
            vm->halt_msg[0] ? ": " : "", vm->halt_msg);
    if (vm->direct)
        return true;
    switch (vm->halt) {
    case VMM_HALT_POWEROFF:
        act = vm->p.on_poweroff;
        break;
    case VMM_HALT_REBOOT:
        act = vm->p.on_reboot;
        break;
    case VMM_HALT_CRASH:
        act = vm->p.on_crash;
        break;
    default:
        return true;
    }
    if (act == VMM_ACTION_PRESERVE) {
        vmm_log("preserving the domain (state %s)", state_name(vm->state));
        return false;
    }
    if (act == VMM_ACTION_DESTROY)
        return true;
    vmm_log("restarting the guest");
    if (vmm_domain_boot(vm, err, sizeof(err)) < 0 || vmm_run_start(vm, false, err, sizeof(err)) < 0) {
        vmm_log("restart failed: %s", err);
        vmm_crash(vm, "restart failed: %s", err);
        return true;
    }
    return false;
}

int vmm_control_loop(struct vmm *vm)
{
    struct pollfd pfd[4 + CONTROL_CLIENTS];
    int clients[CONTROL_CLIENTS], nclients = 0, sfd, i;
    struct signalfd_siginfo si;
    bool destroy = false;
    sigset_t set;
    uint64_t v;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

    for (;;) {
        int np = 0;
        /* A guest that halts during a save is handled once the save has ended. */
        pfd[np++] = (struct pollfd){.fd = vmm_save_busy() ? -1 : vm->done_fd, .events = POLLIN};
        pfd[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        pfd[np++] = (struct pollfd){.fd = nclients < CONTROL_CLIENTS ? listen_fd : -1,
                                    .events = POLLIN};
        pfd[np++] = (struct pollfd){.fd = vmm_save_wait_fd(), .events = POLLIN};
        /* The connection that asked for a save hears only from the save until it ends. */
        for (i = 0; i < nclients; i++)
            pfd[np++] = (struct pollfd){.fd = clients[i] == vmm_save_client() ? -1 : clients[i],
                                        .events = POLLIN};
        if (poll(pfd, (nfds_t)np, -1) < 0) {
            if (errno == EINTR)
                continue;
            vmm_log("poll: %s", strerror(errno));
            destroy = true;
            break;
        }
        if (pfd[0].revents & POLLIN) {
            if (read(vm->done_fd, &v, sizeof(v)) < 0) {
                /* drained */
            }
            if (guest_stopped(vm))
                break;
        }
        if (pfd[1].revents & POLLIN) {
            if (read(sfd, &si, sizeof(si)) == sizeof(si))
                vmm_log("signal %u: destroying the domain", si.ssi_signo);
            destroy = true;
            break;
        }
        if (pfd[2].revents & POLLIN) {
            int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0)
                clients[nclients++] = c;
        }
        if (pfd[3].revents & POLLIN) {
            int c;
            json_t *r = vmm_save_finish(&c);
            if (c >= 0)
                send_reply(c, r);
            else
                json_decref(r);
        }
        for (i = 4; i < np && !destroy; i++) {
            if (!pfd[i].revents)
                continue;
            if (!serve_client(vm, pfd[i].fd, &destroy) || (pfd[i].revents & (POLLHUP | POLLERR))) {
                int k;
                close(pfd[i].fd);
                for (k = 0; k < nclients; k++)
                    if (clients[k] == pfd[i].fd)
                        clients[k] = clients[--nclients];
            }
        }
        if (destroy) {
            vmm_log("destroy requested");
            break;
        }
    }
    if (vmm_save_busy()) {
        /* Destroy or a signal during a save: stop it at its next batch, then destroy. */
        int c;
        json_t *r;
        vmm_save_cancel();
        r = vmm_save_finish(&c);
        if (c >= 0)
            send_reply(c, r);
        else
            json_decref(r);
    }
    if (destroy) {
        vmm_run_stop(vm);
        vm->halt = VMM_HALT_DESTROY;
        vm->halt_code = 0;
        snprintf(vm->halt_msg, sizeof(vm->halt_msg), "destroyed");
    }
    for (i = 0; i < nclients; i++)
        close(clients[i]);
    if (sfd >= 0)
        close(sfd);
    return 0;
}
