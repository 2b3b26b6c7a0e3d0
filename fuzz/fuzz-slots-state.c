/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the A/B slot bookkeeping (<data-directory>/slots.json, untrusted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/slot/slot-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = NULL;

	if (ab_state_parse(&root, data, size, NULL) < 0)
		return 0;
	/* What was accepted must serialise and be accepted again. */
	char *text = json_dumps(root, JSON_COMPACT);
	json_t *again = NULL;
	if (!text || ab_state_parse(&again, (const uint8_t *)text, strlen(text), NULL) < 0 ||
	    !json_equal(root, again))
		abort();
	free(text);
	json_decref(again);
	json_decref(root);
	return 0;
}
