/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter install and otter status for bootloader slots (include/otter/bootslot.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <otter/bootslot.h>
#include <otter/net.h>

#include "otter.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define CHUNK (256u * 1024u)

static int net_write(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	const otter_sink *sink = userdata;

	return sink->write(sink->userdata, data, len, err);
}

/* A path, "-" for standard input, or a URL, pushed into sink. */
static int push(const otter_sink *sink, const char *image, uint64_t len, otter_error *err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = -1;

	if (strstr(image, "://")) {
		otter_net *net = NULL;
		int r = otter_net_new(&net, NULL, err);

		if (r == 0)
			r = otter_net_fetch(net, image, 0, len, net_write, (void *)sink, NULL, err);
		otter_net_free(net);
		return r;
	}
	fd = strcmp(image, "-") == 0 ? dup(STDIN_FILENO)
	                             : open(image, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "install: open image '%s'", image);
	buf = otter_malloc(CHUNK);
	if (!buf)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return otter_error_set_errno(err, errno, "reading '%s'", image);
		if (n == 0)
			return 0;
		r = sink->write(sink->userdata, buf, (size_t)n, err);
		if (r < 0)
			return r;
	}
}

int cli_install_boot_slot(const otter_system *sys, const char *class_name, const char *image,
                          uint64_t len, const uint8_t digest[32])
{
	otter_error err = OTTER_ERROR_INIT;
	otter_boot_slot_writer *w = NULL;
	otter_boot_slot_info before = {0}, after = {0};
	otter_sink sink;
	int r;

	r = otter_boot_slot_writer_open(&w, sys, class_name, len, digest, &err);
	if (r == 0) {
		otter_boot_slot_writer_sink(w, &sink);
		r = push(&sink, image, len, &err);
	}
	if (r == 0)
		r = otter_boot_slot_get_info(otter_boot_slot_writer_target(w), &before, &err);
	if (r == 0)
		r = otter_boot_slot_writer_finish(w, &err);
	if (r == 0)
		r = otter_boot_slot_writer_commit(w, &err);
	if (r == 0)
		r = otter_boot_slot_get_info(otter_boot_slot_writer_target(w), &after, &err);
	if (r == 0 && otter_boot_slot_writer_already_active(w))
		printf("bootloader slot %s: %s is already the active half %u; nothing changed\n",
		       class_name, image, after.active);
	else if (r == 0)
		printf("bootloader slot %s: installed %s into half %u and switched to it "
		       "(was half %u); the next boot runs it\n",
		       class_name, image, after.active, before.active);
	otter_boot_slot_writer_free(w);
	return r < 0 ? cli_fail("install", &err) : EXIT_OK;
}

json_t *cli_boot_slots_json(const otter_system *sys)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < otter_system_n_boot_slots(sys); i++) {
		const otter_boot_slot *bs = otter_system_boot_slot(sys, i);
		otter_error err = OTTER_ERROR_INIT;
		otter_boot_slot_info info;
		json_t *o;

		if (otter_boot_slot_get_info(bs, &info, &err) < 0)
			o = json_pack(
			        "{s:s, s:s, s:s, s:n, s:s}", "class", otter_boot_slot_class(bs),
			        "type", otter_boot_slot_type_name(otter_boot_slot_get_type(bs)),
			        "device", otter_boot_slot_device(bs), "active", "error", err.msg);
		else
			o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:b, s:s?}", "class",
			              otter_boot_slot_class(bs), "type",
			              otter_boot_slot_type_name(otter_boot_slot_get_type(bs)),
			              "device", otter_boot_slot_device(bs), "active",
			              (int)info.active, "active-offset",
			              (json_int_t)info.active_offset, "degraded", info.degraded,
			              "detail", info.detail[0] ? info.detail : NULL);
		json_array_append_new(arr, o);
	}
	return arr;
}

void cli_boot_slots_text(const otter_system *sys)
{
	for (size_t i = 0; i < otter_system_n_boot_slots(sys); i++) {
		const otter_boot_slot *bs = otter_system_boot_slot(sys, i);
		otter_error err = OTTER_ERROR_INIT;
		otter_boot_slot_info info;

		printf("bootloader slot %s (%s, %s):\n", otter_boot_slot_class(bs),
		       otter_boot_slot_type_name(otter_boot_slot_get_type(bs)),
		       otter_boot_slot_device(bs));
		if (otter_boot_slot_get_info(bs, &info, &err) < 0)
			printf("  active: unknown (%s)\n", err.msg);
		else if (otter_boot_slot_get_type(bs) == OTTER_BOOT_SLOT_EMMC_BOOT)
			printf("  active: boot%u (EXT_CSD PARTITION_CONFIG)\n", info.active);
		else
			printf("  active: half %u (at byte %" PRIu64 ")%s%s\n", info.active,
			       info.active_offset, info.degraded ? "; degraded: " : "",
			       info.detail);
	}
}
