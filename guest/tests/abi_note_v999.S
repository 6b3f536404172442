/* An ABI note claiming version 999, for the wrong-ABI test image. */
#define TANDEM_GUEST_ABI_NOTE_VERSION 999
#include "../sdk/abi_note.S"
