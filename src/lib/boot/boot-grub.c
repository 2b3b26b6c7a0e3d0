/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GRUB backend: ORDER, <name>_OK and <name>_TRY in the grubenv file. <name>_TRY counts the
 * attempts made since the slot was activated or confirmed (contrib/grub/grub.cfg increments
 * it before booting), so tries left = tries - TRY while OK=1, and 0 when OK=0. With tries=1
 * this is exactly the RAUC convention (TRY=0: may be tried once).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "boot-private.h"
#include "grubenv.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

static int read_env(otter_boot *boot, grubenv *env, otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	/* One byte over the block size, so that a longer file is reported as such. */
	r = fileio_read(AT_FDCWD, boot->env_path, GRUBENV_SIZE + 1, &data, &len, err);
	if (r == OTTER_E_TOO_LARGE) {
		otter_error_clear(err);
		return otter_error_set(err, OTTER_E_BOOT,
				       "%s: larger than a GRUB environment block (%u bytes)",
				       boot->env_path, GRUBENV_SIZE);
	}
	if (r < 0)
		return otter_error_prefix(err, r == OTTER_E_NOT_FOUND ? OTTER_E_BOOT : r,
					  "GRUB environment");
	return grubenv_parse(env, data, len, boot->env_path, err);
}

static int grub_load(otter_boot *boot, struct boot_env *benv, otter_error *err)
{
	grubenv env = {0};
	const char *v;
	int r;

	r = read_env(boot, &env, err);
	if (r < 0)
		return r;
	v = grubenv_get(&env, "ORDER");
	if (v) {
		r = boot_parse_order(boot, "ORDER", v, benv, err);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < boot->n_names; i++) {
		char name[64];
		const char *ok, *try;
		uint64_t tries_used = 0;

		ok = grubenv_get(&env, strfmt(name, sizeof(name), "%s_OK", boot->names[i]));
		try = grubenv_get(&env, strfmt(name, sizeof(name), "%s_TRY", boot->names[i]));
		if (ok && strcmp(ok, "0") != 0 && strcmp(ok, "1") != 0) {
			r = otter_error_set(err, OTTER_E_BOOT, "%s: %s_OK must be 0 or 1",
					    boot->env_path, boot->names[i]);
			goto out;
		}
		if (try && parse_u64(try, &tries_used) < 0) {
			r = otter_error_set(err, OTTER_E_BOOT, "%s: %s_TRY is not a number",
					    boot->env_path, boot->names[i]);
			goto out;
		}
		if (ok && strcmp(ok, "0") == 0)
			benv->left[i] = 0;
		else
			benv->left[i] = tries_used >= boot->tries ? 0
								 : boot->tries - (unsigned)tries_used;
	}
	r = 0;
out:
	grubenv_clear(&env);
	return r;
}

static int grub_store(otter_boot *boot, const struct boot_env *benv, otter_error *err)
{
	grubenv env = {0};
	uint8_t block[GRUBENV_SIZE];
	char order[BOOT_ORDER_MAX + 1];
	int r;

	/* Read again and change only our variables: others (saved_entry ...) are kept. */
	r = read_env(boot, &env, err);
	if (r < 0)
		return r;
	if (benv->order_dirty) {
		boot_format_order(boot, benv, order, sizeof(order));
		r = grubenv_set(&env, "ORDER", order, err);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < boot->n_names; i++) {
		char name[64], val[16];
		unsigned left = benv->left[i];

		if (!benv->dirty[i])
			continue;
		r = grubenv_set(&env, strfmt(name, sizeof(name), "%s_OK", boot->names[i]),
				left > 0 ? "1" : "0", err);
		if (r == 0)
			r = grubenv_set(&env, strfmt(name, sizeof(name), "%s_TRY", boot->names[i]),
					strfmt(val, sizeof(val), "%u",
					       left > 0 ? boot->tries - left : 0),
					err);
		if (r < 0)
			goto out;
	}
	r = grubenv_serialize(&env, block, err);
	if (r < 0)
		goto out;
	r = fileio_write_atomic_path(boot->env_path, block, sizeof(block), 0644, err);
	if (r < 0)
		r = otter_error_prefix(err, r, "writing %s", boot->env_path);
out:
	grubenv_clear(&env);
	return r;
}

int grub_env_damage(otter_boot *boot, char *out, size_t size, otter_error *err)
{
	grubenv env = {0};
	int r = read_env(boot, &env, err);

	if (r < 0)
		return r;
	out[0] = '\0';
	if (env.damage)
		strfmt(out, size, "%s", env.damage);
	grubenv_clear(&env);
	return 0;
}

const struct boot_backend boot_backend_grub = {
	.name = "grub",
	.load = grub_load,
	.store = grub_store,
};
