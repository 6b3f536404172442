/* The vCPU thread: KVM_RUN loop, exit handling, pause/unpause/stop by signal + immediate_exit. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

#define KICK_SIGNAL SIGUSR1

/* The run area of the one vCPU, for the signal handler. */
static struct kvm_run *volatile kick_run;

static void kick_handler(int sig)
{
    struct kvm_run *run = kick_run;

    (void)sig;
    if (run)
        run->immediate_exit = 1;
}

int vmm_run_setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
    return sigaction(KICK_SIGNAL, &sa, NULL);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool wants_cpu(struct vmm *vm)
{
    return __atomic_load_n(&vm->want_pause, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&vm->want_stop, __ATOMIC_ACQUIRE);
}

void vmm_run_wait(struct vmm *vm, uint64_t deadline_ns)
{
    struct pollfd pfd = {.fd = vm->kick_fd, .events = POLLIN};
    uint64_t now, left, drain;
    struct timespec ts;

    for (;;) {
        now = vmm_clock_guest_ns(vm);
        if (now >= deadline_ns || wants_cpu(vm))
            return;
        left = deadline_ns - now;
        ts.tv_sec = (time_t)(left / 1000000000ull);
        ts.tv_nsec = (long)(left % 1000000000ull);
        if (ppoll(&pfd, 1, &ts, NULL) > 0) {
            if (read(vm->kick_fd, &drain, sizeof(drain)) < 0) {
                /* already drained */
            }
            return;
        }
    }
}

/* Handle one exit; false when the guest has stopped (vm->halt set). */
static bool handle_exit(struct vmm *vm)
{
    struct kvm_run *run = vm->run;
    char msg[VMM_ERRLEN];

    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        uint32_t arg;
        unsigned port = run->io.port;
        if (port < TANDEM_HC_PORT_BASE || port > TANDEM_HC_PORT(TANDEM_HC_NR_MAX))
            return vmm_crash(vm, "guest accessed I/O port 0x%x, which is not a hypercall port",
                             port);
        if (run->io.direction != KVM_EXIT_IO_OUT)
            return vmm_crash(vm, "guest read hypercall port 0x%x (hypercalls are out %%eax)", port);
        if (run->io.size != 4 || run->io.count != 1)
            return vmm_crash(vm, "hypercall port 0x%x used with a %u-byte access (need out %%eax)",
                             port, run->io.size);
        memcpy(&arg, (uint8_t *)run + run->io.data_offset, 4);
        if (port == TANDEM_HC_PORT(TANDEM_HC_FAULT)) {
            vmm_cpu_describe_fault(vm, arg, msg, sizeof(msg));
            return vmm_crash(vm, "%s", msg);
        }
        return vmm_hypercall(vm, port - TANDEM_HC_PORT_BASE, arg);
    }
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_MMIO:
        return vmm_crash(vm, "guest accessed 0x%llx, outside guest RAM",
                         (unsigned long long)run->mmio.phys_addr);
    case KVM_EXIT_SHUTDOWN:
        return vmm_crash(vm, "guest triple fault (KVM_EXIT_SHUTDOWN)");
    case KVM_EXIT_HLT:
        return vmm_crash(vm, "guest executed hlt");
    case KVM_EXIT_FAIL_ENTRY:
        return vmm_crash(vm, "KVM could not enter the guest (hardware reason 0x%llx)",
                         (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    case KVM_EXIT_INTERNAL_ERROR: {
        struct kvm_regs regs;
        const uint8_t *insn = NULL;
        if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) == 0)
            insn = vmm_gpa_ptr(&vm->mem, regs.rip, 4);
        return vmm_crash(vm,
                         "KVM internal error (suberror %u; an instruction the CPU emulator "
                         "cannot run?) at rip 0x%llx, bytes %02x %02x %02x %02x",
                         run->internal.suberror, insn ? (unsigned long long)regs.rip : 0ull,
                         insn ? insn[0] : 0, insn ? insn[1] : 0, insn ? insn[2] : 0,
                         insn ? insn[3] : 0);
    }
    }
    return vmm_crash(vm, "unexpected KVM exit reason %u", run->exit_reason);
}

/* The guest's registers at a crash, for whoever reads vmm.log. */
static void log_registers(struct vmm *vm)
{
    struct kvm_regs r;

    if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &r) < 0)
        return;
    vmm_log("crash: %s", vm->halt_msg);
    vmm_log("vCPU registers (for a CPU fault: in the exception stub): rip %llx rsp %llx rflags "
            "%llx rax %llx rbx %llx rcx %llx rdx %llx "
            "rsi %llx rdi %llx rbp %llx r8 %llx r9 %llx r10 %llx r11 %llx r12 %llx r13 %llx "
            "r14 %llx r15 %llx",
            r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9,
            r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
}

/*
 * Park until unpaused or stopped. Called with vm->lock held. A pending
 * exit is completed first (KVM_RUN with immediate_exit) so the vCPU state
 * is consistent while parked (the checkpoint engine reads it then).
 */
static void park(struct vmm *vm)
{
    pthread_mutex_unlock(&vm->lock);
    vm->run->immediate_exit = 1;
    if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0 && errno != EINTR)
        vmm_log("KVM_RUN (completing an exit before pause): %s", strerror(errno));
    vm->run->immediate_exit = 0;
    pthread_mutex_lock(&vm->lock);
    /* Frozen while parked, so a paused domain's CPU time does not move. */
    vm->cpu_time_parked_ns = vm->cpu_time_base_ns + thread_cpu_ns();
    vm->vcpu_parked = true;
    if (vm->user_pause) /* an epoch's brief hold is not a pause the user should see */
        vm->state = VMM_STATE_PAUSED;
    pthread_cond_broadcast(&vm->cond);
    while (vm->want_pause && !vm->want_stop)
        pthread_cond_wait(&vm->cond, &vm->lock);
    vm->vcpu_parked = false;
    if (!vm->want_stop)
        vm->state = VMM_STATE_RUNNING;
    pthread_cond_broadcast(&vm->cond);
}

static void *vcpu_main(void *opaque)
{
    struct vmm *vm = opaque;
    uint64_t one = 1;
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    kick_run = vm->run;

    for (;;) {
        pthread_mutex_lock(&vm->lock);
        if (vm->want_pause && !vm->want_stop)
            park(vm);
        if (vm->want_stop) {
            pthread_mutex_unlock(&vm->lock);
            vm->halt = VMM_HALT_DESTROY;
            break;
        }
        pthread_mutex_unlock(&vm->lock);

        if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                vm->run->immediate_exit = 0;
                continue;
            }
            vmm_crash(vm, "KVM_RUN failed: %s", strerror(errno));
            break;
        }
        if (!handle_exit(vm)) {
            if (vm->halt == VMM_HALT_CRASH)
                log_registers(vm);
            break;
        }
    }

    kick_run = NULL;
    pthread_mutex_lock(&vm->lock);
    vm->cpu_time_base_ns += thread_cpu_ns();
    vm->vcpu_done = true;
    if (vm->halt != VMM_HALT_DESTROY)
        vm->state = vm->halt == VMM_HALT_CRASH ? VMM_STATE_CRASHED : VMM_STATE_SHUTDOWN;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    if (write(vm->done_fd, &one, sizeof(one)) < 0)
        vmm_log("cannot signal the main thread: %s", strerror(errno));
    return NULL;
}

int vmm_run_start(struct vmm *vm, bool start_paused, char *err, size_t errlen)
{
    sigset_t set, old;
    int rc;

    vm->want_pause = start_paused;
    vm->user_pause = start_paused;
    vm->engine_holds = 0;
    vm->want_stop = false;
    vm->vcpu_done = false;
    vm->vcpu_parked = false;
    vm->halt = VMM_HALT_NONE;
    vm->halt_code = 0;
    vm->halt_msg[0] = '\0';
    vm->state = start_paused ? VMM_STATE_PAUSED : VMM_STATE_RUNNING;
    /* The kick signal is only ever handled by the vCPU thread. */
    sigemptyset(&set);
    sigaddset(&set, KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    rc = pthread_create(&vm->vcpu_thread, NULL, vcpu_main, vm);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the vCPU thread: %s", strerror(rc));
        return -1;
    }
    pthread_getcpuclockid(vm->vcpu_thread, &vm->vcpu_clock);
    vm->vcpu_thread_started = true;
    return 0;
}

static void kick(struct vmm *vm)
{
    uint64_t one = 1;

    if (write(vm->kick_fd, &one, sizeof(one)) < 0)
        vmm_log("kick eventfd: %s", strerror(errno));
    if (!vm->vcpu_done)
        pthread_kill(vm->vcpu_thread, KICK_SIGNAL);
}

/* Park the vCPU (vm->lock held): ask, kick, wait until parked or done. */
static void park_locked(struct vmm *vm)
{
    if (!vm->vcpu_thread_started || vm->vcpu_done)
        return;
    if (!vm->want_pause) {
        __atomic_store_n(&vm->want_pause, true, __ATOMIC_RELEASE);
        kick(vm);
    }
    while (!vm->vcpu_parked && !vm->vcpu_done)
        pthread_cond_wait(&vm->cond, &vm->lock);
}

/* Let it run unless someone still wants it stopped (vm->lock held). */
static void unpark_locked(struct vmm *vm)
{
    bool still = vm->user_pause || vm->engine_holds > 0;

    __atomic_store_n(&vm->want_pause, still, __ATOMIC_RELEASE);
    if (!vm->vcpu_done && vm->vcpu_thread_started)
        vm->state = vm->user_pause ? VMM_STATE_PAUSED : VMM_STATE_RUNNING;
    pthread_cond_broadcast(&vm->cond);
}

void vmm_run_pause(struct vmm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->user_pause = true;
    park_locked(vm);
    /* Already parked by an epoch's hold: it is the user's pause now too. */
    if (vm->vcpu_thread_started && !vm->vcpu_done)
        vm->state = VMM_STATE_PAUSED;
    pthread_mutex_unlock(&vm->lock);
}

void vmm_run_unpause(struct vmm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->user_pause = false;
    unpark_locked(vm);
    pthread_mutex_unlock(&vm->lock);
}

void vmm_run_hold(struct vmm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->engine_holds++;
    park_locked(vm);
    pthread_mutex_unlock(&vm->lock);
}

void vmm_run_release(struct vmm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->engine_holds > 0)
        vm->engine_holds--;
    unpark_locked(vm);
    pthread_mutex_unlock(&vm->lock);
}

void vmm_run_stop(struct vmm *vm)
{
    if (!vm->vcpu_thread_started)
        return;
    pthread_mutex_lock(&vm->lock);
    __atomic_store_n(&vm->want_stop, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&vm->cond);
    if (!vm->vcpu_done)
        kick(vm);
    pthread_mutex_unlock(&vm->lock);
    vmm_run_join(vm);
}

void vmm_run_join(struct vmm *vm)
{
    if (!vm->vcpu_thread_started)
        return;
    pthread_join(vm->vcpu_thread, NULL);
    vm->vcpu_thread_started = false;
}

uint64_t vmm_run_cpu_time_ns(struct vmm *vm)
{
    struct timespec ts;
    uint64_t ns;

    pthread_mutex_lock(&vm->lock);
    ns = vm->cpu_time_base_ns;
    if (vm->vcpu_parked)
        ns = vm->cpu_time_parked_ns;
    else if (vm->vcpu_thread_started && !vm->vcpu_done && clock_gettime(vm->vcpu_clock, &ts) == 0)
        ns += (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    pthread_mutex_unlock(&vm->lock);
    return ns;
}
