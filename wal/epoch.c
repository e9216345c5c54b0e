/* The epoch files; see epoch.h. */
#include "wal/epoch.h"
#include "net/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#define EPOCH_PATH_MAX 4096

static int epoch_path(char *buf, size_t len, const char *dir, const char *name, const char *sfx)
{
	int n = snprintf(buf, len, "%s/%s%s", dir, name, sfx);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int wal_epoch_read(const struct zk_fileops *ops, const char *dir, const char *name, int64_t *out)
{
	char path[EPOCH_PATH_MAX], buf[64];
	if (epoch_path(path, sizeof path, dir, name, "") < 0)
		return -ENAMETOOLONG;
	int fd = ops->open(path, O_RDONLY, 0);
	if (fd < 0)
		return -errno;
	ssize_t n = ops->pread(fd, buf, sizeof buf - 1, 0);
	ops->close(fd);
	if (n <= 0)
		return -EBADMSG;
	ZK_ASSERT((size_t)n < sizeof buf);
	buf[n] = 0;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	while (*end == '\n' || *end == '\r' || *end == ' ')
		end++;
	if (errno || end == buf || *end || v < 0 || v >= UINT32_MAX)
		return -EBADMSG;
	*out = v;
	return 0;
}

/* Write tmp, fsync, rename, fsync the directory: the value is on disk before we act on it. */
int wal_epoch_write(const struct zk_fileops *ops, const char *dir, const char *name, int64_t v)
{
	char path[EPOCH_PATH_MAX], tmp[EPOCH_PATH_MAX], buf[32];
	if (epoch_path(path, sizeof path, dir, name, "") < 0 ||
	    epoch_path(tmp, sizeof tmp, dir, name, ".tmp") < 0)
		return -ENAMETOOLONG;
	int len = snprintf(buf, sizeof buf, "%lld", (long long)v);
	ZK_ASSERT(len > 0 && (size_t)len < sizeof buf);
	int fd = ops->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	int rc = 0;
	errno = 0;
	if (ops->pwrite(fd, buf, (size_t)len, 0) != len || ops->fsync(fd) < 0)
		rc = errno ? -errno : -EIO; /* a short write sets no errno */
	ops->close(fd);
	if (rc == 0 && ops->rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0) {
		/* The directory was just written into, so opening it fails only for want of a
		 * descriptor: that is not taken for a failed write; a failed fsync is. */
		int dfd = ops->open(dir, O_RDONLY | O_DIRECTORY, 0);
		if (dfd >= 0) {
			if (ops->fsync(dfd) < 0)
				rc = -errno;
			ops->close(dfd);
		}
	}
	return rc;
}
