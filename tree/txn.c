/* Decoding and encoding of transactions; the layout is in txn.h. */
#include "tree/txn.h"
#include "net/log.h"
#include "net/proto.h"

#include <errno.h>
#include <string.h>

void txn_hdr_encode(struct jute_out *out, const struct txn_hdr *h)
{
	jout_i64(out, h->client_id);
	jout_i32(out, h->cxid);
	jout_i64(out, h->zxid);
	jout_i64(out, h->time_ms);
	jout_i32(out, h->type);
}

const uint8_t *txn_acl_span(struct jute_in *in, size_t *len, int32_t *count)
{
	size_t start = in->off;
	int32_t n = jin_vec(in, TXN_MAX_ACL);
	for (int32_t i = 0; i < n && jin_ok(in); i++) {
		int32_t l;
		jin_i32(in);
		if (!jin_buf(in, &l) && l != 0)
			in->err = -EBADMSG; /* null scheme */
		if (!jin_buf(in, &l) && l != 0)
			in->err = -EBADMSG; /* null id */
	}
	*count = n;
	*len = in->off - start;
	return jin_ok(in) ? in->p + start : NULL;
}

static const char *path_field(struct jute_in *in, int32_t *len)
{
	const char *p = (const char *)jin_buf(in, len);
	if (jin_ok(in) && !p)
		in->err = -EBADMSG; /* a txn path is never null */
	return p;
}

bool txn_next_path(struct jute_in *it, const char **path, int32_t *len)
{
	if (jin_left(it) == 0 || !jin_ok(it))
		return false;
	*path = path_field(it, len);
	return jin_ok(it);
}

bool txn_is_sub_type(int32_t type)
{
	switch (type) {
	case ZOP_CREATE: case ZOP_CREATE2: case ZOP_CREATECONTAINER: case ZOP_CREATETTL:
	case ZOP_DELETE: case ZOP_DELETECONTAINER: case ZOP_SETDATA: case ZOP_CHECK: case ZOP_ERROR:
		return true;
	default:
		return false;
	}
}

bool txn_next_sub(struct jute_in *it, int32_t *type, const uint8_t **body, int32_t *len)
{
	if (jin_left(it) == 0 || !jin_ok(it))
		return false;
	*type = jin_i32(it);
	*body = jin_buf(it, len);
	if (jin_ok(it) && !*body)
		it->err = -EBADMSG; /* a sub-txn always has a body */
	return jin_ok(it);
}

static int decode_body(struct jute_in *in, struct txn *t);

/* MultiTxn: every sub-txn is checked here, so apply and dump can trust them. */
static void decode_multi(struct jute_in *in, struct txn *t)
{
	t->nsubs = jin_vec(in, INT32_MAX);
	if (t->nsubs < 0)
		in->err = -EBADMSG; /* ZooKeeper never logs a null list */
	t->subs = in->p + in->off;
	for (int32_t i = 0; i < t->nsubs && jin_ok(in); i++) {
		int32_t type, len;
		const uint8_t *body;
		struct txn sub;
		if (!txn_next_sub(in, &type, &body, &len) ||
		    txn_decode_sub(&t->hdr, type, body, (size_t)len, &sub) < 0)
			in->err = -EBADMSG; /* fewer ops than counted, or a bad one */
	}
	t->subs_len = (size_t)(in->p + in->off - t->subs);
}

int txn_decode_sub(const struct txn_hdr *multi, int32_t type, const uint8_t *p, size_t len,
		   struct txn *sub)
{
	struct jute_in in;
	memset(sub, 0, sizeof *sub);
	sub->hdr = *multi;
	sub->hdr.type = type;
	if (!txn_is_sub_type(type))
		return -EPROTONOSUPPORT;
	jin_init(&in, p, len);
	int rc = decode_body(&in, sub);
	if (rc < 0)
		return rc;
	return jin_done(&in) ? 0 : -EBADMSG;
}

int txn_decode(const uint8_t *p, size_t len, struct txn *t)
{
	struct jute_in in;
	memset(t, 0, sizeof *t);
	jin_init(&in, p, len);
	t->hdr.client_id = jin_i64(&in);
	t->hdr.cxid = jin_i32(&in);
	t->hdr.zxid = jin_i64(&in);
	t->hdr.time_ms = jin_i64(&in);
	t->hdr.type = jin_i32(&in);
	int rc = decode_body(&in, t);
	if (rc < 0)
		return rc;
	/* A TxnDigest{int version; long digest} may follow the body (ZooKeeper 3.6+). */
	if (jin_ok(&in) && jin_left(&in) == 12)
		in.off += 12;
	return jin_done(&in) ? 0 : -EBADMSG;
}

/* The body of a txn of type t->hdr.type; the caller checks what is left over. */
static int decode_body(struct jute_in *in_, struct txn *t)
{
	struct jute_in in = *in_;
	int32_t n;
	switch (t->hdr.type) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATECONTAINER:
	case ZOP_CREATETTL:
		t->path = path_field(&in, &t->path_len);
		t->data = jin_buf(&in, &t->data_len);
		t->acl = txn_acl_span(&in, &t->acl_len, &n);
		if (t->hdr.type == ZOP_CREATE || t->hdr.type == ZOP_CREATE2)
			t->ephemeral = jin_bool(&in);
		t->parent_cversion = jin_i32(&in);
		if (t->hdr.type == ZOP_CREATETTL) {
			t->ttl = jin_i64(&in);
			if (jin_ok(&in) && (t->ttl <= 0 || t->ttl > TXN_TTL_MAX))
				return -EBADMSG; /* prep never logs one: ZooKeeper cannot apply it */
		}
		break;
	case ZOP_DELETE:
	case ZOP_DELETECONTAINER:
		t->path = path_field(&in, &t->path_len);
		break;
	case ZOP_SETDATA:
		t->path = path_field(&in, &t->path_len);
		t->data = jin_buf(&in, &t->data_len);
		t->version = jin_i32(&in);
		break;
	case ZOP_SETACL:
		t->path = path_field(&in, &t->path_len);
		t->acl = txn_acl_span(&in, &t->acl_len, &n);
		t->version = jin_i32(&in);
		break;
	case ZOP_CREATESESSION:
		t->timeout_ms = jin_i32(&in);
		break;
	case ZOP_CLOSESESSION:
		/* Old logs carry an empty body: no paths, the tree's own list is used. */
		if (jin_left(&in) == 0)
			break;
		t->npaths = jin_vec(&in, INT32_MAX);
		t->paths = in.p + in.off;
		for (int32_t i = 0; i < t->npaths && jin_ok(&in); i++)
			path_field(&in, &n);
		t->paths_len = (size_t)(in.p + in.off - t->paths);
		break;
	case ZOP_ERROR:
		t->err = jin_i32(&in);
		break;
	case ZOP_CHECK:
		t->path = path_field(&in, &t->path_len);
		t->version = jin_i32(&in);
		break;
	case ZOP_MULTI: /* never a sub-txn: txn_decode_sub refuses it first */
		decode_multi(&in, t);
		break;
	default:
		return -EPROTONOSUPPORT;
	}
	*in_ = in;
	return jin_ok(&in) ? 0 : -EBADMSG;
}
