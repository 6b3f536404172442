/* Unit tests of tandem-vmm's guest-memory accessor, dirty bitmap and ELF loader (no KVM needed). */
#include <elf.h>
#include <sys/mman.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm.h"

#define MEM_SIZE (8ull << 20)

static struct vmm_mem mem;
static char err[VMM_ERRLEN];

static int setup(void **state)
{
    (void)state;
    return vmm_mem_init(&mem, MEM_SIZE, err, sizeof(err));
}

static int teardown(void **state)
{
    (void)state;
    vmm_mem_free(&mem);
    return 0;
}

static void test_accessor_bounds(void **state)
{
    (void)state;
    assert_ptr_equal(vmm_gpa_ptr(&mem, 0, 0), mem.base);
    assert_ptr_equal(vmm_gpa_ptr(&mem, 0, MEM_SIZE), mem.base);
    assert_ptr_equal(vmm_gpa_ptr(&mem, MEM_SIZE, 0), mem.base + MEM_SIZE);
    assert_ptr_equal(vmm_gpa_ptr(&mem, MEM_SIZE - 1, 1), mem.base + MEM_SIZE - 1);
    assert_null(vmm_gpa_ptr(&mem, MEM_SIZE, 1));
    assert_null(vmm_gpa_ptr(&mem, 0, MEM_SIZE + 1));
    assert_null(vmm_gpa_ptr(&mem, MEM_SIZE - 4096, 4097));
    assert_null(vmm_gpa_ptr(&mem, MEM_SIZE + 1, 0));
}

static void test_accessor_overflow(void **state)
{
    (void)state;
    /* ranges whose end wraps around 2^64 must not look small */
    assert_null(vmm_gpa_ptr(&mem, UINT64_MAX, 2));
    assert_null(vmm_gpa_ptr(&mem, 1, UINT64_MAX));
    assert_null(vmm_gpa_ptr(&mem, 0xfffffffffffff000ull, 0x2000));
    assert_null(vmm_gpa_ptr(&mem, 4096, UINT64_MAX - 4095));
    assert_null(vmm_gpa_ptr_w(&mem, UINT64_MAX, UINT64_MAX));
}

static void test_dirty_bitmap(void **state)
{
    (void)state;
    vmm_dirty_count(&mem, true);
    assert_int_equal(vmm_dirty_count(&mem, false), 0);
    assert_null(vmm_gpa_ptr_w(&mem, MEM_SIZE - 8, 16)); /* refused: nothing marked */
    assert_int_equal(vmm_dirty_count(&mem, false), 0);
    assert_non_null(vmm_gpa_ptr_w(&mem, 0x1ff0, 0x20)); /* straddles pages 1 and 2 */
    assert_int_equal(vmm_dirty_count(&mem, false), 2);
    assert_non_null(vmm_gpa_ptr_w(&mem, MEM_SIZE - 1, 1)); /* the last page */
    assert_non_null(vmm_gpa_ptr_w(&mem, 0x2000, 0));       /* empty range marks nothing */
    assert_int_equal(vmm_dirty_count(&mem, true), 3);
    assert_int_equal(vmm_dirty_count(&mem, false), 0);
}

/* ---- ELF images built byte by byte ---- */

struct image_opts {
    uint32_t note_version; /* 0: no note */
    uint64_t paddr;
    uint64_t filesz, memsz;
    uint64_t entry;
    uint16_t machine;
    uint16_t phnum_override;
    size_t truncate; /* 0: full file */
};

static const uint8_t code[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* Build an image into buf (4096 bytes); returns its length. */
static size_t build_image(const struct image_opts *o, uint8_t *buf)
{
    Elf64_Ehdr *eh = (void *)buf;
    Elf64_Phdr *ph = (void *)(buf + sizeof(*eh));
    size_t note_off = 0x100, code_off = 0x200;

    memset(buf, 0, 4096);
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = o->machine ? o->machine : EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = o->entry ? o->entry : o->paddr;
    eh->e_phoff = sizeof(*eh);
    eh->e_ehsize = sizeof(*eh);
    eh->e_phentsize = sizeof(*ph);
    eh->e_phnum = 2;
    ph[0].p_type = PT_LOAD;
    ph[0].p_flags = PF_R | PF_X;
    ph[0].p_offset = code_off;
    ph[0].p_paddr = ph[0].p_vaddr = o->paddr;
    ph[0].p_filesz = o->filesz;
    ph[0].p_memsz = o->memsz;
    memcpy(buf + code_off, code, sizeof(code));
    if (o->note_version) {
        uint32_t n[3] = {7, 4, TANDEM_ABI_NOTE_VERSION};
        ph[1].p_type = PT_NOTE;
        ph[1].p_offset = note_off;
        ph[1].p_filesz = 24;
        memcpy(buf + note_off, n, 12);
        memcpy(buf + note_off + 12, "Tandem\0", 8);
        memcpy(buf + note_off + 20, &o->note_version, 4);
    } else {
        ph[1].p_type = PT_NULL;
    }
    if (o->phnum_override)
        eh->e_phnum = o->phnum_override;
    return o->truncate ? o->truncate : code_off + sizeof(code);
}

/* Write an image to a temp file and return its path (static buffer). */
static const char *make_image(const struct image_opts *o)
{
    static char path[64];
    uint8_t buf[4096];
    size_t len = build_image(o, buf);
    int fd;

    snprintf(path, sizeof(path), "/tmp/tandem-unit-elf-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    return path;
}

static struct image_opts good(void)
{
    struct image_opts o = {.note_version = TANDEM_ABI_VERSION,
                           .paddr = 0x100000,
                           .filesz = sizeof(code),
                           .memsz = 0x3000};
    return o;
}

static int load(const struct image_opts *o, uint64_t *entry)
{
    const char *path = make_image(o);
    int rc = vmm_elf_load(&mem, path, entry, err, sizeof(err));
    unlink(path);
    return rc;
}

static void test_elf_good(void **state)
{
    struct image_opts o = good();
    uint64_t entry = 0;
    uint8_t *p;

    (void)state;
    p = vmm_gpa_ptr(&mem, 0x100000, 0x3000);
    memset(p, 0xaa, 0x3000);
    vmm_dirty_count(&mem, true);
    assert_int_equal(load(&o, &entry), 0);
    assert_int_equal(entry, 0x100000);
    assert_memory_equal(p, code, sizeof(code));
    assert_int_equal(p[sizeof(code)], 0); /* bss zeroed */
    assert_int_equal(p[0x2fff], 0);
    assert_int_equal(vmm_dirty_count(&mem, true), 3); /* the loader's writes are marked */
}

static void expect_refusal(const struct image_opts *o, const char *needle)
{
    uint64_t entry = 0;

    err[0] = '\0';
    assert_int_equal(load(o, &entry), -1);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    assert_non_null(strstr(err, "/tmp/tandem-unit-elf-")); /* names the file */
}

static void test_elf_refusals(void **state)
{
    struct image_opts o;

    (void)state;
    o = good();
    o.note_version = 2;
    expect_refusal(&o, "guest ABI version 2 is not supported");
    o = good();
    o.note_version = 0;
    expect_refusal(&o, "no Tandem ABI note");
    o = good();
    o.machine = EM_AARCH64;
    expect_refusal(&o, "not an x86-64 ELF image");
    o = good();
    o.paddr = MEM_SIZE - 0x1000; /* memsz 0x3000 runs past the end */
    expect_refusal(&o, "lies outside guest RAM");
    o = good();
    o.paddr = 0x5000; /* the VMM's low memory */
    expect_refusal(&o, "lies outside guest RAM");
    o = good();
    o.paddr = 0xfffffffffffff000ull; /* wraps */
    expect_refusal(&o, "lies outside guest RAM");
    o = good();
    o.filesz = 0x4000; /* more than memsz, and past the end of the file */
    expect_refusal(&o, "lies outside the file");
    o = good();
    o.entry = 0x200000;
    expect_refusal(&o, "entry point 0x200000 is not in an executable segment");
    o = good();
    o.phnum_override = 1000;
    expect_refusal(&o, "bad program header table");
    o = good();
    o.truncate = 20;
    expect_refusal(&o, "not an ELF file");
}

/*
 * Random damage to a valid image: the loader must accept or refuse every
 * variant without crashing (ASan/UBSan in the sanitized build), and an
 * accepted image must have been loaded inside RAM above the image base.
 */
static void test_elf_mutations(void **state)
{
    struct image_opts o = good();
    uint8_t orig[4096], buf[4096];
    size_t len = build_image(&o, orig), n;
    uint64_t seed = 0x9e3779b97f4a7c15ull, entry;
    char path[64];
    int fd, i, k, accepted = 0;

    (void)state;
    fd = memfd_create("elf-mutations", 0);
    assert_true(fd >= 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    for (i = 0; i < 5000; i++) {
        memcpy(buf, orig, len);
        n = len;
        for (k = 0; k < 1 + i % 6; k++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            buf[(seed >> 8) % 0x220] = (uint8_t)(seed >> 40); /* headers, note, start of code */
        }
        if (i % 97 == 0)
            n = (seed >> 20) % len; /* truncated */
        assert_int_equal(ftruncate(fd, 0), 0);
        assert_int_equal(pwrite(fd, buf, n, 0), (ssize_t)n);
        entry = 0;
        if (vmm_elf_load(&mem, path, &entry, err, sizeof(err)) == 0) {
            accepted++;
            assert_true(entry >= TANDEM_ABI_IMAGE_BASE && entry < MEM_SIZE);
        } else {
            assert_true(err[0] != '\0');
        }
    }
    close(fd);
    /* some single-byte changes (padding, code) keep the image valid */
    assert_true(accepted > 0 && accepted < 5000);
}

/* The clock page by bytes (docs/abi.md), before and after a relocation. */
static void test_clock_relocate(void **state)
{
    static struct vmm vm;
    const uint8_t *page;
    uint32_t version0, version1, generation, mul;
    int32_t shift;
    uint64_t ns_base, khz, now;
    double ns_per_tick;

    (void)state;
    memset(&vm, 0, sizeof(vm));
    vm.mem = mem;
    vm.tsc_khz = 2596152;
    vmm_clock_init(&vm);
    page = vmm_gpa_ptr(&mem, TANDEM_ABI_CLOCK_ADDR, 64);
    memcpy(&version0, page, 4);
    assert_int_equal(version0 % 2, 0);
    memcpy(&generation, page + 4, 4);
    assert_int_equal(generation, 0);

    vmm_clock_relocate(&vm, 5000000000ull, 1000000); /* moved to a 1 GHz host at 5 s */
    memcpy(&version1, page, 4);
    memcpy(&generation, page + 4, 4);
    memcpy(&ns_base, page + 16, 8);
    memcpy(&mul, page + 24, 4);
    memcpy(&shift, page + 28, 4);
    memcpy(&khz, page + 40, 8);
    assert_int_equal(version1 % 2, 0);
    assert_true(version1 > version0);
    assert_int_equal(generation, 1);
    assert_int_equal(ns_base, 5000000000ull);
    assert_int_equal(khz, 1000000);
    ns_per_tick =
        (double)mul * (shift >= 0 ? (double)(1u << shift) : 1.0 / (1u << -shift)) / 4294967296.0;
    assert_true(ns_per_tick > 0.999999 && ns_per_tick < 1.000001);
    now = vmm_clock_guest_ns(&vm);
    assert_true(now >= 5000000000ull && now < 5000000000ull + 10000000000ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accessor_bounds), cmocka_unit_test(test_accessor_overflow),
        cmocka_unit_test(test_dirty_bitmap),    cmocka_unit_test(test_elf_good),
        cmocka_unit_test(test_elf_refusals),    cmocka_unit_test(test_elf_mutations),
        cmocka_unit_test(test_clock_relocate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
