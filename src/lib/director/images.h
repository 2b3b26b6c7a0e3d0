/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_IMAGES_H
#define OTTER_LIB_DIRECTOR_IMAGES_H

/*
 * The image repository as the director sees it: before anything is assigned, the director
 * refreshes its trusted copy of the image repository's metadata with libotter's TUF client
 * (the same checks a device makes: signatures, versions, expiry, delegations) and looks the
 * target up. A target that no trusted role signs is never assigned; what an assignment
 * carries (length, hashes, custom) is copied from that signed entry, never from the request.
 */

#include <stdint.h>

#include <otter/error.h>

/* An image-repository target as the director stores it: hashes and custom as compact JSON
 * with sorted members (custom NULL when the entry has none). */
typedef struct dir_image_target {
	char *path;
	int64_t length;
	char *hashes;
	char *custom;
} dir_image_target;

void dir_image_target_clear(dir_image_target *t);

/*
 * Refreshes the metadata in metadata_dir (which holds the trusted root.json) from
 * metadata_url and looks path up. Errors: OTTER_E_INVALID for an unsafe path,
 * OTTER_E_NOT_FOUND when the image repository does not sign path, OTTER_E_NETWORK when its
 * metadata cannot be fetched or does not verify (the message says which check failed).
 */
int dir_image_lookup(const char *metadata_url, const char *metadata_dir, const char *path,
		     dir_image_target *out, otter_error *err);

#endif
