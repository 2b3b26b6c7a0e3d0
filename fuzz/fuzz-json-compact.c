/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the compact JSON reader (lib/json/jcompact.h), differential: for every
 * input, jc_check + jc_canonical must succeed exactly when otter_json_parse +
 * otter_json_canonical (jansson) succeed, with the same canonical bytes; every top-level
 * member must be found again by key, and convert to the value jansson read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <otter/json.h>

#include "lib/json/jcompact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = NULL;
	uint8_t *ca = NULL, *cb = NULL;
	size_t la = 0, lb = 0;
	jc_span root;
	bool a_ok, b_ok;

	a_ok = otter_json_parse(&v, data, size, 1 << 20, NULL) == 0 &&
	       otter_json_canonical(v, &ca, &la, NULL) == 0;
	b_ok = jc_check(data, size, 1 << 20, &root, NULL) == 0 &&
	       jc_canonical(root, &cb, &lb, NULL) == 0;
	if (a_ok != b_ok)
		abort();
	if (a_ok && (la != lb || memcmp(ca, cb, la) != 0))
		abort();
	if (a_ok) {
		size_t it = 0;
		jc_span k, val;

		while (jc_object_next(root, &it, &k, &val)) {
			char key[512];
			json_t *mine = NULL;
			jc_span key_str = {k.p - 1, k.len + 2};
			jc_span again;

			if (!jc_string_copy(key_str, key, sizeof(key)))
				continue;
			again = jc_object_get(root, key);
			if (again.p != val.p || again.len != val.len)
				abort();
			if (jc_to_json(val, &mine, NULL) != 0 ||
			    !json_equal(mine, json_object_get(v, key)))
				abort();
			json_decref(mine);
		}
		if (jc_object_size(root) != json_object_size(v))
			abort();
	}
	free(ca);
	free(cb);
	json_decref(v);
	return 0;
}
