/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the TUF metadata parser of one role (FUZZ_ROLE, set by the build): parse,
 * then run what a client runs on parsed metadata: signature threshold checks against the
 * file's own keys, metafile lookups, delegation matching and hash-bin naming.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/tuf/tuf-metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	otter_error err = OTTER_ERROR_INIT;
	tuf_metadata *md = NULL;
	const char *name;
	json_t *v;

	if (size > 1 << 20)
		return 0;
	if (tuf_metadata_parse(&md, FUZZ_ROLE, data, size, "fuzz.json", &err) < 0)
		return 0;
	switch (md->type) {
	case TUF_ROOT:
		for (int t = 0; t < _TUF_ROLE_TYPE_MAX; t++)
			(void)tuf_verify_threshold(md, &md->keys, &md->roles[t], "root", NULL);
		break;
	case TUF_TIMESTAMP:
		(void)tuf_check_length_hashes(data, size, md->snapshot_meta.has_length,
					      md->snapshot_meta.length, md->snapshot_meta.hashes,
					      "x", NULL);
		break;
	case TUF_SNAPSHOT:
		json_object_foreach(md->meta, name, v) {
			tuf_metafile mf;
			(void)tuf_metafile_parse(v, name, &mf, NULL);
		}
		break;
	case TUF_TARGETS:
		for (size_t i = 0; i < md->n_delegations; i++) {
			(void)tuf_delegation_matches(&md->delegations[i], "a/b/c.txt");
			(void)tuf_count_valid_signatures(md, &md->keys, &md->delegations[i].keys);
		}
		if (md->succinct) {
			char *bin = NULL;
			if (tuf_succinct_bin_name(&md->succinct_roles, "a/b/c.txt", &bin, NULL) == 0)
				free(bin);
		}
		json_object_foreach(md->targets, name, v)
			(void)tuf_path_matches_pattern(name, "*/?*[a-z]");
		break;
	default:
		abort();
	}
	tuf_metadata_free(md);
	return 0;
}
