/* xl.cfg file parser (lib/cfg_file.c). */
#ifndef TANDEM_CFG_H
#define TANDEM_CFG_H
#endif
