/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the grubenv parser: whatever parses must serialise back into a block that
 * parses to the same variables (or be too large to serialise, which never happens for a block
 * that was itself 1024 bytes, so that aborts too).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/boot/grubenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	grubenv env = {0}, again = {0};
	uint8_t block[GRUBENV_SIZE];

	if (grubenv_parse(&env, data, size, "fuzz", NULL) < 0)
		return 0;
	if (grubenv_serialize(&env, block, NULL) < 0)
		abort();
	if (grubenv_parse(&again, block, sizeof(block), "again", NULL) < 0 || again.n != env.n)
		abort();
	for (size_t i = 0; i < env.n; i++) {
		const char *v = grubenv_get(&again, env.vars[i].name);

		if (!v || strcmp(v, env.vars[i].value) != 0)
			abort();
	}
	grubenv_clear(&again);
	grubenv_clear(&env);
	return 0;
}
