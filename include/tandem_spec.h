/* xl disk and vif specification parsers (filled in by lib/cfg_disk.c, lib/cfg_vif.c). */
#ifndef TANDEM_SPEC_H
#define TANDEM_SPEC_H
#endif
