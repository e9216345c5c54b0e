/* Proves path_invalid accepts exactly the paths ZooKeeper's PathUtils.validatePath accepts
 * (with UTF-8 in place of UTF-16), and that path_parent_len / path_basename split paths. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "tree/path.h"

struct pcase {
	const char *p;
	size_t len; /* 0: strlen */
};

static size_t plen(const struct pcase *c) { return c->len ? c->len : strlen(c->p); }

static void show(const struct pcase *c, char *out, size_t cap)
{
	size_t n = 0, len = plen(c);
	for (size_t i = 0; i < len && n + 5 < cap; i++) {
		unsigned char ch = (unsigned char)c->p[i];
		if (ch >= 0x20 && ch < 0x7f)
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, cap - n, "\\x%02x", ch);
	}
	out[n] = 0;
}

Test(path, accepts_valid_paths, .timeout = 10)
{
	static const struct pcase ok[] = {
		{ "/", 0 }, { "/a", 0 }, { "/a/b", 0 }, { "/\xc3\xa9", 0 } /* é */, { "/.a", 0 },
		{ "/a..", 0 }, { "/..a", 0 }, { "/a.", 0 }, { "/...", 0 }, { "/a/.b/c..", 0 },
		{ "/zookeeper/quota", 0 }, { "/a b", 0 }, { "/~!@#$%^&*()", 0 },
		{ "/\xc2\xa0", 0 } /* U+00A0, first after the C1 block */,
		{ "/\xe0\xa0\x80", 0 } /* U+0800 */, { "/\xed\x9f\xbf", 0 } /* U+D7FF */,
		{ "/\xef\xa4\x80", 0 } /* U+F900 */, { "/\xef\xbf\xaf", 0 } /* U+FFEF */,
		{ "/\xe4\xb8\xad\xe6\x96\x87/x", 0 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char s[128];
		show(&ok[i], s, sizeof s);
		const char *why = path_invalid(ok[i].p, plen(&ok[i]));
		cr_assert_null(why, "\"%s\" rejected: %s", s, why ? why : "");
	}
}

Test(path, rejects_structurally_bad_paths, .timeout = 10)
{
	static const struct pcase bad[] = {
		{ "", 0 }, { "a", 0 }, { "a/b", 0 }, { "/a/", 0 }, { "//", 0 }, { "/a//b", 0 },
		{ "/.", 0 }, { "/..", 0 }, { "/a/./b", 0 }, { "/a/../b", 0 }, { "/a/.", 0 },
		{ "/a/..", 0 }, { "/./a", 0 }, { "/../a", 0 }, { "///", 0 },
		{ "/a\0b", 4 }, { "/\0", 2 }, { "/a/\0", 4 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char s[128];
		show(&bad[i], s, sizeof s);
		cr_assert_not_null(path_invalid(bad[i].p, bad[i].len ? bad[i].len : strlen(bad[i].p)),
				   "\"%s\" accepted", s);
	}
	cr_assert_not_null(path_invalid(NULL, 0));
}

Test(path, rejects_every_control_character, .timeout = 10)
{
	for (int c = 1; c <= 0x1f; c++) {
		char p[] = { '/', 'a', (char)c, 'b' };
		cr_assert_not_null(path_invalid(p, sizeof p), "\\x%02x accepted", c);
	}
	char del[] = { '/', 0x7f };
	cr_assert_not_null(path_invalid(del, sizeof del), "\\x7f accepted");
	/* The C1 block U+0080..U+009F, two-byte encoded. */
	for (int c = 0x80; c <= 0x9f; c++) {
		char p[] = { '/', (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)) };
		cr_assert_not_null(path_invalid(p, sizeof p), "U+%04X accepted", c);
	}
}

static void encode3(int cp, char out[4])
{
	out[0] = '/';
	out[1] = (char)(0xe0 | (cp >> 12));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
}

Test(path, rejects_reserved_code_points, .timeout = 10)
{
	/* U+D800..U+F8FF (surrogates and private use) and U+FFF0..U+FFFF: sample the edges
	 * and the inside of each range, and check the code points right outside pass. */
	static const int bad[] = { 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xf000, 0xf8ff,
				   0xfff0, 0xfff8, 0xfffd, 0xfffe, 0xffff };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char p[4];
		encode3(bad[i], p);
		cr_assert_not_null(path_invalid(p, 4), "U+%04X accepted", bad[i]);
	}
	static const int good[] = { 0xd7ff, 0xf900, 0xffef, 0x0800, 0x4e2d };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char p[4];
		encode3(good[i], p);
		cr_assert_null(path_invalid(p, 4), "U+%04X rejected", good[i]);
	}
	cr_assert_not_null(path_invalid("/\xee\x80\x80", 4), "U+E000 accepted");
}

Test(path, rejects_code_points_above_bmp, .timeout = 10)
{
	static const char *const bad[] = {
		"/\xf0\x90\x80\x80",  /* U+10000 */
		"/\xf0\x9f\x98\x80",  /* U+1F600 */
		"/a\xf4\x8f\xbf\xbf", /* U+10FFFF */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_not_null(path_invalid(bad[i], strlen(bad[i])), "4-byte #%zu accepted", i);
}

Test(path, rejects_malformed_utf8, .timeout = 10)
{
	static const char *const bad[] = {
		"/\xff", "/\xfe", "/a\x80", "/\xbf",           /* never valid / lone continuation */
		"/\xc3", "/\xe2\x82", "/\xf0\x9f\x98",         /* truncated at the end */
		"/\xc3" "a", "/\xe2\x82" "a", "/\xc3/b",       /* bad continuation */
		"/\xc0\xaf", "/\xc1\xbf", "/\xe0\x80\xaf",     /* overlong */
		"/\xf0\x80\x80\xaf", "/\xf4\x90\x80\x80",      /* overlong, above U+10FFFF */
		"/\xf8\x88\x80\x80\x80",                       /* 5-byte form */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct pcase c = { bad[i], 0 };
		char s[128];
		show(&c, s, sizeof s);
		cr_assert_not_null(path_invalid(bad[i], strlen(bad[i])), "\"%s\" accepted", s);
	}
}

Test(path, length_is_explicit, .timeout = 10)
{
	/* Only the first len bytes count: "/a/" cut to 2 is "/a". */
	cr_assert_null(path_invalid("/a/", 2));
	cr_assert_null(path_invalid("/a\xff", 2));
	cr_assert_not_null(path_invalid("/a\xc3\xa9", 3), "a sequence cut by len is truncated");
}

Test(path, parent_len, .timeout = 10)
{
	static const struct { const char *p; long want; } cases[] = {
		{ "/", -1 }, { "", -1 }, { "/a", 1 }, { "/abc", 1 }, { "/a/b", 2 },
		{ "/abc/def/g", 8 }, { "/zookeeper/quota", 10 }, { "a", -1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_assert_eq(path_parent_len(cases[i].p, strlen(cases[i].p)), cases[i].want,
			     "parent of \"%s\"", cases[i].p);
}

Test(path, basename, .timeout = 10)
{
	static const struct { const char *p; const char *name; } cases[] = {
		{ "/a/b", "b" }, { "/abc", "abc" }, { "/", "" }, { "/x/yz/config", "config" },
		{ "noslash", "noslash" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = 99;
		size_t len = strlen(cases[i].p);
		const char *name = path_basename(cases[i].p, len, &n);
		cr_assert_eq(n, strlen(cases[i].name), "basename of \"%s\"", cases[i].p);
		cr_assert_eq(name, cases[i].p + len - n, "basename of \"%s\" points into it", cases[i].p);
		cr_assert_arr_eq(name, cases[i].name, n);
	}
}
