/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * otter-repo add-release: the images of a release and its release document
 * (docs/update-format.md), staged in one step.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <otter/release.h>

#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)
DEFINE_CLEANUP_FUNC(otter_release, otter_release_free)

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int run_add_release(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *doc = NULL, *custom = NULL;
	_cleanup_(otter_release_freep) otter_release *rel = NULL;
	_cleanup_free_ uint8_t *text = NULL;
	const char *compatible = args_value(a, "compatible"), *version = args_value(a, "version");
	const char *notes = args_value(a, "notes"), *prefix_opt = args_value(a, "path-prefix");
	const char *const *images, *const *hardware;
	size_t n_images = args_list(a, "image", &images), n_hw = args_list(a, "hardware", &hardware);
	const char *files[OTTER_RELEASE_MAX_IMAGES + 1], *paths[OTTER_RELEASE_MAX_IMAGES + 1];
	json_t *customs[OTTER_RELEASE_MAX_IMAGES + 1] = {0};
	const char *roles[OTTER_RELEASE_MAX_IMAGES + 1] = {0};
	char *owned[OTTER_RELEASE_MAX_IMAGES + 1] = {0};
	char prefix[512], release_path[512], tmpl[] = "/tmp/otter-release-XXXXXX";
	json_t *imgs;
	size_t len;
	int fd = -1, rc = 1;

	if (!compatible || !version || n_images == 0)
		return cli_failf("--compatible, --version and at least one --image CLASS=FILE are "
				 "required (see otter-repo help add-release)");
	if (!otter_version_valid(version))
		return cli_failf("version '%s' refused: versions are dot-separated numbers "
				 "(1.2, 2024.11.3), compared number by number",
				 version);
	if (n_images > OTTER_RELEASE_MAX_IMAGES)
		return cli_failf("at most %d images", OTTER_RELEASE_MAX_IMAGES);
	if (prefix_opt)
		strfmt(prefix, sizeof(prefix), "%s", prefix_opt);
	else
		strfmt(prefix, sizeof(prefix), "images/%s/%s", compatible, version);
	strfmt(release_path, sizeof(release_path), "releases/%s/%s.json", compatible, version);

	doc = json_pack("{s:i, s:s, s:s, s:{}}", "otter-release", OTTER_RELEASE_FORMAT,
			"compatible", compatible, "version", version, "images");
	if (!doc)
		return cli_failf("out of memory");
	imgs = json_object_get(doc, "images");
	for (size_t i = 0; i < n_images; i++) {
		const char *eq = strchr(images[i], '=');
		char cls[80];

		if (!eq || eq == images[i] || !eq[1] || (size_t)(eq - images[i]) >= sizeof(cls)) {
			rc = cli_failf("--image '%s': expected CLASS=FILE", images[i]);
			goto out;
		}
		strfmt(cls, sizeof(cls), "%.*s", (int)(eq - images[i]), images[i]);
		if (json_object_get(imgs, cls)) {
			rc = cli_failf("slot class '%s' given twice", cls);
			goto out;
		}
		files[i] = eq + 1;
		owned[i] = otter_malloc(strlen(prefix) + strlen(cls) + strlen(base_name(files[i])) + 3);
		if (!owned[i]) {
			rc = cli_failf("out of memory");
			goto out;
		}
		strfmt(owned[i], strlen(prefix) + strlen(cls) + strlen(base_name(files[i])) + 3,
		       "%s/%s-%s", prefix, cls, base_name(files[i]));
		paths[i] = owned[i];
		json_object_set_new(imgs, cls, json_pack("{s:s}", "target", paths[i]));
	}
	if (n_hw) {
		json_t *hw = json_array();
		for (size_t i = 0; i < n_hw; i++)
			json_array_append_new(hw, json_string(hardware[i]));
		json_object_set_new(doc, "hardware", hw);
	}
	if (notes)
		json_object_set_new(doc, "notes", json_string(notes));
	/* The device's own parser decides whether this is a valid release. */
	if (otter_release_from_json(&rel, doc, release_path, &err) < 0 ||
	    otter_repo_check_ascii(doc, "release", &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	{
		_cleanup_(repo_freep) repo *r = NULL;
		repo_role *targets;

		if (repo_open(&r, repo_dir_arg(a), 0, &err) < 0) {
			rc = cli_fail(&err);
			goto out;
		}
		targets = repo_role_find(r, "targets");
		if (targets && json_object_get(json_object_get(repo_role_signed(targets), "targets"),
					       release_path)) {
			rc = cli_failf("release %s of %s exists already: a version is never reused "
				       "(devices that saw it would not install it again)",
				       version, compatible);
			goto out;
		}
	}
	if (otter_json_pretty(doc, &text, &len, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	fd = mkstemp(tmpl);
	if (fd < 0 || fileio_write_all(fd, text, len, &err) < 0) {
		rc = cli_failf("writing the release document: %s",
			       fd < 0 ? strerror(errno) : err.msg);
		goto out;
	}
	/* The device picks releases from signed metadata alone: the document rides in custom. */
	custom = json_pack("{s:O}", "otter", doc);
	files[n_images] = tmpl;
	paths[n_images] = release_path;
	customs[n_images] = custom;
	roles[n_images] = "targets"; /* releases are listed at the top level (docs/agent.md) */
	rc = add_targets(repo_dir_arg(a), n_images + 1, files, paths, customs, roles);
	if (rc == 0)
		cli_info("release %s for %s staged (%s); next: sign, then otter-repo publish",
			 version, compatible, release_path);
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmpl);
	}
	for (size_t i = 0; i < n_images; i++)
		free(owned[i]);
	return rc;
}

static const arg_spec add_release_opts[] = {
	{"compatible", ARG_VALUE},
	{"version", ARG_VALUE},
	{"image", ARG_LIST},
	{"hardware", ARG_LIST},
	{"path-prefix", ARG_VALUE},
	{"notes", ARG_VALUE},
	{NULL, ARG_FLAG},
};

const command cmd_add_release = {
	.name = "add-release",
	.summary = "stage a release: its images and its release document",
	.help = "Usage: otter-repo add-release --compatible NAME --version V\n"
		"                              --image CLASS=FILE... [--hardware ID...]\n"
		"                              [--path-prefix DIR] [--notes TEXT]\n"
		"\n"
		"Stages a release for devices whose system.conf says compatible=NAME: each FILE\n"
		"becomes the image target DIR/CLASS-<file name> (DIR defaults to\n"
		"images/NAME/V), and a release document (docs/update-format.md) naming them\n"
		"becomes the target releases/NAME/V.json in the top-level targets role, with the\n"
		"same document in its custom field so that devices choose from signed metadata\n"
		"alone.\n"
		"\n"
		"  --compatible NAME   which devices the release is for\n"
		"  --version V         dot-separated numbers (1.2, 2024.11.3); devices only move\n"
		"                      to higher versions, and a version is never reused\n"
		"  --image CLASS=FILE  the image for slot class CLASS (rootfs, kernel ...);\n"
		"                      repeatable; a release must cover every slot class of the\n"
		"                      devices it is for\n"
		"  --hardware ID...    only for devices with one of these [update] hardware-id\n"
		"  --path-prefix DIR   where the images go in the targets tree\n"
		"  --notes TEXT        free text kept in the release document\n"
		"\n"
		"Then sign the staged targets role and publish, as for add-target.\n",
	.opts = add_release_opts,
	.run = run_add_release,
};
