/* Internal header of tandem-vmm: the domain, its memory, vCPU, console and control socket. */
#ifndef TANDEM_VMM_H
#define TANDEM_VMM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <linux/kvm.h>

#include "tandem_abi.h"
#include "tandem_types.h"

/* Exit codes of the process (docs/vmm.md). */
#define VMM_EXIT_ERROR 1     /* startup failed, or the VMM itself failed */
#define VMM_EXIT_REBOOT 64   /* direct mode: the guest asked to reboot */
#define VMM_EXIT_CRASH 65    /* direct mode: the guest crashed */
#define VMM_EXIT_CODE_MAX 63 /* direct mode: poweroff codes are clamped to 0..63 */

#define VMM_ERRLEN 512

/* What to do when the guest stops (mirrors tandem_action_on_shutdown). */
enum vmm_action {
    VMM_ACTION_DESTROY,
    VMM_ACTION_RESTART,
    VMM_ACTION_PRESERVE,
};

/* Domain state as shown by `info`. */
enum vmm_state {
    VMM_STATE_RUNNING,
    VMM_STATE_PAUSED,
    VMM_STATE_SHUTDOWN, /* guest halted (poweroff/reboot), preserved */
    VMM_STATE_CRASHED,  /* guest crashed, preserved */
};

/* Why the guest stopped. */
enum vmm_halt_kind {
    VMM_HALT_NONE,
    VMM_HALT_POWEROFF,
    VMM_HALT_REBOOT,
    VMM_HALT_CRASH,
    VMM_HALT_DESTROY, /* destroyed by the toolstack */
};

/* Everything the VMM needs to know to build the domain; filled by args or config.json. */
struct vmm_params {
    char *name;
    char *uuid_str;   /* canonical text form, or NULL */
    uint8_t uuid[16]; /* raw, zero when none */
    char *kernel;
    char *cmdline;
    uint64_t mem_bytes;
    unsigned vcpus;
    enum vmm_action on_poweroff, on_reboot, on_crash;
    /* Device specs (copies owned by params; vmm_dev.c turns them into devices). */
    tandem_device_disk *disks;
    int num_disks;
    tandem_device_nic *nics;
    int num_nics;
    bool incoming; /* restored/migrated/failed-over domain: its MAC may be learned on the bridge */
};

/* Guest RAM: one memfd, one mapping, one KVM memslot. */
struct vmm_mem {
    int fd;
    uint8_t *base;
    uint64_t size;
    uint64_t *dirty;     /* 1 bit per 4 KiB page the VMM wrote (atomic) */
    uint64_t dirty_words;
};

struct vmm_console {
    int log_fd;   /* console.log (or -1) */
    int echo_fd;  /* stdout in direct mode (or -1) */
    char *ring;   /* the last VMM_CONSOLE_RING bytes */
    uint64_t total; /* bytes ever written */
    pthread_mutex_t lock;
};
#define VMM_CONSOLE_RING 65536u

struct vmm;
struct vmm_dev;

/*
 * Per-kind device operations (vmm_dev.c). setup runs once at start-up
 * and either fully succeeds or leaves nothing behind (error in err,
 * naming the device); teardown undoes setup and is safe after a failed
 * or absent setup. The Remus hooks are NULL until the checkpoint engine
 * (issue 7) fills them: postsuspend after the vCPU and I/O thread have
 * stopped for a checkpoint, preresume before they run again, commit when
 * the backup acknowledged checkpoint `epoch` (the net backend releases
 * that epoch's buffered output there).
 */
struct vmm_dev_ops {
    const char *kind; /* "disk", "vif" */
    int (*setup)(struct vmm *vm, struct vmm_dev *d, char *err, size_t errlen);
    void (*teardown)(struct vmm *vm, struct vmm_dev *d);
    int (*postsuspend)(struct vmm *vm, struct vmm_dev *d);
    int (*preresume)(struct vmm *vm, struct vmm_dev *d);
    int (*commit)(struct vmm *vm, struct vmm_dev *d, uint64_t epoch);
};

/*
 * Where a vif's transmitted frames go. Every frame the guest sends passes
 * through vmm_net_output() -> out.send: today straight into the TAP;
 * Remus replaces it with a per-epoch buffer released at commit.
 * send returns 0, or a negative TANDEM_HC_E* code (EAGAIN: retry later).
 */
struct vmm_net_output {
    int (*send)(struct vmm_dev *d, const void *frame, size_t len);
    void *opaque;
};

struct vmm_ring; /* vmm_io.c: a shared-memory ring set up by the guest */

struct vmm_blk {
    int fd;
    char *path;
    bool readonly;
    uint64_t capacity;
    /* Remus (vmm_diskbuf.c): called after each successful guest write; NULL when unprotected. */
    void (*on_write)(struct vmm_dev *d, uint64_t offset, const void *buf, uint64_t len);
    void *capture;
};

struct vmm_vif {
    int tap_fd;
    int ifindex;
    char ifname[16];
    char mac_str[18];
    char *bridge;
    char *script;
    char *ip;
    bool script_online; /* script ran `online`: run `offline` at teardown */
    struct vmm_net_output out;
    /* A frame read from the TAP that the guest's buffer was too small for (ENOSPC). */
    uint8_t *pending;
    size_t pending_len;
    uint64_t rx_frames, tx_frames, rx_dropped;
};

struct vmm_dev {
    const struct vmm_dev_ops *ops;
    struct tandem_device abi; /* the boot-info entry; abi.handle = index in vm->devs */
    int devid;
    bool is_setup;
    const tandem_device_disk *disk; /* spec (in vm->p) for disks */
    const tandem_device_nic *nic;   /* spec (in vm->p) for vifs */
    struct vmm_blk blk;
    struct vmm_vif vif;
    struct vmm_ring *ring; /* NULL until the guest sets one up (vmm_io.c) */
};

struct vmm {
    struct vmm_params p;
    int domid;
    bool direct; /* --kernel mode: foreground, console on stdout */
    const char *dir; /* domain dir (daemon mode) */

    int kvm_fd, vm_fd, vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    struct vmm_mem mem;
    struct vmm_console con;
    uint64_t entry;    /* ELF e_entry */
    uint64_t tsc_khz;
    struct tandem_clock clock; /* what the clock page should say */
    void *xsave_init;  /* vCPU FPU state at creation, restored on reboot */

    /* vCPU thread and its control (protected by lock). */
    pthread_t vcpu_thread;
    bool vcpu_thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool want_pause;   /* the vCPU must park: user_pause || engine_holds */
    bool user_pause;   /* toolstack asked to pause (`pause`, save, created paused) */
    unsigned engine_holds; /* the Remus epoch engine holds it briefly (not a user pause) */
    bool want_stop;    /* toolstack asked to destroy */
    bool vcpu_parked;  /* vCPU thread is waiting, not in KVM_RUN */
    bool vcpu_done;    /* vCPU thread has returned */
    enum vmm_state state;
    int kick_fd;       /* eventfd: wakes a vCPU sleeping in POLL */
    int done_fd;       /* eventfd: vCPU thread finished (guest halted) */
    uint64_t cpu_time_base_ns; /* CPU time of earlier vCPU threads (reboot) */
    uint64_t cpu_time_parked_ns; /* CPU time when the vCPU last parked */
    clockid_t vcpu_clock;

    /* Devices (vmm_dev.c), in boot-info order; the I/O thread serves their rings (vmm_io.c). */
    struct vmm_dev devs[TANDEM_ABI_MAX_DEVICES];
    unsigned num_devs;
    struct vmm_io *io;

    /* How the guest stopped (written by the vCPU thread before done_fd). */
    enum vmm_halt_kind halt;
    int halt_code;
    char halt_msg[VMM_ERRLEN];
};

/* ---- vmm_log.c: timestamped messages to vmm.log (daemon) or stderr (direct). */
void vmm_log_open(int fd);
void vmm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- vmm_mem.c: guest RAM and the one guest-memory accessor. */
/* Create the memfd, size it, map and populate it. Fails with a message in err. */
int vmm_mem_init(struct vmm_mem *m, uint64_t size, char *err, size_t errlen);
void vmm_mem_free(struct vmm_mem *m);
/*
 * The only way to reach guest memory: the host address of [gpa, gpa+len)
 * when that range lies entirely inside RAM (overflow-safe), else NULL.
 * len 0 is valid for any gpa <= size. The _w variant is for ranges the
 * VMM will write: it marks their pages dirty first.
 */
void *vmm_gpa_ptr(struct vmm_mem *m, tandem_gpa_t gpa, uint64_t len);
void *vmm_gpa_ptr_w(struct vmm_mem *m, tandem_gpa_t gpa, uint64_t len);
/* Mark [gpa, gpa+len) dirty (range already validated). */
void vmm_dirty_mark(struct vmm_mem *m, tandem_gpa_t gpa, uint64_t len);
/* Number of dirty pages; when clear, also resets the bitmap (checkpoint engine). */
uint64_t vmm_dirty_count(struct vmm_mem *m, bool clear);

/* ---- vmm_elf.c: load and validate the guest image. */
/* Load `path` into RAM; sets *entry. Fails (message naming path) for any invalid image. */
int vmm_elf_load(struct vmm_mem *m, const char *path, uint64_t *entry, char *err, size_t errlen);

/* ---- vmm_cpu.c: KVM VM, memslot, descriptor tables, page tables, vCPU at CPL3. */
int vmm_kvm_init(struct vmm *vm, char *err, size_t errlen);
/* Write the VMM-owned low memory (tables, boot info, clock page) and set the vCPU to entry. */
int vmm_cpu_reset(struct vmm *vm, char *err, size_t errlen);
void vmm_kvm_free(struct vmm *vm);
/* Describe a CPU exception reported by the IDT stubs (vector in eax). */
void vmm_cpu_describe_fault(struct vmm *vm, unsigned vector, char *out, size_t outlen);

/* ---- vmm_clock.c: the shared clock page. */
uint64_t vmm_clock_tsc_khz(struct vmm *vm);
void vmm_clock_init(struct vmm *vm);
/* Guest time now (ns) from the same formula the guest uses. */
uint64_t vmm_clock_guest_ns(struct vmm *vm);
/*
 * For restore, migration and failover: make guest time continue at
 * guest_ns from now on, on a host whose TSC runs at tsc_khz, and bump the
 * clock generation so the guest knows it moved (it then re-announces its
 * MAC). Call only while the vCPU is parked (paused or not yet started).
 */
void vmm_clock_relocate(struct vmm *vm, uint64_t guest_ns, uint64_t tsc_khz);

/* ---- vmm_console.c */
int vmm_console_init(struct vmm_console *c, int log_fd, int echo_fd);
void vmm_console_write(struct vmm_console *c, const void *buf, size_t len);
void vmm_console_free(struct vmm_console *c);

/* ---- vmm_run.c: the vCPU thread. */
/* Install the kick signal handler; call once before any vCPU thread exists. */
int vmm_run_setup_signals(void);
/* Start the vCPU thread (paused if start_paused). */
int vmm_run_start(struct vmm *vm, bool start_paused, char *err, size_t errlen);
/* Ask the vCPU to stop running guest code and wait until it has. */
void vmm_run_pause(struct vmm *vm);
void vmm_run_unpause(struct vmm *vm);
/*
 * The checkpoint engine's brief stop, kept apart from the user's pause:
 * hold parks the vCPU (returns once parked or done) without making the
 * domain look paused (`info` says paused only for a user pause); release
 * lets it run again unless the user paused it meanwhile or before. Calls
 * pair up; a user unpause during a hold takes effect at the release.
 */
void vmm_run_hold(struct vmm *vm);
void vmm_run_release(struct vmm *vm);
/* Stop the vCPU thread for good (destroy) and join it. */
void vmm_run_stop(struct vmm *vm);
/* Join a vCPU thread that finished on its own (after done_fd fired). */
void vmm_run_join(struct vmm *vm);
uint64_t vmm_run_cpu_time_ns(struct vmm *vm);
/*
 * Called by the vCPU thread inside POLL: sleep until guest time reaches
 * deadline_ns, or return early when the toolstack wants the vCPU (pause,
 * destroy) or a device event arrives.
 */
void vmm_run_wait(struct vmm *vm, uint64_t deadline_ns);

/* ---- vmm_hypercall.c: one guest `out` to the ABI port range. */
/*
 * Handle hypercall nr with argument GPA arg. Returns true to continue
 * running the guest, false when the guest has stopped (vm->halt set).
 */
bool vmm_hypercall(struct vmm *vm, unsigned nr, uint32_t arg);
/* Stop the domain as crashed with a formatted reason. Always returns false. */
bool vmm_crash(struct vmm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- vmm_control.c: control socket and the daemon's main loop. */
/* Create DIR/control.sock. */
int vmm_control_open(struct vmm *vm, char *err, size_t errlen);
/* Serve requests until the domain is destroyed; returns the process exit status. */
int vmm_control_loop(struct vmm *vm);
void vmm_control_close(struct vmm *vm);

/* ---- vmm_config.c: the parameters from DIR/config.json. */
int vmm_config_load(struct vmm_params *p, const char *path, char *err, size_t errlen);
void vmm_params_free(struct vmm_params *p);
/* Direct mode: add a disk (xl disk spec) or a vif (xl vif spec); err names the spec. */
int vmm_params_add_device(struct vmm_params *p, bool nic, const char *spec, char *err,
                          size_t errlen);
/* Check the parameters against the ABI and the host. */
int vmm_params_check(struct vmm_params *p, char *err, size_t errlen);

/* ---- vmm_dev.c: the device table. */
/*
 * Build every device from vm->p (disks, then vifs, in config order) and
 * run its setup. On failure, devices already set up are torn down, err
 * names the device and the problem, and -1 is returned.
 */
int vmm_dev_setup_all(struct vmm *vm, char *err, size_t errlen);
/* Tear down every device set up (idempotent; used on every exit path). */
void vmm_dev_teardown_all(struct vmm *vm);
/* Fill boot-info device entries (called by vmm_cpu_reset); returns the count. */
unsigned vmm_dev_boot_info(struct vmm *vm, struct tandem_device *out, unsigned max);
/* Device by handle and type, or NULL (bad handle from the guest). */
struct vmm_dev *vmm_dev_get(struct vmm *vm, uint32_t handle, uint32_t type);
/* JSON array describing the devices for the `devices` control command (new reference). */
json_t *vmm_dev_json(struct vmm *vm);
/* Bit i set for every vif i with a received frame waiting (never blocks). */
uint64_t vmm_dev_ready_set(struct vmm *vm);

/* ---- vmm_block.c: raw disk images. */
extern const struct vmm_dev_ops vmm_block_ops;
/* Hypercall bodies: return ret (0 or TANDEM_HC_E*). buf already validated for len. */
int vmm_block_read(struct vmm_dev *d, uint64_t offset, void *buf, uint64_t len);
int vmm_block_write(struct vmm_dev *d, uint64_t offset, const void *buf, uint64_t len);
int vmm_block_flush(struct vmm_dev *d);
/* TANDEM_HC_EINVAL unless offset/len are sector multiples inside the capacity. */
int vmm_block_check(struct vmm_dev *d, uint64_t offset, uint64_t len);

/* ---- vmm_net.c: the vif backend (TX through vif.out, RX from the TAP). */
extern const struct vmm_dev_ops vmm_net_ops;
/* The one TX entry point (Remus's output buffer hooks in through d->vif.out). */
int vmm_net_output(struct vmm_dev *d, const void *frame, size_t len);
/* Next received frame into buf: its length, TANDEM_HC_EAGAIN or TANDEM_HC_ENOSPC. */
int vmm_net_receive(struct vmm_dev *d, void *buf, size_t buflen);
/* Whether a received frame is waiting. */
bool vmm_net_has_input(struct vmm_dev *d);

/* ---- vmm_tap.c: TAP device, bridge (libnl-route-3), hotplug script. */
/*
 * Create the TAP d->vif.ifname (non-persistent: it vanishes with the
 * fd, so even a SIGKILLed VMM leaves none), refuse a MAC already on the
 * bridge (a learned FDB entry does not count when incoming), enslave it
 * to the bridge, set MTU and bring it up, run the script `online`. On
 * failure everything done is undone.
 */
int vmm_tap_create(struct vmm_dev *d, int domid, bool incoming, char *err, size_t errlen);
void vmm_tap_destroy(struct vmm_dev *d, int domid);

/* ---- vmm_io.c: the I/O thread (epoll over TAP fds and ring doorbells). */
/*
 * Start the I/O thread once the devices are set up: it wakes a vCPU
 * sleeping in POLL (kick_fd) when a frame arrives on any TAP. Stop it
 * (joins) before the devices are torn down. Both are no-ops without vifs.
 */
int vmm_io_start(struct vmm *vm, char *err, size_t errlen);
void vmm_io_stop(struct vmm *vm);
/*
 * RING_SETUP for device d (vCPU thread): validate the guest's ring,
 * register its doorbell with KVM_IOEVENTFD and let the I/O thread serve
 * it. Returns 0 or TANDEM_HC_EINVAL (bad layout, already set up),
 * TANDEM_HC_ENOSYS (no ioeventfd or no I/O thread), TANDEM_HC_EIO.
 */
int vmm_io_ring_setup(struct vmm *vm, struct vmm_dev *d, tandem_gpa_t gpa, uint64_t size);
/* A doorbell that reached userspace (no ioeventfd matched): pass it on; unknown handles are ignored. */
void vmm_io_doorbell(struct vmm *vm, uint32_t handle);
/* Whether d's RX ring holds frames the guest has not taken (d->ring set). */
bool vmm_io_ring_has_input(struct vmm *vm, struct vmm_dev *d);
/* Drop every ring (the guest reboots with fresh memory); the I/O thread keeps running. */
void vmm_io_reset(struct vmm *vm);
/*
 * Checkpoint engine (vmm_save.c): hold the I/O thread off guest memory
 * (it finishes the request it is serving first) from suspend until
 * resume, so the captured pages and ring indexes agree. No-ops without
 * an I/O thread. Only the main thread calls these, and never twice.
 */
void vmm_io_suspend(struct vmm *vm);
void vmm_io_resume(struct vmm *vm);
/* Where d's ring lives (gpa and the size RING_SETUP validated); false when it has none. */
bool vmm_io_ring_where(struct vmm_dev *d, tandem_gpa_t *gpa, uint64_t *size);
/*
 * Wake the I/O thread to retry TX rings that stalled because their output
 * said EAGAIN (the Remus output buffer released an epoch, or was torn
 * down). Any thread, any locks held; a no-op without an I/O thread.
 */
void vmm_io_wake(struct vmm *vm);
/*
 * A vif ring's counters (control thread; takes the I/O lock): frames
 * dropped as malformed and times the output stalled the ring. False
 * when d has no ring.
 */
bool vmm_io_ring_counters(struct vmm *vm, struct vmm_dev *d, uint64_t *tx_dropped,
                          uint64_t *tx_stalls);

/* ---- vmm_state.c: one vCPU's KVM state for checkpoints (docs/checkpoint.md). */
struct tandem_stream_block;
struct vmm_vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_sregs2 sregs2;
    struct kvm_xcrs xcrs;
    struct kvm_vcpu_events events;
    struct kvm_debugregs debugregs;
    struct kvm_mp_state mp_state;
    struct kvm_xsave *xsave; /* KVM_GET_XSAVE2 size (malloc'd) */
    uint32_t xsave_len;
    struct kvm_msrs *msrs; /* header + entries (malloc'd) */
    uint32_t msrs_len;
    bool have_regs, have_sregs, have_sregs2, have_xcrs, have_events, have_debugregs,
        have_mp_state;
};
/* Read the whole state of the parked vCPU (SREGS2 when KVM has it). Message in err on failure. */
int vmm_state_get(struct vmm *vm, struct vmm_vcpu_state *s, char *err, size_t errlen);
/* The state as VCPU_STATE sub-blocks (b has room for 9); pointers into s. Returns the count. */
size_t vmm_state_blocks(const struct vmm_vcpu_state *s, struct tandem_stream_block *b);
/* Copy one decoded sub-block into s (restore staging); size mismatches are errors. */
int vmm_state_take_block(struct vmm_vcpu_state *s, const struct tandem_stream_block *b, char *err,
                         size_t errlen);
/* Load s into the parked vCPU (IA32_TSC and TSC_ADJUST are left alone). */
int vmm_state_set(struct vmm *vm, struct vmm_vcpu_state *s, char *err, size_t errlen);
void vmm_state_free(struct vmm_vcpu_state *s);

/* ---- vmm_dirty.c: KVM dirty log of the RAM slot + the VMM's own bitmap. */
struct vmm_dirty {
    uint64_t pages, words;
    uint64_t *kvm;    /* scratch for KVM_GET_DIRTY_LOG */
    uint64_t *merged; /* pages dirty (either source) and not yet sent; the sender clears them */
    bool logging;
};
/* Switch dirty logging on for RAM and clear the VMM bitmap. */
int vmm_dirty_start(struct vmm *vm, struct vmm_dirty *d, char *err, size_t errlen);
/* OR the pages dirtied since the start or the last harvest into d->merged; its count or -1. */
int64_t vmm_dirty_harvest(struct vmm *vm, struct vmm_dirty *d, char *err, size_t errlen);
/* Logging off, bitmaps freed (idempotent). */
void vmm_dirty_stop(struct vmm *vm, struct vmm_dirty *d);

/* ---- vmm_save.c: the checkpoint engine's sender side (docs/checkpoint.md). */
/*
 * The `save` control command (docs/control.md): text/len is the request,
 * client the control connection (progress messages go there), fds the
 * descriptors that came with it (exactly one: the stream; the caller
 * closes them afterwards). Runs on the main thread until the stream is
 * written or fails; returns the final reply object.
 */
json_t *vmm_save_request(struct vmm *vm, int client, json_t *req, const int *fds, int nfds);
/*
 * The same on a thread of its own, so the control loop keeps answering
 * (info, devices) during a long save. Returns NULL when the save has
 * started (the reply comes from vmm_save_finish), else an error reply
 * (another save runs, no thread). While busy the main loop must not
 * read from vmm_save_client(), must not handle the guest's halt, and
 * refuses pause/unpause/rename/remus; vmm_save_wait_fd() becomes
 * readable when the save has ended: then vmm_save_finish() joins it and
 * returns the reply for *client. vmm_save_cancel() makes a running save
 * stop at its next page batch (destroy); finish still has to be called.
 */
json_t *vmm_save_start(struct vmm *vm, int client, json_t *req, const int *fds, int nfds);
bool vmm_save_busy(void);
int vmm_save_client(void);
int vmm_save_wait_fd(void);
void vmm_save_cancel(void);
json_t *vmm_save_finish(int *client);

/* ---- vmm_restore.c: the receiver side. */
/*
 * Build the domain's memory, vCPU, clock and ring state from the stream on
 * fd instead of booting it (devices are set up already, the vCPU thread
 * not yet started). On failure err holds "stream offset X, record N
 * (TYPE): ..." and guest memory is garbage (the caller exits).
 */
int vmm_restore(struct vmm *vm, int fd, char *err, size_t errlen);
/*
 * Extension point for Remus (checkpointed streams): called on the
 * receiving VMM after each complete state has been applied; a nonzero
 * return ends the restore with an error. NULL (the default) = no ACK.
 */
extern int (*vmm_restore_ack_hook)(struct vmm *vm, uint64_t epoch);
/*
 * Remus backup (vmm_remus_backup.c), checkpointed streams only. disk: one
 * DISK_WRITES extent of the state being read, to hold until its
 * CHECKPOINT (NULL: DISK_WRITES are refused). broken: the stream failed
 * (what = the message); any tells whether a state was ever applied.
 * Returning 0 ends the restore successfully with the last applied state
 * (failover); nonzero fails it as before. NULL = fail.
 */
struct tandem_stream_extent;
extern int (*vmm_restore_disk_hook)(struct vmm *vm, uint32_t disk, uint32_t sector_size,
                                    const struct tandem_stream_extent *e, char *err,
                                    size_t errlen);
extern int (*vmm_restore_broken_hook)(struct vmm *vm, uint64_t last_epoch, bool any,
                                      const char *what);

/* ---- vmm_main.c: building and rebuilding the domain. */
/* (Re)load the image and reset the vCPU: used at start and on reboot. */
int vmm_domain_boot(struct vmm *vm, char *err, size_t errlen);
const char *vmm_halt_name(enum vmm_halt_kind h);

#endif
