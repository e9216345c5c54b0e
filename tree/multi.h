/* MultiOperationRecord, the request body of multi (14) and multiRead (22): ops, each a
 * MultiHeader{int type; boolean done; int err} and its request record, until a header
 * with done set (its type and err are not looked at, nor any bytes after it).
 *
 * As ZooKeeper 3.8's MultiOperationRecord.deserialize and Op.create build it:
 *  - op types: create, create2, createContainer, createTTL (CreateTTLRequest: one more
 *    long), delete, setData, check (CheckVersionRequest{ustring path; int version}) are
 *    writes; getData and getChildren (path, watch) are reads. Any other type, a record
 *    that does not parse, or reads mixed with writes make the record malformed;
 *  - a create op's type comes from its flags, not its header: container flags make it a
 *    createContainer, TTL flags a createTTL (MULTI_BAD_TTL when the record is a
 *    CreateRequest, which has no ttl: ZooKeeper fails a cast there), anything else a
 *    create. So a create2 op answers as a create. */
#ifndef ZK_TREE_MULTI_H
#define ZK_TREE_MULTI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"

#define MULTI_BAD_TTL INT32_MIN

enum multi_kind { MULTI_WRITE = 1, MULTI_READ = 2 };

struct multi_op {
	int32_t type; /* what runs: for a create, the type its flags select; MULTI_BAD_TTL */
	enum multi_kind kind;
	const char *path; /* NULL for a null path */
	int32_t path_len;
	const uint8_t *rec; /* the op's request record, inside the caller's body */
	size_t rec_len;
};

/* The next op: 1 and *op, 0 at the end marker, -1 when the record is malformed. */
int multi_next(struct jute_in *in, struct multi_op *op);

enum multi_shape {
	MULTI_SHAPE_EMPTY,     /* no ops */
	MULTI_SHAPE_WRITES,
	MULTI_SHAPE_READS,
	MULTI_SHAPE_MALFORMED,
	MULTI_SHAPE_NULL_PATH, /* well-formed, but an op has a null path */
};
/* Parse the whole record once: what kind of multi it is. */
enum multi_shape multi_shape(const uint8_t *body, size_t len);

#endif
