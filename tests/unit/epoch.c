/* Proves the epoch files (wal/epoch.h) with real files in a temp dir: a missing file is
 * -ENOENT, garbage and out-of-range values are -EBADMSG, values round-trip, and a write whose
 * fsync or rename fails (injected through the file-ops table) reports it and leaves the old
 * value in place. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal/epoch.h"
#include "tests/unit/support/support.h"

static char dir[256];

static void setup(void) { t_tmpdir(dir, sizeof dir, "epoch"); }
static void teardown(void) { t_rm_tree(dir); }

static void put(const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static int64_t get(const char *name)
{
	int64_t v = -99;
	int rc = wal_epoch_read(&zk_fileops_posix, dir, name, &v);
	return rc < 0 ? rc : v;
}

TestSuite(epoch, .init = setup, .fini = teardown, .timeout = 10);

Test(epoch, missing_file)
{
	int64_t v = 7;
	cr_assert_eq(wal_epoch_read(&zk_fileops_posix, dir, "currentEpoch", &v), -ENOENT);
	cr_assert_eq(v, 7, "untouched on error");
}

Test(epoch, garbage_and_range)
{
	put("e", "");
	cr_assert_eq(get("e"), -EBADMSG, "empty");
	put("e", "abc");
	cr_assert_eq(get("e"), -EBADMSG);
	put("e", "12x");
	cr_assert_eq(get("e"), -EBADMSG, "trailing junk");
	put("e", "-1");
	cr_assert_eq(get("e"), -EBADMSG, "negative");
	put("e", "4294967295");
	cr_assert_eq(get("e"), -EBADMSG, "2^32 - 1 is out of range");
	put("e", "99999999999999999999999");
	cr_assert_eq(get("e"), -EBADMSG, "overflow");
	put("e", "4294967294");
	cr_assert_eq(get("e"), 4294967294LL);
	put("e", "5\n");
	cr_assert_eq(get("e"), 5, "Apache's files may end in a newline");
	put("e", "0 \r\n");
	cr_assert_eq(get("e"), 0);
}

Test(epoch, round_trip)
{
	int64_t vals[] = { 0, 1, 42, 4294967294LL };
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		cr_assert_eq(wal_epoch_write(&zk_fileops_posix, dir, "acceptedEpoch", vals[i]), 0);
		cr_assert_eq(get("acceptedEpoch"), vals[i]);
	}
	char path[512];
	snprintf(path, sizeof path, "%s/acceptedEpoch.tmp", dir);
	cr_assert_neq(access(path, F_OK), 0, "the temp file was renamed away");
	snprintf(path, sizeof path, "%s/acceptedEpoch", dir);
	FILE *f = fopen(path, "r");
	char buf[32] = "";
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof buf, f));
	fclose(f);
	cr_assert_str_eq(buf, "4294967294", "decimal text, as Apache");
}

static int fail_fsync_at; /* fail the n-th fsync (1-based) with EIO */
static int fail_rename;
static int n_fsync;

static int t_fsync(int fd)
{
	if (++n_fsync == fail_fsync_at) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int t_rename(const char *from, const char *to)
{
	if (fail_rename) {
		errno = EXDEV;
		return -1;
	}
	return rename(from, to);
}

static struct zk_fileops failing(void)
{
	struct zk_fileops ops = zk_fileops_posix;
	ops.fsync = t_fsync;
	ops.rename = t_rename;
	n_fsync = 0;
	return ops;
}

Test(epoch, failed_fsync_keeps_the_old_value)
{
	cr_assert_eq(wal_epoch_write(&zk_fileops_posix, dir, "currentEpoch", 3), 0);
	fail_fsync_at = 1; /* the temp file's */
	struct zk_fileops ops = failing();
	cr_assert_eq(wal_epoch_write(&ops, dir, "currentEpoch", 4), -EIO);
	cr_assert_eq(get("currentEpoch"), 3);
	fail_fsync_at = 2; /* the directory's: the rename is done, but not known durable */
	ops = failing();
	cr_assert_eq(wal_epoch_write(&ops, dir, "currentEpoch", 5), -EIO);
	cr_assert_eq(n_fsync, 2);
	fail_fsync_at = 0;
}

Test(epoch, failed_rename_keeps_the_old_value)
{
	cr_assert_eq(wal_epoch_write(&zk_fileops_posix, dir, "acceptedEpoch", 8), 0);
	fail_rename = 1;
	struct zk_fileops ops = failing();
	cr_assert_eq(wal_epoch_write(&ops, dir, "acceptedEpoch", 9), -EXDEV);
	fail_rename = 0;
	cr_assert_eq(get("acceptedEpoch"), 8);
	cr_assert_eq(n_fsync, 1, "no directory fsync after a failed rename");
}

Test(epoch, unwritable_dir)
{
	char sub[512];
	snprintf(sub, sizeof sub, "%s/missing", dir);
	cr_assert_eq(wal_epoch_write(&zk_fileops_posix, sub, "acceptedEpoch", 1), -ENOENT);
}
