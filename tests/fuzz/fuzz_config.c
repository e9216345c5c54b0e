/* fuzz_config: zoo.cfg text through config_parse and config_finish. Proves: no
 * out-of-bounds access (the text is not NUL-terminated), each returns 0 or -EINVAL, an
 * error always comes with a message, and parsing is deterministic. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "zab/config.h"

static void check_err(int rc, const char *err)
{
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	FUZZ_CHECK(memchr(err, 0, 512) != NULL); /* NUL-terminated within the buffer */
	if (rc)
		FUZZ_CHECK(err[0] != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zk_log_level = ZK_LOG_ERROR;
	char *text = malloc(size ? size : 1);
	FUZZ_CHECK(text);
	memcpy(text, data, size);
	struct zk_config *c = malloc(sizeof *c), *d = malloc(sizeof *d);
	FUZZ_CHECK(c && d);
	char err[512], err2[512];
	memset(err, 0, sizeof err);
	config_defaults(c);
	int rc = config_parse(c, text, size, err, sizeof err);
	check_err(rc, err);
	config_defaults(d);
	err2[0] = 0;
	FUZZ_CHECK(config_parse(d, text, size, err2, sizeof err2) == rc);
	FUZZ_CHECK(strcmp(err, err2) == 0);
	if (rc == 0) {
		memset(err, 0, sizeof err);
		rc = config_finish(c, err, sizeof err);
		check_err(rc, err);
		if (rc == 0) {
			FUZZ_CHECK(memchr(c->data_dir, 0, sizeof c->data_dir) != NULL);
			FUZZ_CHECK(memchr(c->data_log_dir, 0, sizeof c->data_log_dir) != NULL);
			FUZZ_CHECK(memchr(c->client_addr, 0, sizeof c->client_addr) != NULL);
			FUZZ_CHECK(c->min_session_timeout_ms >= 0 && c->max_session_timeout_ms >= 0);
			FUZZ_CHECK((c->fourlw_mask >> FLW_COUNT) == 0);
		}
	}
	free(c);
	free(d);
	free(text);
	return 0;
}
