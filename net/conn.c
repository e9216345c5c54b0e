/* Buffered non-blocking connections; see conn.h. */
#include "net/conn.h"
#include "net/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads start at 4 KiB so an idle connection holds little; a connection whose buffer has
 * grown (large frames, pipelining) reads up to 64 KiB at a time. */
#define READ_CHUNK_MIN 4096
#define READ_CHUNK_MAX 65536

void conn_init(struct conn *c, int fd, uint64_t id, size_t in_max, size_t out_max, size_t out_high)
{
	memset(c, 0, sizeof *c);
	c->h.fd = fd;
	c->id = id;
	zbuf_init(&c->in, in_max);
	zbuf_init(&c->out, out_max);
	c->out_high = out_high;
}

void conn_free_buffers(struct conn *c)
{
	zbuf_free(&c->in);
	zbuf_free(&c->out);
}

ssize_t conn_read(struct conn *c)
{
	ssize_t total = 0;
	while (c->readable && !c->eof) {
		size_t room = c->in.max - zbuf_len(&c->in);
		if (room == 0)
			break; /* full: leave the rest in the socket until frames are consumed */
		size_t chunk = c->in.cap >= READ_CHUNK_MAX ? READ_CHUNK_MAX : READ_CHUNK_MIN;
		size_t want = room < chunk ? room : chunk;
		uint8_t *p = zbuf_reserve(&c->in, want);
		if (!p)
			break;
		ssize_t n = read(c->h.fd, p, want);
		if (n > 0) {
			c->in.tail += (size_t)n;
			c->bytes_in += (uint64_t)n;
			total += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->readable = false;
			break;
		}
		c->eof = true; /* 0: orderly shutdown; <0: reset or other error */
	}
	return total;
}

int conn_flush(struct conn *c)
{
	while (c->writable && zbuf_len(&c->out) > 0) {
		ssize_t n = send(c->h.fd, zbuf_head(&c->out), zbuf_len(&c->out), MSG_NOSIGNAL);
		if (n > 0) {
			zbuf_consume(&c->out, (size_t)n);
			c->bytes_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->writable = false;
			break;
		}
		return n < 0 ? -errno : -EPIPE;
	}
	if (zbuf_len(&c->out) == 0)
		zbuf_shrink(&c->out, 1 << 20);
	return 0;
}

void net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof host);
		else
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
	}
	snprintf(buf, len, "%s:%d", host, port);
}

/* The address to bind: "" is every address (IPv6 with IPv4 mapped, or IPv4 alone where the
 * kernel has no IPv6); numeric IPv4/IPv6 and "localhost" are parsed here. Other host names
 * go to the resolver, which a static build (ZKD_NO_RESOLVER) leaves out to stay small. */
int net_resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len,
		char *err, size_t errlen)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (!host || !*host) {
		a6->sin6_family = AF_INET6;
		a6->sin6_addr = in6addr_any;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
		return 0;
	}
	const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof *a4;
		return 0;
	}
	if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
		return 0;
	}
#ifndef ZKD_NO_RESOLVER
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc == 0) {
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		if (ss->ss_family == AF_INET)
			a4->sin_port = htons((uint16_t)port);
		else
			a6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
#else
	snprintf(err, errlen, "%s is not a numeric address (this build has no host name resolver)", host);
#endif
	return -EINVAL;
}

int net_listen(const char *host, int port, int backlog, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = net_resolve(host, port, &ss, &len, err, errlen);
	if (rc < 0)
		return rc;
	bool any = !host || !*host;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && any && errno == EAFNOSUPPORT) { /* no IPv6: plain IPv4 any */
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof ss);
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof *a4;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
		return -errno;
	}
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6 && any)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		snprintf(err, errlen, "cannot listen on %s:%d: %s", any ? "*" : host, port, strerror(e));
		return -e;
	}
	return fd;
}
