/* fuzz_config: zoo.cfg text through config_parse, config_finish and config_set_myid (the
 * text after the last newline plays dataDir/myid). Proves: no out-of-bounds access (the text
 * is not NUL-terminated), each returns 0 or -EINVAL, an error always comes with a message,
 * parsing is deterministic, and accepted server.N lines hold unique sids, ports in range and
 * terminated hosts; an accepted myid in quorum mode is one of them. */
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

static void check_servers(const struct zk_config *c)
{
	FUZZ_CHECK(c->nservers >= 0 && c->nservers <= ZK_SERVERS_MAX);
	for (int i = 0; i < c->nservers; i++) {
		const struct zk_server *s = &c->servers[i];
		FUZZ_CHECK(s->sid >= 1 && s->sid <= ZK_SID_MAX);
		FUZZ_CHECK(config_server(c, s->sid) == s); /* sids are unique */
		FUZZ_CHECK(memchr(s->host, 0, sizeof s->host) && memchr(s->client_host, 0, sizeof s->client_host));
		FUZZ_CHECK(s->host[0] != 0);
		FUZZ_CHECK(s->quorum_port >= 1 && s->quorum_port <= 65535);
		FUZZ_CHECK(s->election_port >= 1 && s->election_port <= 65535);
		FUZZ_CHECK(s->quorum_port != s->election_port);
		FUZZ_CHECK(s->client_port >= 0 && s->client_port <= 65535);
	}
	if (config_quorum_mode(c))
		FUZZ_CHECK(c->init_limit > 0 && c->sync_limit > 0);
}

/* The text after the last newline stands for dataDir/myid. */
static void check_myid(struct zk_config *c, const char *text, size_t size)
{
	size_t at = size;
	while (at > 0 && text[at - 1] != '\n')
		at--;
	char err[512];
	memset(err, 0, sizeof err);
	int rc = config_set_myid(c, text + at, size - at, err, sizeof err);
	check_err(rc, err);
	if (rc == 0 && config_quorum_mode(c)) {
		const struct zk_server *me = config_server(c, c->myid);
		FUZZ_CHECK(me != NULL && me->observer == c->peer_type_observer);
		FUZZ_CHECK(c->client_port >= 0 && c->client_port <= 65535);
	}
	rc = config_set_myid(c, NULL, 0, err, sizeof err);
	FUZZ_CHECK(rc == (config_quorum_mode(c) ? -EINVAL : 0));
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
			check_servers(c);
			check_myid(c, text, size);
		}
	}
	free(c);
	free(d);
	free(text);
	return 0;
}
