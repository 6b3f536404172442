/*
 * statecheck's AVX-512 loop (run only when the CPU and XCR0 have AVX-512F):
 * loads zmm16-zmm23 (all 512 bits) and opmask registers k1-k3, then checks
 * them on every iteration while leaving the guest every 4096 iterations,
 * like sc_regs_run. These registers live only in XSAVE state components
 * 5-7, which a VMM that saves only legacy FPU/AVX state would lose.
 *
 * uint64_t sc_zmm_run(struct sc_zmm_table *t, uint64_t iterations)
 * returns 0 or the failed check: 1..8 = zmm16..zmm23, 9..11 = k1..k3.
 * struct sc_zmm_table: 0 zmm[8][64], 512 k[3] (u64), 536 pad, 544 poll_arg
 * (u64 GPA of a struct tandem_hc_poll); 64-byte aligned.
 */
#include "tandem_abi.h"

#define Z_ZMM 0
#define Z_K 512
#define Z_POLL 544

    .text
    .globl sc_zmm_run
sc_zmm_run:
    mov %rdi, %r8
    mov %rsi, %r9
    vmovdqa64 Z_ZMM+0*64(%r8), %zmm16
    vmovdqa64 Z_ZMM+1*64(%r8), %zmm17
    vmovdqa64 Z_ZMM+2*64(%r8), %zmm18
    vmovdqa64 Z_ZMM+3*64(%r8), %zmm19
    vmovdqa64 Z_ZMM+4*64(%r8), %zmm20
    vmovdqa64 Z_ZMM+5*64(%r8), %zmm21
    vmovdqa64 Z_ZMM+6*64(%r8), %zmm22
    vmovdqa64 Z_ZMM+7*64(%r8), %zmm23
    kmovq Z_K+0(%r8), %k1
    kmovq Z_K+8(%r8), %k2
    kmovq Z_K+16(%r8), %k3

.Lzloop:
    xor %eax, %eax
#define CHECK_ZMM(n, reg) \
    inc %eax; \
    vpcmpq $4, Z_ZMM+n*64(%r8), reg, %k4; \
    kortestb %k4, %k4; \
    jnz .Lzfail
    CHECK_ZMM(0, %zmm16)
    CHECK_ZMM(1, %zmm17)
    CHECK_ZMM(2, %zmm18)
    CHECK_ZMM(3, %zmm19)
    CHECK_ZMM(4, %zmm20)
    CHECK_ZMM(5, %zmm21)
    CHECK_ZMM(6, %zmm22)
    CHECK_ZMM(7, %zmm23)
#define CHECK_K(n, reg) \
    inc %eax; \
    kmovq reg, %rcx; \
    cmp Z_K+n*8(%r8), %rcx; \
    jne .Lzfail
    CHECK_K(0, %k1)
    CHECK_K(1, %k2)
    CHECK_K(2, %k3)

    test $0xfff, %r9
    jnz 1f
    mov Z_POLL(%r8), %eax           /* POLL with deadline 0: returns at once */
    mov $TANDEM_HC_PORT(2), %dx     /* TANDEM_HC_POLL */
    out %eax, %dx
1:  dec %r9
    jnz .Lzloop
    xor %eax, %eax

.Lzfail:
    vzeroupper
    ret

    .section .note.GNU-stack, "", @progbits
