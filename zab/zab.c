/* Standalone commit rule; see zab.h. */
#include "zab/zab.h"
#include "net/log.h"

#include <string.h>

void zab_init(struct zab *z, int64_t last_zxid)
{
	memset(z, 0, sizeof *z);
	z->epoch = last_zxid >> 32;
	z->counter = (uint32_t)last_zxid;
	z->proposed_zxid = z->durable_zxid = z->committed_zxid = last_zxid;
}

int64_t zab_next_zxid(struct zab *z)
{
	/* A counter about to wrap needs a new epoch; standalone ZooKeeper rolls the epoch too. */
	if (z->counter == UINT32_MAX) {
		z->epoch++;
		z->counter = 0;
	}
	z->counter++;
	z->proposed_zxid = z->epoch << 32 | z->counter;
	return z->proposed_zxid;
}

int64_t zab_log_durable(struct zab *z, int64_t zxid)
{
	ZK_ASSERT(zxid >= z->durable_zxid && zxid <= z->proposed_zxid);
	z->durable_zxid = zxid;
	/* Quorum of one: our own durable ack is a majority. */
	z->committed_zxid = zxid;
	return z->committed_zxid;
}
