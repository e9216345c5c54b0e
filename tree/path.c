/* Path validation; the rules are in path.h. */
#include "tree/path.h"

#include <stdint.h>
#include <string.h>

/* Decode one UTF-8 code point; returns its length, or 0 when malformed. */
static size_t utf8_next(const unsigned char *s, size_t left, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) { *cp = c; return 1; }
	if ((c & 0xe0) == 0xc0) { n = 2; v = c & 0x1f; min = 0x80; }
	else if ((c & 0xf0) == 0xe0) { n = 3; v = c & 0x0f; min = 0x800; }
	else if ((c & 0xf8) == 0xf0) { n = 4; v = c & 0x07; min = 0x10000; }
	else return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff)
		return 0;
	*cp = v;
	return n;
}

static bool cp_forbidden(uint32_t c)
{
	return c == 0 || c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) ||
	       c >= 0xfff0;
}

const char *path_invalid(const char *p, size_t len)
{
	if (!p)
		return "Path cannot be null";
	if (len == 0)
		return "Path length must be > 0";
	if (p[0] != '/')
		return "Path must start with / character";
	if (len == 1)
		return NULL;
	if (p[len - 1] == '/')
		return "Path must not end with / character";
	const unsigned char *s = (const unsigned char *)p;
	size_t comp = 1; /* start of the current component */
	for (size_t i = 1; i < len;) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);
		if (n == 0)
			return "invalid UTF-8";
		if (cp == 0)
			return "null character not allowed";
		if (cp == '/') {
			if (i == comp)
				return "empty node name specified";
			size_t clen = i - comp;
			if ((clen == 1 && p[comp] == '.') || (clen == 2 && p[comp] == '.' && p[comp + 1] == '.'))
				return "relative paths not allowed";
			comp = i + 1;
		} else if (cp_forbidden(cp)) {
			return "invalid character";
		}
		i += n;
	}
	size_t clen = len - comp;
	if ((clen == 1 && p[comp] == '.') || (clen == 2 && p[comp] == '.' && p[comp + 1] == '.'))
		return "relative paths not allowed";
	return NULL;
}

long path_parent_len(const char *p, size_t len)
{
	if (len <= 1)
		return -1;
	const char *slash = memrchr(p, '/', len);
	if (!slash)
		return -1;
	long n = (long)(slash - p);
	return n == 0 ? 1 : n;
}

const char *path_basename(const char *p, size_t len, size_t *name_len)
{
	const char *slash = memrchr(p, '/', len);
	const char *name = slash ? slash + 1 : p;
	*name_len = len - (size_t)(name - p);
	return name;
}
