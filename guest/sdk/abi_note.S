/* The ELF note that tells tandem-vmm which guest ABI version this image speaks. */
#include "tandem_abi.h"

#ifndef TANDEM_GUEST_ABI_NOTE_VERSION
#define TANDEM_GUEST_ABI_NOTE_VERSION TANDEM_ABI_VERSION
#endif

    .section .note.tandem, "a", @note
    .balign 4
    .long 7                             /* n_namesz: "Tandem" + NUL */
    .long 4                             /* n_descsz */
    .long TANDEM_ABI_NOTE_VERSION       /* n_type */
    .asciz "Tandem"
    .balign 4
    .long TANDEM_GUEST_ABI_NOTE_VERSION
    .balign 4

    .section .note.GNU-stack, "", @progbits
