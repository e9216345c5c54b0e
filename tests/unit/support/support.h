/* Helpers the unit tests share: txns built by hand with jute, a tree dumped to sorted text
 * that two trees can be compared by, temp directories and whole-file access, and a recorder
 * of fired watches. Helpers that check something fail the running test with cr_assert. */
#ifndef ZK_TESTS_UNIT_SUPPORT_H
#define ZK_TESTS_UNIT_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/jute.h"
#include "tree/auth.h"
#include "tree/tree.h"
#include "tree/txn.h"

/* ---- bytes and seeds ---- */

/* A malloc'd copy of exactly len bytes (1 for 0), so ASan catches any over-read. */
uint8_t *t_exact_copy(const void *p, size_t len);
/* xorshift64: the next value of a seeded, reproducible sequence (state must not be 0). */
uint64_t t_xorshift(uint64_t *state);
/* Seeds 1..count in turn, or only the one in environment variable `env` when it is set, so
 * a failing seed replays alone. */
bool t_next_seed(uint64_t *seed, uint64_t count, const char *env);
#define T_FOR_SEEDS(seed, count, env) for (uint64_t seed = 0; t_next_seed(&seed, count, env);)

/* ---- jute ---- */

/* strlen(s), or -1 (null) for NULL: the length jout_buf takes for a C string. */
int32_t t_len(const char *s);
/* Empty b and point o at it. */
void t_jout_begin(struct jute_out *o, struct zbuf *b);
/* Everything written to o fitted. */
void t_jout_done(const struct jute_out *o);

/* ---- ACLs and txns ---- */

struct t_acl_ent {
	int32_t perms;
	const char *scheme, *id;
};

/* zbuf_init b and write the vector<ACL> of the n entries in v into it. */
void t_acl_build(struct zbuf *b, const struct t_acl_ent *v, int n);

/* Empty b, point o at it and write the TxnHeader; the body follows. */
void t_txn_begin(struct jute_out *o, struct zbuf *b, const struct txn_hdr *h);
void t_txn_create(struct jute_out *o, const char *path, const void *data, int32_t dlen, const uint8_t *acl,
		  size_t acl_len, bool eph, int32_t parent_cversion);
/* SetDataTxn; SetDataRequest has the same layout. */
void t_txn_setdata(struct jute_out *o, const char *path, const void *data, int32_t dlen, int32_t version);
/* npaths < 0: the empty body of old logs. */
void t_txn_close(struct jute_out *o, const char *const *paths, int npaths);

/* Add scheme:id to a connection's ids, or the digest id of "user:pw"; both must succeed. */
void t_auth_add(struct auth_ids *a, const char *scheme, const char *id);
void t_auth_add_digest(struct auth_ids *a, const char *cred);

/* Decode the txn in b and apply it; tree_apply itself must succeed. Returns res->err. */
int t_apply(struct tree *t, const struct zbuf *b, struct tree_result *res);

/* The parent of path (the root for "/x"), which must exist. */
struct tree_node *t_parent(const struct tree *t, const char *path);
/* The name a sequential create of prefix gets now: the parent's client-visible cversion. */
void t_seq_name(const struct tree *t, const char *prefix, char *out, size_t cap);

/* ---- dump: every node's path, stored stat, data and ACL, plus the counters, sorted ---- */

#define T_DUMP_LAST_ZXID 1u /* the header line carries t->last_zxid too */

/* A malloc'd text; two trees with the same dump hold the same data. */
char *t_tree_dump(const struct tree *t, unsigned flags);
/* Same dump and counters; a difference names its first line, prefixed with what. */
void t_assert_same_tree(const struct tree *want, const struct tree *have, unsigned flags, const char *what);

/* ---- directories and files ---- */

/* mkdtemp /tmp/zkd-<name>-XXXXXX into dir. */
void t_tmpdir(char *dir, size_t cap, const char *name);
/* Remove the files in d (not subdirectories), then with t_rm_tree d itself. */
void t_rm_files(const char *d);
void t_rm_tree(const char *d);
int t_count_files(const char *d);
off_t t_file_size(const char *path);
/* The whole file, malloc'd (one spare byte). */
uint8_t *t_slurp(const char *path, size_t *size);
/* Replace the file with n bytes. */
void t_spit(const char *path, const uint8_t *p, size_t n);
void t_poke(const char *path, off_t off, const void *bytes, size_t n);
uint8_t t_peek(const char *path, off_t off);
/* XOR the byte at off with mask. */
void t_flip(const char *path, off_t off, uint8_t mask);

/* Leaks found now, while the test can still fail (LeakSanitizer at exit does not fail it);
 * 0 without AddressSanitizer. */
int t_leaks_now(void);

/* ---- fired watches ---- */

#define T_EVENTS_MAX 4096

struct t_event {
	uint64_t watcher;
	int type;
	char path[64];
};

struct t_events {
	struct t_event v[T_EVENTS_MAX];
	int n;
};

/* A watch callback (tree_init, watches_init) recording into ctx, a struct t_events. */
void t_on_fire(void *ctx, uint64_t watcher, int event, const char *path, size_t len);
/* How many recorded events match; type < 0 and path NULL match any. */
int t_events_count(const struct t_events *e, uint64_t watcher, int type, const char *path);

#endif
