/* A connection's authentication info as ZooKeeper keeps it (ServerCnxn.authInfo): a set of
 * Ids (scheme, id). It starts with `ip:<address>`; `addauth digest user:pw` adds
 * `digest:user:base64(sha1(user:pw))`, and `super:` first when that digest equals
 * superDigest. Kept serialized as a jute vector<Id> (QuorumPacket.authinfo's layout) so prep
 * and reads take it as plain bytes, independent of sockets.
 *
 * Order matters to clients: whoAmI lists the ids and the `auth` ACL scheme expands to them
 * in the set's iteration order. ZooKeeper's set is a ConcurrentHashMap, so we keep the
 * vector in the order that map iterates: by bucket of Id.hashCode() (Java String hashes),
 * in insertion order within a bucket, with the node order its resize produces.
 *
 * Bounded: at most AUTH_MAX_IDS ids and AUTH_MAX_BYTES serialized bytes a connection
 * (ZooKeeper has no bound); an addauth past the bound fails as an unknown scheme does. */
#ifndef ZK_TREE_AUTH_H
#define ZK_TREE_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/jute.h"

#define AUTH_MAX_IDS 64
#define AUTH_MAX_BYTES 4096
/* The longest address string auth_ip_id writes (Java's full IPv6 form) plus NUL. */
#define AUTH_IP_MAX 48

struct auth_ids {
	uint8_t *bytes; /* serialized vector<Id>, count included; NULL before init */
	size_t len;
	uint32_t count;
};

/* An empty set (count 0). 0 or -ENOMEM. */
int auth_ids_init(struct auth_ids *a);
void auth_ids_free(struct auth_ids *a);
/* Add (scheme, id) unless it is there. 0, -E2BIG past the bounds, -ENOMEM. */
int auth_ids_add(struct auth_ids *a, const char *scheme, size_t sl, const char *id, size_t il);
/* InetAddress.getHostAddress of a peer: "a.b.c.d" (also for v4-mapped IPv6), or eight
 * uncompressed hex groups for IPv6. Returns the length, or -1 for another family. */
int auth_ip_id(const struct sockaddr_storage *peer, char out[AUTH_IP_MAX]);
/* DigestAuthenticationProvider.generateDigest: "user:pw" -> "user:base64(sha1(user:pw))",
 * user being everything before the first ':'. Returns the length, or -1 if it exceeds cap. */
long auth_digest_id(const uint8_t *cred, size_t len, char *out, size_t cap);
/* WhoAmIResponse{vector<ClientInfo{ustring authScheme; ustring user}>}: the user is the
 * part before ':' for digest, the address for ip, "" for schemes without a provider. */
void auth_whoami(struct jute_out *out, const uint8_t *ids, size_t len);
/* Java's Id.hashCode() (exposed for the tests). */
uint32_t auth_java_hash(const uint8_t *scheme, size_t sl, const uint8_t *id, size_t il);

#endif
