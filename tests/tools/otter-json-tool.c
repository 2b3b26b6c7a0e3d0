/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test helper: exposes libotter's JSON and key code to the integration suite, so that it can
 * be cross-checked against an independent implementation (python3-securesystemslib).
 *
 *   otter-json-tool canonical < doc.json    canonical JSON of the document, raw bytes
 *   otter-json-tool keyid < key.json        key id of a TUF KEY object
 *   otter-json-tool verify < signed.json    threshold check of a root's self-signature
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <otter/crypto.h>
#include <otter/json.h>

#include "lib/tuf/tuf-metadata.h"

static uint8_t *slurp(size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);

	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, stdin);
		n += got;
		if (got == 0)
			break;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *doc = NULL;
	uint8_t *in, *out = NULL;
	size_t len, outlen;
	int r = 0;

	if (argc != 2)
		return 2;
	in = slurp(&len);
	if (strcmp(argv[1], "verify") == 0) {
		tuf_metadata *md = NULL;
		r = tuf_metadata_parse(&md, TUF_ROOT, in, len, "stdin", &err);
		if (r == 0)
			r = tuf_verify_threshold(md, &md->keys, &md->roles[TUF_ROOT], "stdin", &err);
		tuf_metadata_free(md);
	} else {
		r = otter_json_parse(&doc, in, len, len, &err);
		if (r == 0 && strcmp(argv[1], "canonical") == 0) {
			r = otter_json_canonical(doc, &out, &outlen, &err);
			if (r == 0)
				fwrite(out, 1, outlen, stdout);
		} else if (r == 0 && strcmp(argv[1], "keyid") == 0) {
			char id[65];
			r = otter_keyid_of_tuf(doc, id, &err);
			if (r == 0)
				printf("%s\n", id);
		}
	}
	if (r < 0)
		fprintf(stderr, "otter-json-tool: %s\n", err.msg);
	free(out);
	free(in);
	json_decref(doc);
	return r < 0 ? 1 : 0;
}
