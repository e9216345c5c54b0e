/* The replication seam. Standalone is a quorum of one: a txn commits as soon as this
 * server's own log has made it durable. The ensemble issue replaces this with the
 * leader/follower state machines; the pipeline around it (prep -> log -> commit -> apply)
 * already has the shape they need. Pure: zxids and acks in, commit points out. */
#ifndef ZK_ZAB_ZAB_H
#define ZK_ZAB_ZAB_H

#include <stdint.h>

struct zab {
	int64_t epoch;          /* high 32 bits of every zxid this server assigns */
	uint32_t counter;       /* low 32 bits of the last zxid assigned */
	int64_t proposed_zxid;  /* last zxid handed out */
	int64_t durable_zxid;   /* highest zxid our log reports durable */
	int64_t committed_zxid; /* highest zxid a quorum (here: we) has durably accepted */
};

void zab_init(struct zab *z, int64_t last_zxid);
/* Assign the next zxid (epoch << 32 | counter). */
int64_t zab_next_zxid(struct zab *z);
/* The local log is durable up to `zxid`; returns the new commit point. */
int64_t zab_log_durable(struct zab *z, int64_t zxid);
static inline int64_t zab_committed(const struct zab *z) { return z->committed_zxid; }

#endif
