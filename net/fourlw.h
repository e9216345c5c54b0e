/* Four-letter words: recognising one in the first four bytes of a connection, and a
 * printf into a bounded buffer for composing the answers. */
#ifndef ZK_NET_FOURLW_H
#define ZK_NET_FOURLW_H

#include <stddef.h>
#include <stdint.h>

#include "net/zbuf.h"

/* Index into fourlw_names (zab/config.h) or -1. */
int fourlw_lookup(const uint8_t word[4]);
void zbuf_printf(struct zbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
