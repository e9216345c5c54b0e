/* fuzz_txnlog: a hostile transaction log file through wal_reader_open / wal_reader_next /
 * wal_reader_valid_after, as recovery and dump-log read it. Proves: no out-of-bounds
 * access; every record returned has length >= 32, a strictly increasing zxid equal to the
 * one in its TxnHeader, and lies inside the file; a bad record names an offset inside the
 * file; reading is deterministic (valid_after gives the same answer twice); txn_decode of
 * each entry does not crash.
 * Input byte 0 picks the variant: odd = the rest of the input is the whole file; even =
 * a valid ZKLG header is written first, so the fuzzer spends its time on records. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/jute.h"
#include "tree/txn.h"
#include "wal/fileops.h"
#include "wal/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zk_log_level = ZK_LOG_ERROR;
	if (size < 1)
		return 0;
	bool raw = data[0] & 1;
	size_t hl = raw ? 0 : WAL_HEADER_LEN;
	size_t n = hl + size - 1;
	uint8_t *file = malloc(n ? n : 1);
	FUZZ_CHECK(file);
	if (!raw) {
		be32_put(file, WAL_MAGIC);
		be32_put(file + 4, WAL_VERSION);
		be64_put(file + 8, 0);
	}
	memcpy(file + hl, data + 1, size - 1);
	const char *path = fuzz_scratch_file(file, n);

	struct wal_reader r;
	int rc = wal_reader_open(&r, &zk_fileops_posix, path);
	if (rc < 0) {
		FUZZ_CHECK(r.err[0] != 0);
		FUZZ_CHECK(!raw || n < WAL_HEADER_LEN || be32_get(file) != WAL_MAGIC ||
			   be32_get(file + 4) != WAL_VERSION);
		wal_reader_close(&r);
		free(file);
		return 0;
	}
	FUZZ_CHECK(n >= WAL_HEADER_LEN && r.size == (off_t)n);
	int64_t last = INT64_MIN;
	for (int i = 0; i < 100000; i++) {
		const uint8_t *entry;
		size_t len;
		int64_t zxid;
		off_t at = r.off;
		rc = wal_reader_next(&r, &entry, &len, &zxid);
		if (rc <= 0)
			break;
		FUZZ_CHECK(len >= 32 && at + 13 + (off_t)len <= (off_t)n);
		FUZZ_CHECK(memcmp(entry, file + at + 12, len) == 0);
		FUZZ_CHECK(file[at + 12 + len] == 'B');
		FUZZ_CHECK(zxid > last && zxid == (int64_t)be64_get(entry + 12));
		last = zxid;
		struct txn x;
		(void)txn_decode(entry, len, &x); /* entries may carry a TxnDigest: either answer */
	}
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	if (rc == -EBADMSG) {
		FUZZ_CHECK(r.err[0] != 0);
		FUZZ_CHECK(r.bad_off >= WAL_HEADER_LEN && r.bad_off < (off_t)n);
		bool a = wal_reader_valid_after(&r);
		FUZZ_CHECK(wal_reader_valid_after(&r) == a);
	}
	wal_reader_close(&r);
	free(file);
	return 0;
}
