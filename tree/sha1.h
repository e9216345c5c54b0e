/* SHA-1 (FIPS 180-4) and base64 (RFC 4648, standard alphabet, padded): what ZooKeeper's
 * digest scheme needs to turn "user:password" into the id "user:base64(sha1(user:password))".
 * SHA-1 is broken for collision resistance; ZooKeeper uses it, so we must too. */
#ifndef ZK_TREE_SHA1_H
#define ZK_TREE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN]);
/* Write base64 of in[0..n) to out (BASE64_LEN(n) bytes, no NUL); returns that length. */
size_t base64_encode(const uint8_t *in, size_t n, char *out);

#endif
