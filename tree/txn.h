/* Transactions as ZooKeeper serializes them (TxnHeader then the body for its type), the
 * unit that flows prep -> log -> apply, and later to disk and to followers unchanged.
 *
 * TxnHeader{long clientId; int cxid; long zxid; long time; int type}
 * create/create2: CreateTxn{ustring path; buffer data; vector<ACL> acl; bool ephemeral;
 *                           int parentCVersion}
 * createContainer: CreateContainerTxn{ustring path; buffer data; vector<ACL> acl;
 *                                     int parentCVersion}
 * createTTL: CreateTTLTxn{ustring path; buffer data; vector<ACL> acl; int parentCVersion;
 *                         long ttl}   (ttl in ms, 1 .. TXN_TTL_MAX)
 * delete, deleteContainer: DeleteTxn{ustring path}
 * setData: SetDataTxn{ustring path; buffer data; int version}
 * setACL: SetACLTxn{ustring path; vector<ACL> acl; int version}  (version: the new aversion)
 * createSession: CreateSessionTxn{int timeOut}
 * closeSession: CloseSessionTxn{vector<ustring> paths2Delete}     error: ErrorTxn{int err}
 * check (multi only): CheckVersionTxn{ustring path; int version}
 * multi: MultiTxn{vector<Txn{int type; buffer data}>}: each data is the body of a sub-txn
 *        (no TxnHeader: the multi's own header holds for every op; one zxid for all of them).
 *        Sub-txns are create/create2/createContainer/createTTL, delete/deleteContainer,
 *        setData, check and error; never a multi.
 * ACL is {int perms; Id{ustring scheme; ustring id}}.
 *
 * txn_decode does not copy: every pointer in struct txn points into the caller's bytes. */
#ifndef ZK_TREE_TXN_H
#define ZK_TREE_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"

#define TXN_MAX_ACL 1024
/* A TTL must fit the low 40 bits of ephemeralOwner (ZooKeeper's EphemeralType.TTL). */
#define TXN_TTL_MAX (((int64_t)1 << 40) - 1)

struct txn_hdr {
	int64_t client_id;
	int32_t cxid;
	int64_t zxid;
	int64_t time_ms;
	int32_t type;
};

struct txn {
	struct txn_hdr hdr;
	const char *path; /* create, delete, setData, setACL */
	int32_t path_len;
	const uint8_t *data; /* create, setData; NULL with data_len -1 for null */
	int32_t data_len;
	const uint8_t *acl; /* create, setACL: the serialized vector<ACL>, count included */
	size_t acl_len;
	bool ephemeral;          /* create */
	int32_t parent_cversion; /* create, createContainer, createTTL */
	int64_t ttl;             /* createTTL */
	int32_t version;         /* setData: the node's new version; check: the version + 1;
				  * setACL: the node's new aversion */
	int32_t timeout_ms;      /* createSession */
	const uint8_t *paths;    /* closeSession: vector<ustring> after its count */
	size_t paths_len;
	int32_t npaths;
	int32_t err; /* error */
	const uint8_t *subs; /* multi: the vector<Txn> after its count */
	size_t subs_len;
	int32_t nsubs;
};

int txn_decode(const uint8_t *p, size_t len, struct txn *t);
void txn_hdr_encode(struct jute_out *out, const struct txn_hdr *h);
/* Validate a serialized vector<ACL> at the reader and return its byte span. */
const uint8_t *txn_acl_span(struct jute_in *in, size_t *len, int32_t *count);
/* Decode a multi's sub-txn body of `type` (sub->hdr is the multi's header with that type).
 * Every sub-txn of a multi that txn_decode accepted decodes. */
int txn_decode_sub(const struct txn_hdr *multi, int32_t type, const uint8_t *p, size_t len,
		   struct txn *sub);
/* Iterate a multi txn's sub-txns (jin_init'ed over subs/subs_len): false at the end. */
bool txn_next_sub(struct jute_in *it, int32_t *type, const uint8_t **body, int32_t *len);
/* Is `type` a sub-txn a MultiTxn may hold? */
bool txn_is_sub_type(int32_t type);
/* Iterate a closeSession txn's paths: returns false at the end. */
bool txn_next_path(struct jute_in *it, const char **path, int32_t *len);

#endif
