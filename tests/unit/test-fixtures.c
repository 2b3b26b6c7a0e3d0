/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-common.h"
#include "test-fixtures.h"

#include <fcntl.h>

#include "lib/boot/grubenv.h"
#include "util/fileio.h"

void tfx_write_file(const char *path, const void *data, size_t len)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(fileio_write_atomic_path(path, data, len, 0644, &err));
}

uint8_t *tfx_read_all(const char *path, size_t *len)
{
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *data = NULL;

	assert_ok(fileio_read(AT_FDCWD, path, 64u << 20, &data, len, &err));
	return data;
}

void tfx_write_grubenv(const char *path, const char *const *kv)
{
	otter_error err = OTTER_ERROR_INIT;
	grubenv env = {0};
	uint8_t block[GRUBENV_SIZE];

	for (size_t i = 0; kv && kv[i]; i += 2)
		assert_ok(grubenv_set(&env, kv[i], kv[i + 1], &err));
	assert_ok(grubenv_serialize(&env, block, &err));
	grubenv_clear(&env);
	tfx_write_file(path, block, sizeof(block));
}

char *tfx_grubvar(const char *path, const char *name)
{
	otter_error err = OTTER_ERROR_INIT;
	size_t len;
	uint8_t *data = tfx_read_all(path, &len);
	grubenv env = {0};
	const char *v;
	char *out;

	assert_ok(grubenv_parse(&env, data, len, path, &err));
	v = grubenv_get(&env, name);
	out = v ? strdup(v) : NULL;
	grubenv_clear(&env);
	free(data);
	return out;
}

void tfx_set_cmdline(const char *path, const char *bootname)
{
	char line[64];

	snprintf(line, sizeof(line), "root=/dev/x otter.slot=%s\n", bootname);
	tfx_write_file(path, line, strlen(line));
}
