/* All file I/O of the log and the snapshots goes through this table, so tests can swap in
 * one that fails with EIO or ENOSPC, writes short, or "crashes" at a chosen call. Every
 * function returns what its POSIX namesake returns, with errno set on failure. */
#ifndef ZK_WAL_FILEOPS_H
#define ZK_WAL_FILEOPS_H

#include <sys/types.h>

struct zk_fileops {
	int (*open)(const char *path, int flags, mode_t mode);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*fallocate)(int fd, off_t off, off_t len); /* 0 or errno, like posix_fallocate */
	int (*ftruncate)(int fd, off_t len);
	int (*close)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
};

extern const struct zk_fileops zk_fileops_posix;

/* Write all of buf at off, retrying short writes. 0 or -errno. */
int zk_pwrite_all(const struct zk_fileops *ops, int fd, const void *buf, size_t n, off_t off);
/* fsync a directory so a create or rename in it is durable. 0 or -errno. */
int zk_fsync_dir(const struct zk_fileops *ops, const char *dir);

#endif
