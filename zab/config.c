/* zoo.cfg parser; see config.h. Syntax is Java's Properties as ZooKeeper reads it:
 * "key=value", "key: value" or "key value"; '#' and '!' start comments; both sides trimmed. */
#include "zab/config.h"
#include "net/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const fourlw_names[FLW_COUNT] = {
	"ruok", "srvr", "stat", "mntr", "conf", "envi", "cons", "dump", "wchs", "wchc", "wchp",
	"dirs", "isro", "srst", "crst", "gtmk", "stmk", "hash",
};

enum opt_type { OPT_INT, OPT_STR, OPT_BOOL, OPT_4LW, OPT_IGNORED, OPT_PEERTYPE, OPT_ELECTION_ALG };

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
	{ "commitLogCount", OPT_INT, F(commit_log_count), 1, 10000000 },
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
	/* The ensemble. initLimit/syncLimit 0 means "not set" (refused in quorum mode). */
	{ "initLimit", OPT_INT, F(init_limit), 0, 1000000 },
	{ "syncLimit", OPT_INT, F(sync_limit), 0, 1000000 },
	{ "cnxTimeout", OPT_INT, F(cnx_timeout_ms), 1, 3600000 },
	{ "quorumListenOnAllIPs", OPT_BOOL, F(quorum_listen_all), 0, 0 },
	{ "peerType", OPT_PEERTYPE, F(peer_type_observer), 0, 0 },
	{ "electionAlg", OPT_ELECTION_ALG, 0, 0, 0 },
	/* Keys with no effect on zkd: accepted quietly. */
	{ "admin.enableServer", OPT_IGNORED, 0, 0, 0 },
	{ "standaloneEnabled", OPT_IGNORED, 0, 0, 0 },
};
#undef F

/* Keys Apache ZooKeeper 3.8 knows (zookeeperAdmin.md) that zkd does not implement yet. */
static const char *const zk_known[] = {
	"secureClientPort", "secureClientPortAddress", "observerMasterPort",
	"electionPortBindRetry", "syncEnabled",
	"reconfigEnabled", "dynamicConfigFile", "snapSizeLimitInKb", "txnLogSizeLimitInKb",
	"maxResponseCacheSize", "maxGetChildrenResponseCacheSize",
	"localSessionsEnabled", "localSessionsUpgradingEnabled", "connectToLearnerMasterLimit",
	"sslQuorum", "sslQuorumReloadCertFiles", "client.portUnification", "portUnification",
	"serverCnxnFactory", "emulate353TTLNodes",
	"readonlymode.enabled", "fsync.warningthresholdms", "digest.enabled",
	"snapshot.trust.empty", "multiAddress.enabled", "multiAddress.reachabilityCheckEnabled",
	"multiAddress.reachabilityCheckTimeoutMs", "flushDelay", "maxWriteQueuePollTime",
	"maxBatchSize", "jute.maxbuffer.extrasize", "closeSessionTxn.enabled",
	"learner.asyncSending", "learner.closeSocketAsync", "leader.closeSocketAsync",
	"leader.nodelay", "leader.ackLoggingFrequency", "forward_learner_requests_to_commit_processor_disabled",
	"minClientCnxns", "electionPort", "quorum.cnxn.threads.size",
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
	c->commit_log_count = 20000; /* Apache: 500, and it reads older txns from its log files */
	c->pre_alloc_kb = 65536;
	c->autopurge_snap_retain = 3;
	c->fourlw_mask = config_fourlw_mask("ruok, srvr, mntr, isro");
	c->container_check_ms = 60000;
	c->container_max_per_minute = 10000;
	c->cnx_timeout_ms = 5000;
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
	case OPT_PEERTYPE:
		if (!strcasecmp(val, "observer") || !strcasecmp(val, "participant")) {
			*(bool *)(base + o->off) = !strcasecmp(val, "observer");
			return 0;
		}
		snprintf(msg, mlen, "%s: unrecognised peer type '%s' (participant or observer)", o->name, val);
		return -EINVAL;
	case OPT_ELECTION_ALG:
		if (strcmp(val, "3") == 0)
			return 0;
		snprintf(msg, mlen, "%s: '%s' is not supported; only 3 (fast leader election) is", o->name, val);
		return -EINVAL;
	}
	return -EINVAL;
}

/* ---- server.N lines (QuorumPeer.QuorumServer's syntax) ---- */

/* A decimal number in [min, max] with an optional sign, nothing around it (Java's parseLong). */
static bool parse_num(const char *s, long long min, long long max, long long *out)
{
	if (!*s || isspace((unsigned char)*s))
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* ConfigUtils.getHostAndPort: "[v6host]:a:b" or "host:a:b", split at ':' into at most max
 * parts (the host without brackets first). Returns the count, or -1 for a bad form. */
static int split_host_port(char *s, char **parts, int max)
{
	int n = 0;
	if (*s == '[') {
		char *close = strchr(s, ']');
		if (!close || close == s + 1 || close[1] != ':')
			return -1;
		*close = 0;
		parts[n++] = s + 1;
		s = close + 2;
	} else {
		char *colon = strchr(s, ':');
		if (!colon)
			return 1 <= max ? (parts[0] = s, 1) : -1;
		*colon = 0;
		parts[n++] = s;
		s = colon + 1;
	}
	for (;;) {
		if (n == max)
			return -1;
		parts[n++] = s;
		char *colon = strchr(s, ':');
		if (!colon)
			break;
		*colon = 0;
		s = colon + 1;
	}
	for (int i = 0; i < n; i++)
		if (!*parts[i])
			return -1;
	return n;
}

static int parse_port(const char *s, const char *what, int *port, char *msg, size_t mlen)
{
	long long v;
	if (!parse_num(s, 1, 65535, &v)) {
		snprintf(msg, mlen, "bad %s port '%s' (1..65535)", what, s);
		return -EINVAL;
	}
	*port = (int)v;
	return 0;
}

static int copy_host(char *dst, const char *host, char *msg, size_t mlen)
{
	if (strlen(host) >= 256) {
		snprintf(msg, mlen, "host name too long");
		return -EINVAL;
	}
	strcpy(dst, host);
	return 0;
}

/* ";[clientHost:]clientPort" */
static int parse_client(struct zk_server *sv, char *text, char *msg, size_t mlen)
{
	char *parts[3];
	int n = split_host_port(text, parts, 3);
	if (n < 1 || n > 2) {
		snprintf(msg, mlen, "client address '%s' is not port or host:port", text);
		return -EINVAL;
	}
	if (n == 2 && copy_host(sv->client_host, parts[0], msg, mlen) < 0)
		return -EINVAL;
	return parse_port(parts[n - 1], "client", &sv->client_port, msg, mlen);
}

/* "host:quorumPort:electionPort[:type]" */
static int parse_quorum_addr(struct zk_server *sv, char *text, char *msg, size_t mlen)
{
	if (strchr(text, '|')) {
		snprintf(msg, mlen, "more than one address (multiAddress) is not supported");
		return -EINVAL;
	}
	char *parts[5];
	int n = split_host_port(text, parts, 5);
	if (n < 3 || n > 4) {
		snprintf(msg, mlen, "'%s' is not host:quorumPort:electionPort[:participant|:observer]", text);
		return -EINVAL;
	}
	if (copy_host(sv->host, parts[0], msg, mlen) < 0 ||
	    parse_port(parts[1], "quorum", &sv->quorum_port, msg, mlen) < 0 ||
	    parse_port(parts[2], "election", &sv->election_port, msg, mlen) < 0)
		return -EINVAL;
	if (sv->quorum_port == sv->election_port) {
		snprintf(msg, mlen, "quorum and election port must be different (%d)", sv->quorum_port);
		return -EINVAL;
	}
	if (n == 4) {
		char *type = trim(parts[3]);
		if (strcasecmp(type, "observer") && strcasecmp(type, "participant")) {
			snprintf(msg, mlen, "unrecognised peer type '%s' (participant or observer)", type);
			return -EINVAL;
		}
		sv->observer = !strcasecmp(type, "observer");
	}
	return 0;
}

static bool wildcard_host(const char *h)
{
	return !*h || !strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strcmp(h, "0:0:0:0:0:0:0:0");
}

/* A (host, port) of sv that another line also uses. Apache compares resolved addresses only
 * on reconfig; on loopback or one host such a config could never bind, so we refuse it. */
static int check_address_clash(const struct zk_config *c, const struct zk_server *sv,
			       char *msg, size_t mlen)
{
	for (int i = 0; i < c->nservers; i++) {
		const struct zk_server *o = &c->servers[i];
		const char *oh[3] = { o->host, o->host, o->client_host };
		int op[3] = { o->quorum_port, o->election_port, o->client_port };
		const char *mh[3] = { sv->host, sv->host, sv->client_host };
		int mp[3] = { sv->quorum_port, sv->election_port, sv->client_port };
		for (int a = 0; a < 3; a++)
			for (int b = 0; b < 3; b++) {
				if (!mp[a] || mp[a] != op[b] || strcmp(mh[a], oh[b]) || wildcard_host(mh[a]))
					continue;
				snprintf(msg, mlen, "address %s:%d is also used by server.%lld", mh[a],
					 mp[a], (long long)o->sid);
				return -EINVAL;
			}
	}
	return 0;
}

static int parse_server(struct zk_config *c, const char *id, char *val, char *msg, size_t mlen)
{
	long long sid;
	if (!parse_num(id, LLONG_MIN, LLONG_MAX, &sid)) {
		snprintf(msg, mlen, "server.%s: the server id is not a number", id);
		return -EINVAL;
	}
	if (sid < 1 || sid > ZK_SID_MAX) {
		snprintf(msg, mlen, "server.%s: the server id is out of range [1, %d]", id, ZK_SID_MAX);
		return -EINVAL;
	}
	if (config_server(c, sid)) {
		snprintf(msg, mlen, "server.%lld is given twice", sid);
		return -EINVAL;
	}
	if (c->nservers == ZK_SERVERS_MAX) {
		snprintf(msg, mlen, "too many servers (at most %d server.N lines)", ZK_SERVERS_MAX);
		return -EINVAL;
	}
	struct zk_server sv = { .sid = sid };
	char *semi = strchr(val, ';');
	/* Errors below read "server.N: what"; the prefix is written first. */
	int k = snprintf(msg, mlen, "server.%lld: ", sid);
	ZK_ASSERT(k > 0 && (size_t)k < mlen);
	msg += k;
	mlen -= (size_t)k;
	if (semi) {
		*semi++ = 0;
		if (strchr(semi, ';')) {
			snprintf(msg, mlen, "more than one ';'");
			return -EINVAL;
		}
	}
	int rc = parse_quorum_addr(&sv, val, msg, mlen);
	if (rc == 0 && semi && *semi)
		rc = parse_client(&sv, semi, msg, mlen);
	if (rc == 0)
		rc = check_address_clash(c, &sv, msg, mlen);
	if (rc < 0)
		return rc;
	c->servers[c->nservers++] = sv;
	return 0;
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
	if (strcmp(key, "clientPort") == 0)
		c->client_port_given = true;
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (strcmp(key, options[i].name) == 0)
			return set_opt(c, &options[i], val, msg, mlen);
	if (strncmp(key, "server.", 7) == 0)
		return parse_server(c, key + 7, val, msg, mlen);
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

static int finish_quorum(struct zk_config *c, char *err, size_t errlen);

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
	return finish_quorum(c, err, errlen);
}

static int count_voters(const struct zk_config *c)
{
	int n = 0;
	for (int i = 0; i < c->nservers; i++)
		n += !c->servers[i].observer;
	return n;
}

bool config_quorum_mode(const struct zk_config *c)
{
	return count_voters(c) > 1;
}

const struct zk_server *config_server(const struct zk_config *c, int64_t sid)
{
	ZK_ASSERT(c->nservers >= 0 && c->nservers <= ZK_SERVERS_MAX);
	for (int i = 0; i < c->nservers; i++)
		if (c->servers[i].sid == sid)
			return &c->servers[i];
	return NULL;
}

/* QuorumPeerConfig.parseDynamicConfig and checkValidity. */
static int finish_quorum(struct zk_config *c, char *err, size_t errlen)
{
	int voters = count_voters(c), observers = c->nservers - voters;
	if (observers > 0 && voters <= 1) {
		snprintf(err, errlen, "%s: observers without a quorum of participants (%d) is not a valid "
			 "configuration", c->source, voters);
		return -EINVAL;
	}
	if (voters == 1) {
		LOG_WARN("%s: only one server specified (ignored): running standalone", c->source);
		return 0;
	}
	if (voters == 0)
		return 0;
	if (voters == 2)
		LOG_WARN("%s: no server failure will be tolerated; you need at least 3 servers", c->source);
	else if (voters % 2 == 0)
		LOG_WARN("%s: non-optimal configuration, consider an odd number of servers", c->source);
	if (c->init_limit == 0 || c->sync_limit == 0) {
		snprintf(err, errlen, "%s: %s is not set (required with server.N lines)", c->source,
			 c->init_limit == 0 ? "initLimit" : "syncLimit");
		return -EINVAL;
	}
	return 0;
}

/* setupClientPort: the server's own line may carry its client address; a clientPort (and
 * clientPortAddress) in the file must then agree with it. */
static int adopt_client_addr(struct zk_config *c, const struct zk_server *me, char *err, size_t errlen)
{
	if (!me->client_port)
		return 0;
	const char *line_host = me->client_host[0] ? me->client_host : "0.0.0.0";
	if (c->client_port_given) {
		bool any = wildcard_host(c->client_addr);
		if ((any && c->client_port != me->client_port) ||
		    (!any && (c->client_port != me->client_port || strcmp(c->client_addr, line_host)))) {
			snprintf(err, errlen, "%s: client address for this server (id = %lld) is %s:%d in "
				 "clientPort/clientPortAddress but %s:%d in its server.%lld line", c->source,
				 (long long)me->sid, c->client_addr[0] ? c->client_addr : "0.0.0.0",
				 c->client_port, line_host, me->client_port, (long long)me->sid);
			return -EINVAL;
		}
	}
	c->client_port = me->client_port;
	strcpy(c->client_addr, line_host);
	return 0;
}

int config_set_myid(struct zk_config *c, const char *text, size_t len, char *err, size_t errlen)
{
	bool quorum = config_quorum_mode(c);
	if (!text) {
		if (!quorum)
			return 0;
		snprintf(err, errlen, "%s/myid: the myid file is missing (required with server.N lines)",
			 c->data_dir);
		return -EINVAL;
	}
	/* BufferedReader.readLine: up to the first \n, \r or the end. */
	size_t n = 0;
	while (n < len && text[n] != '\n' && text[n] != '\r')
		n++;
	char line[32] = "";
	long long id = 0;
	if (n < sizeof line) {
		memcpy(line, text, n);
		line[n] = 0;
	}
	if (n >= sizeof line || !parse_num(line, LLONG_MIN, LLONG_MAX, &id)) {
		snprintf(err, errlen, "%s/myid: serverid '%.*s' is not a number", c->data_dir,
			 (int)(n < 64 ? n : 64), text);
		return -EINVAL;
	}
	if (!quorum) {
		c->myid = id; /* read as Apache reads it, used by nothing */
		return 0;
	}
	const struct zk_server *me = config_server(c, id);
	if (!me) {
		snprintf(err, errlen, "%s/myid: my id %lld is not in the peer list", c->data_dir, id);
		return -EINVAL;
	}
	if (c->extended_types && id > 254) {
		snprintf(err, errlen, "%s/myid: server ids above 254 are not supported with "
			 "extendedTypesEnabled", c->data_dir);
		return -EINVAL;
	}
	if (me->observer != c->peer_type_observer) {
		LOG_WARN("%s: peer type from the servers list (%s) does not match peerType (%s); "
			 "the servers list wins", c->source, me->observer ? "observer" : "participant",
			 c->peer_type_observer ? "observer" : "participant");
		c->peer_type_observer = me->observer;
	}
	if (adopt_client_addr(c, me, err, errlen) < 0)
		return -EINVAL;
	c->myid = id;
	return 0;
}
