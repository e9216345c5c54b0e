/* Proves zoo.cfg parsing: defaults, each implemented key, Java Properties syntax, errors
 * that name "zoo.cfg:LINE:" and the key, ZooKeeper-known keys accepted, and the derived
 * session bounds and cross-key checks of config_finish. */
#include <criterion/criterion.h>

#include <errno.h>
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

	setup();
	cr_assert_eq(parse("server.1=a:2888:3888\nserver.2=b:2888:3888\n"), 0, "%s", err);
	cr_assert_eq(C.nservers, 2);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL);
	cr_assert(strncmp(err, "zoo.cfg:", 8) == 0, "%s", err);

	setup();
	cr_assert_eq(parse("dataDir=\n"), 0, "%s", err);
	cr_assert_eq(config_finish(&C, err, sizeof err), -EINVAL, "dataDir is required");
}
