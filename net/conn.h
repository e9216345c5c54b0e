/* A non-blocking TCP connection with bounded input and output buffers.
 *
 * Input: bytes are read until EAGAIN or until the input buffer is full; a full buffer stops
 * reading (the socket keeps its data, `readable` stays set) until the owner consumes frames.
 * Output: replies are appended to `out`; past `out_high` the owner stops taking requests
 * from this connection (throttle); an append past the hard bound fails, and the owner
 * drops the connection. `readable`/`writable` are the edge-triggered flags: set by epoll,
 * cleared only by EAGAIN. */
#ifndef ZK_NET_CONN_H
#define ZK_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/loop.h"
#include "net/zbuf.h"

struct conn {
	struct net_handle h;
	uint64_t id;
	struct zbuf in, out;
	size_t out_high;
	bool readable, writable;
	bool eof;          /* the peer closed its side, or a read failed */
	bool close_after_flush;
	struct sockaddr_storage peer;
	char peer_str[64];
	uint64_t bytes_in, bytes_out;
};

void conn_init(struct conn *c, int fd, uint64_t id, size_t in_max, size_t out_max, size_t out_high);
void conn_free_buffers(struct conn *c);
/* Read what the socket has into `in`. Returns bytes read (0 when nothing new). Sets eof on
 * end of stream or error. */
ssize_t conn_read(struct conn *c);
/* Write what `out` holds. Returns 0, or -errno when the socket failed (connection dead). */
int conn_flush(struct conn *c);
static inline bool conn_throttled(const struct conn *c) { return zbuf_len(&c->out) > c->out_high; }
/* Listening socket on host:port (host NULL or "" = any address). Returns fd or -errno. */
int net_listen(const char *host, int port, int backlog, char *err, size_t errlen);
/* host:port to an address (host "" = any). Numeric hosts and "localhost" never block; other
 * names go to getaddrinfo (absent in STATIC=1 builds). 0, or -EINVAL with a message. */
int net_resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len,
		char *err, size_t errlen);
void net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
