/* ACLs as ZooKeeper 3.8 checks and fixes them (ZooKeeperServer.checkACL,
 * PrepRequestProcessor.fixupACL), against a connection's authentication ids.
 *
 * Who asks is a list of Ids (scheme, id) in its serialized form, a jute vector<Id> (the
 * layout of QuorumPacket.authinfo): `ip:<address>` from the connection, `digest:user:hash`
 * per addauth, and `super:` when a digest matched superDigest (tree/auth.h builds it).
 * Only the providers Apache ZooKeeper registers by default exist: `ip` (IPv4 only in 3.8.0:
 * an IPv6 address is neither a valid ip ACL nor matches one) and `digest`; `world:anyone`
 * is built in. An ACL entry of any other scheme is invalid in a new ACL and matches no one. */
#ifndef ZK_TREE_ACL_H
#define ZK_TREE_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"

/* At most this many entries in an ACL after fixup ("auth" expansion); more is InvalidACL
 * (ZooKeeper has no such bound; ours keeps every ACL decodable, see TXN_MAX_ACL). */
#define ACL_MAX_ENTRIES 1024

struct acl_who {
	const uint8_t *ids; /* serialized vector<Id>; NULL/0: no identity at all */
	size_t len;
	bool skip;          /* skipACL=yes: every check passes */
};

/* checkACL: does the serialized vector<ACL> grant `perm` (any of its bits) to `who`?
 * An empty ACL grants everything; a `super` id passes every check. */
bool acl_allows(const uint8_t *acl, size_t len, int32_t perm, const struct acl_who *who);
/* A request's vector<ACL> at the reader: as txn_acl_span, but a null scheme or id is
 * allowed (kazoo sends make_acl("auth", "") with a null id); acl_fixup judges them. */
const uint8_t *acl_request_span(struct jute_in *in, size_t *len, int32_t *count);
/* fixupACL on a request's ACL: ZOK, ZINVALIDACL or ZMARSHALLINGERROR. Duplicates are
 * dropped, then each `auth` entry becomes one entry per digest id of `ids` (InvalidACL when
 * there is none), and every other entry must be world:anyone or a valid ip/digest id. A
 * null id where Java dereferences it (world, ip, digest, or comparing for duplicates) is
 * MarshallingError, as ZooKeeper's NullPointerException answers; a null scheme, InvalidACL.
 * With `out` the fixed ACL (never holding a null) is written there. */
int acl_fixup(const uint8_t *acl, size_t len, const uint8_t *ids, size_t ids_len, struct jute_out *out);
/* IPAuthenticationProvider.isValid: "a.b.c.d" or "a.b.c.d/bits", parsed as Java does. */
bool acl_ip_valid(const char *id, size_t len);
/* IPAuthenticationProvider.matches: does client address `client` fall in ACL `expr`? */
bool acl_ip_matches(const char *expr, size_t elen, const char *client, size_t clen);
/* DigestAuthenticationProvider.isValid: exactly two ':'-separated parts, Java's split. */
bool acl_digest_valid(const char *id, size_t len);

#endif
