/* The POSIX file-ops table; see fileops.h. */
#include "wal/fileops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int posix_open(const char *path, int flags, mode_t mode) { return open(path, flags | O_CLOEXEC, mode); }
static int posix_falloc(int fd, off_t off, off_t len) { return posix_fallocate(fd, off, len); }

const struct zk_fileops zk_fileops_posix = {
	.open = posix_open,
	.pwrite = pwrite,
	.pread = pread,
	.fdatasync = fdatasync,
	.fsync = fsync,
	.fallocate = posix_falloc,
	.ftruncate = ftruncate,
	.close = close,
	.rename = rename,
	.unlink = unlink,
};

int zk_pwrite_all(const struct zk_fileops *ops, int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = ops->pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

int zk_fsync_dir(const struct zk_fileops *ops, const char *dir)
{
	int fd = ops->open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return -errno;
	int rc = ops->fsync(fd) < 0 ? -errno : 0;
	ops->close(fd);
	return rc;
}
