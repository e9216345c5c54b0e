/* stderr logger: "2026-11-26T02:30:00.123Z WARN text". Quiet by default (WARN and up). */
#include "net/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int zk_log_level = ZK_LOG_WARN;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void zk_log(int level, const char *fmt, ...)
{
	if (level > zk_log_level)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char line[1024];
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

int zk_log_parse_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void zk_assert_fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "zkd: assertion failed: %s (%s:%d)\n", cond, file, line);
	abort();
}
