/* zkbench: a ZooKeeper load generator that speaks the client protocol directly, so that the
 * client costs far less CPU than the server it measures (it prints its own CPU time). It
 * drives zkd and Apache ZooKeeper alike.
 *
 *   zkbench HOST PORT MODE ARG CONNS INFLIGHT [DATA_BYTES]
 *     populate N   create /zkbench/n0 .. n(N-1)               (ARG = N)
 *     get S        getData on random nodes for S seconds      (ZKBENCH_NODES = node count)
 *     set S        setData on random nodes for S seconds
 *     seq S        sequential creates under /zkbench-seq for S seconds
 *     mixed S      90% getData / 10% setData for S seconds (read latency reported apart)
 * Output, one line: mode ops seconds ops_per_s p50_us p99_us p999_us max_us cpu_s, and for
 * mixed the read percentiles too. Latencies go into a log-linear histogram (HDR-style: 64
 * sub-buckets per power of two, so every recorded value is kept within 1.6%). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 64
#define MAXQ 1024
#define SUB 64 /* sub-buckets per power of two */

/* ---- histogram ---- */

struct hist {
	uint64_t b[64 * SUB];
	uint64_t n, max;
};

static size_t hist_idx(uint64_t v)
{
	if (v < SUB)
		return (size_t)v;
	int msb = 63 - __builtin_clzll(v);
	int shift = msb - 6; /* keep 7 bits, the top one set: 64 sub-buckets */
	return (size_t)(shift + 1) * SUB + (size_t)((v >> shift) - SUB);
}

static uint64_t hist_val(size_t i)
{
	if (i < SUB)
		return i;
	size_t shift = i / SUB - 1;
	return ((uint64_t)(i % SUB) + SUB) << shift;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_idx(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
	uint64_t want = (uint64_t)((double)h->n * p / 100.0), seen = 0;
	for (size_t i = 0; i < sizeof h->b / sizeof h->b[0]; i++) {
		seen += h->b[i];
		if (seen > want)
			return hist_val(i);
	}
	return h->max;
}

/* ---- connections ---- */

struct conn {
	int fd;
	uint8_t in[1 << 20];
	size_t inlen;
	uint8_t out[MAXQ / 2 * 3300]; /* requests batched into one write per wake-up */
	size_t outlen;
	int64_t sent_us[MAXQ];
	char kind[MAXQ]; /* 'r' or 'w', by xid % MAXQ */
	int xid, inflight;
};

static struct conn *C;
static int nconns, inflight_max, mode;
static long nnodes, seq_next, target_ops, data_len = 100;
static uint64_t done_ops, rng = 88172645463325252ull;
static struct hist all, reads;

static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static _Noreturn void die(const char *m) { perror(m); exit(1); }

static void send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write");
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
	put32(req + 4 + 12, 30000); /* session timeout */
	put32(req + 4 + 24, 16);    /* password length */
	send_all(c->fd, req, sizeof req);
	uint8_t resp[4 + 37];
	size_t got = 0;
	while (got < sizeof resp) {
		ssize_t r = read(c->fd, resp + got, sizeof resp - got);
		if (r <= 0)
			die("handshake");
		got += (size_t)r;
	}
	c->xid = 1;
}

static size_t put_str(uint8_t *b, const char *s, size_t n)
{
	put32(b, (uint32_t)n);
	memcpy(b + 4, s, n);
	return 4 + n;
}

static size_t put_acl_open(uint8_t *b)
{
	size_t n = 0;
	put32(b, 1);
	put32(b + 4, 31);
	n = 8;
	n += put_str(b + n, "world", 5);
	n += put_str(b + n, "anyone", 6);
	return n;
}

static void send_req(struct conn *c, long populate_idx)
{
	uint8_t *b = c->out + c->outlen;
	char path[64];
	int op;
	char kind = 'w';
	size_t n = 12, pl;
	if (mode == 'p') {
		op = 1;
		pl = (size_t)sprintf(path, "/zkbench/n%ld", populate_idx);
	} else if (mode == 'q') {
		op = 1;
		pl = (size_t)sprintf(path, "/zkbench-seq/s-");
	} else {
		bool read = mode == 'g' || (mode == 'm' && xorshift() % 10 != 0);
		op = read ? 4 : 5;
		kind = read ? 'r' : 'w';
		pl = (size_t)sprintf(path, "/zkbench/n%ld", (long)(xorshift() % (uint64_t)nnodes));
	}
	put32(b + 4, (uint32_t)c->xid);
	put32(b + 8, (uint32_t)op);
	n += put_str(b + n, path, pl);
	if (op == 4) {
		b[n++] = 0;
	} else {
		put32(b + n, (uint32_t)data_len);
		memset(b + n + 4, 'x', (size_t)data_len);
		n += 4 + (size_t)data_len;
		if (op == 1) {
			n += put_acl_open(b + n);
			put32(b + n, mode == 'q' ? 2 : 0); /* persistent-sequential or persistent */
			n += 4;
		} else {
			put32(b + n, 0xffffffffu);
			n += 4;
		}
	}
	put32(b, (uint32_t)(n - 4));
	c->sent_us[c->xid % MAXQ] = now_us();
	c->kind[c->xid % MAXQ] = kind;
	c->xid++;
	c->inflight++;
	c->outlen += n;
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
			if (err != 0 && !(mode == 'p' && err == -110)) {
				fprintf(stderr, "zkbench: request failed with error %d\n", err);
				exit(1);
			}
			uint64_t us = (uint64_t)(t - c->sent_us[xid % MAXQ]);
			hist_add(&all, us);
			if (c->kind[xid % MAXQ] == 'r')
				hist_add(&reads, us);
			c->inflight--;
			done_ops++;
		}
		off += 4 + len;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
}

static void create_parent(const char *path)
{
	uint8_t b[256];
	size_t n = 12;
	put32(b + 4, 0);
	put32(b + 8, 1);
	n += put_str(b + n, path, strlen(path));
	put32(b + n, 0);
	n += 4;
	n += put_acl_open(b + n);
	put32(b + n, 0);
	n += 4;
	put32(b, (uint32_t)(n - 4));
	send_all(C[0].fd, b, n);
	uint8_t r[64];
	if (read(C[0].fd, r, sizeof r) <= 0)
		die("create parent");
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: zkbench HOST PORT populate|get|set|seq|mixed N|SECONDS CONNS INFLIGHT [DATA_BYTES]\n");
		return 2;
	}
	mode = strcmp(argv[3], "seq") == 0 ? 'q' : argv[3][0];
	long arg = atol(argv[4]);
	nconns = atoi(argv[5]);
	inflight_max = atoi(argv[6]);
	if (argc > 7)
		data_len = atol(argv[7]);
	if (nconns < 1 || nconns > MAXC || inflight_max < 1 || inflight_max > MAXQ / 2 ||
	    data_len < 0 || data_len > 3000 || !strchr("pgsqm", mode))
		return 2;
	const char *nn = getenv("ZKBENCH_NODES");
	nnodes = mode == 'p' ? arg : (nn ? atol(nn) : 1000);
	if (nnodes < 1)
		return 2;
	target_ops = mode == 'p' ? arg : -1;
	rng ^= (uint64_t)getpid() << 20;
	C = calloc((size_t)nconns, sizeof *C);
	struct pollfd pf[MAXC];
	for (int i = 0; i < nconns; i++) {
		connect_one(&C[i], argv[1], atoi(argv[2]));
		pf[i] = (struct pollfd){ .fd = C[i].fd, .events = POLLIN };
	}
	if (mode == 'p')
		create_parent("/zkbench");
	if (mode == 'q')
		create_parent("/zkbench-seq");
	double cpu0 = cpu_seconds();
	int64_t t0 = now_us(), end = mode == 'p' ? INT64_MAX : t0 + arg * 1000000;
	long next_populate = 0;
	for (;;) {
		bool more = now_us() < end && (target_ops < 0 || next_populate < target_ops);
		int busy = 0;
		for (int i = 0; i < nconns; i++) {
			while (more && C[i].inflight < inflight_max && (target_ops < 0 || next_populate < target_ops))
				send_req(&C[i], next_populate++);
			if (C[i].outlen) {
				send_all(C[i].fd, C[i].out, C[i].outlen);
				C[i].outlen = 0;
			}
			busy += C[i].inflight;
		}
		if (!busy && !more)
			break;
		if (poll(pf, (nfds_t)nconns, 1000) < 0 && errno != EINTR)
			die("poll");
		int64_t t = now_us();
		for (int i = 0; i < nconns; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r = read(C[i].fd, C[i].in + C[i].inlen, sizeof C[i].in - C[i].inlen);
			if (r <= 0)
				die("read");
			C[i].inlen += (size_t)r;
			on_frames(&C[i], t);
		}
	}
	(void)seq_next;
	double secs = (double)(now_us() - t0) / 1e6;
	printf("mode=%s ops=%llu seconds=%.2f ops_per_s=%.0f p50_us=%llu p99_us=%llu p999_us=%llu "
	       "max_us=%llu cpu_s=%.2f", argv[3], (unsigned long long)done_ops, secs,
	       (double)done_ops / secs, (unsigned long long)hist_pct(&all, 50),
	       (unsigned long long)hist_pct(&all, 99), (unsigned long long)hist_pct(&all, 99.9),
	       (unsigned long long)all.max, cpu_seconds() - cpu0);
	if (mode == 'm' || mode == 'g')
		printf(" read_p99_us=%llu read_max_us=%llu", (unsigned long long)hist_pct(&reads, 99),
		       (unsigned long long)reads.max);
	printf("\n");
	return 0;
}
