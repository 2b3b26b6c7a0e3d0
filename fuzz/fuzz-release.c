/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for release documents (docs/update-format.md) and version comparison. */
#include <stdint.h>
#include <stdlib.h>

#include <otter/release.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	otter_release *r = NULL;

	if (otter_release_parse(&r, data, size, "fuzz", NULL) < 0)
		return 0;
	(void)otter_release_matches(r, "acme", "rev-a");
	for (size_t i = 0; i < r->n_images; i++)
		(void)otter_release_image_for(r, r->images[i].slot_class);
	if (otter_version_compare(r->version, r->version) != 0)
		abort();
	if (otter_version_compare(r->version, "1.2.3") != -otter_version_compare("1.2.3", r->version))
		abort();
	otter_release_free(r);
	return 0;
}
