/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for what a device sends otter-director: version manifests
 * (docs/director-protocol.md, "Manifest") through parsing and verification against a device
 * of two ECUs, and the Otter-Signature request header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <otter/crypto.h>
#include <otter/tuf.h>

#include "lib/director/auth.h"
#include "lib/director/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static otter_key *keys[2];
static char keyids[2][OTTER_KEYID_HEX_LEN + 1];

static void init_keys(void)
{
	for (int i = 0; i < 2; i++) {
		json_t *obj = NULL;
		if (otter_key_generate(&keys[i], i ? OTTER_KEY_ECDSA_P256 : OTTER_KEY_ED25519,
				       NULL) < 0 ||
		    otter_key_to_tuf(keys[i], &obj, NULL) < 0 ||
		    otter_keyid_of_tuf(obj, keyids[i], NULL) < 0)
			abort();
		json_decref(obj);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dir_manifest *m = NULL;
	dir_sig_header h;
	char *text;

	if (!keys[0])
		init_keys();
	if (dir_manifest_parse(&m, data, size, NULL) == 0) {
		dir_registered_ecu ecus[2] = {
			{ m->primary_serial, keyids[0], keys[0], true },
			{ "secondary", keyids[1], keys[1], false },
		};
		/* Structure checks pass; signatures by these fresh keys never verify. */
		if (dir_manifest_verify(m, m->device_id, ecus, 2, NULL) == 0)
			abort();
		for (size_t i = 0; i < m->n_ecus; i++)
			if (!m->ecus[i].serial || !m->ecus[i].canon || m->ecus[i].report_counter < 0)
				abort();
		dir_manifest_free(m);
	}
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (dir_sig_header_parse(text, &h, NULL) == 0 &&
	    (strlen(h.keyid) != OTTER_KEYID_HEX_LEN || h.siglen > DIR_AUTH_MAX_SIG || h.time < 0))
		abort();
	free(text);
	return 0;
}
