/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <otter/repo.h>
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/ini.h"
#include "util/strutil.h"

#define DAY (24 * 3600)

static const char *const period_names[] = {"root", "timestamp", "snapshot", "targets",
					   "delegated"};

void otter_repo_config_init(otter_repo_config *c)
{
	memset(c, 0, sizeof(*c));
	c->expiry[OTTER_REPO_ROOT] = 365 * DAY;
	c->expiry[OTTER_REPO_TARGETS] = 90 * DAY;
	c->expiry[OTTER_REPO_SNAPSHOT] = 7 * DAY;
	c->expiry[OTTER_REPO_TIMESTAMP] = 1 * DAY;
	c->expiry[OTTER_REPO_DELEGATED] = 90 * DAY;
	c->margin[OTTER_REPO_ROOT] = 30 * DAY;
	c->margin[OTTER_REPO_TARGETS] = 14 * DAY;
	c->margin[OTTER_REPO_SNAPSHOT] = 2 * DAY;
	c->margin[OTTER_REPO_TIMESTAMP] = 6 * 3600;
	c->margin[OTTER_REPO_DELEGATED] = 14 * DAY;
}

void otter_repo_config_clear(otter_repo_config *c)
{
	for (size_t i = 0; i < c->n_online; i++) {
		free(c->online[i].role);
		free(c->online[i].path);
	}
	free(c->online);
	free(c->passphrase_env);
	free(c->passphrase_file);
	c->online = NULL;
	c->n_online = 0;
	c->passphrase_env = NULL;
	c->passphrase_file = NULL;
}

int otter_repo_parse_duration(const char *s, int64_t *out)
{
	static const struct {
		char unit;
		int64_t secs;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', DAY}, {'w', 7 * DAY}};
	char digits[24];
	size_t n = strnlen(s, sizeof(digits) + 1);
	uint64_t v;

	if (n < 2 || n > sizeof(digits))
		return -1;
	memcpy(digits, s, n - 1);
	digits[n - 1] = '\0';
	if (parse_u64_range(digits, 1, (uint64_t)OTTER_REPO_MAX_DURATION, &v) < 0)
		return -1;
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (s[n - 1] != units[i].unit)
			continue;
		if (v > (uint64_t)(OTTER_REPO_MAX_DURATION / units[i].secs))
			return -1;
		*out = (int64_t)v * units[i].secs;
		return 0;
	}
	return -1;
}

void otter_repo_format_duration(int64_t secs, char out[32])
{
	if (secs > 0 && secs % DAY == 0)
		strfmt(out, 32, "%" PRId64 "d", secs / DAY);
	else if (secs > 0 && secs % 3600 == 0)
		strfmt(out, 32, "%" PRId64 "h", secs / 3600);
	else if (secs > 0 && secs % 60 == 0)
		strfmt(out, 32, "%" PRId64 "m", secs / 60);
	else
		strfmt(out, 32, "%" PRId64 "s", secs);
}

static int period_index(const char *role)
{
	int t = otter_repo_top_level_type(role);

	return t >= 0 ? t : OTTER_REPO_DELEGATED;
}

int64_t otter_repo_config_expiry(const otter_repo_config *c, const char *role)
{
	return c->expiry[period_index(role)];
}

int64_t otter_repo_config_margin(const otter_repo_config *c, const char *role)
{
	return c->margin[period_index(role)];
}

int otter_repo_config_add_online(otter_repo_config *c, const char *role, const char *path,
				 otter_error *err)
{
	otter_repo_online_key *p;

	if (strcmp(role, "root") == 0)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "root is never signed online: keep its keys offline");
	if (otter_repo_top_level_type(role) < 0 && !otter_repo_role_name_ok(role))
		return otter_error_set(err, OTTER_E_CONFIG, "'%.64s' is not a role name", role);
	if (path[0] != '/')
		return otter_error_set(err, OTTER_E_CONFIG,
				       "online key '%.200s' must be an absolute path", path);
	if (c->n_online >= OTTER_REPO_CONFIG_MAX_ONLINE)
		return otter_error_set(err, OTTER_E_CONFIG, "more than %u online keys",
				       OTTER_REPO_CONFIG_MAX_ONLINE);
	p = otter_reallocarray(c->online, c->n_online + 1, sizeof(*p));
	if (!p)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	c->online = p;
	p[c->n_online].role = otter_strdup(role);
	p[c->n_online].path = otter_strdup(path);
	if (!p[c->n_online].role || !p[c->n_online].path) {
		free(p[c->n_online].role);
		free(p[c->n_online].path);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	c->n_online++;
	return 0;
}

/* ---- the parser: util/ini.c, with one handler for the keys of every section ---- */

typedef enum {
	SEC_EXPIRY,
	SEC_MARGIN,
	SEC_ONLINE,
	SEC_PASSPHRASE,
	_SEC_MAX,
} section;

static const char *const section_names[] = {"expiry", "margin", "online", "passphrase"};

struct parse_state {
	otter_repo_config *c;
	bool seen[2 * ELEMENTSOF(period_names)]; /* expiry, then margin, by period */
};

static bool key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static int set_string(char **slot, const char *v, const char *where, otter_error *err)
{
	char *s;

	if (*slot)
		return otter_error_set(err, OTTER_E_CONFIG, "%s: set twice", where);
	s = otter_strdup(v);
	if (!s)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	*slot = s;
	return 0;
}

static int handle(otter_repo_config *c, section sec, const char *key, const char *value, bool *seen,
		  const char *where, otter_error *err)
{
	int64_t d;

	switch (sec) {
	case SEC_EXPIRY:
	case SEC_MARGIN:
		for (size_t i = 0; i < ELEMENTSOF(period_names); i++) {
			if (strcmp(key, period_names[i]) != 0)
				continue;
			bool *s = &seen[(sec == SEC_MARGIN ? ELEMENTSOF(period_names) : 0) + i];
			if (*s)
				return otter_error_set(err, OTTER_E_CONFIG, "%s: set twice", where);
			if (otter_repo_parse_duration(value, &d) < 0)
				return otter_error_set(err, OTTER_E_CONFIG,
						       "%s: '%.40s' is not a duration (a whole "
						       "number and a unit: 90d, 12h, 30m, 45s, 2w)",
						       where, value);
			*s = true;
			(sec == SEC_MARGIN ? c->margin : c->expiry)[i] = d;
			return 0;
		}
		return otter_error_set(err, OTTER_E_CONFIG,
				       "%s: unknown key (expected root, targets, snapshot, "
				       "timestamp or delegated)",
				       where);
	case SEC_ONLINE: {
		int r = otter_repo_config_add_online(c, key, value, err);
		return r < 0 ? otter_error_prefix(err, r, "%s", where) : 0;
	}
	case SEC_PASSPHRASE:
		if (strcmp(key, "env") == 0)
			return set_string(&c->passphrase_env, value, where, err);
		if (strcmp(key, "file") == 0) {
			if (value[0] != '/')
				return otter_error_set(err, OTTER_E_CONFIG,
						       "%s: must be an absolute path", where);
			return set_string(&c->passphrase_file, value, where, err);
		}
		return otter_error_set(err, OTTER_E_CONFIG,
				       "%s: unknown key (expected env or file)", where);
	default:
		return otter_error_set(err, OTTER_E_INVALID, "%s: no such section", where);
	}
}

/* ini.c hands over every key=value line (the sections have no key tables). */
static int entry(void *userdata, void *target, const ini_entry *e, otter_error *err)
{
	struct parse_state *ps = userdata;
	char where[256];
	section sec = _SEC_MAX;

	for (size_t i = 0; i < ELEMENTSOF(section_names); i++)
		if (strcmp(e->section, section_names[i]) == 0)
			sec = (section)i;
	strfmt(where, sizeof(where), "%s:%u: %s.%.120s", e->filename, e->line, e->section,
	       e->key);
	if (strlen(e->key) >= 128)
		return otter_error_set(err, OTTER_E_CONFIG, "%s: key longer than 127 bytes",
				       where);
	for (const char *p = e->key; *p; p++)
		if (!key_char(*p))
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s: bad character in key (expected A-Z, a-z, "
					       "0-9, '.', '_' or '-')",
					       where);
	if (!*e->value)
		return otter_error_set(err, OTTER_E_CONFIG, "%s: empty value", where);
	return handle(ps->c, sec, e->key, e->value, ps->seen, where, err);
}

static int begin(void *userdata, const char *subname, void **target, otter_error *err)
{
	*target = userdata;
	return 0;
}

static int parse_into(otter_repo_config *c, const uint8_t *buf, size_t len, const char *what,
		      otter_error *err)
{
	/* Repeatable sections, ASCII only, '#' only at the start of a line (a path may hold
	 * " #"), lines up to OTTER_REPO_CONFIG_MAX_LINE: the format as otter-repo has always read
	 * it. */
	static const ini_options opts = {
		.max_line = OTTER_REPO_CONFIG_MAX_LINE,
		.ascii_only = true,
		.no_inline_comments = true,
	};
	ini_section sections[_SEC_MAX];
	struct parse_state ps = {.c = c};

	if (len > OTTER_REPO_CONFIG_MAX_SIZE)
		return otter_error_set(err, OTTER_E_CONFIG, "%s: %zu bytes, larger than %u bytes",
				       what, len, OTTER_REPO_CONFIG_MAX_SIZE);
	for (size_t i = 0; i < _SEC_MAX; i++)
		sections[i] = (ini_section){
			.name = section_names[i],
			.repeatable = true,
			.begin = begin,
			.other = entry,
		};
	return ini_parse_opts(&opts, what, buf, len, sections, _SEC_MAX, &ps, err);
}

int otter_repo_config_parse(otter_repo_config *c, const uint8_t *buf, size_t len, const char *what,
			    otter_error *err)
{
	otter_repo_config tmp = *c;
	int r;

	/* Parse into a copy that shares nothing heap-allocated, so a failure changes nothing. */
	tmp.online = NULL;
	tmp.n_online = 0;
	tmp.passphrase_env = NULL;
	tmp.passphrase_file = NULL;
	for (size_t i = 0; i < c->n_online; i++) {
		r = otter_repo_config_add_online(&tmp, c->online[i].role, c->online[i].path, err);
		if (r < 0) {
			otter_repo_config_clear(&tmp);
			return r;
		}
	}
	if ((c->passphrase_env && !(tmp.passphrase_env = otter_strdup(c->passphrase_env))) ||
	    (c->passphrase_file && !(tmp.passphrase_file = otter_strdup(c->passphrase_file)))) {
		otter_repo_config_clear(&tmp);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	r = parse_into(&tmp, buf, len, what, err);
	if (r < 0) {
		otter_repo_config_clear(&tmp);
		return r;
	}
	otter_repo_config_clear(c);
	*c = tmp;
	return 0;
}

int otter_repo_config_format(const otter_repo_config *c, char **out, otter_error *err)
{
	otter_buf b;
	char d[32];
	int r;

	buf_init(&b, OTTER_REPO_CONFIG_MAX_SIZE);
	r = buf_append_str(&b,
			   "# otter-repo configuration (see docs/repository.md).\n"
			   "# Durations: a whole number and a unit, e.g. 90d, 12h, 30m.\n"
			   "\n"
			   "# How far ahead each new version of a role expires.\n"
			   "[expiry]\n",
			   err);
	for (size_t i = 0; r == 0 && i < ELEMENTSOF(period_names); i++) {
		otter_repo_format_duration(c->expiry[i], d);
		r = buf_printf(&b, err, "%s = %s\n", period_names[i], d);
	}
	if (r == 0)
		r = buf_append_str(&b,
				   "\n# status warns when a role expires within its margin; "
				   "refresh re-signs\n# snapshot and timestamp then.\n[margin]\n",
				   err);
	for (size_t i = 0; r == 0 && i < ELEMENTSOF(period_names); i++) {
		otter_repo_format_duration(c->margin[i], d);
		r = buf_printf(&b, err, "%s = %s\n", period_names[i], d);
	}
	if (r == 0)
		r = buf_append_str(&b,
				   "\n# Private keys publish and refresh sign with unattended "
				   "(ROLE = absolute path,\n# repeatable). Never inside the "
				   "repository folder; root is never online.\n[online]\n",
				   err);
	for (size_t i = 0; r == 0 && i < c->n_online; i++)
		r = buf_printf(&b, err, "%s = %s\n", c->online[i].role, c->online[i].path);
	if (r == 0 && (c->passphrase_env || c->passphrase_file)) {
		r = buf_append_str(&b, "\n# Passphrase of encrypted online keys.\n[passphrase]\n",
				   err);
		if (r == 0 && c->passphrase_env)
			r = buf_printf(&b, err, "env = %s\n", c->passphrase_env);
		if (r == 0 && c->passphrase_file)
			r = buf_printf(&b, err, "file = %s\n", c->passphrase_file);
	}
	if (r < 0) {
		buf_clear(&b);
		return r;
	}
	*out = (char *)buf_steal(&b, NULL);
	return *out ? 0 : otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}
