/* Guest image loader: validates a static x86-64 ELF, checks its ABI note, copies PT_LOAD segments.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

#define ELF_MAX_PHDRS 64

/* True when [off, off+len) lies inside a buffer of `size` bytes, without overflow. */
static bool in_file(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

/*
 * Find the Tandem ABI note in one PT_NOTE segment. Returns 1 and sets
 * *version when found, 0 when absent, -1 when the segment is malformed.
 */
static int find_abi_note(const uint8_t *seg, uint64_t len, uint32_t *version)
{
    uint64_t off = 0;

    while (off + sizeof(Elf64_Nhdr) <= len) {
        Elf64_Nhdr nh_copy, *nh = &nh_copy;
        uint64_t name_off, desc_off, next;

        memcpy(nh, seg + off, sizeof(*nh)); /* the segment need not be aligned */
        name_off = off + sizeof(*nh);
        desc_off = name_off + ((nh->n_namesz + 3ull) & ~3ull);
        next = desc_off + ((nh->n_descsz + 3ull) & ~3ull);

        if (next > len || next <= off)
            return -1;
        if (nh->n_namesz == sizeof(TANDEM_ABI_NOTE_NAME) &&
            memcmp(seg + name_off, TANDEM_ABI_NOTE_NAME, sizeof(TANDEM_ABI_NOTE_NAME)) == 0 &&
            nh->n_type == TANDEM_ABI_NOTE_VERSION) {
            if (nh->n_descsz < 4)
                return -1;
            memcpy(version, seg + desc_off, 4);
            return 1;
        }
        off = next;
    }
    return 0;
}

int vmm_elf_load(struct vmm_mem *m, const char *path, uint64_t *entry, char *err, size_t errlen)
{
    uint8_t *img = NULL;
    const Elf64_Ehdr *eh;
    const Elf64_Phdr *ph;
    struct stat st;
    uint64_t size, done;
    uint32_t version = 0;
    int fd = -1, rc = -1, note = 0, nload = 0;
    bool entry_ok = false;
    unsigned i;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "kernel %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "kernel %s: not a regular file", path);
        goto out;
    }
    size = (uint64_t)st.st_size;
    if (size > m->size) {
        snprintf(err, errlen, "kernel %s: file is larger (%llu bytes) than guest memory", path,
                 (unsigned long long)size);
        goto out;
    }
    img = malloc(size ? size : 1);
    if (!img) {
        snprintf(err, errlen, "kernel %s: out of memory", path);
        goto out;
    }
    for (done = 0; done < size;) {
        ssize_t n = read(fd, img + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "kernel %s: read failed: %s", path,
                     n < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        done += (uint64_t)n;
    }

    eh = (const void *)img;
    if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
        snprintf(err, errlen, "kernel %s: not an ELF file", path);
        goto out;
    }
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        eh->e_machine != EM_X86_64) {
        snprintf(err, errlen, "kernel %s: not an x86-64 ELF image (class %u, machine %u)", path,
                 eh->e_ident[EI_CLASS], eh->e_machine);
        goto out;
    }
    if (eh->e_type != ET_EXEC) {
        snprintf(err, errlen,
                 "kernel %s: not a static executable (ELF type %u; link with -static -no-pie)",
                 path, eh->e_type);
        goto out;
    }
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phoff % 8 != 0 ||
        eh->e_phnum > ELF_MAX_PHDRS ||
        !in_file(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), size)) {
        snprintf(err, errlen, "kernel %s: bad program header table", path);
        goto out;
    }
    ph = (const void *)(img + eh->e_phoff);

    /* Validate everything before copying anything. */
    for (i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_NOTE) {
            int r;
            if (!in_file(ph[i].p_offset, ph[i].p_filesz, size)) {
                snprintf(err, errlen, "kernel %s: note segment %u lies outside the file", path, i);
                goto out;
            }
            r = find_abi_note(img + ph[i].p_offset, ph[i].p_filesz, &version);
            if (r < 0) {
                snprintf(err, errlen, "kernel %s: malformed note segment %u", path, i);
                goto out;
            }
            if (r > 0)
                note = 1;
        }
        if (ph[i].p_type != PT_LOAD)
            continue;
        nload++;
        if (!in_file(ph[i].p_offset, ph[i].p_filesz, size) || ph[i].p_filesz > ph[i].p_memsz) {
            snprintf(err, errlen, "kernel %s: segment %u lies outside the file", path, i);
            goto out;
        }
        if (ph[i].p_paddr < TANDEM_ABI_IMAGE_BASE ||
            !vmm_gpa_ptr(m, ph[i].p_paddr, ph[i].p_memsz)) {
            snprintf(err, errlen,
                     "kernel %s: segment %u [0x%llx, +0x%llx) lies outside guest RAM "
                     "[0x%x, 0x%llx)",
                     path, i, (unsigned long long)ph[i].p_paddr, (unsigned long long)ph[i].p_memsz,
                     TANDEM_ABI_IMAGE_BASE, (unsigned long long)m->size);
            goto out;
        }
        if ((ph[i].p_flags & PF_X) && eh->e_entry >= ph[i].p_paddr &&
            eh->e_entry - ph[i].p_paddr < ph[i].p_memsz)
            entry_ok = true;
    }
    if (nload == 0) {
        snprintf(err, errlen, "kernel %s: no loadable segment", path);
        goto out;
    }
    if (!note) {
        snprintf(err, errlen,
                 "kernel %s: no Tandem ABI note (not built with the Tandem guest SDK?)", path);
        goto out;
    }
    if (version != TANDEM_ABI_VERSION) {
        snprintf(err, errlen,
                 "kernel %s: guest ABI version %u is not supported by this tandem-vmm "
                 "(it speaks version %u)",
                 path, version, TANDEM_ABI_VERSION);
        goto out;
    }
    if (!entry_ok) {
        snprintf(err, errlen, "kernel %s: entry point 0x%llx is not in an executable segment", path,
                 (unsigned long long)eh->e_entry);
        goto out;
    }

    for (i = 0; i < eh->e_phnum; i++) {
        uint8_t *dst;
        if (ph[i].p_type != PT_LOAD)
            continue;
        dst = vmm_gpa_ptr_w(m, ph[i].p_paddr, ph[i].p_memsz);
        memcpy(dst, img + ph[i].p_offset, ph[i].p_filesz);
        memset(dst + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
    }
    *entry = eh->e_entry;
    rc = 0;
out:
    free(img);
    if (fd >= 0)
        close(fd);
    return rc;
}
