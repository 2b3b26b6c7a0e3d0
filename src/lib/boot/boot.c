/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "boot-private.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/args.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

#define CMDLINE_MAX (64u * 1024u)
#define CMDLINE_KEY "otter.slot="

bool otter_bootname_is_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > OTTER_BOOTNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

const char *otter_bootloader_name(otter_bootloader b)
{
	return b == OTTER_BOOTLOADER_GRUB ? "grub" : "uboot";
}

/* Environment copies that a legacy fw_env.config names: its lines that are not comments. */
static int uboot_env_copies(const char *path, unsigned *copies, otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len, i = 0;
	int r;

	r = fileio_read(AT_FDCWD, path, 64 * 1024, &data, &len, err);
	if (r < 0)
		return r;
	*copies = 0;
	while (i < len) {
		size_t end = i;
		bool content = false, comment = false;

		while (end < len && data[end] != '\n')
			end++;
		for (size_t j = i; j < end && !content && !comment; j++) {
			if (data[j] == '#')
				comment = true;
			else if (data[j] != ' ' && data[j] != '\t' && data[j] != '\r')
				content = true;
		}
		if (content)
			(*copies)++;
		i = end + 1;
	}
	return 0;
}

int otter_boot_env_warning(otter_boot *boot, char *out, size_t size, otter_error *err)
{
	unsigned copies = 0;
	int r;

	ARG_NONNULL(err, "boot", boot);
	ARG_NONNULL(err, "boot", out);
	ARG_CHECK(err, "boot", size > 0);
	out[0] = '\0';
	if (boot->bootloader == OTTER_BOOTLOADER_GRUB) {
		char why[128];

		r = grub_env_damage(boot, why, sizeof(why), err);
		if (r < 0 || !why[0])
			return r;
		strfmt(out, size,
		       "%s is torn (%s): GRUB reads it but cannot save into it, so it counts no "
		       "boot tries; otter rewrites it whole at its next change (the agent "
		       "confirms the running slot at once), or recreate it with grub-editenv "
		       "FILE create",
		       boot->env_path, why);
		return 1;
	}
	r = uboot_env_copies(boot->env_path, &copies, err);
	if (r < 0)
		return otter_error_prefix(err, r, "U-Boot environment configuration");
	if (copies == 1)
		strfmt(out, size,
		       "%s describes a single U-Boot environment, with no redundant copy: a power "
		       "cut while it is written leaves U-Boot on its built-in defaults, which can "
		       "lose an activated update or a confirmation; configure a redundant "
		       "environment (docs/ab-updates.md, \"Single-copy environments\")",
		       boot->env_path);
	return 0;
}

otter_boot *otter_boot_free(otter_boot *boot)
{
	if (!boot)
		return NULL;
	free(boot->env_path);
	free(boot->cmdline_path);
	for (size_t i = 0; i < boot->n_names; i++)
		free(boot->names[i]);
	free(boot);
	return NULL;
}

int otter_boot_new(otter_boot **out, const otter_boot_options *opts, otter_error *err)
{
	otter_boot *boot;

	ARG_NONNULL(err, "boot", out);
	ARG_NONNULL(err, "boot", opts);
	ARG_NONNULL(err, "boot", opts->env_path);
	ARG_NONNULL(err, "boot", opts->bootnames);
	if (opts->version != OTTER_BOOT_OPTIONS_VERSION)
		return otter_error_set(err, OTTER_E_INVALID, "boot: unknown options version %u",
				       opts->version);
	if (opts->bootloader != OTTER_BOOTLOADER_UBOOT && opts->bootloader != OTTER_BOOTLOADER_GRUB)
		return otter_error_set(err, OTTER_E_INVALID, "boot: unknown bootloader %d",
				       (int)opts->bootloader);
	if (opts->tries < 1 || opts->tries > OTTER_BOOT_TRIES_MAX)
		return otter_error_set(err, OTTER_E_INVALID, "boot: tries must be 1..%u, not %u",
				       OTTER_BOOT_TRIES_MAX, opts->tries);
	if (opts->n_bootnames < 2 || opts->n_bootnames > OTTER_BOOT_MAX_BOOTNAMES)
		return otter_error_set(err, OTTER_E_INVALID,
				       "boot: need 2..%d bootnames, not %zu",
				       OTTER_BOOT_MAX_BOOTNAMES, opts->n_bootnames);
	for (size_t i = 0; i < opts->n_bootnames; i++) {
		if (!opts->bootnames[i] || !otter_bootname_is_valid(opts->bootnames[i]))
			return otter_error_set(err, OTTER_E_INVALID, "boot: invalid bootname '%s'",
					       opts->bootnames[i] ? opts->bootnames[i] : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(opts->bootnames[i], opts->bootnames[j]) == 0)
				return otter_error_set(err, OTTER_E_INVALID,
						       "boot: bootname '%s' given twice",
						       opts->bootnames[i]);
	}
	boot = otter_calloc(1, sizeof(*boot));
	if (!boot)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	boot->bootloader = opts->bootloader;
	boot->backend = opts->bootloader == OTTER_BOOTLOADER_GRUB ? &boot_backend_grub
								   : &boot_backend_uboot;
	boot->tries = opts->tries;
	boot->env_path = otter_strdup(opts->env_path);
	boot->cmdline_path = otter_strdup(opts->cmdline_path ? opts->cmdline_path
							      : "/proc/cmdline");
	if (!boot->env_path || !boot->cmdline_path)
		goto nomem;
	for (size_t i = 0; i < opts->n_bootnames; i++) {
		boot->names[i] = otter_strdup(opts->bootnames[i]);
		if (!boot->names[i])
			goto nomem;
		boot->n_names++;
	}
	*out = boot;
	return 0;
nomem:
	otter_boot_free(boot);
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

int boot_name_index(const otter_boot *boot, const char *name, size_t len)
{
	for (size_t i = 0; i < boot->n_names; i++)
		if (strlen(boot->names[i]) == len && memcmp(boot->names[i], name, len) == 0)
			return (int)i;
	return -1;
}

void boot_env_defaults(const otter_boot *boot, struct boot_env *env)
{
	memset(env, 0, sizeof(*env));
	for (size_t i = 0; i < boot->n_names; i++) {
		env->order[i] = (unsigned)i;
		env->left[i] = boot->tries;
	}
	env->n_order = boot->n_names;
}

int boot_parse_order(const otter_boot *boot, const char *var, const char *value,
		     struct boot_env *env, otter_error *err)
{
	const char *p = value;
	char safe[64];

	env->n_order = 0;
	if (strlen(value) > BOOT_ORDER_MAX) {
		return otter_error_set(err, OTTER_E_BOOT, "%s: %s is longer than %u bytes",
				       boot->env_path, var, BOOT_ORDER_MAX);
	}
	for (;;) {
		size_t n;
		int idx;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		idx = boot_name_index(boot, p, n);
		if (idx < 0) {
			char tok[BOOT_ORDER_MAX + 1];

			memcpy(tok, p, n);
			tok[n] = '\0';
			str_sanitize(tok, safe, sizeof(safe));
			return otter_error_set(err, OTTER_E_BOOT,
					       "%s: %s names '%s', which is not a configured "
					       "bootname",
					       boot->env_path, var, safe);
		}
		for (size_t i = 0; i < env->n_order; i++)
			if (env->order[i] == (unsigned)idx)
				return otter_error_set(err, OTTER_E_BOOT,
						       "%s: %s names '%s' twice", boot->env_path,
						       var, boot->names[idx]);
		env->order[env->n_order++] = (unsigned)idx;
		p += n;
	}
	return 0;
}

void boot_format_order(const otter_boot *boot, const struct boot_env *env, char *out,
		       size_t size)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < env->n_order; i++) {
		strfmt(out + off, size - off, "%s%s", i ? " " : "", boot->names[env->order[i]]);
		off = strlen(out);
	}
}

static int name_arg(otter_boot *boot, const char *bootname, otter_error *err)
{
	int idx;

	ARG_NONNULL(err, "boot", boot);
	ARG_NONNULL(err, "boot", bootname);
	idx = boot_name_index(boot, bootname, strlen(bootname));
	if (idx < 0) {
		char safe[64];

		str_sanitize(bootname, safe, sizeof(safe));
		return otter_error_set(err, OTTER_E_INVALID,
				       "'%s' is not a configured bootname (see the bootname= of "
				       "the [slot.*] sections)",
				       safe);
	}
	return idx;
}

static int load(otter_boot *boot, struct boot_env *env, otter_error *err)
{
	boot_env_defaults(boot, env);
	return boot->backend->load(boot, env, err);
}

int otter_boot_get_booted(otter_boot *boot, const char **out, otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	const char *found = NULL;
	size_t len, found_len = 0;
	int r;

	ARG_NONNULL(err, "boot", boot);
	ARG_NONNULL(err, "boot", out);
	r = fileio_read(AT_FDCWD, boot->cmdline_path, CMDLINE_MAX, &data, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r, "kernel command line");
	/* Whitespace-separated words; the last otter.slot= wins, as the kernel's own do. */
	for (size_t i = 0; i < len;) {
		size_t start, n;

		while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n'))
			i++;
		start = i;
		while (i < len && data[i] != ' ' && data[i] != '\t' && data[i] != '\n')
			i++;
		n = i - start;
		if (n >= strlen(CMDLINE_KEY) &&
		    memcmp(data + start, CMDLINE_KEY, strlen(CMDLINE_KEY)) == 0) {
			found = (const char *)data + start + strlen(CMDLINE_KEY);
			found_len = n - strlen(CMDLINE_KEY);
		}
	}
	if (!found)
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "%s has no " CMDLINE_KEY "<bootname>: was the system booted "
				       "by the otter boot script (contrib/)?",
				       boot->cmdline_path);
	r = boot_name_index(boot, found, found_len);
	if (r < 0) {
		char tok[64], safe[64];

		strfmt(tok, sizeof(tok), "%.*s", (int)(found_len < 60 ? found_len : 60), found);
		str_sanitize(tok, safe, sizeof(safe));
		return otter_error_set(err, OTTER_E_BOOT,
				       "%s: " CMDLINE_KEY "'%s' is not a configured bootname",
				       boot->cmdline_path, safe);
	}
	*out = boot->names[r];
	return 0;
}

int otter_boot_get_primary(otter_boot *boot, const char **out, otter_error *err)
{
	struct boot_env env;
	int r;

	ARG_NONNULL(err, "boot", boot);
	ARG_NONNULL(err, "boot", out);
	r = load(boot, &env, err);
	if (r < 0)
		return r;
	if (env.n_order == 0)
		return otter_error_set(err, OTTER_E_BOOT, "%s: the boot order is empty",
				       boot->env_path);
	*out = boot->names[env.order[0]];
	return 0;
}

int otter_boot_get_state(otter_boot *boot, const char *bootname, otter_boot_slot_state *out,
			 otter_error *err)
{
	struct boot_env env;
	int idx = name_arg(boot, bootname, err), r;

	if (idx < 0)
		return idx;
	ARG_NONNULL(err, "boot", out);
	r = load(boot, &env, err);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < env.n_order; i++)
		if (env.order[i] == (unsigned)idx) {
			out->in_order = true;
			out->position = (unsigned)i;
		}
	out->tries_left = env.left[idx];
	out->bootable = out->in_order && out->tries_left > 0;
	return 0;
}

int otter_boot_get_tries_left(otter_boot *boot, const char *bootname, unsigned *out,
			      otter_error *err)
{
	otter_boot_slot_state st;
	int r;

	ARG_NONNULL(err, "boot", out);
	r = otter_boot_get_state(boot, bootname, &st, err);
	if (r < 0)
		return r;
	*out = st.tries_left;
	return 0;
}

int otter_boot_get_order(otter_boot *boot, const char **names, size_t max, size_t *n,
			 otter_error *err)
{
	struct boot_env env;
	int r;

	ARG_NONNULL(err, "boot", boot);
	ARG_NONNULL(err, "boot", names);
	ARG_NONNULL(err, "boot", n);
	r = load(boot, &env, err);
	if (r < 0)
		return r;
	*n = 0;
	for (size_t i = 0; i < env.n_order && i < max; i++)
		names[(*n)++] = boot->names[env.order[i]];
	return 0;
}

/* Always written, even when equal: a missing variable may mean other defaults to another
 * boot script, and an explicit value leaves no doubt. */
static void set_left(struct boot_env *env, unsigned idx, unsigned left)
{
	env->left[idx] = left;
	env->dirty[idx] = true;
}

static void remove_from_order(struct boot_env *env, unsigned idx)
{
	size_t w = 0;

	for (size_t i = 0; i < env->n_order; i++)
		if (env->order[i] != idx)
			env->order[w++] = env->order[i];
	if (w != env->n_order)
		env->order_dirty = true;
	env->n_order = w;
}

static int store(otter_boot *boot, const struct boot_env *env, const char *what,
		 const char *bootname, otter_error *err)
{
	bool dirty = env->order_dirty;
	int r;

	for (size_t i = 0; i < boot->n_names; i++)
		dirty = dirty || env->dirty[i];
	/* Nothing changed: no write at all, so the environment stays byte-identical. */
	if (!dirty)
		return 0;
	crashpoint("env-write");
	r = boot->backend->store(boot, env, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s %s", what, bootname);
	return 0;
}

int otter_boot_mark_good(otter_boot *boot, const char *bootname, otter_error *err)
{
	struct boot_env env;
	int idx = name_arg(boot, bootname, err), r;

	if (idx < 0)
		return idx;
	r = load(boot, &env, err);
	if (r < 0)
		return r;
	set_left(&env, (unsigned)idx, boot->tries);
	return store(boot, &env, "mark good", bootname, err);
}

int otter_boot_mark_bad(otter_boot *boot, const char *bootname, otter_error *err)
{
	struct boot_env env;
	int idx = name_arg(boot, bootname, err), r;

	if (idx < 0)
		return idx;
	r = load(boot, &env, err);
	if (r < 0)
		return r;
	remove_from_order(&env, (unsigned)idx);
	set_left(&env, (unsigned)idx, 0);
	return store(boot, &env, "mark bad", bootname, err);
}

int otter_boot_mark_active(otter_boot *boot, const char *bootname, otter_error *err)
{
	struct boot_env env;
	int idx = name_arg(boot, bootname, err), r;

	if (idx < 0)
		return idx;
	r = load(boot, &env, err);
	if (r < 0)
		return r;
	if (env.n_order == 0 || env.order[0] != (unsigned)idx) {
		remove_from_order(&env, (unsigned)idx);
		memmove(env.order + 1, env.order, env.n_order * sizeof(env.order[0]));
		env.order[0] = (unsigned)idx;
		env.n_order++;
		env.order_dirty = true;
	}
	set_left(&env, (unsigned)idx, boot->tries);
	/* Both the order and the tries go into the same single write. */
	return store(boot, &env, "mark active", bootname, err);
}
