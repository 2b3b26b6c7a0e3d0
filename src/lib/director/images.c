/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "lib/director/images.h"

#include <string.h>

#include <otter/tuf.h>

#include "lib/limits.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(otter_tuf_updater, otter_tuf_updater_free)
DEFINE_CLEANUP_FUNC(otter_tuf_target, otter_tuf_target_free)

void dir_image_target_clear(dir_image_target *t)
{
	free(t->path);
	free(t->hashes);
	free(t->custom);
	memset(t, 0, sizeof(*t));
}

static char *dump_sorted(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* The image repository could not answer truthfully; the message keeps the cause. */
static int unreachable(otter_error *err)
{
	if (err)
		err->code = OTTER_E_NETWORK;
	return OTTER_E_NETWORK;
}

int dir_image_lookup(const char *metadata_url, const char *metadata_dir, const char *path,
		     dir_image_target *out, otter_error *err)
{
	_cleanup_(otter_tuf_updater_freep) otter_tuf_updater *u = NULL;
	_cleanup_(otter_tuf_target_freep) otter_tuf_target *t = NULL;
	otter_tuf_options o;
	dir_image_target res = {0};
	char safe[128];
	int r;

	str_sanitize(path, safe, sizeof(safe));
	if (!target_path_is_safe(path, OTTER_TUF_MAX_TARGET_PATH))
		return otter_error_set(err, OTTER_E_INVALID,
				       "target '%s' is not a safe relative target path", safe);
	if (!metadata_url || !metadata_dir)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "no image repository configured: set its metadata URL and "
				       "the folder with its trusted root.json");

	otter_tuf_options_init(&o);
	o.metadata_dir = metadata_dir;
	o.metadata_url = metadata_url;
	r = otter_tuf_updater_new(&u, &o, err);
	if (r == 0)
		r = otter_tuf_refresh(u, err);
	if (r < 0) {
		/* Whatever failed (unreachable, bad signature, expired), the director cannot
		 * tell what the image repository signs: nothing is assigned. */
		otter_error_prefix(err, r, "image repository at '%s'", metadata_url);
		return unreachable(err);
	}
	r = otter_tuf_find_target(u, path, &t, err);
	if (r == OTTER_E_NOT_FOUND) {
		otter_error_clear(err);
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "target '%s' is not signed by the image repository: publish "
				       "it there (otter-repo) before assigning it",
				       safe);
	}
	if (r < 0) {
		otter_error_prefix(err, r, "image repository: looking up '%s'", safe);
		return unreachable(err);
	}
	if (otter_tuf_target_length(t) > (uint64_t)INT64_MAX)
		return otter_error_set(err, OTTER_E_FORMAT, "target '%s': length out of range",
				       safe);
	res.length = (int64_t)otter_tuf_target_length(t);
	res.path = otter_strdup(path);
	res.hashes = dump_sorted(otter_tuf_target_hashes(t));
	if (otter_tuf_target_custom(t))
		res.custom = dump_sorted(otter_tuf_target_custom(t));
	if (!res.path || !res.hashes || (otter_tuf_target_custom(t) && !res.custom)) {
		dir_image_target_clear(&res);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	*out = res;
	return 0;
}
