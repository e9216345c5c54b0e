/* 4lw recognition and formatting helpers; see fourlw.h. */
#include "net/fourlw.h"
#include "zab/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fourlw_lookup(const uint8_t word[4])
{
	for (int i = 0; i < FLW_COUNT; i++)
		if (memcmp(word, fourlw_names[i], 4) == 0)
			return i;
	return -1;
}

void zbuf_printf(struct zbuf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof tmp)
		n = sizeof tmp - 1;
	zbuf_append(b, tmp, (size_t)n); /* past the bound the answer is cut short */
}
