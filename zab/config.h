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
#define ZK_SERVERS_MAX 32
#define ZK_SID_MAX 255          /* sids are 1..255: a session id carries the sid in its top byte */

/* One server.N line: server.N=host:quorumPort:electionPort[:participant|:observer]
 * [;[clientHost:]clientPort]. Hosts are kept as written (an IPv6 host without its brackets). */
struct zk_server {
	int64_t sid;
	char host[256];          /* quorum and election host */
	int quorum_port, election_port;
	bool observer;           /* ":observer" */
	char client_host[256];   /* ";[clientHost:]clientPort": "" if absent or only a port */
	int client_port;         /* 0 if absent */
};

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
	int commit_log_count;       /* committed txns kept in memory to sync learners by DIFF */
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
	/* the ensemble (QuorumPeerConfig) */
	struct zk_server servers[ZK_SERVERS_MAX];
	int nservers;               /* server.N lines, in file order */
	int init_limit, sync_limit; /* ticks; 0 = not set, refused in quorum mode as Apache does */
	int cnx_timeout_ms;         /* cnxTimeout: election connect and handshake, default 5000 */
	bool peer_type_observer;    /* peerType=observer (the server's own line wins) */
	bool quorum_listen_all;     /* quorumListenOnAllIPs: election/quorum ports on every address */
	int64_t myid;               /* set by config_set_myid; 0 until then */
	bool client_port_given;     /* clientPort was in the file (Apache's "not set" differs) */
	const char *source;         /* file name for messages */
};

void config_defaults(struct zk_config *c);
/* Parse zoo.cfg text over the defaults. Returns 0, or -EINVAL with a message in err.
 * Warnings go to the log. */
int config_parse(struct zk_config *c, const char *text, size_t len, char *err, size_t errlen);
/* Fill the derived defaults (session bounds, dataLogDir) and check cross-key rules. */
int config_finish(struct zk_config *c, char *err, size_t errlen);
/* Quorum mode: more than one voting server.N line (Apache's isDistributed with
 * standaloneEnabled). A lone server.N line stays standalone. Valid after config_finish. */
bool config_quorum_mode(const struct zk_config *c);
/* This server's id from the text of dataDir/myid (the caller reads the file; NULL when it does
 * not exist). Parsed as Apache parses it: the first line, an optional sign and decimal digits,
 * nothing else. In quorum mode the id must be one of the server.N lines ("My id N not in the
 * peer list"), the myid file must exist, peerType must agree with that line (Apache warns and
 * the line wins: so do we), and the line's client address, if any, becomes clientPort /
 * clientPortAddress (an explicit, different clientPort is an error, as in Apache). Call it after
 * config_finish. Returns 0 or -EINVAL with a message in err. */
int config_set_myid(struct zk_config *c, const char *text, size_t len, char *err, size_t errlen);
/* The server.N line of sid, or NULL. */
const struct zk_server *config_server(const struct zk_config *c, int64_t sid);
/* Parse a 4lw whitelist value ("ruok, srvr" or "*") into a mask. */
uint32_t config_fourlw_mask(const char *value);

#endif
