/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <otter/release.h>

#include <stdlib.h>
#include <string.h>

#include <otter/json.h>

#include "lib/json/json-util.h"
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define MAX_NAME      128
#define MAX_VERSION   64
#define MAX_HARDWARE  256
#define MAX_COMPONENT 18 /* digits: fits in uint64 */

bool otter_version_valid(const char *v)
{
	size_t digits = 0, len = strlen(v);

	if (len == 0 || len > MAX_VERSION)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (v[i] >= '0' && v[i] <= '9') {
			if (++digits > MAX_COMPONENT)
				return false;
			continue;
		}
		if ((v[i] != '.' && v[i] != '\0') || digits == 0)
			return false;
		digits = 0;
	}
	return true;
}

static const char *next_component(const char *p, uint64_t *out)
{
	uint64_t v = 0;

	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*out = v;
	return *p == '.' ? p + 1 : p;
}

int otter_version_compare(const char *a, const char *b)
{
	bool va = otter_version_valid(a), vb = otter_version_valid(b);

	if (!va || !vb)
		return va == vb ? 0 : (va ? 1 : -1);
	while (*a || *b) {
		uint64_t x, y;
		a = next_component(a, &x);
		b = next_component(b, &y);
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

otter_release *otter_release_free(otter_release *r)
{
	if (r) {
		free(r->hardware);
		json_decref(r->doc);
		free(r);
	}
	return NULL;
}

DEFINE_CLEANUP_FUNC(otter_release, otter_release_free)

static bool valid_class(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

static bool printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

int otter_release_from_json(otter_release **out, json_t *obj, const char *what,
			    otter_error *err)
{
	_cleanup_(otter_release_freep) otter_release *r = NULL;
	json_t *images, *hw, *img;
	const char *cls;
	int64_t format;
	char s[80];
	int rc;

	if (!out || !json_is_object(obj))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: a release must be a JSON object",
				       what);
	r = otter_calloc(1, sizeof(*r));
	if (!r)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r->doc = json_incref(obj);
	if ((rc = json_get_int(obj, "otter-release", true, what, 1, INT32_MAX, &format, err)) < 0)
		return rc;
	if (format != OTTER_RELEASE_FORMAT)
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "%s: release format %lld is not supported (this otter reads "
				       "format %d; update otter first)",
				       what, (long long)format, OTTER_RELEASE_FORMAT);
	if ((rc = json_get_string(obj, "compatible", true, what, &r->compatible, err)) < 0 ||
	    (rc = json_get_string(obj, "version", true, what, &r->version, err)) < 0 ||
	    (rc = json_get_member(obj, "images", JSON_OBJECT, true, what, &images, err)) < 0 ||
	    (rc = json_get_member(obj, "hardware", JSON_ARRAY, false, what, &hw, err)) < 0)
		return rc;
	if (!printable(r->compatible, MAX_NAME))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: invalid \"compatible\"", what);
	if (!otter_version_valid(r->version)) {
		str_sanitize(r->version, s, sizeof(s));
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: version '%s' is not dot-separated numbers", what, s);
	}
	if (hw) {
		size_t i;
		json_t *h;

		if (json_array_size(hw) == 0 || json_array_size(hw) > MAX_HARDWARE)
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: \"hardware\" must list 1 to %d ids", what,
					       MAX_HARDWARE);
		r->hardware = otter_reallocarray(NULL, json_array_size(hw), sizeof(*r->hardware));
		if (!r->hardware)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		json_array_foreach(hw, i, h) {
			if (!json_is_string(h) || !printable(json_string_value(h), MAX_NAME))
				return otter_error_set(err, OTTER_E_FORMAT,
						       "%s: invalid hardware id", what);
			r->hardware[r->n_hardware++] = json_string_value(h);
		}
	}
	if (json_object_size(images) == 0 || json_object_size(images) > OTTER_RELEASE_MAX_IMAGES)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"images\" must name 1 to %d slot "
					    "classes",
				       what, OTTER_RELEASE_MAX_IMAGES);
	json_object_foreach(images, cls, img) {
		otter_release_image *im = &r->images[r->n_images];
		char w[200];

		str_sanitize(cls, s, sizeof(s));
		strfmt(w, sizeof(w), "%s: images.%s", what, s);
		if (!valid_class(cls))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: slot class names are [a-z0-9_-]", w);
		if (!json_is_object(img))
			return otter_error_set(err, OTTER_E_FORMAT, "%s: must be an object", w);
		if ((rc = json_get_string(img, "target", true, w, &im->target, err)) < 0)
			return rc;
		if (!target_path_is_safe(im->target, OTTER_TUF_MAX_TARGET_PATH))
			return otter_error_set(err, OTTER_E_FORMAT, "%s: unsafe target path", w);
		im->slot_class = cls;
		r->n_images++;
	}
	*out = TAKE_PTR(r);
	return 0;
}

int otter_release_parse(otter_release **out, const uint8_t *buf, size_t len, const char *what,
			otter_error *err)
{
	_cleanup_(json_decrefp) json_t *doc = NULL;
	int r = otter_json_parse(&doc, buf, len, OTTER_RELEASE_DOC_MAX, err);

	if (r < 0)
		return otter_error_prefix(err, r, "%s", what);
	return otter_release_from_json(out, doc, what, err);
}

bool otter_release_matches(const otter_release *r, const char *compatible,
			   const char *hardware_id)
{
	if (strcmp(r->compatible, compatible) != 0)
		return false;
	if (!r->hardware)
		return true;
	if (!hardware_id)
		return false;
	for (size_t i = 0; i < r->n_hardware; i++)
		if (strcmp(r->hardware[i], hardware_id) == 0)
			return true;
	return false;
}

const otter_release_image *otter_release_image_for(const otter_release *r,
						   const char *slot_class)
{
	for (size_t i = 0; i < r->n_images; i++)
		if (strcmp(r->images[i].slot_class, slot_class) == 0)
			return &r->images[i];
	return NULL;
}
