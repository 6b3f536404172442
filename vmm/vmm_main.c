/* tandem-vmm: argument parsing, domain build, start-up handshake, exit status (docs/control.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm.h"
#include "vmm_remus.h"

#define DIRECT_DEFAULT_MIB 64

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem-vmm --domain-dir DIR --domid N [--paused] [--ready-fd FD]\n"
               "                  [--restore-fd FD]\n"
               "       tandem-vmm --kernel IMG [--memory MiB] [--cmdline STR] [--verbose]\n"
               "                  [--disk XL-DISK-SPEC]... [--vif XL-VIF-SPEC]...\n"
               "The first form is started by libtandem (docs/control.md); the second runs an\n"
               "image in the foreground with its console on stdout (exit status: docs/vmm.md).\n"
               "--restore-fd builds the domain from a checkpoint stream instead of booting it\n"
               "and leaves it paused (docs/checkpoint.md).\n");
}

const char *vmm_halt_name(enum vmm_halt_kind h)
{
    switch (h) {
    case VMM_HALT_NONE:
        return "none";
    case VMM_HALT_POWEROFF:
        return "poweroff";
    case VMM_HALT_REBOOT:
        return "reboot";
    case VMM_HALT_CRASH:
        return "crash";
    case VMM_HALT_DESTROY:
        return "destroyed";
    }
    return "unknown";
}

/* Set once the domain has had its first memory contents (boot or restore). */
static bool booted;

int vmm_domain_boot(struct vmm *vm, char *err, size_t errlen)
{
    /* A rebooting guest gets fresh, zeroed RAM (the first boot's memfd is zero already). */
    if (booted) {
        memset(vm->mem.base, 0, vm->mem.size);
        vmm_dirty_mark(&vm->mem, 0, vm->mem.size);
    }
    booted = true;
    vmm_io_reset(vm); /* rings lived in the old RAM */
    if (vmm_elf_load(&vm->mem, vm->p.kernel, &vm->entry, err, errlen) < 0)
        return -1;
    return vmm_cpu_reset(vm, err, errlen);
}

/* Open DIR/name for writing; remembers it for removal on startup failure. */
static int create_file(struct vmm *vm, const char *name, int flags, char *err, size_t errlen)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", vm->dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    if (fd < 0)
        snprintf(err, errlen, "cannot create %.300s: %s", path, strerror(errno));
    return fd;
}

static void remove_file(struct vmm *vm, const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", vm->dir, name);
    unlink(path);
}

static void write_ready(int fd, const char *error)
{
    json_t *j = error ? json_pack("{s:b,s:s}", "ok", 0, "error", error)
                      : json_pack("{s:b}", "ok", 1);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    /* One line, one write: the library reads until newline or EOF. */
    if (text && dprintf(fd, "%s\n", text) < 0)
        vmm_log("ready fd: %s", strerror(errno));
    free(text);
    json_decref(j);
}

static void write_exit_status(struct vmm *vm)
{
    json_t *j = json_pack("{s:s,s:i,s:s}", "reason", vmm_halt_name(vm->halt), "code",
                          vm->halt_code, "message", vm->halt_msg);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL, err[VMM_ERRLEN];
    int fd;

    /* Written aside and renamed so a reader never sees half a line. */
    fd = text ? create_file(vm, "exit-status.tmp", O_TRUNC, err, sizeof(err)) : -1;
    if (fd < 0)
        vmm_log("exit-status: %s", text ? err : "out of memory");
    if (fd >= 0) {
        char from[4096], to[4096];
        if (write(fd, text, strlen(text)) < 0 || write(fd, "\n", 1) < 0)
            vmm_log("exit-status: %s", strerror(errno));
        close(fd);
        snprintf(from, sizeof(from), "%s/exit-status.tmp", vm->dir);
        snprintf(to, sizeof(to), "%s/exit-status", vm->dir);
        if (rename(from, to) < 0)
            vmm_log("exit-status: %s", strerror(errno));
    }
    free(text);
    json_decref(j);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;

    errno = 0;
    if (!s[0] || s[0] == '-')
        return -1;
    *out = strtoull(s, &end, 10);
    return (errno || *end || *out > max) ? -1 : 0;
}

static void vmm_init_struct(struct vmm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
    vm->mem.fd = -1;
    vm->con.log_fd = vm->con.echo_fd = -1;
    vm->kick_fd = vm->done_fd = -1;
    pthread_mutex_init(&vm->lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
}

/* Direct-mode exit status from how the guest stopped. */
static int direct_status(struct vmm *vm)
{
    switch (vm->halt) {
    case VMM_HALT_POWEROFF:
        if (vm->halt_code < 0 || vm->halt_code > VMM_EXIT_CODE_MAX)
            return VMM_EXIT_CODE_MAX;
        return vm->halt_code;
    case VMM_HALT_REBOOT:
        return VMM_EXIT_REBOOT;
    case VMM_HALT_CRASH:
        return VMM_EXIT_CRASH;
    default:
        return VMM_EXIT_CRASH;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"domain-dir", required_argument, NULL, 'd'}, {"domid", required_argument, NULL, 'i'},
        {"paused", no_argument, NULL, 'p'},          {"ready-fd", required_argument, NULL, 'r'},
        {"kernel", required_argument, NULL, 'k'},     {"memory", required_argument, NULL, 'm'},
        {"cmdline", required_argument, NULL, 'c'},    {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},          {"disk", required_argument, NULL, 'D'},
        {"vif", required_argument, NULL, 'V'},        {"restore-fd", required_argument, NULL, 'R'},
        {"remus-ack-fd", required_argument, NULL, 'A'}, {"remus-timeout", required_argument, NULL, 'T'},
        {"remus-heartbeat", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    static struct vmm vmm;
    struct vmm *vm = &vmm;
    char err[VMM_ERRLEN] = "", path[4096];
    unsigned long long num, mem_mib = DIRECT_DEFAULT_MIB;
    int remus_ack_fd = -1;
    unsigned long long remus_timeout = 0, remus_heartbeat = 0;
    int opt, ready_fd = -1, restore_fd = -1, status = VMM_EXIT_ERROR, log_fd = -1, pid_fd = -1, con_fd = -1;
    bool paused = false, have_domid = false, made_log = false, made_sock = false,
         made_pid = false, made_con = false, verbose = false, started = false,
         have_dev_opt = false;
    const char *kernel = NULL, *cmdline = "";
    sigset_t set;

    vmm_init_struct(vm);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            vm->dir = optarg;
            break;
        case 'i':
            if (parse_uint(optarg, 0x7fffffff, &num) < 0) {
                fprintf(stderr, "tandem-vmm: --domid %s: not a domain id\n", optarg);
                return VMM_EXIT_ERROR;
            }
            vm->domid = (int)num;
            have_domid = true;
            break;
        case 'p':
            paused = true;
            break;
        case 'r':
            if (parse_uint(optarg, 0x7fffffff, &num) < 0 || fcntl((int)num, F_GETFD) < 0) {
                fprintf(stderr, "tandem-vmm: --ready-fd %s: not an open file descriptor\n",
                        optarg);
                return VMM_EXIT_ERROR;
            }
            ready_fd = (int)num;
            fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
            break;
        case 'R':
            if (parse_uint(optarg, 0x7fffffff, &num) < 0 || fcntl((int)num, F_GETFD) < 0) {
                fprintf(stderr, "tandem-vmm: --restore-fd %s: not an open file descriptor\n",
                        optarg);
                return VMM_EXIT_ERROR;
            }
            restore_fd = (int)num;
            fcntl(restore_fd, F_SETFD, FD_CLOEXEC);
            break;
        case 'A':
            /* Remus backup (docs/remus.md): ACKs and heartbeats to the primary go here. */
            if (parse_uint(optarg, 0x7fffffff, &num) < 0 || fcntl((int)num, F_GETFD) < 0) {
                fprintf(stderr, "tandem-vmm: --remus-ack-fd %s: not an open file descriptor\n",
                        optarg);
                return VMM_EXIT_ERROR;
            }
            remus_ack_fd = (int)num;
            fcntl(remus_ack_fd, F_SETFD, FD_CLOEXEC);
            break;
        case 'T':
        case 'H':
            if (parse_uint(optarg, 3600000, opt == 'T' ? &remus_timeout : &remus_heartbeat) < 0) {
                fprintf(stderr, "tandem-vmm: %s %s: not a time in ms\n",
                        opt == 'T' ? "--remus-timeout" : "--remus-heartbeat", optarg);
                return VMM_EXIT_ERROR;
            }
            break;
        case 'k':
            kernel = optarg;
            break;
        case 'm':
            if (parse_uint(optarg, TANDEM_ABI_MEM_MAX >> 20, &mem_mib) < 0) {
                fprintf(stderr, "tandem-vmm: --memory %s: not a size in MiB (at most %llu)\n",
                        optarg, TANDEM_ABI_MEM_MAX >> 20);
                return VMM_EXIT_ERROR;
            }
            break;
        case 'c':
            cmdline = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'D':
        case 'V':
            /* Parsed into params here; devices are built after the checks below. */
            if (vmm_params_add_device(&vm->p, opt == 'V', optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "tandem-vmm: %s\n", err);
                vmm_params_free(&vm->p);
                return VMM_EXIT_ERROR;
            }
            have_dev_opt = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return VMM_EXIT_ERROR;
        }
    }
    if (optind != argc || (!vm->dir == !kernel) || (vm->dir && !have_domid) ||
        (vm->dir && have_dev_opt) || (restore_fd >= 0 && !vm->dir) ||
        (remus_ack_fd >= 0 && restore_fd < 0)) {
        usage(stderr);
        return VMM_EXIT_ERROR;
    }
    vm->direct = kernel != NULL;
    /* Direct mode keeps stderr for the crash reason unless asked for the VMM's log. */
    if (vm->direct && !verbose)
        vmm_log_open(-1);

    /* Termination signals are read through a signalfd by the main loop; threads inherit the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (vmm_run_setup_signals() < 0) {
        snprintf(err, sizeof(err), "sigaction: %s", strerror(errno));
        goto out;
    }

    if (vm->direct) {
        vm->p.kernel = strdup(kernel);
        vm->p.cmdline = strdup(cmdline);
        vm->p.name = strdup("direct");
        vm->p.mem_bytes = mem_mib << 20;
        vm->p.vcpus = 1;
        vm->p.on_poweroff = vm->p.on_crash = vm->p.on_reboot = VMM_ACTION_DESTROY;
        if (!vm->p.kernel || !vm->p.cmdline || !vm->p.name) {
            snprintf(err, sizeof(err), "out of memory");
            goto out;
        }
    } else {
        log_fd = create_file(vm, "vmm.log", O_APPEND, err, sizeof(err));
        if (log_fd < 0)
            goto out;
        made_log = true;
        vmm_log_open(log_fd);
        snprintf(path, sizeof(path), "%s/config.json", vm->dir);
        if (vmm_config_load(&vm->p, path, err, sizeof(err)) < 0)
            goto out;
    }
    vmm_log("starting domain %d '%s': kernel %s, %llu MiB", vm->domid, vm->p.name, vm->p.kernel,
            (unsigned long long)(vm->p.mem_bytes >> 20));
    if (vmm_params_check(&vm->p, err, sizeof(err)) < 0)
        goto out;
    vm->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    vm->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->kick_fd < 0 || vm->done_fd < 0) {
        snprintf(err, sizeof(err), "eventfd: %s", strerror(errno));
        goto out;
    }
    if (vmm_mem_init(&vm->mem, vm->p.mem_bytes, err, sizeof(err)) < 0)
        goto out;
    if (vmm_kvm_init(vm, err, sizeof(err)) < 0)
        goto out;
    /* Devices before boot: the boot info lists them. */
    vm->p.incoming = restore_fd >= 0;
    if (vmm_dev_setup_all(vm, err, sizeof(err)) < 0)
        goto out;
    if (vmm_io_start(vm, err, sizeof(err)) < 0)
        goto out;
    if (restore_fd >= 0 && remus_ack_fd >= 0) {
        /* Remus backup: the stream goes through the failure detector (vmm_remus_backup.c). */
        int relay_fd;
        if (vmm_remus_backup_start(vm, restore_fd, remus_ack_fd, (unsigned)remus_timeout,
                                   (unsigned)remus_heartbeat, &relay_fd, err, sizeof(err)) < 0)
            goto out;
        restore_fd = relay_fd;
        remus_ack_fd = -1; /* owned by the backup now */
    }
    if (restore_fd >= 0) {
        /* A restored domain starts paused: the library unpauses it (docs/checkpoint.md). */
        int rrc = vmm_restore(vm, restore_fd, err, sizeof(err));
        close(restore_fd);
        restore_fd = -1;
        vmm_remus_backup_stop();
        if (rrc < 0)
            goto out;
        booted = true;
        paused = true;
        if (vmm_remus_backup_failed_over()) {
            paused = false; /* failover: the domain runs here now */
        } else if (remus_timeout || remus_heartbeat || vmm_restore_broken_hook) {
            snprintf(err, sizeof(err), "remus: the primary ended the protection (END); nothing "
                                       "to take over");
            goto out;
        }
    } else if (vmm_domain_boot(vm, err, sizeof(err)) < 0) {
        goto out;
    }

    if (!vm->direct) {
        if (vmm_control_open(vm, err, sizeof(err)) < 0)
            goto out;
        made_sock = true;
        con_fd = create_file(vm, "console.log", O_TRUNC, err, sizeof(err));
        if (con_fd < 0)
            goto out;
        made_con = true;
        /* Written aside and renamed: a reader never sees an empty or partial pid. */
        pid_fd = create_file(vm, "vmm.pid.tmp", O_TRUNC, err, sizeof(err));
        if (pid_fd < 0)
            goto out;
        if (dprintf(pid_fd, "%d\n", (int)getpid()) < 0) {
            snprintf(err, sizeof(err), "cannot write %.300s/vmm.pid.tmp: %s", vm->dir,
                     strerror(errno));
            close(pid_fd);
            remove_file(vm, "vmm.pid.tmp");
            goto out;
        }
        close(pid_fd);
        {
            char from[4096], to[4096];
            snprintf(from, sizeof(from), "%s/vmm.pid.tmp", vm->dir);
            snprintf(to, sizeof(to), "%s/vmm.pid", vm->dir);
            if (rename(from, to) < 0) {
                snprintf(err, sizeof(err), "cannot create %.300s: %s", to, strerror(errno));
                unlink(from);
                goto out;
            }
        }
        made_pid = true;
    }
    if (vmm_console_init(&vm->con, con_fd, vm->direct ? STDOUT_FILENO : -1) < 0) {
        snprintf(err, sizeof(err), "out of memory for the console ring");
        goto out;
    }
    con_fd = -1; /* owned by the console now */
    if (vmm_run_start(vm, paused, err, sizeof(err)) < 0)
        goto out;
    vmm_log("domain running%s", paused ? " (paused)" : "");
    if (ready_fd >= 0) {
        write_ready(ready_fd, NULL);
        close(ready_fd);
        ready_fd = -1;
    }

    started = true;
    vmm_control_loop(vm);
    vmm_remus_shutdown(vm); /* END to a backup: a destroyed domain must not come back there */

    vmm_log("exiting: %s, code %d%s%s", vmm_halt_name(vm->halt), vm->halt_code,
            vm->halt_msg[0] ? ": " : "", vm->halt_msg);
    /* Devices go before exit-status appears: whoever waits for it finds no TAP left. */
    vmm_io_stop(vm);
    vmm_dev_teardown_all(vm);
    if (vm->direct) {
        if (vm->halt == VMM_HALT_CRASH)
            fprintf(stderr, "tandem-vmm: domain crashed: %s\n", vm->halt_msg);
        status = direct_status(vm);
    } else {
        vmm_control_close(vm);
        /* exit-status first: a reaper seeing no vmm.pid must already find why we exited. */
        write_exit_status(vm);
        remove_file(vm, "vmm.pid");
        status = 0;
    }

out:
    if (!started) {
        /* start-up failed: report once, and leave DIR as the library made it */
        vmm_log("startup failed: %s", err);
        if (vm->direct || ready_fd < 0)
            fprintf(stderr, "tandem-vmm: %s\n", err);
        if (ready_fd >= 0)
            write_ready(ready_fd, err);
        vmm_run_stop(vm);
        if (made_sock)
            vmm_control_close(vm);
        if (made_pid)
            remove_file(vm, "vmm.pid");
        if (made_con)
            remove_file(vm, "console.log");
        if (made_log)
            remove_file(vm, "vmm.log");
    }
    if (ready_fd >= 0)
        close(ready_fd);
    if (restore_fd >= 0)
        close(restore_fd);
    if (con_fd >= 0)
        close(con_fd);
    vmm_io_stop(vm);
    vmm_dev_teardown_all(vm);
    vmm_console_free(&vm->con);
    vmm_kvm_free(vm);
    vmm_mem_free(&vm->mem);
    vmm_params_free(&vm->p);
    if (log_fd >= 0)
        close(log_fd);
    return status;
}
