/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for strict JSON intake and canonical JSON: whatever parses must canonicalise to
 * a document that parses again to an equal value and canonicalises to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <otter/json.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = NULL, *again = NULL;
	uint8_t *c1 = NULL, *c2 = NULL;
	size_t l1, l2;

	if (otter_json_parse(&v, data, size, 1 << 20, NULL) < 0)
		return 0;
	if (otter_json_canonical(v, &c1, &l1, NULL) == 0) {
		/* Canonical output may contain raw control bytes, which strict JSON refuses;
		 * only check the round trip when it parses. */
		if (otter_json_parse(&again, c1, l1, 1 << 21, NULL) == 0) {
			if (!json_equal(v, again))
				abort();
			if (otter_json_canonical(again, &c2, &l2, NULL) != 0 || l1 != l2 ||
			    memcmp(c1, c2, l1) != 0)
				abort();
		}
	}
	free(c1);
	free(c2);
	json_decref(again);
	json_decref(v);
	return 0;
}
