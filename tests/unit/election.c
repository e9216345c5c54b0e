/* Proves the pure part of the election driver: the config text every notification carries
 * (Apache's QuorumMaj.toString: servers in sid order, IPv6 hosts in brackets, a client
 * address only when the line has one, "version=0" last) and its bound; and that
 * election_init refuses a config whose myid is not a server line without touching a socket. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/election.h"
#include "net/log.h"
#include "zab/config.h"

static struct zk_config C;
static char err[1024];

static void load(const char *text)
{
	zk_log_level = ZK_LOG_ERROR;
	config_defaults(&C);
	cr_assert_eq(config_parse(&C, text, strlen(text), err, sizeof err), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
}

Test(election, config_text_as_quorum_maj, .timeout = 10)
{
	load("initLimit=5\nsyncLimit=2\n"
	     "server.3=[::1]:2890:3890:observer;2183\n"
	     "server.1=127.0.0.1:2888:3888\n"
	     "server.2=zk2:2889:3889:participant;127.0.0.2:2182\n"
	     "server.10=[fe80::1]:2891:3891;[::2]:2184\n");
	char text[ELECTION_CONFIG_TEXT_MAX];
	int32_t len = -1;
	cr_assert_eq(election_config_text(&C, text, sizeof text, &len), 0);
	static const char want[] =
		"server.1=127.0.0.1:2888:3888:participant\n"
		"server.2=zk2:2889:3889:participant;127.0.0.2:2182\n"
		"server.3=[::1]:2890:3890:observer;0.0.0.0:2183\n"
		"server.10=[fe80::1]:2891:3891:participant;[::2]:2184\n"
		"version=0";
	cr_assert_eq(len, (int32_t)strlen(want));
	cr_assert_str_eq(text, want);
	cr_assert_eq(election_config_text(&C, text, 40, &len), -ENOBUFS);
	cr_assert_eq(election_config_text(&C, text, strlen(want), &len), -ENOBUFS, "no room for NUL");
}

Test(election, config_text_of_the_largest_config_fits, .timeout = 10)
{
	static char cfg[64 * 1024];
	strcpy(cfg, "initLimit=5\nsyncLimit=2\n");
	char host[256];
	memset(host, 'h', 255);
	host[255] = 0;
	for (int i = 1; i <= ZK_SERVERS_MAX; i++) {
		char line[1024];
		snprintf(line, sizeof line, "server.%d=%s%d:%d:%d:observer;%s%d:%d\n", 200 + i,
			 host + 3, i + 100, 60000 + i, 61000 + i, host + 3, i + 100, 62000 + i);
		strcat(cfg, line);
	}
	strcat(cfg, "server.1=a:1:2\nserver.2=b:1:2\n"); /* 34 lines: too many */
	zk_log_level = ZK_LOG_ERROR;
	config_defaults(&C);
	cr_assert_eq(config_parse(&C, cfg, strlen(cfg), err, sizeof err), -EINVAL);
	cr_assert_eq(C.nservers, ZK_SERVERS_MAX);
	char text[ELECTION_CONFIG_TEXT_MAX];
	int32_t len;
	cr_assert_eq(election_config_text(&C, text, sizeof text, &len), 0);
	cr_assert_lt(len, PEER_FRAME_MAX - PEER_NOTE_LEN);
}

static void never(void *ctx, int32_t state, const struct fle_vote *v)
{
	(void)ctx; (void)state; (void)v;
	cr_assert_fail("decided without an election");
}

Test(election, init_refuses_an_id_not_listed, .timeout = 10)
{
	load("initLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n");
	C.myid = 7; /* what config_set_myid would have refused */
	static struct election e;
	struct net_loop loop;
	cr_assert_eq(net_loop_init(&loop), 0);
	cr_assert_eq(election_init(&e, &loop, &C, never, NULL, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "7"), "%s", err);
	net_loop_free(&loop);
}
