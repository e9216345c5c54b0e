/* ACL checks as ZooKeeper makes them (PrepRequestProcessor.checkACL): an entry grants its
 * permissions to everyone (world:anyone) or to a client whose identity matches it. zkd has
 * no authentication yet, so a client's only identity is its address (ip:addr[/bits], as
 * ZooKeeper's IPAuthenticationProvider matches it); digest and other schemes match no one. */
#ifndef ZK_TREE_ACL_H
#define ZK_TREE_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Does the serialized vector<ACL> grant `perm` to a client at `peer`? */
bool acl_allows(const uint8_t *acl, size_t len, int32_t perm, const struct sockaddr_storage *peer);
/* Does ip-scheme id ("10.0.0.0/8", "127.0.0.1", "::1") match the address? */
bool acl_ip_matches(const char *id, size_t len, const struct sockaddr_storage *peer);

#endif
