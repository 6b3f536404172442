/* Guest entry at CPL3: record the entry TSC, zero BSS, call tg_start(boot info). */
    .section .text.start, "ax"
    .globl _start
_start:
    /* rdtsc first: the create-time benchmark measures exec -> this instruction */
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, tg_entry_tsc(%rip)
    mov %rdi, %r12                  /* boot info (TANDEM_ABI_BOOTINFO_ADDR) */
    and $-16, %rsp                  /* RSP = top of RAM */
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    cld
    rep stosb
    mov %r12, %rdi
    xor %ebp, %ebp
    call tg_start
1:  jmp 1b                          /* tg_start never returns */

    .section .data
    .balign 8
    .globl tg_entry_tsc
tg_entry_tsc:
    .quad 0

    .section .note.GNU-stack, "", @progbits
