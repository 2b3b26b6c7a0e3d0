/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_RELEASE_H
#define OTTER_RELEASE_H

/*
 * Releases (docs/update-format.md). A release is a TUF target: a small JSON document that
 * says which devices it is for, its version, and which image target goes into which slot
 * class. The same object is carried in the target's custom field under "otter", so that a
 * device picks a release from signed metadata alone and downloads only what it installs.
 *
 *   {
 *     "otter-release": 1,
 *     "compatible": "acme-gateway",
 *     "version": "1.2.0",
 *     "hardware": ["rev-a", "rev-b"],              (optional)
 *     "images": {
 *       "rootfs": {"target": "images/acme-gateway/rootfs-1.2.0.ext4"},
 *       "kernel": {"target": "images/acme-gateway/kernel-1.2.0.img"}
 *     }
 *   }
 *
 * Versions are dot-separated decimal numbers ("1", "1.2", "2024.11.3"), compared number by
 * number, a missing number counting as 0 ("1.2" == "1.2.0" < "1.10").
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OTTER_RELEASE_FORMAT 1
#define OTTER_RELEASE_MAX_IMAGES 16

typedef struct otter_release_image {
	const char *slot_class; /* borrowed from the release */
	const char *target;     /* TUF target path of the image */
} otter_release_image;

typedef struct otter_release {
	json_t *doc; /* the whole object (owned) */
	const char *compatible;
	const char *version;
	const char **hardware; /* NULL when the release is for any hardware */
	size_t n_hardware;
	otter_release_image images[OTTER_RELEASE_MAX_IMAGES];
	size_t n_images;
} otter_release;

/* Validates obj as a release and wraps it (takes a new reference). "what" names it. */
OTTER_PUBLIC int otter_release_from_json(otter_release **out, json_t *obj, const char *what,
					 otter_error *err) OTTER_WARN_UNUSED_RESULT;
/* Parses a release document from bytes (strict JSON intake, 64 KiB at most). */
OTTER_PUBLIC int otter_release_parse(otter_release **out, const uint8_t *buf, size_t len,
				     const char *what, otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC otter_release *otter_release_free(otter_release *r);

/* True if the release is for this device: same compatible string, and hardware_id listed
 * (or no list, or hardware_id NULL when the device has none configured). */
OTTER_PUBLIC bool otter_release_matches(const otter_release *r, const char *compatible,
					const char *hardware_id);

/* The image for a slot class, or NULL. */
OTTER_PUBLIC const otter_release_image *otter_release_image_for(const otter_release *r,
								const char *slot_class);

OTTER_PUBLIC bool otter_version_valid(const char *v);
/* <0, 0, >0 like strcmp; invalid versions sort before valid ones. */
OTTER_PUBLIC int otter_version_compare(const char *a, const char *b);

#define OTTER_RELEASE_DOC_MAX (64 * 1024)

#ifdef __cplusplus
}
#endif

#endif
