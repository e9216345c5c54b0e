/* ACL checks; see acl.h. */
#include "tree/acl.h"
#include "net/jute.h"
#include "net/proto.h"
#include "tree/txn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static bool eq(const uint8_t *p, int32_t len, const char *s)
{
	return len >= 0 && (size_t)len == strlen(s) && memcmp(p, s, (size_t)len) == 0;
}

bool acl_ip_matches(const char *id, size_t len, const struct sockaddr_storage *peer)
{
	char buf[64];
	if (!peer || len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, id, len);
	buf[len] = 0;
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		*slash = 0;
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (*end || bits < 0)
			return false;
	}
	uint8_t want[16], have[16];
	size_t n;
	if (inet_pton(AF_INET, buf, want) == 1) {
		n = 4;
		if (peer->ss_family == AF_INET) {
			memcpy(have, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		} else {
			const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
			if (!IN6_IS_ADDR_V4MAPPED(a))
				return false;
			memcpy(have, &a->s6_addr[12], 4);
		}
	} else if (inet_pton(AF_INET6, buf, want) == 1 && peer->ss_family == AF_INET6) {
		n = 16;
		memcpy(have, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
	} else {
		return false;
	}
	if (bits < 0 || bits > (long)(n * 8))
		bits = (long)(n * 8);
	for (long i = 0; i < bits; i++) {
		uint8_t m = (uint8_t)(0x80 >> (i % 8));
		if ((want[i / 8] & m) != (have[i / 8] & m))
			return false;
	}
	return true;
}

bool acl_allows(const uint8_t *acl, size_t len, int32_t perm, const struct sockaddr_storage *peer)
{
	struct jute_in in;
	jin_init(&in, acl, len);
	int32_t n = jin_vec(&in, TXN_MAX_ACL);
	for (int32_t i = 0; i < n && jin_ok(&in); i++) {
		int32_t perms = jin_i32(&in), sl, il;
		const uint8_t *scheme = jin_buf(&in, &sl);
		const uint8_t *id = jin_buf(&in, &il);
		if (!jin_ok(&in) || !(perms & perm))
			continue;
		if (eq(scheme, sl, "world") && eq(id, il, "anyone"))
			return true;
		if (eq(scheme, sl, "ip") && il > 0 && acl_ip_matches((const char *)id, (size_t)il, peer))
			return true;
	}
	return false;
}
