/* io_uring for the log; see uring.h. */
#include "wal/uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned n)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

int uring_init(struct uring *u, unsigned entries)
{
	memset(u, 0, sizeof *u);
	u->ring_fd = u->event_fd = -1;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int fd = sys_setup(entries, &p);
	if (fd < 0)
		return -errno;
	u->ring_fd = fd;
	u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		u->sq_len = u->cq_len = u->sq_len > u->cq_len ? u->sq_len : u->cq_len;
	u->sq_ptr = mmap(NULL, u->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			 IORING_OFF_SQ_RING);
	if (u->sq_ptr == MAP_FAILED)
		goto fail;
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		u->cq_ptr = u->sq_ptr;
	} else {
		u->cq_ptr = mmap(NULL, u->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
				 IORING_OFF_CQ_RING);
		if (u->cq_ptr == MAP_FAILED)
			goto fail;
	}
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		       IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED)
		goto fail;
	char *sq = u->sq_ptr, *cq = u->cq_ptr;
	u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	u->sq_array = (unsigned *)(sq + p.sq_off.array);
	u->cq_head = (unsigned *)(cq + p.cq_off.head);
	u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	u->cqes = cq + p.cq_off.cqes;
	u->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->event_fd < 0 || sys_register(fd, IORING_REGISTER_EVENTFD, &u->event_fd, 1) < 0)
		goto fail;
	return 0;
fail:;
	int e = errno ? errno : ENOMEM;
	uring_free(u);
	return -e;
}

void uring_free(struct uring *u)
{
	if (u->sqes && u->sqes != MAP_FAILED)
		munmap(u->sqes, u->sqes_len);
	if (u->cq_ptr && u->cq_ptr != MAP_FAILED && u->cq_ptr != u->sq_ptr)
		munmap(u->cq_ptr, u->cq_len);
	if (u->sq_ptr && u->sq_ptr != MAP_FAILED)
		munmap(u->sq_ptr, u->sq_len);
	if (u->event_fd >= 0)
		close(u->event_fd);
	if (u->ring_fd >= 0)
		close(u->ring_fd);
	memset(u, 0, sizeof *u);
	u->ring_fd = u->event_fd = -1;
}

static struct io_uring_sqe *next_sqe(struct uring *u, unsigned *tail)
{
	unsigned idx = *tail & *u->sq_mask;
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)u->sqes + idx;
	memset(sqe, 0, sizeof *sqe);
	u->sq_array[idx] = idx;
	(*tail)++;
	return sqe;
}

int uring_write_sync(struct uring *u, int fd, const void *buf, size_t len, off_t off, int dir_fd,
		     uint64_t tag)
{
	unsigned tail = *u->sq_tail; /* only we write the tail */
	struct io_uring_sqe *w = next_sqe(u, &tail);
	w->opcode = IORING_OP_WRITE;
	w->fd = fd;
	w->addr = (uint64_t)(uintptr_t)buf;
	w->len = (uint32_t)len;
	w->off = (uint64_t)off;
	w->flags = IOSQE_IO_LINK; /* the sync runs only after the write succeeded */
	w->user_data = tag * 4;
	struct io_uring_sqe *s = next_sqe(u, &tail);
	s->opcode = IORING_OP_FSYNC;
	s->fd = fd;
	s->fsync_flags = IORING_FSYNC_DATASYNC;
	s->user_data = tag * 4 + 1;
	unsigned n_ops = 2;
	if (dir_fd >= 0) {
		s->flags = IOSQE_IO_LINK;
		struct io_uring_sqe *d = next_sqe(u, &tail);
		d->opcode = IORING_OP_FSYNC;
		d->fd = dir_fd;
		d->user_data = tag * 4 + 2;
		n_ops = 3;
	}
	__atomic_store_n(u->sq_tail, tail, __ATOMIC_RELEASE);
	for (;;) {
		int n = sys_enter(u->ring_fd, n_ops, 0, 0);
		if (n >= 0)
			return n == (int)n_ops ? (int)n_ops : -EIO;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

int uring_reap(struct uring *u, uint64_t *user_data, int32_t *res)
{
	unsigned head = *u->cq_head;
	if (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE))
		return 0;
	struct io_uring_cqe *c = (struct io_uring_cqe *)u->cqes + (head & *u->cq_mask);
	*user_data = c->user_data;
	*res = c->res;
	__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
	return 1;
}

int uring_wait(struct uring *u)
{
	for (;;) {
		if (sys_enter(u->ring_fd, 0, 1, IORING_ENTER_GETEVENTS) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}
