/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * U-Boot backend through libubootenv: BOOT_ORDER and BOOT_<name>_LEFT. libubootenv follows
 * fw_env.config, checks the CRC of both copies of a redundant environment, and stores by
 * writing the copy not in use with a higher flag, then fsync(); so one libuboot_env_store()
 * is one atomic change. With a single (non-redundant) environment U-Boot itself offers no
 * atomicity: use a redundant one (docs/ab-updates.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libuboot.h>

#include "boot-private.h"
#include "util/strutil.h"

/* libubootenv's values are bounded by the environment size; ours are short. */
#define VALUE_MAX 256u

static void ctx_freep(struct uboot_ctx **ctx)
{
	if (*ctx) {
		libuboot_close(*ctx);
		libuboot_exit(*ctx);
	}
}

/*
 * Opens the environment. *valid tells whether a copy with a good CRC was found; without one
 * libubootenv hands out an empty environment.
 */
static int open_env(otter_boot *boot, struct uboot_ctx **out, bool *valid, otter_error *err)
{
	struct uboot_ctx *ctx = NULL;
	int r;

	if (libuboot_initialize(&ctx, NULL) < 0 || !ctx)
		return otter_error_set(err, OTTER_E_NOMEM, "libubootenv: initialisation failed");
	r = libuboot_read_config(ctx, boot->env_path);
	if (r < 0) {
		libuboot_exit(ctx);
		return otter_error_set(err, OTTER_E_BOOT,
				       "%s: cannot use this fw_env.config (%s): check that it "
				       "exists and that the environment device it names exists",
				       boot->env_path, strerror(-r));
	}
	r = libuboot_open(ctx);
	if (r < 0 && r != -ENODATA) {
		libuboot_exit(ctx);
		return otter_error_set(err, OTTER_E_BOOT,
				       "U-Boot environment of %s: cannot read it (%s)",
				       boot->env_path, strerror(-r));
	}
	*valid = r == 0;
	*out = ctx;
	return 0;
}

/*
 * The value of name, or *found false. A value that does not fit out is an error naming the
 * variable, the start of its value, its length and the limit.
 */
static int get_value(otter_boot *boot, struct uboot_ctx *ctx, const char *name, char *out,
		     size_t size, bool *found, otter_error *err)
{
	char *v = libuboot_get_env(ctx, name);
	size_t len;

	*found = v != NULL;
	if (!v)
		return 0;
	len = strlen(v);
	if (len >= size) {
		char safe[40];

		str_sanitize(v, safe, sizeof(safe));
		free(v);
		return otter_error_set(err, OTTER_E_BOOT,
				       "%s: %s is %zu bytes long ('%s...'), more than the %zu this "
				       "otter reads: set it again with fw_setenv",
				       boot->env_path, name, len, safe, size - 1);
	}
	memcpy(out, v, len + 1);
	free(v);
	return 0;
}

static int uboot_load(otter_boot *boot, struct boot_env *env, otter_error *err)
{
	__attribute__((cleanup(ctx_freep))) struct uboot_ctx *ctx = NULL;
	char value[VALUE_MAX];
	bool valid, found;
	int r;

	r = open_env(boot, &ctx, &valid, err);
	if (r < 0)
		return r;
	/* No valid copy: U-Boot boots with its built-in defaults, and so do the scripts. */
	if (!valid)
		return 0;
	r = get_value(boot, ctx, "BOOT_ORDER", value, sizeof(value), &found, err);
	if (r < 0)
		return r;
	if (found) {
		r = boot_parse_order(boot, "BOOT_ORDER", value, env, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < boot->n_names; i++) {
		char name[64];
		uint64_t left;

		strfmt(name, sizeof(name), "BOOT_%s_LEFT", boot->names[i]);
		r = get_value(boot, ctx, name, value, sizeof(value), &found, err);
		if (r < 0)
			return r;
		if (found && parse_u64_range(value, 0, 1000, &left) < 0) {
			char safe[40];

			str_sanitize(value, safe, sizeof(safe));
			return otter_error_set(err, OTTER_E_BOOT,
					       "%s: %s is '%s', not a number from 0 to 1000",
					       boot->env_path, name, safe);
		}
		if (found)
			env->left[i] = (unsigned)left;
	}
	return 0;
}

static int uboot_store(otter_boot *boot, const struct boot_env *env, otter_error *err)
{
	__attribute__((cleanup(ctx_freep))) struct uboot_ctx *ctx = NULL;
	char order[BOOT_ORDER_MAX + 1];
	bool valid;
	int r;

	r = open_env(boot, &ctx, &valid, err);
	if (r < 0)
		return r;
	if (!valid)
		return otter_error_set(err, OTTER_E_BOOT,
				       "%s: the U-Boot environment has no valid copy; writing one "
				       "now would replace U-Boot's defaults. Boot once with U-Boot "
				       "saving its environment, or create it with fw_setenv -f "
				       "DEFAULT-ENV",
				       boot->env_path);
	if (env->order_dirty) {
		boot_format_order(boot, env, order, sizeof(order));
		if (libuboot_set_env(ctx, "BOOT_ORDER", order) < 0)
			return otter_error_set(err, OTTER_E_BOOT, "%s: cannot set BOOT_ORDER",
					       boot->env_path);
	}
	for (size_t i = 0; i < boot->n_names; i++) {
		char name[64], val[16];

		if (!env->dirty[i])
			continue;
		strfmt(name, sizeof(name), "BOOT_%s_LEFT", boot->names[i]);
		if (libuboot_set_env(ctx, name, strfmt(val, sizeof(val), "%u", env->left[i])) < 0)
			return otter_error_set(err, OTTER_E_BOOT, "%s: cannot set %s",
					       boot->env_path, name);
	}
	r = libuboot_env_store(ctx);
	if (r < 0)
		return otter_error_set(err, OTTER_E_IO,
				       "%s: writing the U-Boot environment failed (%s)",
				       boot->env_path, strerror(-r));
	return 0;
}

const struct boot_backend boot_backend_uboot = {
	.name = "uboot",
	.load = uboot_load,
	.store = uboot_store,
};
