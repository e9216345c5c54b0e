/* zkbench: a small ZooKeeper load generator speaking the wire protocol directly, so the
 * client is never the bottleneck. It drives zkd and Apache ZooKeeper alike.
 *
 *   zkbench HOST PORT populate N CONNS INFLIGHT     create /zkbench/n0..n(N-1), 16-byte data
 *   zkbench HOST PORT write SECONDS CONNS INFLIGHT  setData on those nodes (N from /zkbench)
 *   zkbench HOST PORT read SECONDS CONNS INFLIGHT   getData on them
 * Prints one line: ops, ops/s, latency p50/p99/max in microseconds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 64
#define MAXQ 1024

struct conn {
	int fd;
	uint8_t in[1 << 20];
	size_t inlen;
	int64_t sent_us[MAXQ]; /* by xid % MAXQ */
	int xid, inflight;
};

static struct conn *C;
static int nconns, inflight_max, op;
static long nnodes, next_node, done_ops, target_ops;
static int64_t *lat;
static size_t nlat, caplat;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void die(const char *m) { perror(m); exit(1); }

static void send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) continue;
			die("write");
		}
		p += w;
		n -= (size_t)w;
	}
}

static void connect_one(struct conn *c, const char *host, int port)
{
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, host, &a.sin_addr);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	uint8_t req[4 + 45] = { 0 };
	put32(req, 45);
	put32(req + 4 + 12, 30000);  /* timeout */
	put32(req + 4 + 24, 16);     /* passwd length */
	send_all(c->fd, req, sizeof req);
	uint8_t resp[4 + 37];
	size_t got = 0;
	while (got < sizeof resp) {
		ssize_t r = read(c->fd, resp + got, sizeof resp - got);
		if (r <= 0) die("handshake");
		got += (size_t)r;
	}
	c->xid = 1;
}

static size_t path_of(char *buf, long i) { return (size_t)sprintf(buf, "/zkbench/n%ld", i); }

static void send_req(struct conn *c)
{
	uint8_t b[256];
	char path[64];
	long node = next_node++ % (nnodes ? nnodes : 1);
	size_t pl = path_of(path, op == 'p' ? next_node - 1 : node);
	size_t n = 12;
	put32(b + 4, (uint32_t)c->xid);
	put32(b + 8, op == 'p' ? 1 : op == 'w' ? 5 : 4);
	put32(b + n, (uint32_t)pl); memcpy(b + n + 4, path, pl); n += 4 + pl;
	if (op == 'r') {
		b[n++] = 0; /* watch */
	} else {
		put32(b + n, 16); memset(b + n + 4, 'x', 16); n += 20;
		if (op == 'p') {
			put32(b + n, 1); n += 4;   /* one ACL */
			put32(b + n, 31); n += 4;
			put32(b + n, 5); memcpy(b + n + 4, "world", 5); n += 9;
			put32(b + n, 6); memcpy(b + n + 4, "anyone", 6); n += 10;
			put32(b + n, 0); n += 4;   /* flags */
		} else {
			put32(b + n, 0xffffffff); n += 4; /* any version */
		}
	}
	put32(b, (uint32_t)(n - 4));
	c->sent_us[c->xid % MAXQ] = now_us();
	c->xid++;
	c->inflight++;
	send_all(c->fd, b, n);
}

static void record(int64_t us)
{
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 1 << 16;
		lat = realloc(lat, caplat * sizeof *lat);
	}
	lat[nlat++] = us;
}

static void on_frames(struct conn *c, int64_t t)
{
	size_t off = 0;
	while (c->inlen - off >= 4) {
		uint32_t len = get32(c->in + off);
		if (c->inlen - off < 4 + len)
			break;
		int32_t xid = (int32_t)get32(c->in + off + 4);
		int32_t err = (int32_t)get32(c->in + off + 16);
		if (xid > 0) {
			if (err != 0 && !(op == 'p' && err == -110)) {
				fprintf(stderr, "request failed: err %d\n", err);
				exit(1);
			}
			record(t - c->sent_us[xid % MAXQ]);
			c->inflight--;
			done_ops++;
		}
		off += 4 + len;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: zkbench HOST PORT populate|write|read N|SECONDS CONNS INFLIGHT\n");
		return 2;
	}
	op = argv[3][0];
	long arg = atol(argv[4]);
	nconns = atoi(argv[5]);
	inflight_max = atoi(argv[6]);
	if (nconns < 1 || nconns > MAXC || inflight_max < 1 || inflight_max > MAXQ / 2)
		return 2;
	nnodes = op == 'p' ? arg : atol(getenv("ZKBENCH_NODES") ? getenv("ZKBENCH_NODES") : "1000");
	target_ops = op == 'p' ? arg : -1;
	int64_t end = op == 'p' ? INT64_MAX : now_us() + arg * 1000000;
	C = calloc((size_t)nconns, sizeof *C);
	struct pollfd pf[MAXC];
	for (int i = 0; i < nconns; i++) {
		connect_one(&C[i], argv[1], atoi(argv[2]));
		pf[i] = (struct pollfd){ .fd = C[i].fd, .events = POLLIN };
	}
	if (op == 'p') { /* the parent */
		uint8_t b[128];
		size_t n = 12;
		put32(b + 4, 0); put32(b + 8, 1);
		put32(b + n, 8); memcpy(b + n + 4, "/zkbench", 8); n += 12;
		put32(b + n, 0); n += 4;
		put32(b + n, 1); put32(b + n + 4, 31); n += 8;
		put32(b + n, 5); memcpy(b + n + 4, "world", 5); n += 9;
		put32(b + n, 6); memcpy(b + n + 4, "anyone", 6); n += 10;
		put32(b + n, 0); n += 4;
		put32(b, (uint32_t)(n - 4));
		send_all(C[0].fd, b, n);
		uint8_t r[64];
		if (read(C[0].fd, r, sizeof r) <= 0) die("create parent");
	}
	int64_t t0 = now_us();
	for (;;) {
		int64_t t = now_us();
		bool more = t < end && (target_ops < 0 || next_node < target_ops);
		int busy = 0;
		for (int i = 0; i < nconns; i++) {
			while (more && C[i].inflight < inflight_max && (target_ops < 0 || next_node < target_ops))
				send_req(&C[i]);
			busy += C[i].inflight;
		}
		if (!busy && !more)
			break;
		if (poll(pf, (nfds_t)nconns, 1000) < 0 && errno != EINTR)
			die("poll");
		t = now_us();
		for (int i = 0; i < nconns; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r = read(C[i].fd, C[i].in + C[i].inlen, sizeof C[i].in - C[i].inlen);
			if (r <= 0) die("read");
			C[i].inlen += (size_t)r;
			on_frames(&C[i], t);
		}
	}
	double secs = (double)(now_us() - t0) / 1e6;
	qsort(lat, nlat, sizeof *lat, cmp64);
	printf("%s ops=%ld seconds=%.2f ops_per_s=%.0f p50_us=%lld p99_us=%lld max_us=%lld\n", argv[3],
	       done_ops, secs, (double)done_ops / secs, nlat ? (long long)lat[nlat / 2] : 0LL,
	       nlat ? (long long)lat[nlat * 99 / 100] : 0LL, nlat ? (long long)lat[nlat - 1] : 0LL);
	return 0;
}
