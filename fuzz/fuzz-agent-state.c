/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the agent's state file (<data-directory>/agent.json, untrusted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/agent/agent-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	agent_state st = {0};
	json_t *o;

	if (agent_state_parse(data, size, &st, NULL) < 0)
		return 0;
	/* What was accepted must serialise and parse back the same. */
	o = agent_state_to_json(&st);
	if (o) {
		char *text = json_dumps(o, 0);
		agent_state again = {0};
		if (!text || agent_state_parse((const uint8_t *)text, strlen(text), &again, NULL) < 0 ||
		    again.state != st.state || again.n_failed != st.n_failed)
			abort();
		free(text);
		json_decref(o);
	}
	return 0;
}
