/* MultiOperationRecord parsing; the layout and ZooKeeper's rules are in multi.h. */
#include "tree/multi.h"
#include "tree/acl.h"
#include "net/proto.h"
#include "tree/txn.h"

static int32_t create_type(int32_t hdr_type, int32_t flags)
{
	if (flags == ZCF_TTL || flags == ZCF_SEQ_TTL)
		return hdr_type == ZOP_CREATETTL ? ZOP_CREATETTL : MULTI_BAD_TTL;
	return flags == ZCF_CONTAINER ? ZOP_CREATECONTAINER : ZOP_CREATE;
}

int multi_next(struct jute_in *in, struct multi_op *op)
{
	int32_t type = jin_i32(in), len, n;
	size_t acl_len;
	bool done = jin_bool(in);
	jin_i32(in); /* err: ZooKeeper does not read it */
	if (!jin_ok(in))
		return -1;
	if (done)
		return 0;
	size_t start = in->off;
	op->type = type;
	op->kind = MULTI_WRITE;
	op->path = (const char *)jin_buf(in, &op->path_len);
	switch (type) {
	case ZOP_CREATE: case ZOP_CREATE2: case ZOP_CREATECONTAINER: case ZOP_CREATETTL:
		jin_buf(in, &len);
		acl_request_span(in, &acl_len, &n); /* null ids: prep judges them */
		op->type = create_type(type, jin_i32(in));
		if (type == ZOP_CREATETTL)
			jin_i64(in);
		break;
	case ZOP_DELETE: case ZOP_CHECK:
		jin_i32(in);
		break;
	case ZOP_SETDATA:
		jin_buf(in, &len);
		jin_i32(in);
		break;
	case ZOP_GETDATA: case ZOP_GETCHILDREN:
		jin_bool(in);
		op->kind = MULTI_READ;
		break;
	default:
		return -1;
	}
	op->rec = in->p + start;
	op->rec_len = in->off - start;
	return jin_ok(in) ? 1 : -1;
}

enum multi_shape multi_shape(const uint8_t *body, size_t len)
{
	struct jute_in in;
	struct multi_op op;
	enum multi_kind kind = 0;
	bool null_path = false;
	int rc;
	jin_init(&in, body, len);
	while ((rc = multi_next(&in, &op)) == 1) {
		if (kind && op.kind != kind)
			return MULTI_SHAPE_MALFORMED; /* "Mixing read and write operations" */
		kind = op.kind;
		null_path |= op.path == NULL;
	}
	if (rc < 0)
		return MULTI_SHAPE_MALFORMED;
	if (null_path)
		return MULTI_SHAPE_NULL_PATH;
	if (!kind)
		return MULTI_SHAPE_EMPTY;
	return kind == MULTI_READ ? MULTI_SHAPE_READS : MULTI_SHAPE_WRITES;
}
