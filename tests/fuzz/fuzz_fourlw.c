/* fuzz_fourlw: fourlw_lookup on a connection's first four bytes and config_fourlw_mask on
 * a whitelist value. Proves: no out-of-bounds access; lookup returns -1 or the index of the
 * name equal to the four bytes, and finds every name; the mask has no bit past FLW_COUNT
 * and holds the bit of every whole word of the list that is a name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/fourlw.h"
#include "zab/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int checked;
	if (!checked) {
		for (int i = 0; i < FLW_COUNT; i++) {
			FUZZ_CHECK(fourlw_lookup((const uint8_t *)fourlw_names[i]) == i);
			FUZZ_CHECK(config_fourlw_mask(fourlw_names[i]) == 1u << i);
		}
		FUZZ_CHECK(config_fourlw_mask("*") == (1u << FLW_COUNT) - 1);
		checked = 1;
	}
	if (size >= 4) {
		uint8_t *w = malloc(4); /* exactly four bytes: ASan catches a fifth */
		FUZZ_CHECK(w);
		memcpy(w, data, 4);
		int i = fourlw_lookup(w);
		FUZZ_CHECK(i >= -1 && i < FLW_COUNT);
		if (i >= 0)
			FUZZ_CHECK(memcmp(fourlw_names[i], w, 4) == 0);
		else
			for (int k = 0; k < FLW_COUNT; k++)
				FUZZ_CHECK(memcmp(fourlw_names[k], w, 4) != 0);
		free(w);
	}
	char *v = malloc(size + 1);
	FUZZ_CHECK(v);
	memcpy(v, data, size);
	v[size] = 0;
	uint32_t mask = config_fourlw_mask(v);
	FUZZ_CHECK((mask >> FLW_COUNT) == 0);
	FUZZ_CHECK(config_fourlw_mask(v) == mask);
	/* Every whole word (split on ',' and whitespace the way zoo.cfg lists are written)
	 * that names a command must be in the mask. */
	if (!memchr(v, 0, size)) {
		char *save = NULL;
		for (char *tok = strtok_r(v, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
			for (int k = 0; k < FLW_COUNT; k++)
				if (strcmp(tok, fourlw_names[k]) == 0)
					FUZZ_CHECK(mask & (1u << k));
	}
	free(v);
	return 0;
}
