/* A minimal io_uring (raw syscalls, no liburing) used for one thing: writing a log batch and
 * fdatasync-ing it without blocking the event loop. Completions are signalled on an eventfd
 * the loop watches. Where the kernel has no io_uring (old kernels, some sandboxes), or the
 * ring cannot be set up, uring_init fails and the log falls back to blocking calls. */
#ifndef ZK_WAL_URING_H
#define ZK_WAL_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct uring {
	int ring_fd, event_fd;
	void *sq_ptr, *cq_ptr, *sqes;
	size_t sq_len, cq_len, sqes_len;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	void *cqes;
};

/* 0, or -errno (then the caller uses blocking I/O). */
int uring_init(struct uring *u, unsigned entries);
void uring_free(struct uring *u);
/* Queue a write of buf at off on fd, linked to an fdatasync of fd and, when dir_fd >= 0, an
 * fsync of that directory (a new file's entry); submit them. Completions carry user_data
 * tag*4 (write), tag*4+1 (file sync), tag*4+2 (dir sync). Returns how many completions to
 * expect, or -errno. */
int uring_write_sync(struct uring *u, int fd, const void *buf, size_t len, off_t off, int dir_fd,
		     uint64_t tag);
/* Take one completion if there is one: 1 with *user_data and *res, 0 when none. */
int uring_reap(struct uring *u, uint64_t *user_data, int32_t *res);
/* Block until at least one completion is ready. */
int uring_wait(struct uring *u);

#endif
