/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ini.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"

#define MAX_SECTIONS 32u
#define DEFAULT_MAX_STRING 255u

struct ini_state {
	ini_options opts;
	const char *filename;
	const ini_section *sections;
	size_t n_sections;
	void *userdata;
	const ini_section *cur;  /* section being filled, NULL before the first header */
	void *target;
	uint64_t seen;           /* bit i: key i of cur was set in this section */
	bool skipping;           /* in a section another reader checks */
	unsigned header_line;
	char header[INI_MAX_LINE_LIMIT + 1];
	bool fixed_seen[MAX_SECTIONS];
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
	size_t n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Cuts a trailing comment: '#' at the start or after whitespace. */
static void strip_comment(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '#' && (p == s || is_blank(p[-1]))) {
			*p = '\0';
			return;
		}
}

static int set_value(struct ini_state *st, const ini_key *k, const char *value, unsigned line,
		     otter_error *err)
{
	uint8_t *field = (uint8_t *)st->target + k->offset;
	size_t vlen = strlen(value);
	uint64_t max = k->max ? k->max : DEFAULT_MAX_STRING;

	if (vlen == 0)
		return otter_error_set(err, OTTER_E_CONFIG, "%s:%u: %s: empty value", st->filename,
				       line, k->name);
	switch (k->type) {
	case INI_PATH:
		if (value[0] != '/')
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s:%u: %s: '%s' is not an absolute path",
					       st->filename, line, k->name, value);
		/* fall through */
	case INI_STRING: {
		char **s = (char **)(void *)field;
		char *copy;

		if (vlen > max)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s:%u: %s: value longer than %llu bytes",
					       st->filename, line, k->name, (unsigned long long)max);
		copy = otter_strdup(value);
		if (!copy)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		free(*s);
		*s = copy;
		return 0;
	}
	case INI_U64: {
		uint64_t v;

		if (parse_u64_range(value, k->min, k->max, &v) < 0)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s:%u: %s: '%s' is not a whole number from %llu "
					       "to %llu",
					       st->filename, line, k->name, value,
					       (unsigned long long)k->min,
					       (unsigned long long)k->max);
		memcpy(field, &v, sizeof(v));
		return 0;
	}
	case INI_ENUM: {
		char choices[256] = "";
		size_t off = 0;

		for (unsigned i = 0; k->choices[i]; i++) {
			if (strcmp(k->choices[i], value) == 0) {
				memcpy(field, &i, sizeof(i));
				return 0;
			}
			strfmt(choices + off, sizeof(choices) - off, "%s%s", i ? ", " : "",
			       k->choices[i]);
			off = strlen(choices);
		}
		return otter_error_set(err, OTTER_E_CONFIG, "%s:%u: %s: '%s' is not one of: %s",
				       st->filename, line, k->name, value, choices);
	}
	}
	return otter_error_set(err, OTTER_E_INVALID, "%s: bad key table", k->name);
}

static int begin_section(struct ini_state *st, const ini_section *sec, const char *subname,
			 otter_error *err)
{
	int r;

	st->cur = sec;
	st->seen = 0;
	st->target = NULL;
	r = sec->begin(sec->userdata ? sec->userdata : st->userdata, subname, &st->target, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s:%u: [%s]", st->filename, st->header_line,
					  st->header);
	for (size_t i = 0; i < sec->n_keys; i++) {
		if (!sec->keys[i].def)
			continue;
		r = set_value(st, &sec->keys[i], sec->keys[i].def, st->header_line, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int end_section(struct ini_state *st, otter_error *err)
{
	const ini_section *sec = st->cur;
	int r;

	if (!sec)
		return 0;
	for (size_t i = 0; i < sec->n_keys; i++)
		if (sec->keys[i].required && !(st->seen & (UINT64_C(1) << i)))
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s:%u: %s: required in [%s] but missing",
					       st->filename, st->header_line, sec->keys[i].name,
					       st->header);
	if (sec->end) {
		r = sec->end(sec->userdata ? sec->userdata : st->userdata, st->target, err);
		if (r < 0)
			return otter_error_prefix(err, r, "%s:%u: [%s]", st->filename,
						  st->header_line, st->header);
	}
	st->cur = NULL;
	return 0;
}

/* name is one of names (NULL-terminated; a prefix ending in '.' matches a family). */
static bool section_listed(const char *const *names, const char *name)
{
	for (size_t i = 0; names && names[i]; i++) {
		size_t plen = strlen(names[i]);
		bool family = plen > 0 && names[i][plen - 1] == '.';

		if (family ? strncmp(name, names[i], plen) == 0 && name[plen] != '\0'
			   : strcmp(name, names[i]) == 0)
			return true;
	}
	return false;
}

static int header_line(struct ini_state *st, char *text, unsigned line, otter_error *err)
{
	size_t n = strlen(text);
	char *name;
	int r;

	r = end_section(st, err);
	if (r < 0)
		return r;
	st->skipping = false;
	if (n < 2 || text[n - 1] != ']')
		return otter_error_set(err, OTTER_E_CONFIG, "%s:%u: %s: malformed section header",
				       st->filename, line, text);
	text[n - 1] = '\0';
	name = trim(text + 1);
	st->header_line = line;
	memcpy(st->header, name, strlen(name) + 1);
	for (size_t i = 0; i < st->n_sections; i++) {
		const ini_section *sec = &st->sections[i];
		size_t plen = strlen(sec->name);
		bool family = plen > 0 && sec->name[plen - 1] == '.';

		if (family) {
			if (strncmp(name, sec->name, plen) != 0 || name[plen] == '\0')
				continue;
			return begin_section(st, sec, name + plen, err);
		}
		if (strcmp(name, sec->name) != 0)
			continue;
		if (st->fixed_seen[i] && !sec->repeatable)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s:%u: [%s]: section appears twice", st->filename,
					       line, name);
		st->fixed_seen[i] = true;
		return begin_section(st, sec, NULL, err);
	}
	if (st->opts.skip_unknown_sections || section_listed(st->opts.foreign_sections, name)) {
		st->skipping = true;
		return 0;
	}
	{
		char expected[256] = "";
		size_t off = 0, n_foreign = 0, total;

		while (st->opts.foreign_sections && st->opts.foreign_sections[n_foreign])
			n_foreign++;
		total = st->n_sections + n_foreign;
		for (size_t i = 0; i < total; i++) {
			const char *sname = i < st->n_sections
						    ? st->sections[i].name
						    : st->opts.foreign_sections[i - st->n_sections];
			size_t plen = strlen(sname);
			bool family = plen > 0 && sname[plen - 1] == '.';

			strfmt(expected + off, sizeof(expected) - off, "%s%s%s",
			       i == 0 ? "" : i + 1 == total ? " or " : ", ", sname,
			       family ? "*" : "");
			off = strlen(expected);
		}
		return otter_error_set(err, OTTER_E_CONFIG,
				       "%s:%u: [%s]: unknown section '%s' (expected %s)",
				       st->filename, line, name, name, expected);
	}
}

static int key_line(struct ini_state *st, char *text, unsigned line, otter_error *err)
{
	char *eq = strchr(text, '=');
	char *key, *value;

	if (!eq)
		return otter_error_set(err, OTTER_E_CONFIG, "%s:%u: %s: expected key=value",
				       st->filename, line, text);
	*eq = '\0';
	key = trim(text);
	value = eq + 1;
	if (!st->opts.no_inline_comments)
		strip_comment(value);
	value = trim(value);
	if (!*key)
		return otter_error_set(err, OTTER_E_CONFIG, "%s:%u: =%s: empty key", st->filename,
				       line, value);
	if (st->skipping)
		return 0; /* another reader's section: its keys are checked there */
	if (!st->cur)
		return otter_error_set(err, OTTER_E_CONFIG, "%s:%u: %s: key outside of a section",
				       st->filename, line, key);
	for (size_t i = 0; i < st->cur->n_keys; i++) {
		const ini_key *k = &st->cur->keys[i];

		if (strcmp(k->name, key) != 0)
			continue;
		if (st->seen & (UINT64_C(1) << i))
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s:%u: %s: set twice in [%s]", st->filename, line,
					       key, st->header);
		st->seen |= UINT64_C(1) << i;
		return set_value(st, k, value, line, err);
	}
	if (st->cur->other) {
		const ini_entry e = {st->filename, line, st->header, key, value};

		return st->cur->other(st->cur->userdata ? st->cur->userdata : st->userdata,
				      st->target, &e, err);
	}
	return otter_error_set(err, OTTER_E_CONFIG, "%s:%u: %s: unknown key in [%s]",
			       st->filename, line, key, st->header);
}

int ini_parse(const char *filename, const uint8_t *data, size_t len, const ini_section *sections,
	      size_t n_sections, void *userdata, otter_error *err)
{
	static const ini_options defaults = {0};

	return ini_parse_opts(&defaults, filename, data, len, sections, n_sections, userdata, err);
}

int ini_parse_opts(const ini_options *opts, const char *filename, const uint8_t *data, size_t len,
		   const ini_section *sections, size_t n_sections, void *userdata,
		   otter_error *err)
{
	struct ini_state st = {
		.opts = *opts,
		.filename = filename,
		.sections = sections,
		.n_sections = n_sections,
		.userdata = userdata,
	};
	char text[INI_MAX_LINE_LIMIT + 1];
	size_t max_line = opts->max_line ? opts->max_line : INI_MAX_LINE;
	unsigned line = 0;
	size_t pos = 0;
	int r;

	if (!filename || (!data && len) || !sections)
		return otter_error_set(err, OTTER_E_INVALID, "ini: invalid arguments: %s",
				       !filename ? "no file name" : !sections ? "no section table" :
				       "no data but a length");
	if (n_sections > MAX_SECTIONS)
		return otter_error_set(err, OTTER_E_INVALID, "ini: %zu sections, more than %u",
				       n_sections, MAX_SECTIONS);
	if (max_line > INI_MAX_LINE_LIMIT)
		return otter_error_set(err, OTTER_E_INVALID,
				       "ini: lines of up to %zu bytes, more than the limit of %u",
				       max_line, INI_MAX_LINE_LIMIT);
	for (size_t i = 0; i < n_sections; i++)
		if (sections[i].n_keys > INI_MAX_KEYS || !sections[i].begin)
			return otter_error_set(err, OTTER_E_INVALID, "ini: bad table for [%s]",
					       sections[i].name);
	if (len > INI_MAX_FILE_SIZE)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "%s: %zu bytes, more than the limit of %u", filename, len,
				       INI_MAX_FILE_SIZE);
	while (pos < len) {
		const uint8_t *eol = memchr(data + pos, '\n', len - pos);
		size_t llen = eol ? (size_t)(eol - (data + pos)) : len - pos;
		char *s;

		line++;
		if (llen > max_line)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s:%u: line longer than %zu bytes", filename, line,
					       max_line);
		memcpy(text, data + pos, llen);
		text[llen] = '\0';
		pos += llen + (eol ? 1 : 0);
		if (llen > 0 && text[llen - 1] == '\r')
			text[--llen] = '\0';
		for (size_t i = 0; i < llen; i++) {
			unsigned char c = (unsigned char)text[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return otter_error_set(err, OTTER_E_CONFIG,
						       "%s:%u: control character 0x%02x in line",
						       filename, line, c);
			if (c >= 0x80 && opts->ascii_only)
				return otter_error_set(err, OTTER_E_CONFIG,
						       "%s:%u: non-ASCII byte 0x%02x in line",
						       filename, line, c);
		}
		s = trim(text);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			strip_comment(s);
			r = header_line(&st, trim(s), line, err);
		} else {
			r = key_line(&st, s, line, err);
		}
		if (r < 0)
			return r;
	}
	r = end_section(&st, err);
	if (r < 0)
		return r;
	/* Fixed sections left out still get their defaults and checks. */
	for (size_t i = 0; i < n_sections; i++) {
		size_t plen = strlen(sections[i].name);

		if (st.fixed_seen[i] || (plen > 0 && sections[i].name[plen - 1] == '.'))
			continue;
		if (sections[i].required)
			return otter_error_set(err, OTTER_E_CONFIG, "%s: [%s]: section missing",
					       filename, sections[i].name);
		st.header_line = line;
		memcpy(st.header, sections[i].name, plen + 1);
		r = begin_section(&st, &sections[i], NULL, err);
		if (r == 0)
			r = end_section(&st, err);
		if (r < 0)
			return r;
	}
	return 0;
}
