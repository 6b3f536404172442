/*
 * statecheck's register loop: loads known values into rbx, rbp, r12-r15,
 * ymm8-ymm15 (all 256 bits), three x87 registers and MXCSR, then checks
 * them on every iteration while it keeps leaving the guest (a POLL
 * hypercall every 4096 iterations), so a VMM that loses vCPU state across
 * exits, pauses or save/restore is caught.
 *
 * uint64_t sc_regs_run(struct sc_table *t, uint64_t iterations, uint64_t corrupt_at,
 *                      uint64_t corrupt_what)
 * returns 0, or the number of the first check that failed (see statecheck.c).
 * Self-test: when the countdown reaches corrupt_at (never if 0), flip r13
 * (corrupt_what 1) or ymm11's upper half (2), as a VMM losing them would.
 * struct sc_table layout (offsets): 0 gpr[6], 48 x87[3] (int64), 72 mxcsr,
 * 76 pad, 80 poll_arg (u32 GPA of a struct tandem_hc_poll), 88 counter,
 * 96 scratch, 128 ymm[8][32] (32-byte aligned)
 */
#include "tandem_abi.h"

#define T_GPR 0
#define T_X87 48
#define T_MXCSR 72
#define T_POLL 80
#define T_COUNT 88
#define T_SCRATCH 96
#define T_YMM 128

    .text
    .globl sc_regs_run
sc_regs_run:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rdi, %r8                   /* table */
    mov %rsi, %r9                   /* iterations */
    mov %rdx, %r10                  /* corrupt_at */
    mov %rcx, %r11                  /* corrupt_what */

    mov T_GPR+0(%r8), %rbx
    mov T_GPR+8(%r8), %rbp
    mov T_GPR+16(%r8), %r12
    mov T_GPR+24(%r8), %r13
    mov T_GPR+32(%r8), %r14
    mov T_GPR+40(%r8), %r15
    vmovdqa T_YMM+0*32(%r8), %ymm8
    vmovdqa T_YMM+1*32(%r8), %ymm9
    vmovdqa T_YMM+2*32(%r8), %ymm10
    vmovdqa T_YMM+3*32(%r8), %ymm11
    vmovdqa T_YMM+4*32(%r8), %ymm12
    vmovdqa T_YMM+5*32(%r8), %ymm13
    vmovdqa T_YMM+6*32(%r8), %ymm14
    vmovdqa T_YMM+7*32(%r8), %ymm15
    fninit
    fildq T_X87+16(%r8)              /* ends as st(2) */
    fildq T_X87+8(%r8)               /* st(1) */
    fildq T_X87+0(%r8)               /* st(0) */
    ldmxcsr T_MXCSR(%r8)

.Lloop:
    cmp %r9, %r10
    jne 2f
    cmp $1, %r11
    jne 3f
    not %r13
    jmp 2f
3:  vpcmpeqd %ymm0, %ymm0, %ymm0
    vperm2f128 $0x08, %ymm0, %ymm0, %ymm0 /* low half 0, high half all ones */
    vxorps %ymm0, %ymm11, %ymm11
2:  mov $1, %eax
    cmp T_GPR+0(%r8), %rbx
    jne .Lfail
    inc %eax
    cmp T_GPR+8(%r8), %rbp
    jne .Lfail
    inc %eax
    cmp T_GPR+16(%r8), %r12
    jne .Lfail
    inc %eax
    cmp T_GPR+24(%r8), %r13
    jne .Lfail
    inc %eax
    cmp T_GPR+32(%r8), %r14
    jne .Lfail
    inc %eax
    cmp T_GPR+40(%r8), %r15
    jne .Lfail

    /* 7..14: ymm8..ymm15, all 256 bits (vxorps + vptest are AVX1) */
#define CHECK_YMM(n, reg) \
    inc %eax; \
    vxorps T_YMM+n*32(%r8), reg, %ymm0; \
    vptest %ymm0, %ymm0; \
    jnz .Lfail
    CHECK_YMM(0, %ymm8)
    CHECK_YMM(1, %ymm9)
    CHECK_YMM(2, %ymm10)
    CHECK_YMM(3, %ymm11)
    CHECK_YMM(4, %ymm12)
    CHECK_YMM(5, %ymm13)
    CHECK_YMM(6, %ymm14)
    CHECK_YMM(7, %ymm15)

    /* 15..17: x87 st(0..2), compared through a copy (fld st(i); fistp) */
#define CHECK_X87(i) \
    inc %eax; \
    fld %st(i); \
    fistpq T_SCRATCH(%r8); \
    mov T_SCRATCH(%r8), %rcx; \
    cmp T_X87+i*8(%r8), %rcx; \
    jne .Lfail
    CHECK_X87(0)
    CHECK_X87(1)
    CHECK_X87(2)

    /* 18: MXCSR */
    inc %eax
    stmxcsr T_SCRATCH(%r8)
    mov T_SCRATCH(%r8), %ecx
    cmp T_MXCSR(%r8), %ecx
    jne .Lfail

    incq T_COUNT(%r8)
    test $0xfff, %r9
    jnz 1f
    mov T_POLL(%r8), %eax           /* POLL with deadline 0: returns at once */
    mov $TANDEM_HC_PORT(2), %dx        /* TANDEM_HC_POLL */
    out %eax, %dx
1:  dec %r9
    jnz .Lloop
    xor %eax, %eax

.Lfail:
    /* eax = 0 or the failed check; store what was seen for the report */
    mov %rbx, T_SCRATCH+8(%r8)
    fninit
    mov $0x1f80, %ecx
    mov %ecx, T_SCRATCH+16(%r8)
    ldmxcsr T_SCRATCH+16(%r8)
    vzeroupper
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

    .section .note.GNU-stack, "", @progbits
