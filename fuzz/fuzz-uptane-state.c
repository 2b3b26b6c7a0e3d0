/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the Uptane client's state file (<data-directory>/uptane.json, untrusted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/agent/agent-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uptane_state st, again;
	json_t *o;
	char *text;

	if (uptane_state_parse(data, size, &st, NULL) < 0)
		return 0;
	/* What was accepted must serialise and parse back the same. */
	o = uptane_state_to_json(&st);
	if (!o)
		return 0;
	text = json_dumps(o, 0);
	if (!text || uptane_state_parse((const uint8_t *)text, strlen(text), &again, NULL) < 0 ||
	    again.counter != st.counter || again.result != st.result ||
	    again.registered != st.registered ||
	    again.n_secondaries != st.n_secondaries || strcmp(again.target.path, st.target.path) != 0 ||
	    again.installed.length != st.installed.length)
		abort();
	free(text);
	json_decref(o);
	return 0;
}
