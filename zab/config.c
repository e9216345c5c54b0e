/* zoo.cfg parser; see config.h. Syntax is Java's Properties as ZooKeeper reads it:
 * "key=value", "key: value" or "key value"; '#' and '!' start comments; both sides trimmed. */
#include "zab/config.h"
#include "net/log.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const fourlw_names[FLW_COUNT] = {
	"ruok", "srvr", "stat", "mntr", "conf", "envi", "cons", "dump", "wchs", "wchc", "wchp",
	"dirs", "isro", "srst", "crst", "gtmk", "stmk", "hash",
};

enum opt_type { OPT_INT, OPT_STR, OPT_BOOL, OPT_4LW, OPT_IGNORED };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	long min, max;
};

#define F(field) offsetof(struct zk_config, field)
static const struct opt options[] = {
	{ "tickTime", OPT_INT, F(tick_ms), 1, 3600000 },
	{ "dataDir", OPT_STR, F(data_dir), 0, ZK_CFG_PATH_MAX },
	{ "dataLogDir", OPT_STR, F(data_log_dir), 0, ZK_CFG_PATH_MAX },
	{ "clientPort", OPT_INT, F(client_port), 0, 65535 },
	{ "clientPortAddress", OPT_STR, F(client_addr), 0, 256 },
	{ "maxClientCnxns", OPT_INT, F(max_client_cnxns), 0, 1000000 },
	{ "minSessionTimeout", OPT_INT, F(min_session_timeout_ms), -1, 1000000000 },
	{ "maxSessionTimeout", OPT_INT, F(max_session_timeout_ms), -1, 1000000000 },
	{ "jute.maxbuffer", OPT_INT, F(jute_maxbuffer), 1024, 256 << 20 },
	{ "globalOutstandingLimit", OPT_INT, F(global_outstanding_limit), 1, 1000000 },
	{ "maxCnxns", OPT_INT, F(max_cnxns), 0, 1000000 },
	{ "clientPortListenBacklog", OPT_INT, F(listen_backlog), -1, 65535 },
	{ "nio.sessionlessCnxnTimeout", OPT_INT, F(sessionless_timeout_ms), 100, 3600000 },
	{ "forceSync", OPT_BOOL, F(force_sync), 0, 0 },
	{ "snapCount", OPT_INT, F(snap_count), 2, 1000000000 },
	{ "preAllocSize", OPT_INT, F(pre_alloc_kb), 4, 4 << 20 },
	{ "autopurge.snapRetainCount", OPT_INT, F(autopurge_snap_retain), 3, 1000000 },
	{ "autopurge.purgeInterval", OPT_INT, F(autopurge_interval_h), 0, 1000000 },
	{ "4lw.commands.whitelist", OPT_4LW, F(fourlw_mask), 0, 0 },
	{ "skipACL", OPT_BOOL, F(skip_acl), 0, 0 },
	{ "DigestAuthenticationProvider.superDigest", OPT_STR, F(super_digest), 0, 256 },
	{ "extendedTypesEnabled", OPT_BOOL, F(extended_types), 0, 0 },
	{ "znode.container.checkIntervalMs", OPT_INT, F(container_check_ms), 1, 1000000000 },
	{ "znode.container.maxPerMinute", OPT_INT, F(container_max_per_minute), 1, 1000000000 },
	{ "znode.container.maxNeverUsedIntervalMs", OPT_INT, F(container_max_never_used_ms), 0, 1000000000 },
	{ "enforceQuota", OPT_BOOL, F(enforce_quota), 0, 0 },
	/* Keys with no effect on a standalone zkd: accepted quietly. */
	{ "initLimit", OPT_IGNORED, 0, 0, 0 },
	{ "syncLimit", OPT_IGNORED, 0, 0, 0 },
	{ "admin.enableServer", OPT_IGNORED, 0, 0, 0 },
	{ "standaloneEnabled", OPT_IGNORED, 0, 0, 0 },
};
#undef F

/* Keys Apache ZooKeeper 3.8 knows (zookeeperAdmin.md) that zkd does not implement yet. */
static const char *const zk_known[] = {
	"secureClientPort", "secureClientPortAddress", "observerMasterPort", "cnxTimeout",
	"electionAlg", "electionPortBindRetry", "quorumListenOnAllIPs", "peerType", "syncEnabled",
	"reconfigEnabled", "dynamicConfigFile", "snapSizeLimitInKb", "txnLogSizeLimitInKb",
	"commitLogCount", "maxResponseCacheSize", "maxGetChildrenResponseCacheSize",
	"localSessionsEnabled", "localSessionsUpgradingEnabled", "connectToLearnerMasterLimit",
	"sslQuorum", "sslQuorumReloadCertFiles", "client.portUnification", "portUnification",
	"serverCnxnFactory", "emulate353TTLNodes",
	"readonlymode.enabled", "fsync.warningthresholdms", "digest.enabled",
	"snapshot.trust.empty", "multiAddress.enabled", "multiAddress.reachabilityCheckEnabled",
	"multiAddress.reachabilityCheckTimeoutMs", "flushDelay", "maxWriteQueuePollTime",
	"maxBatchSize", "jute.maxbuffer.extrasize", "closeSessionTxn.enabled",
	"learner.asyncSending", "learner.closeSocketAsync", "leader.closeSocketAsync",
	"leader.nodelay", "leader.ackLoggingFrequency", "forward_learner_requests_to_commit_processor_disabled",
	"minClientCnxns", "syncLimit", "electionPort", "quorum.cnxn.threads.size",
	"quorumCnxnThreadsSize", "snapshot.compression.method", "serializeLastProcessedZxid.enabled",
	"metricsProvider.className", "metricsProvider.httpPort", "metricsProvider.httpHost",
	"metricsProvider.exportJvmInfo", "audit.enable", "kerberos.removeHostFromPrincipal",
	"kerberos.removeRealmFromPrincipal", "X509AuthenticationProvider.superUser",
	"authProvider", "superUser", "watchManagerName", "watcherCleanThreshold",
	"watcherCleanIntervalInSeconds", "watcherCleanThreadsNum", "maxInProcessingDeadWatchers",
	"fips-mode", "netty.server.outboundBuffer.highWaterMark", "request.throttler",
	"throttledOpWaitTime", "largeRequestMaxBytes", "largeRequestThreshold",
	"outstandingHandshake.limit", "connection_throttle_tokens", "connection_throttle_fill_time",
	"connection_throttle_fill_count", "connection_throttle_freeze_time",
	"connection_throttle_drop_increase", "connection_throttle_drop_decrease",
	"connection_throttle_decrease_ratio", "connection_throttle_weight_enabled",
	"connection_throttle_global_session_weight", "connection_throttle_local_session_weight",
	"connection_throttle_renew_session_weight", "sessionRequireClientSASLAuth",
	"enforce.auth.enabled", "enforce.auth.schemes", "allowSaslFailedClients",
	"admin.serverAddress", "admin.serverPort", "admin.idleTimeout", "admin.commandURL",
	"admin.portUnification", "admin.forceHttps", "admin.needClientAuth",
	"initialize", "nio.numSelectorThreads", "nio.numWorkerThreads", "nio.shutdownTimeout",
	"commitProcessor.numWorkerThreads",
	"commitProcessor.maxReadBatchSize", "commitProcessor.maxCommitBatchSize",
	"snapshot.trust.empty", "clientCnxnSocket", "client.secure", "zookeeper.sasl.client",
	NULL,
};
/* Families of ZooKeeper keys, by prefix. */
static const char *const zk_known_prefix[] = {
	"server.", "group.", "weight.", "ssl.", "quorum.auth.", "authProvider.",
	"metricsProvider.", "requestThrottler.", "netty.", "admin.", "learner.", "leader.",
	"follower.", "observer.", "jute.", "digest.", "audit.", "sasl.", NULL,
};

void config_defaults(struct zk_config *c)
{
	memset(c, 0, sizeof *c);
	c->tick_ms = 2000;
	strcpy(c->data_dir, "./data");
	c->client_port = 2181;
	c->max_client_cnxns = 60;
	c->min_session_timeout_ms = -1;
	c->max_session_timeout_ms = -1;
	c->jute_maxbuffer = 0xfffff;
	c->global_outstanding_limit = 1000;
	c->listen_backlog = -1;
	c->sessionless_timeout_ms = 10000;
	c->force_sync = true;
	c->snap_count = 100000;
	c->pre_alloc_kb = 65536;
	c->autopurge_snap_retain = 3;
	c->fourlw_mask = config_fourlw_mask("ruok, srvr, mntr, isro");
	c->container_check_ms = 60000;
	c->container_max_per_minute = 10000;
	c->source = "zoo.cfg";
}

uint32_t config_fourlw_mask(const char *v)
{
	uint32_t mask = 0;
	while (*v) {
		while (*v == ',' || isspace((unsigned char)*v))
			v++;
		size_t n = strcspn(v, ", \t");
		if (n == 1 && *v == '*')
			return (1u << FLW_COUNT) - 1;
		for (int i = 0; i < FLW_COUNT; i++)
			if (n == 4 && strncmp(v, fourlw_names[i], 4) == 0)
				mask |= 1u << i;
		v += n;
	}
	return mask;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static bool zk_knows(const char *key)
{
	for (int i = 0; zk_known[i]; i++)
		if (strcmp(key, zk_known[i]) == 0)
			return true;
	for (int i = 0; zk_known_prefix[i]; i++)
		if (strncmp(key, zk_known_prefix[i], strlen(zk_known_prefix[i])) == 0)
			return true;
	return false;
}

static int set_opt(struct zk_config *c, const struct opt *o, const char *val, char *msg, size_t mlen)
{
	char *base = (char *)c;
	char *end;
	switch (o->type) {
	case OPT_INT: {
		errno = 0;
		long v = strtol(val, &end, 10);
		if (errno || end == val || *end) {
			snprintf(msg, mlen, "%s: '%s' is not an integer", o->name, val);
			return -EINVAL;
		}
		if (v < o->min || v > o->max) {
			snprintf(msg, mlen, "%s: %ld is out of range [%ld, %ld]", o->name, v, o->min, o->max);
			return -EINVAL;
		}
		*(int *)(base + o->off) = (int)v;
		return 0;
	}
	case OPT_STR:
		if (strlen(val) >= (size_t)o->max) {
			snprintf(msg, mlen, "%s: value too long", o->name);
			return -EINVAL;
		}
		strcpy(base + o->off, val);
		return 0;
	case OPT_BOOL:
		if (!strcasecmp(val, "yes") || !strcasecmp(val, "true")) {
			*(bool *)(base + o->off) = true;
		} else if (!strcasecmp(val, "no") || !strcasecmp(val, "false")) {
			*(bool *)(base + o->off) = false;
		} else {
			snprintf(msg, mlen, "%s: '%s' is not yes/no/true/false", o->name, val);
			return -EINVAL;
		}
		return 0;
	case OPT_4LW:
		*(uint32_t *)(base + o->off) = config_fourlw_mask(val);
		return 0;
	case OPT_IGNORED:
		return 0;
	}
	return -EINVAL;
}

static int parse_line(struct zk_config *c, char *line, char *msg, size_t mlen)
{
	char *s = trim(line);
	if (!*s || *s == '#' || *s == '!')
		return 0;
	size_t k = strcspn(s, "=: \t");
	if (s[k] == 0) {
		snprintf(msg, mlen, "'%s' has no value (expected key=value)", s);
		return -EINVAL;
	}
	char *val = s + k;
	while (isspace((unsigned char)*val))
		val++;
	if (*val == '=' || *val == ':')
		val++;
	s[k] = 0;
	val = trim(val);
	const char *key = s;
	if (strncmp(key, "zookeeper.", 10) == 0)
		key += 10;
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (strcmp(key, options[i].name) == 0)
			return set_opt(c, &options[i], val, msg, mlen);
	if (strncmp(key, "server.", 7) == 0) {
		c->nservers++;
		return 0;
	}
	if (zk_knows(key)) {
		LOG_WARN("%s: '%s' is a ZooKeeper setting zkd does not implement; ignored", c->source, key);
		return 0;
	}
	snprintf(msg, mlen, "unknown key '%s'", key);
	return -EINVAL;
}

int config_parse(struct zk_config *c, const char *text, size_t len, char *err, size_t errlen)
{
	size_t lineno = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
		lineno++;
		char line[4096];
		if (n >= sizeof line) {
			snprintf(err, errlen, "%s:%zu: line too long", c->source, lineno);
			return -EINVAL;
		}
		memcpy(line, text + i, n);
		line[n] = 0;
		if (memchr(line, 0, n)) {
			snprintf(err, errlen, "%s:%zu: NUL byte in line", c->source, lineno);
			return -EINVAL;
		}
		char msg[512];
		if (parse_line(c, line, msg, sizeof msg) < 0) {
			snprintf(err, errlen, "%s:%zu: %s", c->source, lineno, msg);
			return -EINVAL;
		}
		i += n + 1;
	}
	return 0;
}

int config_finish(struct zk_config *c, char *err, size_t errlen)
{
	if (!c->data_dir[0]) {
		snprintf(err, errlen, "%s: dataDir is not set", c->source);
		return -EINVAL;
	}
	if (!c->data_log_dir[0])
		strcpy(c->data_log_dir, c->data_dir);
	if (c->min_session_timeout_ms < 0)
		c->min_session_timeout_ms = 2 * c->tick_ms;
	if (c->max_session_timeout_ms < 0)
		c->max_session_timeout_ms = 20 * c->tick_ms;
	if (c->min_session_timeout_ms > c->max_session_timeout_ms) {
		snprintf(err, errlen, "%s: minSessionTimeout (%d) must not be larger than maxSessionTimeout (%d)",
			 c->source, c->min_session_timeout_ms, c->max_session_timeout_ms);
		return -EINVAL;
	}
	if (c->nservers > 1) {
		snprintf(err, errlen, "%s: an ensemble (%d server.N lines) is not supported yet; "
			 "zkd runs standalone only", c->source, c->nservers);
		return -EINVAL;
	}
	return 0;
}
