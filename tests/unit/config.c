/* Proves zoo.cfg parsing: defaults, each implemented key, Java Properties syntax, errors
 * that name "zoo.cfg:LINE:" and the key, ZooKeeper-known keys accepted, and the derived
 * session bounds and cross-key checks of config_finish. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/log.h"
#include "zab/config.h"

static struct zk_config C;
static char err[1024];

static void setup(void)
{
	config_defaults(&C);
	err[0] = 0;
	zk_log_level = ZK_LOG_ERROR; /* keep the expected warnings out of the output */
}

static int parse(const char *text)
{
	return config_parse(&C, text, strlen(text), err, sizeof err);
}

static uint32_t bit(int w) { return 1u << w; }

Test(config, defaults, .init = setup, .timeout = 10)
{
	cr_assert_eq(C.tick_ms, 2000);
	cr_assert_str_eq(C.data_dir, "./data");
	cr_assert_str_eq(C.data_log_dir, "");
	cr_assert_eq(C.client_port, 2181);
	cr_assert_eq(C.max_client_cnxns, 60);
	cr_assert_eq(C.min_session_timeout_ms, -1);
	cr_assert_eq(C.max_session_timeout_ms, -1);
	cr_assert_eq(C.jute_maxbuffer, 0xfffff);
	cr_assert_eq(C.global_outstanding_limit, 1000);
	cr_assert_eq(C.max_cnxns, 0);
	cr_assert_eq(C.nservers, 0);
	cr_assert_str_eq(C.source, "zoo.cfg");
	cr_assert(C.fourlw_mask & bit(FLW_SRVR), "srvr is on by default (zkServer.sh uses it)");
	cr_assert(C.fourlw_mask & bit(FLW_RUOK));
	cr_assert(!(C.fourlw_mask & bit(FLW_DUMP)));
	cr_assert(!(C.fourlw_mask & bit(FLW_WCHP)));
	cr_assert_eq(parse(""), 0);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0);
	cr_assert_eq(C.min_session_timeout_ms, 4000);
	cr_assert_eq(C.max_session_timeout_ms, 40000);
	cr_assert_str_eq(C.data_log_dir, "./data", "dataLogDir defaults to dataDir");
}

Test(config, keys_parsed, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("tickTime=500\n"
			   "dataDir=/var/lib/zk\n"
			   "dataLogDir=/var/log/zk\n"
			   "clientPort=2281\n"
			   "clientPortAddress=127.0.0.1\n"
			   "maxClientCnxns=0\n"
			   "jute.maxbuffer=2048\n"
			   "globalOutstandingLimit=7\n"
			   "maxCnxns=99\n"),
		     0, "%s", err);
	cr_assert_eq(C.tick_ms, 500);
	cr_assert_str_eq(C.data_dir, "/var/lib/zk");
	cr_assert_str_eq(C.data_log_dir, "/var/log/zk");
	cr_assert_eq(C.client_port, 2281);
	cr_assert_str_eq(C.client_addr, "127.0.0.1");
	cr_assert_eq(C.max_client_cnxns, 0);
	cr_assert_eq(C.jute_maxbuffer, 2048);
	cr_assert_eq(C.global_outstanding_limit, 7);
	cr_assert_eq(C.max_cnxns, 99);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0);
	cr_assert_eq(C.min_session_timeout_ms, 1000, "2 ticks");
	cr_assert_eq(C.max_session_timeout_ms, 10000, "20 ticks");
	cr_assert_str_eq(C.data_log_dir, "/var/log/zk");
}

Test(config, later_lines_win, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("clientPort=1\nclientPort=2\n"), 0);
	cr_assert_eq(C.client_port, 2);
}

Test(config, fourlw_whitelist, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("4lw.commands.whitelist=*\n"), 0, "%s", err);
	cr_assert_eq(C.fourlw_mask, (1u << FLW_COUNT) - 1);
	cr_assert_eq(parse("4lw.commands.whitelist=stat, ruok,conf\n"), 0, "%s", err);
	cr_assert_eq(C.fourlw_mask, bit(FLW_STAT) | bit(FLW_RUOK) | bit(FLW_CONF));
	cr_assert_eq(parse("4lw.commands.whitelist = wchp\n"), 0, "%s", err);
	cr_assert_eq(C.fourlw_mask, bit(FLW_WCHP));
	cr_assert_eq(config_fourlw_mask(""), 0);
	cr_assert_eq(config_fourlw_mask("ruok, nope, srvrx, mntr"), bit(FLW_RUOK) | bit(FLW_MNTR));
	cr_assert_eq(config_fourlw_mask(" , hash ,"), bit(FLW_HASH));
}

Test(config, zookeeper_prefixed_keys, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("zookeeper.4lw.commands.whitelist=dump\n"
			   "zookeeper.jute.maxbuffer=4096\n"
			   "zookeeper.globalOutstandingLimit=5\n"), 0, "%s", err);
	cr_assert_eq(C.fourlw_mask, bit(FLW_DUMP));
	cr_assert_eq(C.jute_maxbuffer, 4096);
	cr_assert_eq(C.global_outstanding_limit, 5);
}

Test(config, properties_syntax, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("# a comment\n"
			   "! another comment\n"
			   "\n"
			   "   \t \n"
			   "   # indented comment\n"
			   "tickTime: 3000\n"
			   "clientPort 2999\n"
			   "  maxClientCnxns   =   17   \n"
			   "dataDir\t/tmp/zk\r\n"
			   "globalOutstandingLimit:9"),
		     0, "%s", err);
	cr_assert_eq(C.tick_ms, 3000);
	cr_assert_eq(C.client_port, 2999);
	cr_assert_eq(C.max_client_cnxns, 17);
	cr_assert_str_eq(C.data_dir, "/tmp/zk", "trailing CR trimmed");
	cr_assert_eq(C.global_outstanding_limit, 9, "last line without a newline");
}

Test(config, unknown_key_names_line_and_key, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("tickTime=2000\n# c\nfrobnicate=1\nclientPort=1\n"), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:3:", 10) == 0, "message: %s", err);
	cr_assert_not_null(strstr(err, "frobnicate"), "message: %s", err);
	cr_assert_eq(C.client_port, 2181, "parsing stops at the error");
}

Test(config, bad_values_name_the_line, .init = setup, .timeout = 10)
{
	static const struct { const char *text; const char *line; const char *key; } bad[] = {
		{ "tickTime=abc\n", "zoo.cfg:1:", "tickTime" },
		{ "\nclientPort=70000\n", "zoo.cfg:2:", "clientPort" },
		{ "clientPort=-1\n", "zoo.cfg:1:", "clientPort" },
		{ "a.b=1\n", "zoo.cfg:1:", "a.b" },
		{ "\n\ntickTime=0\n", "zoo.cfg:3:", "tickTime" },
		{ "tickTime=12x\n", "zoo.cfg:1:", "tickTime" },
		{ "tickTime=\n", "zoo.cfg:1:", "tickTime" },
		{ "tickTime=99999999999999999999\n", "zoo.cfg:1:", "tickTime" },
		{ "jute.maxbuffer=1\n", "zoo.cfg:1:", "jute.maxbuffer" },
		{ "clientPort\n", "zoo.cfg:1:", "clientPort" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setup();
		cr_assert_eq(parse(bad[i].text), -EINVAL, "accepted: %s", bad[i].text);
		cr_assert(strncmp(err, bad[i].line, strlen(bad[i].line)) == 0, "case %zu: %s", i, err);
		cr_assert_not_null(strstr(err, bad[i].key), "case %zu: %s", i, err);
	}
	/* The bounds themselves are accepted. */
	setup();
	cr_assert_eq(parse("clientPort=0\nclientPort=65535\ntickTime=1\n"), 0, "%s", err);
}

Test(config, zookeeper_known_keys_are_accepted, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("autopurge.purgeInterval=1\n"
			   "autopurge.snapRetainCount=3\n"
			   "initLimit=5\n"
			   "syncLimit=2\n"
			   "electionPort=3888\n"
			   "admin.enableServer=false\n"
			   "snapCount=1000\n"
			   "ssl.keyStore.location=/x\n"
			   "metricsProvider.className=org.Foo\n"
			   "standaloneEnabled=true\n"),
		     0, "%s", err);
	cr_assert_eq(C.nservers, 0);
}

Test(config, line_limits, .init = setup, .timeout = 10)
{
	static char text[5000];
	memset(text, 'x', sizeof text - 2);
	memcpy(text, "dataDir=", 8);
	text[sizeof text - 2] = '\n';
	text[sizeof text - 1] = 0;
	cr_assert_eq(parse(text), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:1:", 10) == 0, "%s", err);
	/* A dataDir longer than the field. */
	setup();
	memset(text, 'x', 2000);
	memcpy(text, "\ndataDir=", 9);
	text[2000] = 0;
	cr_assert_eq(parse(text), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:2:", 10) == 0, "%s", err);
	/* A NUL byte inside a line. */
	setup();
	static const char nul[] = "tickTime=1\0\n";
	cr_assert_eq(config_parse(&C, nul, sizeof nul - 1, err, sizeof err), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:1:", 10) == 0, "%s", err);
}

Test(config, finish_derives_and_checks, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("tickTime=100\nminSessionTimeout=300\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
	cr_assert_eq(C.min_session_timeout_ms, 300);
	cr_assert_eq(C.max_session_timeout_ms, 2000);

	setup();
	cr_assert_eq(parse("minSessionTimeout=5000\nmaxSessionTimeout=4000\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "minSessionTimeout"), "%s", err);

	setup(); /* min above the derived max (20 ticks) */
	cr_assert_eq(parse("tickTime=100\nminSessionTimeout=2001\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL);

	setup();
	cr_assert_eq(parse("server.1=localhost:2888:3888\n"), 0, "%s", err);
	cr_assert_eq(C.nservers, 1);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "one server line is still standalone");

	setup(); /* an ensemble needs initLimit and syncLimit, as in Apache */
	cr_assert_eq(parse("server.1=a:2888:3888\nserver.2=b:2888:3888\n"), 0, "%s", err);
	cr_assert_eq(C.nservers, 2);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:", 8) == 0, "%s", err);
	cr_assert_not_null(strstr(err, "initLimit"), "%s", err);
	cr_assert_eq(parse("initLimit=10\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "syncLimit"), "%s", err);
	cr_assert_eq(parse("syncLimit=5\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
	cr_assert(config_quorum_mode(&C));

	setup();
	cr_assert_eq(parse("dataDir=\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL, "dataDir is required");
}

/* ---- the ensemble: server.N lines, myid, initLimit/syncLimit, peerType ---- */

static const char *const ENSEMBLE =
	"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nclientPort=2181\n"
	"server.1=127.0.0.1:2888:3888\n"
	"server.2=127.0.0.2:2889:3889:participant;127.0.0.2:2182\n"
	"server.3=[::1]:2890:3890:observer;2183\n"
	"server.5 = zk5.example:2888:3888: Participant\n";

Test(config, servers_parsed, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse(ENSEMBLE), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
	cr_assert_eq(C.nservers, 4);
	cr_assert(config_quorum_mode(&C));
	cr_assert_eq(C.init_limit, 10);
	cr_assert_eq(C.sync_limit, 5);
	cr_assert_eq(C.cnx_timeout_ms, 5000, "Apache's default cnxTimeout");
	const struct zk_server *s1 = config_server(&C, 1), *s2 = config_server(&C, 2);
	const struct zk_server *s3 = config_server(&C, 3), *s5 = config_server(&C, 5);
	cr_assert(s1 && s2 && s3 && s5);
	cr_assert_null(config_server(&C, 4));
	cr_assert_str_eq(s1->host, "127.0.0.1");
	cr_assert_eq(s1->quorum_port, 2888);
	cr_assert_eq(s1->election_port, 3888);
	cr_assert(!s1->observer);
	cr_assert_str_eq(s1->client_host, "");
	cr_assert_eq(s1->client_port, 0);
	cr_assert_str_eq(s2->client_host, "127.0.0.2");
	cr_assert_eq(s2->client_port, 2182);
	cr_assert_str_eq(s3->host, "::1", "brackets dropped");
	cr_assert(s3->observer);
	cr_assert_str_eq(s3->client_host, "", "a client port alone");
	cr_assert_eq(s3->client_port, 2183);
	cr_assert_str_eq(s5->host, "zk5.example");
	cr_assert(!s5->observer, "the type is trimmed and case-blind");
	cr_assert_eq(C.servers[3].sid, 5, "file order");
}

Test(config, server_line_errors_name_line_and_cause, .init = setup, .timeout = 10)
{
	static const struct { const char *line; const char *what; } bad[] = {
		{ "server.1=h:2888\n", "server.1:" },
		{ "server.1=h:2888:3888:observer:x\n", "server.1:" },
		{ "server.1=h:2888:99999\n", "election port" },
		{ "server.1=h:0:3888\n", "quorum port" },
		{ "server.1=h:x:3888\n", "quorum port" },
		{ "server.1=h:2888:2888\n", "must be different" },
		{ "server.1=h:2888:3888:leader\n", "peer type" },
		{ "server.1=h:2888:3888;a:b:c\n", "client address" },
		{ "server.1=h:2888:3888;70000\n", "client port" },
		{ "server.1=h:2888:3888;1;2\n", "';'" },
		{ "server.1=h:2888:3888|g:2888:3888\n", "multiAddress" },
		{ "server.1=[::1:2888:3888\n", "server.1:" },
		{ "server.1=h::3888\n", "server.1:" },
		{ "server.x=h:2888:3888\n", "not a number" },
		{ "server.0=h:2888:3888\n", "out of range" },
		{ "server.256=h:2888:3888\n", "out of range" },
		{ "server.-1=h:2888:3888\n", "out of range" },
		{ "peerType=learner\n", "peerType" },
		{ "electionAlg=0\n", "only 3" },
		{ "initLimit=-1\n", "initLimit" },
		{ "cnxTimeout=0\n", "cnxTimeout" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setup();
		char text[256];
		snprintf(text, sizeof text, "# first\n%s", bad[i].line);
		cr_assert_eq(parse(text), -EINVAL, "accepted: %s", bad[i].line);
		cr_assert(strncmp(err, "zoo.cfg:2:", 10) == 0, "case %zu: %s", i, err);
		cr_assert_not_null(strstr(err, bad[i].what), "case %zu: %s", i, err);
	}
}

Test(config, duplicate_sid_address_and_too_many, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("server.1=a:1:2\nserver.01=b:1:2\n"), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:2:", 10) == 0 && strstr(err, "twice"), "%s", err);
	setup(); /* server 2's election port is server 1's quorum port on the same host */
	cr_assert_eq(parse("server.1=h:2888:3888\nserver.2=h:2889:2888\n"), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:2:", 10) == 0 && strstr(err, "h:2888"), "%s", err);
	setup(); /* a client address used as another's election address */
	cr_assert_eq(parse("server.1=h:2888:3888\nserver.2=g:2888:3888;h:3888\n"), -EINVAL);
	cr_assert_not_null(strstr(err, "server.1"), "%s", err);
	setup(); /* the same ports on other hosts, or on the wildcard client address, are fine */
	cr_assert_eq(parse("server.1=a:2888:3888;2181\nserver.2=b:2888:3888;2181\n"
			   "server.3=c:2888:3888;0.0.0.0:2181\n"), 0, "%s", err);
	setup();
	char text[4096] = "";
	for (int i = 1; i <= ZK_SERVERS_MAX + 1; i++) {
		char line[64];
		snprintf(line, sizeof line, "server.%d=127.0.0.1:%d:%d\n", i, 10000 + i, 20000 + i);
		strcat(text, line);
	}
	cr_assert_eq(parse(text), -EINVAL);
	cr_assert_not_null(strstr(err, "too many servers"), "%s", err);
	cr_assert_eq(C.nservers, ZK_SERVERS_MAX);
}

Test(config, ensemble_keys, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("cnxTimeout=700\nzookeeper.electionAlg=3\npeerType=OBSERVER\n"
			   "quorumListenOnAllIPs=true\n"), 0, "%s", err);
	cr_assert_eq(C.cnx_timeout_ms, 700);
	cr_assert(C.peer_type_observer);
	cr_assert(C.quorum_listen_all);
	cr_assert_eq(parse("zookeeper.cnxTimeout=900\npeerType=participant\n"), 0, "%s", err);
	cr_assert_eq(C.cnx_timeout_ms, 900);
	cr_assert(!C.peer_type_observer);
	cr_assert_eq(C.myid, 0);
}

Test(config, observers_need_a_quorum, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("initLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2:observer\n"), 0,
		     "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "observers"), "%s", err);
	setup();
	cr_assert_eq(parse("server.1=a:1:2:observer\nserver.2=b:1:2:observer\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL);
	setup(); /* a lone participant line: standalone, limits not needed */
	cr_assert_eq(parse("server.7=a:1:2\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
	cr_assert(!config_quorum_mode(&C));
	cr_assert_eq(config_set_myid(&C, NULL, 0, err, sizeof err), 0, "standalone needs no myid");
	cr_assert_eq(config_set_myid(&C, "9\n", 2, err, sizeof err), 0, "standalone: any id");
	cr_assert_eq(C.myid, 9);
}

static void ensemble(void)
{
	setup();
	cr_assert_eq(parse(ENSEMBLE), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
}

static int myid(const char *text)
{
	return config_set_myid(&C, text, strlen(text), err, sizeof err);
}

Test(config, myid_parsed_as_apache, .init = setup, .timeout = 10)
{
	static const struct { const char *text; int64_t id; } good[] = {
		{ "1", 1 }, { "1\n", 1 }, { "1\r\n", 1 }, { "+5\nrest ignored", 5 }, { "5\rx", 5 },
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ensemble();
		cr_assert_eq(myid(good[i].text), 0, "case %zu: %s", i, err);
		cr_assert_eq(C.myid, good[i].id, "case %zu", i);
	}
	static const char *const bad[] = { "", "\n1", " 1", "1 ", "x", "1x", "0x1",
					   "99999999999999999999", "-" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ensemble();
		cr_assert_eq(myid(bad[i]), -EINVAL, "accepted %zu", i);
		cr_assert_not_null(strstr(err, "not a number"), "case %zu: %s", i, err);
		cr_assert_eq(C.myid, 0);
	}
	ensemble();
	cr_assert_eq(myid("4\n"), -EINVAL);
	cr_assert_not_null(strstr(err, "not in the peer list"), "%s", err);
	ensemble();
	cr_assert_eq(config_set_myid(&C, NULL, 0, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "myid file is missing"), "%s", err);
}

Test(config, myid_adopts_the_line, .init = setup, .timeout = 10)
{
	ensemble(); /* no client part: clientPort from the file stays */
	cr_assert_eq(myid("1\n"), 0, "%s", err);
	cr_assert_eq(C.client_port, 2181);
	cr_assert(!C.peer_type_observer);
	ensemble(); /* a client part that disagrees with clientPort=2181 */
	cr_assert_eq(myid("2\n"), -EINVAL);
	cr_assert_not_null(strstr(err, "client address"), "%s", err);
	setup(); /* without clientPort in the file the line's client address is taken */
	cr_assert_eq(parse("initLimit=1\nsyncLimit=1\nserver.1=a:1:2;127.0.0.9:2299\n"
			   "server.2=b:1:2;3000\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
	cr_assert_eq(myid("1"), 0, "%s", err);
	cr_assert_eq(C.client_port, 2299);
	cr_assert_str_eq(C.client_addr, "127.0.0.9");
	setup(); /* a port alone is the wildcard address; a matching clientPort is fine */
	cr_assert_eq(parse("clientPort=3000\ninitLimit=1\nsyncLimit=1\nserver.1=a:1:2\n"
			   "server.2=b:1:2;3000\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
	cr_assert_eq(myid("2"), 0, "%s", err);
	cr_assert_eq(C.client_port, 3000);
	cr_assert_str_eq(C.client_addr, "0.0.0.0");
	ensemble(); /* peerType disagrees with the line: the line wins (Apache warns) */
	cr_assert_eq(myid("3"), -EINVAL, "clientPort 2181 vs 2183");
	ensemble();
	C.client_port_given = false;
	cr_assert_eq(myid("3"), 0, "%s", err);
	cr_assert(C.peer_type_observer);
	cr_assert_eq(C.client_port, 2183);
	ensemble();
	C.peer_type_observer = true;
	cr_assert_eq(myid("1"), 0, "%s", err);
	cr_assert(!C.peer_type_observer);
}

Test(config, extended_types_limit_the_id, .init = setup, .timeout = 10)
{
	cr_assert_eq(parse("initLimit=1\nsyncLimit=1\nextendedTypesEnabled=true\n"
			   "server.255=a:1:2\nserver.254=b:1:2\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), 0, "%s", err);
	cr_assert_eq(myid("255"), -EINVAL);
	cr_assert_not_null(strstr(err, "254"), "%s", err);
	cr_assert_eq(myid("254"), 0, "%s", err);
}
