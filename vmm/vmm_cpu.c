/* KVM VM and vCPU set-up: memslot, GDT/TSS/IDT, identity page tables, boot info, CPL3 entry. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

/*
 * VMM-owned low memory (docs/abi.md "Memory map"). Guests never need
 * these, but they live in guest RAM because the CPU reads them there.
 */
#define LOW_GDT 0x1000u
#define LOW_IDT 0x2000u
#define LOW_TSS 0x3000u
#define LOW_STUBS 0x4000u
#define LOW_STACK_TOP 0x9000u /* CPL0 stack for exception stubs: 0x7000..0x9000 */
#define LOW_PML4 0x10000u
#define LOW_PDPT 0x11000u
#define LOW_PD 0x12000u /* one page per GiB, up to TANDEM_ABI_MEM_MAX */

#define SEL_KCODE 0x08u
#define SEL_KDATA 0x10u
#define SEL_UCODE 0x18u /* | 3 = TANDEM_ABI_USER_CS */
#define SEL_UDATA 0x20u /* | 3 = TANDEM_ABI_USER_SS */
#define SEL_TSS 0x28u

#define TSS_SIZE 0x68u
/* I/O bitmap covers ports 0..TANDEM_HC_PORT(TANDEM_HC_NR_MAX); later ports lie past the limit. */
#define IOMAP_BYTES ((TANDEM_HC_PORT(TANDEM_HC_NR_MAX) + 1u) / 8u)
#define TSS_LIMIT (TSS_SIZE + IOMAP_BYTES + 1u - 1u)

#define STUB_SIZE 16u

#define CR0_PE 0x1ull
#define CR0_MP 0x2ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_AM 0x40000ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define CR4_OSFXSR 0x200ull
#define CR4_OSXMMEXCPT 0x400ull
#define CR4_OSXSAVE 0x40000ull
#define EFER_SCE 0x1ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

_Static_assert(sizeof(struct tandem_device) == 64, "ABI: tandem_device is 64 bytes");
_Static_assert(sizeof(struct tandem_boot_info) == 2144, "ABI: boot info is 2144 bytes");
_Static_assert(sizeof(struct tandem_boot_info) <= TANDEM_ABI_PAGE_SIZE, "boot info fits a page");
_Static_assert(sizeof(struct tandem_clock) == 64, "ABI: clock page layout is 64 bytes");
_Static_assert(sizeof(struct tandem_hc_console_write) == 24, "ABI layout");
_Static_assert(sizeof(struct tandem_hc_poll) == 24, "ABI layout");
_Static_assert(sizeof(struct tandem_hc_halt) == 24, "ABI layout");
_Static_assert(sizeof(struct tandem_hc_block) == 40, "ABI layout");
_Static_assert(sizeof(struct tandem_hc_net) == 32, "ABI layout");
_Static_assert(TSS_SIZE + IOMAP_BYTES + 1 <= 0x1000, "TSS and I/O bitmap fit a page");
_Static_assert(LOW_PD + (TANDEM_ABI_MEM_MAX >> 30) * 0x1000 <= TANDEM_ABI_IMAGE_BASE,
               "page tables fit below the image base");

static int set_cpuid(struct vmm *vm, char *err, size_t errlen)
{
    struct kvm_cpuid2 *cpuid = NULL;
    int nent = 128, rc = -1;

    for (;;) {
        cpuid = calloc(1, sizeof(*cpuid) + (size_t)nent * sizeof(struct kvm_cpuid_entry2));
        if (!cpuid) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        cpuid->nent = (uint32_t)nent;
        if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
            break;
        if (errno != E2BIG || nent > 4096) {
            snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
            goto out;
        }
        free(cpuid);
        cpuid = NULL;
        nent *= 2;
    }
    /* The guest's own cpuid reads the host's values anyway; this tells KVM which XSAVE state exists. */
    if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, cpuid) < 0) {
        snprintf(err, errlen, "KVM_SET_CPUID2: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(cpuid);
    return rc;
}

int vmm_kvm_init(struct vmm *vm, char *err, size_t errlen)
{
    struct kvm_userspace_memory_region slot;
    int api, run_size, rc = -1;
    long khz;

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(errno));
        goto out;
    }
    api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        snprintf(err, errlen, "/dev/kvm speaks API version %d, need %d", api, KVM_API_VERSION);
        goto out;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
        goto out;
    }
    /* One slot for all of RAM, so dirty logging can later be switched on for it as a whole. */
    memset(&slot, 0, sizeof(slot));
    slot.slot = 0;
    slot.guest_phys_addr = 0;
    slot.memory_size = vm->mem.size;
    slot.userspace_addr = (uint64_t)(uintptr_t)vm->mem.base;
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
        snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION (%llu MiB): %s",
                 (unsigned long long)(vm->mem.size >> 20), strerror(errno));
        goto out;
    }
    vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
    if (vm->vcpu_fd < 0) {
        snprintf(err, errlen, "KVM_CREATE_VCPU: %s", strerror(errno));
        goto out;
    }
    run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run)) {
        snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
        goto out;
    }
    vm->run_size = (size_t)run_size;
    vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
    if (vm->run == MAP_FAILED) {
        vm->run = NULL;
        snprintf(err, errlen, "mmap of the vCPU run area: %s", strerror(errno));
        goto out;
    }
    if (set_cpuid(vm, err, errlen) < 0)
        goto out;
    khz = ioctl(vm->vcpu_fd, KVM_GET_TSC_KHZ, 0);
    if (khz <= 0) {
        snprintf(err, errlen, "KVM_GET_TSC_KHZ: %s", strerror(errno));
        goto out;
    }
    vm->tsc_khz = (uint64_t)khz;
    vm->xsave_init = calloc(1, sizeof(struct kvm_xsave));
    if (!vm->xsave_init) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ioctl(vm->vcpu_fd, KVM_GET_XSAVE, vm->xsave_init) < 0) {
        snprintf(err, errlen, "KVM_GET_XSAVE: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    return rc;
}

void vmm_kvm_free(struct vmm *vm)
{
    if (vm->run)
        munmap(vm->run, vm->run_size);
    vm->run = NULL;
    if (vm->vcpu_fd >= 0)
        close(vm->vcpu_fd);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    vm->vcpu_fd = vm->vm_fd = vm->kvm_fd = -1;
    free(vm->xsave_init);
    vm->xsave_init = NULL;
}

static uint64_t seg_desc(uint64_t access, uint64_t flags)
{
    /* base 0, limit 0xfffff; access byte at 40..47, flags (G, D/B, L) at 52..55 */
    return 0xffffull | (0xfull << 48) | (access << 40) | (flags << 52);
}

static void write_tables(struct vmm *vm)
{
    struct vmm_mem *m = &vm->mem;
    uint64_t *gdt = vmm_gpa_ptr_w(m, LOW_GDT, 8 * 7);
    uint64_t *idt = vmm_gpa_ptr_w(m, LOW_IDT, 16 * 256);
    uint8_t *tss = vmm_gpa_ptr_w(m, LOW_TSS, TSS_LIMIT + 1);
    uint8_t *stubs = vmm_gpa_ptr_w(m, LOW_STUBS, STUB_SIZE * 256);
    uint64_t *pml4 = vmm_gpa_ptr_w(m, LOW_PML4, 4096);
    uint64_t *pdpt = vmm_gpa_ptr_w(m, LOW_PDPT, 4096);
    uint64_t npd = (m->size + (1ull << 30) - 1) >> 30, i, addr;
    uint64_t *pd = vmm_gpa_ptr_w(m, LOW_PD, npd * 4096);
    uint16_t port = TANDEM_HC_PORT(TANDEM_HC_FAULT), iomap = TSS_SIZE;
    uint64_t rsp0 = LOW_STACK_TOP, tss_base = LOW_TSS;

    gdt[0] = 0;
    gdt[1] = seg_desc(0x9a, 0xa); /* kernel code: P, DPL0, code, L, G */
    gdt[2] = seg_desc(0x92, 0xc); /* kernel data */
    gdt[3] = seg_desc(0xfa, 0xa); /* user code: DPL3 */
    gdt[4] = seg_desc(0xf2, 0xc); /* user data: DPL3 */
    /* 64-bit available TSS, two slots */
    gdt[5] = (TSS_LIMIT & 0xffff) | ((tss_base & 0xffffff) << 16) | (0x89ull << 40) |
             (((uint64_t)TSS_LIMIT >> 16 & 0xf) << 48) | ((tss_base >> 24 & 0xff) << 56);
    gdt[6] = tss_base >> 32;

    /* TSS: RSP0 for the exception stubs, the I/O bitmap allowing only the hypercall ports. */
    memset(tss, 0, TSS_LIMIT + 1);
    memcpy(tss + 4, &rsp0, 8);
    memcpy(tss + 0x66, &iomap, 2);
    memset(tss + TSS_SIZE, 0xff, IOMAP_BYTES + 1);
    for (i = TANDEM_HC_PORT_BASE; i < TANDEM_HC_PORT(TANDEM_HC_FAULT); i++)
        tss[TSS_SIZE + i / 8] &= (uint8_t)~(1u << (i % 8));

    /*
     * Exception stubs, run at CPL0 (emulated, slow, only on the crash
     * path): mov $vector,%eax; mov $port,%dx; out %eax,%dx; jmp .
     */
    for (i = 0; i < 256; i++) {
        uint8_t *s = stubs + i * STUB_SIZE;
        uint64_t stub = LOW_STUBS + i * STUB_SIZE;
        uint32_t vec = (uint32_t)i;

        memset(s, 0x90, STUB_SIZE);
        s[0] = 0xb8;
        memcpy(s + 1, &vec, 4);
        s[5] = 0x66;
        s[6] = 0xba;
        memcpy(s + 7, &port, 2);
        s[9] = 0xef;
        s[10] = 0xeb;
        s[11] = 0xfe;
        /* interrupt gate, DPL0, IST 0 */
        idt[2 * i] = (stub & 0xffff) | ((uint64_t)SEL_KCODE << 16) | (0x8eull << 40) |
                     ((stub >> 16 & 0xffff) << 48);
        idt[2 * i + 1] = stub >> 32;
    }

    /* Identity map of RAM with 2 MiB user pages. */
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    memset(pd, 0, npd * 4096);
    pml4[0] = LOW_PDPT | PTE_P | PTE_RW | PTE_US;
    for (i = 0; i < npd; i++)
        pdpt[i] = (LOW_PD + i * 4096) | PTE_P | PTE_RW | PTE_US;
    for (addr = 0; addr < m->size; addr += TANDEM_ABI_MEM_ALIGN)
        pd[addr >> 21] = addr | PTE_P | PTE_RW | PTE_US | PTE_PS;
}

static void write_boot_info(struct vmm *vm)
{
    struct tandem_boot_info *bi =
        vmm_gpa_ptr_w(&vm->mem, TANDEM_ABI_BOOTINFO_ADDR, sizeof(*bi));
    size_t len = vm->p.cmdline ? strlen(vm->p.cmdline) : 0;

    memset(bi, 0, sizeof(*bi));
    bi->magic = TANDEM_BOOT_MAGIC;
    bi->abi_version = TANDEM_ABI_VERSION;
    bi->mem_size = vm->mem.size;
    bi->clock = TANDEM_ABI_CLOCK_ADDR;
    bi->domid = (uint32_t)vm->domid;
    memcpy(bi->uuid, vm->p.uuid, 16);
    bi->num_devices = vmm_dev_boot_info(vm, bi->devices, TANDEM_ABI_MAX_DEVICES);
    bi->cmdline_len = (uint32_t)len; /* vmm_params_check bounds it */
    memcpy(bi->cmdline, vm->p.cmdline ? vm->p.cmdline : "", len);
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, bool code)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->dpl = dpl;
    s->s = 1;
    s->l = code;
    s->db = !code;
    s->g = 1;
}

int vmm_cpu_reset(struct vmm *vm, char *err, size_t errlen)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    struct kvm_xcrs xcrs;
    uint32_t eax, edx;
    int rc = -1;

    write_tables(vm);
    write_boot_info(vm);
    vmm_clock_init(vm);

    if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
        snprintf(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
        goto out;
    }
    set_seg(&sregs.cs, TANDEM_ABI_USER_CS, 0xb, 3, true);
    set_seg(&sregs.ss, TANDEM_ABI_USER_SS, 0x3, 3, false);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss;
    memset(&sregs.tr, 0, sizeof(sregs.tr));
    sregs.tr.base = LOW_TSS;
    sregs.tr.limit = TSS_LIMIT;
    sregs.tr.selector = SEL_TSS;
    sregs.tr.type = 0xb; /* busy 64-bit TSS */
    sregs.tr.present = 1;
    memset(&sregs.ldt, 0, sizeof(sregs.ldt));
    sregs.ldt.type = 0x2;
    sregs.ldt.unusable = 1;
    sregs.gdt.base = LOW_GDT;
    sregs.gdt.limit = 7 * 8 - 1;
    sregs.idt.base = LOW_IDT;
    sregs.idt.limit = 256 * 16 - 1;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = LOW_PML4;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
    sregs.efer = EFER_LME | EFER_LMA | EFER_SCE;
    sregs.cr2 = 0;
    memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
    if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
        snprintf(err, errlen, "KVM_SET_SREGS: %s", strerror(errno));
        goto out;
    }

    /* XCR0: every user state component the host CPU supports (x87, SSE, AVX, AVX-512). */
    __asm__ volatile("cpuid" : "=a"(eax), "=d"(edx) : "a"(0xd), "c"(0) : "ebx");
    memset(&xcrs, 0, sizeof(xcrs));
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = ((uint64_t)edx << 32 | eax) & 0xe7;
    if (ioctl(vm->vcpu_fd, KVM_SET_XCRS, &xcrs) < 0) {
        xcrs.xcrs[0].value &= 0x7; /* KVM may not offer AVX-512 */
        if (ioctl(vm->vcpu_fd, KVM_SET_XCRS, &xcrs) < 0) {
            snprintf(err, errlen, "KVM_SET_XCRS: %s", strerror(errno));
            goto out;
        }
    }
    if (ioctl(vm->vcpu_fd, KVM_SET_XSAVE, vm->xsave_init) < 0) {
        snprintf(err, errlen, "KVM_SET_XSAVE: %s", strerror(errno));
        goto out;
    }

    memset(&regs, 0, sizeof(regs));
    regs.rip = vm->entry;
    regs.rsp = vm->mem.size;
    regs.rdi = TANDEM_ABI_BOOTINFO_ADDR;
    regs.rflags = 0x2;
    if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0) {
        snprintf(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    return rc;
}

static const char *const vector_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MP", "#TS",
    "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

/* Vectors whose frame carries an error code. */
static bool has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

void vmm_cpu_describe_fault(struct vmm *vm, unsigned vector, char *out, size_t outlen)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    const char *name = vector < 32 && vector_names[vector] ? vector_names[vector] : NULL;
    char vname[16];
    uint64_t frame[6];
    const uint64_t *f;
    unsigned n = has_error_code(vector) ? 6 : 5;

    if (!name) {
        snprintf(vname, sizeof(vname), "vector %u", vector);
        name = vname;
    }
    if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0 ||
        ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
        snprintf(out, outlen, "guest fault %s (registers unavailable)", name);
        return;
    }
    /* The stub runs on the TSS stack: the CPU's exception frame sits at rsp. */
    f = vmm_gpa_ptr(&vm->mem, regs.rsp, n * 8);
    if (!f) {
        snprintf(out, outlen, "guest fault %s (exception frame unreadable)", name);
        return;
    }
    memcpy(frame, f, n * 8);
    f = has_error_code(vector) ? frame + 1 : frame;
    if (vector == 14)
        snprintf(out, outlen, "guest fault %s at rip 0x%llx, address 0x%llx, error 0x%llx",
                 name, (unsigned long long)f[0], (unsigned long long)sregs.cr2,
                 (unsigned long long)frame[0]);
    else if (has_error_code(vector))
        snprintf(out, outlen, "guest fault %s at rip 0x%llx, rsp 0x%llx, error 0x%llx", name,
                 (unsigned long long)f[0], (unsigned long long)f[3],
                 (unsigned long long)frame[0]);
    else
        snprintf(out, outlen, "guest fault %s at rip 0x%llx, rsp 0x%llx", name,
                 (unsigned long long)f[0], (unsigned long long)f[3]);
}
