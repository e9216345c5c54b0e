/* elect_main: the election driver (net/election.c) alone in an epoll loop, for
 * test_election.py. Reads a zoo.cfg and dataDir/myid as zkd does, runs Fast Leader Election
 * with the other servers, and prints one JSON line per decision on stdout:
 *   {"sid":1,"state":"FOLLOWING","leader":3,"zxid":0,"election_epoch":1,"peer_epoch":0,"ms":212,"n":1}
 * (ms: from the election's start to the decision; n: decisions so far), and a line
 * {"sid":1,"looking":true,"n":0} whenever an election starts. SIGUSR1 starts a new election,
 * as ZAB does when it loses its leader; SIGTERM/SIGINT stop it.
 *
 *   elect_main [-v] [--zxid Z] [--epoch E] zoo.cfg
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "net/election.h"
#include "net/log.h"
#include "net/loop.h"
#include "zab/config.h"

static struct {
	struct net_loop loop;
	struct election e;
	struct net_handle sig;
	struct zk_config cfg;
	int64_t zxid, epoch;
	int64_t started_ms;
	uint64_t n;
} M;

static const char *state_name(int32_t s)
{
	switch (s) {
	case PEER_LOOKING: return "LOOKING";
	case PEER_FOLLOWING: return "FOLLOWING";
	case PEER_LEADING: return "LEADING";
	case PEER_OBSERVING: return "OBSERVING";
	}
	return "?";
}

static void on_decided(void *ctx, int32_t state, const struct fle_vote *v)
{
	(void)ctx;
	printf("{\"sid\":%" PRId64 ",\"state\":\"%s\",\"leader\":%" PRId64 ",\"zxid\":%" PRId64
	       ",\"election_epoch\":%" PRId64 ",\"peer_epoch\":%" PRId64 ",\"ms\":%" PRId64
	       ",\"n\":%" PRIu64 "}\n",
	       M.cfg.myid, state_name(state), v->leader, v->zxid, v->election_epoch, v->peer_epoch,
	       net_clock_ms() - M.started_ms, ++M.n);
	fflush(stdout);
	ZK_ASSERT(election_state(&M.e) == state);
}

static void start(void)
{
	printf("{\"sid\":%" PRId64 ",\"looking\":true,\"n\":%" PRIu64 "}\n", M.cfg.myid, M.n);
	fflush(stdout);
	M.started_ms = net_clock_ms();
	election_start(&M.e, M.zxid, M.epoch);
}

static void on_signal(struct net_loop *l, struct net_handle *h, uint32_t events)
{
	(void)events;
	struct signalfd_siginfo si;
	while (read(h->fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGUSR1)
			start();
		else
			net_loop_stop(l);
	}
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static char buf[1 << 16];
	*len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[*len] = 0;
	char *copy = malloc(*len + 1);
	if (copy)
		memcpy(copy, buf, *len + 1);
	return copy;
}

static int load(const char *path)
{
	char err[1024];
	size_t len;
	char *text = read_all(path, &len);
	config_defaults(&M.cfg);
	M.cfg.source = path;
	if (!text) {
		fprintf(stderr, "elect_main: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	int rc = config_parse(&M.cfg, text, len, err, sizeof err);
	free(text);
	if (rc == 0)
		rc = config_finish(&M.cfg, err, sizeof err);
	if (rc == 0 && !config_quorum_mode(&M.cfg)) {
		snprintf(err, sizeof err, "%s: not an ensemble", path);
		rc = -EINVAL;
	}
	if (rc == 0) {
		char myid_path[ZK_CFG_PATH_MAX + 8];
		snprintf(myid_path, sizeof myid_path, "%s/myid", M.cfg.data_dir);
		text = read_all(myid_path, &len);
		rc = config_set_myid(&M.cfg, text, text ? len : 0, err, sizeof err);
		free(text);
	}
	if (rc < 0)
		fprintf(stderr, "elect_main: %s\n", err);
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			zk_log_level = ZK_LOG_DEBUG;
		else if (!strcmp(argv[i], "--zxid") && i + 1 < argc)
			M.zxid = strtoll(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--epoch") && i + 1 < argc)
			M.epoch = strtoll(argv[++i], NULL, 0);
		else
			path = argv[i];
	}
	if (!path) {
		fprintf(stderr, "usage: elect_main [-v] [--zxid Z] [--epoch E] zoo.cfg\n");
		return 2;
	}
	if (load(path) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	char err[512];
	if (net_loop_init(&M.loop) < 0 ||
	    (M.sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		perror("elect_main");
		return 1;
	}
	M.sig.on_event = on_signal;
	net_loop_add(&M.loop, &M.sig);
	if (election_init(&M.e, &M.loop, &M.cfg, on_decided, NULL, err, sizeof err) < 0) {
		fprintf(stderr, "elect_main: election: %s\n", err);
		return 1;
	}
	printf("{\"sid\":%" PRId64 ",\"ready\":true}\n", M.cfg.myid);
	fflush(stdout);
	start();
	int rc = net_loop_run(&M.loop);
	election_free(&M.e);
	net_loop_del(&M.loop, &M.sig);
	net_loop_free(&M.loop);
	return rc < 0 ? 1 : 0;
}
