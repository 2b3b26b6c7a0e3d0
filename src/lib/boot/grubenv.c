/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "grubenv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

void grubenv_clear(grubenv *env)
{
	for (size_t i = 0; i < env->n; i++) {
		free(env->vars[i].name);
		free(env->vars[i].value);
	}
	env->n = 0;
}

static bool name_char_ok(uint8_t c)
{
	/* GRUB itself is lax; we refuse what could not be a variable name in a script. */
	return c > 0x20 && c < 0x7f && c != '=' && c != '\\' && c != '#';
}

static int parse(grubenv *env, const uint8_t *data, size_t len, const char *what,
		 otter_error *err)
{
	size_t hlen = strlen(GRUBENV_HEADER);
	size_t pos;
	/* A value is at most the block itself. */
	char value[GRUBENV_SIZE];

	if (len != GRUBENV_SIZE)
		return otter_error_set(err, OTTER_E_BOOT,
				       "%s: %zu bytes, but a GRUB environment block is exactly %u "
				       "(recreate it with grub-editenv FILE create)",
				       what, len, GRUBENV_SIZE);
	if (memcmp(data, GRUBENV_HEADER, hlen) != 0) {
		env->damage = "no '# GRUB Environment Block' signature (its first sector is lost)";
		return 0;
	}
	pos = hlen;
	while (pos < len) {
		size_t nstart = pos, nlen, vlen = 0;
		struct grubenv_var *v;

		if (data[pos] == '#') {
			/* Padding or a comment: up to the end of the line. */
			while (pos < len && data[pos] != '\n')
				pos++;
			/* Padding runs to the end of the block and is all '#' for GRUB to save. */
			if (pos == len && !env->damage)
				for (size_t i = nstart; i < len; i++)
					if (data[i] != '#') {
						env->damage = "its '#' padding is damaged (its second "
							      "sector is lost)";
						break;
					}
			pos++;
			continue;
		}
		while (pos < len && data[pos] != '=' && data[pos] != '\n') {
			if (!name_char_ok(data[pos]))
				return otter_error_set(err, OTTER_E_BOOT,
						       "%s: byte %zu: invalid character in a "
						       "variable name",
						       what, pos);
			pos++;
		}
		nlen = pos - nstart;
		if (pos >= len || data[pos] != '=' || nlen == 0)
			return otter_error_set(err, OTTER_E_BOOT,
					       "%s: byte %zu: expected name=value", what, nstart);
		pos++;
		for (;;) {
			if (pos >= len)
				return otter_error_set(err, OTTER_E_BOOT,
						       "%s: byte %zu: value runs past the end of "
						       "the block",
						       what, nstart);
			if (data[pos] == '\n')
				break;
			if (data[pos] == '\\') {
				pos++;
				if (pos >= len)
					continue;
			}
			if (data[pos] == '\0')
				return otter_error_set(err, OTTER_E_BOOT,
						       "%s: byte %zu: NUL in a value", what, pos);
			value[vlen++] = (char)data[pos++];
		}
		pos++;
		value[vlen] = '\0';
		for (size_t i = 0; i < env->n; i++)
			if (strlen(env->vars[i].name) == nlen &&
			    memcmp(env->vars[i].name, data + nstart, nlen) == 0)
				goto fail_dup;
		if (env->n >= GRUBENV_MAX_VARS) {
			grubenv_clear(env);
			return otter_error_set(err, OTTER_E_BOOT, "%s: more than %u variables",
					       what, GRUBENV_MAX_VARS);
		}
		v = &env->vars[env->n];
		v->name = otter_strndup((const char *)data + nstart, nlen);
		v->value = otter_strdup(value);
		env->n++;
		if (!v->name || !v->value) {
			grubenv_clear(env);
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		}
		continue;
fail_dup:
		grubenv_clear(env);
		return otter_error_set(err, OTTER_E_BOOT, "%s: byte %zu: variable set twice", what,
				       nstart);
	}
	return 0;
}

int grubenv_parse(grubenv *env, const uint8_t *data, size_t len, const char *what,
		  otter_error *err)
{
	int r;

	grubenv_clear(env);
	env->damage = NULL;
	r = parse(env, data, len, what, err);
	/* Variables parsed before the error are not a result (found by fuzz-grubenv). */
	if (r < 0)
		grubenv_clear(env);
	return r;
}

const char *grubenv_get(const grubenv *env, const char *name)
{
	for (size_t i = 0; i < env->n; i++)
		if (strcmp(env->vars[i].name, name) == 0)
			return env->vars[i].value;
	return NULL;
}

int grubenv_set(grubenv *env, const char *name, const char *value, otter_error *err)
{
	char *copy;

	for (const char *p = name; *p; p++)
		if (!name_char_ok((uint8_t)*p))
			return otter_error_set(err, OTTER_E_INVALID, "grubenv: bad name '%s'", name);
	if (!*name)
		return otter_error_set(err, OTTER_E_INVALID, "grubenv: empty name");
	copy = otter_strdup(value);
	if (!copy)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (size_t i = 0; i < env->n; i++)
		if (strcmp(env->vars[i].name, name) == 0) {
			free(env->vars[i].value);
			env->vars[i].value = copy;
			return 0;
		}
	if (env->n >= GRUBENV_MAX_VARS) {
		free(copy);
		return otter_error_set(err, OTTER_E_LIMIT, "grubenv: more than %u variables",
				       GRUBENV_MAX_VARS);
	}
	env->vars[env->n].name = otter_strdup(name);
	if (!env->vars[env->n].name) {
		free(copy);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	env->vars[env->n].value = copy;
	env->n++;
	return 0;
}

static bool put(uint8_t *out, size_t *off, const char *s, size_t n)
{
	if (n > GRUBENV_SIZE - *off)
		return false;
	memcpy(out + *off, s, n);
	*off += n;
	return true;
}

int grubenv_serialize(const grubenv *env, uint8_t out[GRUBENV_SIZE], otter_error *err)
{
	size_t off = 0;

	if (!put(out, &off, GRUBENV_HEADER, strlen(GRUBENV_HEADER)))
		goto toolarge;
	for (size_t i = 0; i < env->n; i++) {
		const char *v = env->vars[i].value;

		if (!put(out, &off, env->vars[i].name, strlen(env->vars[i].name)) ||
		    !put(out, &off, "=", 1))
			goto toolarge;
		for (; *v; v++) {
			if ((*v == '\\' || *v == '\n') && !put(out, &off, "\\", 1))
				goto toolarge;
			if (!put(out, &off, v, 1))
				goto toolarge;
		}
		if (!put(out, &off, "\n", 1))
			goto toolarge;
	}
	memset(out + off, '#', GRUBENV_SIZE - off);
	return 0;
toolarge:
	return otter_error_set(err, OTTER_E_TOO_LARGE,
			       "the GRUB environment variables do not fit in %u bytes",
			       GRUBENV_SIZE);
}
