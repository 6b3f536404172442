/* Tandem guest ABI: boot info, clock page, hypercalls; shared by guests and tandem-vmm. */
#ifndef TANDEM_ABI_H
#define TANDEM_ABI_H

/*
 * The full specification, with byte offsets, is docs/abi.md. Everything
 * here is little-endian, naturally aligned and padded explicitly, so the
 * layout is the same for any x86-64 compiler. Only <stdint.h> is needed.
 *
 * Versioning: TANDEM_ABI_VERSION changes whenever a layout or a call's
 * meaning changes incompatibly. Guests carry the version they were built
 * for in an ELF note (name "Tandem", type TANDEM_ABI_NOTE_VERSION, 4-byte
 * descriptor); the VMM refuses images without the note or with another
 * version, and writes the version it speaks into tandem_boot_info.
 */

/* Plain integers (no suffix): guest assembly includes this part too. */
#define TANDEM_ABI_VERSION 1

/* ELF note carried by every guest image. */
#define TANDEM_ABI_NOTE_NAME "Tandem" /* n_namesz = 7, including the NUL */
#define TANDEM_ABI_NOTE_VERSION 1     /* n_type; descriptor = uint32_t ABI version */

/* Hypercall ports (see "hypercalls" below); plain integers for the same reason. */
#define TANDEM_HC_PORT_BASE 0x500
#define TANDEM_HC_PORT(nr) (TANDEM_HC_PORT_BASE + (nr))
#define TANDEM_HC_NR_MAX 31 /* ports 0x500..0x51f are reserved for the ABI */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Guest-physical address: a separate integer type so nobody mistakes it for a host pointer. */
typedef uint64_t tandem_gpa_t;

/*
 * Guest-physical memory map. RAM is [0, mem_size), identity-mapped with
 * 2 MiB user pages (R/W, U, no NX). The first MiB belongs to the VMM
 * (descriptor tables, boot info, clock page, page tables); guest images
 * load at TANDEM_ABI_IMAGE_BASE or above. mem_size is a multiple of 2 MiB.
 */
#define TANDEM_ABI_PAGE_SIZE 4096u
#define TANDEM_ABI_BOOTINFO_ADDR 0x5000u /* struct tandem_boot_info, one page */
#define TANDEM_ABI_CLOCK_ADDR 0x6000u    /* struct tandem_clock, one page */
#define TANDEM_ABI_IMAGE_BASE 0x100000u  /* lowest address a PT_LOAD segment may use */
#define TANDEM_ABI_MEM_MIN (4ull << 20)
#define TANDEM_ABI_MEM_MAX (128ull << 30)
#define TANDEM_ABI_MEM_ALIGN (2ull << 20)

/*
 * Entry state: 64-bit mode, CPL3 (CS 0x1b, SS/DS/ES/FS/GS 0x23, all bases
 * 0), RIP = ELF e_entry, RSP = mem_size (top of RAM), RDI =
 * TANDEM_ABI_BOOTINFO_ADDR, other GPRs 0, RFLAGS 0x2 (IOPL 0, IF 0), x87/SSE
 * /AVX state at reset values with CR4.OSFXSR/OSXMMEXCPT/OSXSAVE set.
 * Interrupts are never delivered. A CPU exception crashes the domain.
 */
#define TANDEM_ABI_USER_CS 0x1bu
#define TANDEM_ABI_USER_SS 0x23u

/* ---- boot info ---------------------------------------------------------- */

#define TANDEM_BOOT_MAGIC 0x424d4454u /* "TDMB" as little-endian bytes */
#define TANDEM_ABI_CMDLINE_MAX 1024u  /* including the terminating NUL */
#define TANDEM_ABI_MAX_DEVICES 16u

enum tandem_device_type {
    TANDEM_DEVICE_NONE = 0,
    TANDEM_DEVICE_VIF = 1,  /* network interface: mac, mtu */
    TANDEM_DEVICE_DISK = 2, /* block device: capacity, sector_size, flags */
};

#define TANDEM_DEVICE_F_READONLY 0x1u /* disk: writes fail with TANDEM_HC_EROFS */

/* One device; 64 bytes. `handle` is what net/block calls take. */
struct tandem_device {
    uint32_t type;        /*  0 enum tandem_device_type */
    uint32_t handle;      /*  4 index of this entry */
    uint32_t flags;       /*  8 TANDEM_DEVICE_F_* */
    uint32_t mtu;         /* 12 vif: MTU in bytes */
    uint8_t mac[6];       /* 16 vif: MAC address */
    uint16_t pad0;        /* 22 */
    uint64_t capacity;    /* 24 disk: size in bytes */
    uint32_t sector_size; /* 32 disk: bytes per sector */
    uint32_t pad1;        /* 36 */
    char name[24];        /* 40 NUL-terminated: "eth0", "xvda" */
};

/* At TANDEM_ABI_BOOTINFO_ADDR; written by the VMM before entry, read-only for the guest. */
struct tandem_boot_info {
    uint32_t magic;                                       /*    0 TANDEM_BOOT_MAGIC */
    uint32_t abi_version;                                 /*    4 TANDEM_ABI_VERSION */
    uint64_t mem_size;                                    /*    8 bytes of RAM */
    tandem_gpa_t clock;                                   /*   16 struct tandem_clock */
    uint32_t domid;                                       /*   24 */
    uint32_t num_devices;                                 /*   28 valid entries in devices[] */
    uint32_t cmdline_len;                                 /*   32 strlen(cmdline) */
    uint32_t pad0;                                        /*   36 */
    uint8_t uuid[16];                                     /*   40 domain UUID, raw bytes */
    uint64_t reserved[5];                                 /*   56 zero */
    struct tandem_device devices[TANDEM_ABI_MAX_DEVICES]; /*   96 */
    char cmdline[TANDEM_ABI_CMDLINE_MAX];                 /* 1120 NUL-terminated */
};                                                        /* 2144 bytes */

/* ---- clock page --------------------------------------------------------- */

/*
 * At tandem_boot_info.clock. Guest time in ns since boot:
 *
 *   delta = rdtsc() - tsc_base
 *   delta = shift >= 0 ? delta << shift : delta >> -shift
 *   now   = ns_base + (uint64_t)(((unsigned __int128)delta * mul) >> 32)
 *
 * `version` is a seqlock: odd while the VMM rewrites the page; read it,
 * read the fields, read it again, retry if it changed or was odd. The VMM
 * rewrites the page when the TSC meaning changes (resume from a saved
 * image, migration, failover) and then increments `generation`: a guest
 * that sees a new generation runs elsewhere now (the network stack
 * announces its MAC again). Wall-clock time = wall_base_ns + now.
 */
struct tandem_clock {
    uint32_t version;      /*  0 seqlock, odd while updating */
    uint32_t generation;   /*  4 bumped on resume/relocation */
    uint64_t tsc_base;     /*  8 TSC value at ns_base */
    uint64_t ns_base;      /* 16 guest ns at tsc_base */
    uint32_t mul;          /* 24 32.32 fixed-point ns per (shifted) tick */
    int32_t shift;         /* 28 */
    uint64_t wall_base_ns; /* 32 UNIX time in ns at guest time 0 */
    uint64_t tsc_khz;      /* 40 TSC frequency, informational */
    uint64_t reserved[2];  /* 48 zero */
};                         /* 64 bytes */

/* ---- hypercalls --------------------------------------------------------- */

/*
 * A hypercall is `out %eax, %dx` with dx = TANDEM_HC_PORT(nr) and eax = the
 * 32-bit guest-physical address of the call's argument struct (8-byte
 * aligned, entirely inside RAM). The VMM reads the struct, acts, writes
 * the results (`ret` and any output fields) back, and the guest continues
 * after the `out`. No register other than memory changes. A pointer that
 * does not lie entirely inside RAM crashes the domain ("bad pointer").
 * `ret` is 0 (or a byte count where stated) on success, or a negative
 * TANDEM_HC_E* code.
 */

enum tandem_hc_nr {
    TANDEM_HC_CONSOLE_WRITE = 1,
    TANDEM_HC_POLL = 2,
    TANDEM_HC_HALT = 3,
    /* reserved for the block device (next ABI revision may add fields, not move these) */
    TANDEM_HC_BLOCK_READ = 4,
    TANDEM_HC_BLOCK_WRITE = 5,
    TANDEM_HC_BLOCK_FLUSH = 6,
    /* reserved for the network device */
    TANDEM_HC_NET_WRITE = 7,
    TANDEM_HC_NET_READ = 8,
    /* shared-memory rings (docs/devices.md); added without an ABI bump: older guests never call */
    TANDEM_HC_RING_SETUP = 9,
    /*
     * not a call: `out %eax` with eax = device handle rings that device's
     * doorbell (ioeventfd). 27 is the highest nr whose 4-byte `out` stays
     * inside the I/O bitmap's 0x500-0x51e (0x51b..0x51e).
     */
    TANDEM_HC_DOORBELL = 27,
    /* not a call: the VMM's CPL0 exception stubs report a fault here; CPL3 gets #GP */
    TANDEM_HC_FAULT = 31,
};

enum tandem_hc_error {
    TANDEM_HC_OK = 0,
    TANDEM_HC_EINVAL = -1, /* malformed argument (bad handle, length, offset) */
    TANDEM_HC_ENOSYS = -2, /* call not implemented by this VMM */
    TANDEM_HC_EAGAIN = -3, /* nothing to read now; poll and retry */
    TANDEM_HC_EIO = -4,    /* device error */
    TANDEM_HC_EROFS = -5,  /* write to a read-only disk */
    TANDEM_HC_ENOSPC = -6, /* buffer too small for the packet */
};

/* TANDEM_HC_CONSOLE_WRITE: append len bytes to the console. ret = len. */
#define TANDEM_HC_CONSOLE_MAX 65536u /* larger writes fail with EINVAL */
struct tandem_hc_console_write {
    tandem_gpa_t data; /*  0 in */
    uint64_t len;      /*  8 in */
    int64_t ret;       /* 16 out */
};

/*
 * TANDEM_HC_POLL: block until guest time >= deadline_ns or a device event
 * is pending, whichever comes first; may also return early (the VMM was
 * paused or checkpointed), so guests recheck the clock. ready_set gets
 * one bit per device handle with pending input. ret = 0.
 */
struct tandem_hc_poll {
    uint64_t deadline_ns; /*  0 in: absolute guest time (clock page) */
    uint64_t ready_set;   /*  8 out */
    int64_t ret;          /* 16 out */
};

/*
 * TANDEM_HC_HALT: stop the domain; never returns. message (optional, may
 * be 0/0) is shown in the domain's exit status, at most 256 bytes used.
 */
enum tandem_halt_reason {
    TANDEM_HALT_POWEROFF = 0,
    TANDEM_HALT_REBOOT = 1,
    TANDEM_HALT_CRASH = 2,
};
struct tandem_hc_halt {
    uint32_t reason;      /*  0 in: enum tandem_halt_reason */
    int32_t code;         /*  4 in: exit code (poweroff) or crash code */
    tandem_gpa_t message; /*  8 in */
    uint64_t message_len; /* 16 in */
};

/* Reserved layouts for the block device (not implemented yet: ret = ENOSYS). */
struct tandem_hc_block {
    uint32_t handle;   /*  0 in: disk device handle */
    uint32_t pad0;     /*  4 */
    uint64_t offset;   /*  8 in: byte offset, multiple of sector_size (unused by FLUSH) */
    tandem_gpa_t data; /* 16 in: buffer */
    uint64_t len;      /* 24 in: bytes, multiple of sector_size (unused by FLUSH) */
    int64_t ret;       /* 32 out */
};

/* Reserved layouts for the network device (not implemented yet: ret = ENOSYS). */
struct tandem_hc_net {
    uint32_t handle;   /*  0 in: vif device handle */
    uint32_t pad0;     /*  4 */
    tandem_gpa_t data; /*  8 in: frame buffer */
    uint64_t len;      /* 16 in: frame length (write) or buffer size (read) */
    int64_t ret;       /* 24 out: bytes written / frame length read */
};

/*
 * TANDEM_HC_RING_SETUP: hand the VMM a ring for device `handle` (the
 * fast data path, docs/devices.md). ring = GPA of a 4 KiB-aligned region
 * of `size` bytes, laid out as struct tandem_ring followed (net only) by
 * 2 x slots x slot_size bytes of slots: TX slots first, then RX. The
 * guest fills magic/kind/slots/slot_size and zeroes the rest first. ret
 * = 0, EINVAL (bad handle/layout), ENOSYS (no ioeventfd: keep using the
 * per-request calls). Once a vif has a ring, NET_READ/NET_WRITE on it
 * return EINVAL. After the doorbell (`out` of the handle to
 * TANDEM_HC_PORT(TANDEM_HC_DOORBELL)) the VMM's I/O thread serves the
 * ring; the exit stays in the kernel.
 */
struct tandem_hc_ring_setup {
    uint32_t handle;   /*  0 in */
    uint32_t pad0;     /*  4 */
    tandem_gpa_t ring; /*  8 in: 4 KiB aligned */
    uint64_t size;     /* 16 in: bytes */
    int64_t ret;       /* 24 out */
};

#define TANDEM_RING_MAGIC 0x474e5254u /* "TRNG" */
#define TANDEM_RING_HDR_SIZE 4096u    /* slots start here */
#define TANDEM_RING_SLOT_HDR 16u      /* a slot's frame starts this far in */

/* One block request (a disk ring holds exactly one: the SDK's block calls are synchronous). */
struct tandem_ring_blk_req {
    uint32_t op;       /*  0 TANDEM_HC_BLOCK_READ / _WRITE / _FLUSH */
    uint32_t pad0;     /*  4 */
    uint64_t offset;   /*  8 bytes, multiple of sector_size */
    tandem_gpa_t data; /* 16 buffer (anywhere in RAM) */
    uint64_t len;      /* 24 bytes, multiple of sector_size */
};

/*
 * Ring header, at the ring's GPA. Each index lives on its own 64-byte
 * line and is written by one side only; indexes run freely (mod 2^32),
 * slot = index % slots. A net slot is {uint32 len; uint32 pad; uint64
 * reserved; frame bytes at +16}.
 *
 * vif: TX: the guest writes slot tx_prod, then tx_prod++; when vmm_idle
 *      is 1 it rings the doorbell. The VMM sends slots up to tx_prod,
 *      advancing tx_cons; it sets vmm_idle = 1 before it sleeps.
 *      RX: the VMM writes slot rx_prod, then rx_prod++, and wakes a
 *      guest sleeping in POLL; the guest reads slot rx_cons, then
 *      rx_cons++, and rings the doorbell when rx_blocked is 1 (the VMM
 *      stopped taking frames from the host because the ring was full).
 * disk: the guest fills req, then tx_prod++ and rings the doorbell; the
 *      VMM writes blk_ret, then tx_cons = tx_prod, and, when guest_wait
 *      is 1, wakes the guest from POLL. A bad buffer gives EINVAL here
 *      (the I/O thread cannot stop the vCPU in the middle of an exit).
 */
struct tandem_ring {
    uint32_t magic;                 /*   0 TANDEM_RING_MAGIC */
    uint32_t kind;                  /*   4 enum tandem_device_type of the device */
    uint32_t slots;                 /*   8 vif: slots per direction, a power of two <= 4096 */
    uint32_t slot_size;             /*  12 vif: bytes per slot, multiple of 64, >= 16 + mtu + 14 */
    uint8_t pad0[48];               /*  16 */
    uint32_t tx_prod;               /*  64 guest */
    uint8_t pad1[60];               /*  68 */
    uint32_t tx_cons;               /* 128 VMM */
    int32_t blk_ret;                /* 132 VMM: disk: result of the request tx_cons completed */
    uint8_t pad2[56];               /* 136 */
    uint32_t rx_prod;               /* 192 VMM */
    uint8_t pad3[60];               /* 196 */
    uint32_t rx_cons;               /* 256 guest */
    uint8_t pad4[60];               /* 260 */
    uint32_t vmm_idle;              /* 320 VMM: 1 = the guest must ring the doorbell after TX */
    uint32_t rx_blocked;            /* 324 VMM: 1 = ring the doorbell after consuming RX */
    uint32_t guest_wait;            /* 328 guest: 1 = sleeping in POLL for a disk completion */
    uint8_t pad5[52];               /* 332 */
    struct tandem_ring_blk_req req; /* 384 disk: the request */
};                                  /* 416 bytes used of the 4 KiB header page */

#endif /* __ASSEMBLER__ */
#endif
