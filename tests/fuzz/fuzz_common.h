/* Shared helpers for the libFuzzer harnesses: a contract check that aborts (so libFuzzer
 * records the input), a digest of a whole tree for before/after comparisons, and a scratch
 * file the file-format harnesses rewrite for every input. Header-only so every harness stays
 * one translation unit plus the library. */
#ifndef ZK_FUZZ_COMMON_H
#define ZK_FUZZ_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net/log.h"
#include "tree/tree.h"

#define FUZZ_CHECK(c)                                                                  \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, "fuzz contract violated: %s (%s:%d)\n", #c,    \
				__FILE__, __LINE__);                                   \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* Known bugs recorded in regressions/ are stepped around so a run can look for new ones;
 * ZKD_FUZZ_STRICT=1 in the environment turns the checks back on (to reproduce a recorded
 * input, or to confirm a fix before the guard is deleted). */
static inline bool fuzz_strict(void)
{
	static int strict = -1;
	if (strict < 0)
		strict = getenv("ZKD_FUZZ_STRICT") != NULL;
	return strict;
}

static inline uint64_t fuzz_mix(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Order-independent digest of a subtree: children are combined by sum, so the hash table's
 * iteration order does not matter. Covers names, data, stats and ACL bytes. */
static inline uint64_t fuzz_node_digest(const struct tree_node *n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	h = fuzz_mix(h, n->name, n->ent.len);
	h = fuzz_mix(h, &n->data_len, sizeof n->data_len);
	if (n->data_len > 0)
		h = fuzz_mix(h, n->data, (size_t)n->data_len);
	const struct tree_stat *st = &n->stat;
	int64_t f[12] = { st->czxid, st->mzxid, st->ctime, st->mtime, st->version, st->cversion,
			  st->aversion, st->ephemeral_owner, st->pzxid }; /* no padding bytes */
	h = fuzz_mix(h, f, sizeof f);
	if (n->acl)
		h = fuzz_mix(h, n->acl->bytes, n->acl->ent.len);
	uint64_t kids = 0;
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(tree_kids(n), &i, &e);)
		kids += fuzz_node_digest((const struct tree_node *)e) * 0x9e3779b97f4a7c15ull + 1;
	return fuzz_mix(h, &kids, sizeof kids);
}

static inline uint64_t fuzz_tree_digest(const struct tree *t)
{
	uint64_t h = fuzz_node_digest(t->root);
	h = fuzz_mix(h, &t->node_count, sizeof t->node_count);
	h = fuzz_mix(h, &t->data_bytes, sizeof t->data_bytes);
	h = fuzz_mix(h, &t->eph_count, sizeof t->eph_count);
	return fuzz_mix(h, &t->last_zxid, sizeof t->last_zxid);
}

/* One memfd per process, rewritten for each input; its /proc path is what the readers open. */
static inline const char *fuzz_scratch_file(const void *p, size_t n)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("zkd-fuzz", 0);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || (n && pwrite(fd, p, n, 0) != (ssize_t)n)) {
		perror("scratch write");
		abort();
	}
	return path;
}

#endif
