/* Domain lifecycle: runtime directory, create, list, pause, destroy (lib/domain_*.c). */
#ifndef TANDEM_DOMAIN_H
#define TANDEM_DOMAIN_H
#endif
