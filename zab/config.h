/* zoo.cfg: parsed from text (the caller reads the file), keys as Apache ZooKeeper spells
 * them. Every option zkd implements is one row of a table (name, type, default, bounds).
 * A key ZooKeeper knows that zkd does not implement is a warning naming it; a key neither
 * knows, a line without a value, or a value out of bounds is an error "zoo.cfg:LINE: ...".
 * ZooKeeper's zookeeper.* system properties are accepted without the prefix. */
#ifndef ZK_ZAB_CONFIG_H
#define ZK_ZAB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZK_CFG_PATH_MAX 1024

enum fourlw {
	FLW_RUOK, FLW_SRVR, FLW_STAT, FLW_MNTR, FLW_CONF, FLW_ENVI, FLW_CONS, FLW_DUMP,
	FLW_WCHS, FLW_WCHC, FLW_WCHP, FLW_DIRS, FLW_ISRO, FLW_SRST, FLW_CRST, FLW_GTMK,
	FLW_STMK, FLW_HASH, FLW_COUNT
};
extern const char *const fourlw_names[FLW_COUNT];

struct zk_config {
	int tick_ms;
	char data_dir[ZK_CFG_PATH_MAX];
	char data_log_dir[ZK_CFG_PATH_MAX];
	int client_port;
	char client_addr[256];
	int max_client_cnxns;
	int min_session_timeout_ms; /* -1: 2 ticks */
	int max_session_timeout_ms; /* -1: 20 ticks */
	int jute_maxbuffer;
	int global_outstanding_limit;
	int max_cnxns;              /* 0: no limit beyond the fd limit */
	int listen_backlog;
	int sessionless_timeout_ms; /* a connection must send its ConnectRequest within this */
	bool force_sync;
	int snap_count;
	int pre_alloc_kb;
	int autopurge_snap_retain;
	int autopurge_interval_h;
	uint32_t fourlw_mask;
	/* ACLs (zookeeper.skipACL, zookeeper.DigestAuthenticationProvider.superDigest) */
	bool skip_acl;
	char super_digest[256];     /* "super:<base64 sha1>", empty: no super user */
	/* containers and TTL nodes (zookeeper.extendedTypesEnabled, znode.container.*) */
	bool extended_types;
	int container_check_ms;
	int container_max_per_minute;
	int container_max_never_used_ms; /* 0: never-used containers are kept */
	bool enforce_quota;         /* zookeeper.enforceQuota: QuotaExceeded past a limit */
	int nservers;               /* server.N lines seen */
	const char *source;         /* file name for messages */
};

void config_defaults(struct zk_config *c);
/* Parse zoo.cfg text over the defaults. Returns 0, or -EINVAL with a message in err.
 * Warnings go to the log. */
int config_parse(struct zk_config *c, const char *text, size_t len, char *err, size_t errlen);
/* Fill the derived defaults (session bounds, dataLogDir) and check cross-key rules. */
int config_finish(struct zk_config *c, char *err, size_t errlen);
/* Parse a 4lw whitelist value ("ruok, srvr" or "*") into a mask. */
uint32_t config_fourlw_mask(const char *value);

#endif
