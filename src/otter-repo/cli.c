/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared CLI plumbing: options, messages, passphrases and key files. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

const char *cli_command = "otter-repo";
bool cli_quiet;

/* Options every command takes. */
static const arg_spec common_specs[] = {
	{"repo", ARG_VALUE},
	{"help", ARG_FLAG},
	{"quiet", ARG_FLAG},
	{"passphrase-fd", ARG_VALUE},
	{"passphrase-env", ARG_VALUE},
	{NULL, ARG_FLAG},
};

/* ---- options ---- */

static int find_spec(const args *a, const char *name, size_t namelen)
{
	for (size_t i = 0; i < a->n_specs; i++)
		if (strlen(a->specs[i]->name) == namelen &&
		    strncmp(a->specs[i]->name, name, namelen) == 0)
			return (int)i;
	return -1;
}

static int spec_index(const args *a, const char *name)
{
	return find_spec(a, name, strlen(name));
}

static int push(const char ***arr, size_t *n, const char *v, otter_error *err)
{
	const char **p;

	if (*n >= ARGS_MAX_VALUES)
		return otter_error_set(err, OTTER_E_LIMIT, "too many arguments");
	p = otter_reallocarray(*arr, *n + 1, sizeof(*p));
	if (!p)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	p[(*n)++] = v;
	*arr = p;
	return 0;
}

void args_clear(args *a)
{
	for (size_t i = 0; i < a->n_specs; i++)
		free(a->values[i]);
	free(a->pos);
	memset(a, 0, sizeof(*a));
}

/* The spec index of a long option is its getopt_long val, offset past every short option. */
#define OPT_BASE 256

/* What getopt_long reports: the option as the user wrote it, up to any "=value". */
static int unknown_option(const char *arg, otter_error *err)
{
	if (arg[0] == '-' && arg[1] == '-') {
		const char *eq = strchr(arg, '=');

		return otter_error_set(err, OTTER_E_INVALID, "unknown option '%.*s'",
				       (int)(eq ? eq - arg : (long)strlen(arg)), arg);
	}
	return otter_error_set(err, OTTER_E_INVALID, "unknown option '%s'", arg);
}

/* getopt_long accepts unambiguous prefixes ("--rep"); otter-repo takes only the full names. */
static bool written_in_full(const char *arg, const char *name)
{
	size_t n = strcspn(arg + 2, "=");

	return arg[0] == '-' && arg[1] == '-' && strlen(name) == n &&
	       strncmp(arg + 2, name, n) == 0;
}

/*
 * getopt_long in "return in order" mode ('-': non-options come back as argument 1, so that the
 * positional arguments keep their order and an ARG_LIST can take the ones that follow it) with
 * silent errors (':'), which are reported here with the option's name.
 */
int args_parse(args *a, const arg_spec *specs, int argc, char **argv, otter_error *err)
{
	struct option longopts[ARGS_MAX_SPECS + 1];
	_cleanup_free_ char **av = NULL;
	int r, c;

	memset(a, 0, sizeof(*a));
	for (const arg_spec *s = common_specs; s->name; s++)
		a->specs[a->n_specs++] = s;
	for (const arg_spec *s = specs; s && s->name; s++) {
		if (a->n_specs >= ARGS_MAX_SPECS)
			return otter_error_set(err, OTTER_E_LIMIT, "more than %d option specs",
					       ARGS_MAX_SPECS);
		a->specs[a->n_specs++] = s;
	}
	for (size_t i = 0; i < a->n_specs; i++)
		longopts[i] = (struct option){
			.name = a->specs[i]->name,
			.has_arg = a->specs[i]->kind == ARG_FLAG ? no_argument : required_argument,
			.flag = NULL,
			.val = OPT_BASE + (int)i,
		};
	longopts[a->n_specs] = (struct option){0};

	/* getopt_long wants argv[0]; argv here starts after the command name. */
	av = otter_calloc((size_t)argc + 2, sizeof(*av));
	if (!av)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	av[0] = (char *)cli_command;
	memcpy(av + 1, argv, (size_t)argc * sizeof(*av));

	opterr = 0;
	optind = 0; /* GNU: full reinitialisation */
	for (;;) {
		int at = optind ? optind : 1; /* the element getopt_long looks at next */
		int idx;

		c = getopt_long(argc + 1, av, "-:hq", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 1: /* a positional argument */
			r = push(&a->pos, &a->n_pos, optarg, err);
			break;
		case 'h':
		case 'q':
			idx = spec_index(a, c == 'h' ? "help" : "quiet");
			r = push(&a->values[idx], &a->n_values[idx], "", err);
			break;
		case ':':
			if (optopt >= OPT_BASE &&
			    written_in_full(av[at], a->specs[optopt - OPT_BASE]->name))
				return otter_error_set(err, OTTER_E_INVALID,
						       "option '--%s' needs a value",
						       a->specs[optopt - OPT_BASE]->name);
			return unknown_option(av[at], err);
		case '?':
			if (optopt >= OPT_BASE &&
			    written_in_full(av[at], a->specs[optopt - OPT_BASE]->name))
				return otter_error_set(err, OTTER_E_INVALID,
						       "option '--%s' takes no value",
						       a->specs[optopt - OPT_BASE]->name);
			return unknown_option(av[at], err);
		default:
			idx = c - OPT_BASE;
			if (idx < 0 || (size_t)idx >= a->n_specs ||
			    !written_in_full(av[at], a->specs[idx]->name))
				return unknown_option(av[at], err);
			r = push(&a->values[idx], &a->n_values[idx],
				 a->specs[idx]->kind == ARG_FLAG ? "" : optarg, err);
			/* ARG_LIST without '=': further values up to the next option. */
			if (a->specs[idx]->kind == ARG_LIST && !strchr(av[at], '='))
				while (r == 0 && optind < argc + 1 &&
				       (av[optind][0] != '-' || av[optind][1] == '\0'))
					r = push(&a->values[idx], &a->n_values[idx], av[optind++],
						 err);
			break;
		}
		if (r < 0)
			return r;
	}
	/* After "--": the rest is positional. */
	for (; optind < argc + 1; optind++)
		if ((r = push(&a->pos, &a->n_pos, av[optind], err)) < 0)
			return r;
	return 0;
}

bool args_flag(const args *a, const char *name)
{
	int i = spec_index(a, name);

	return i >= 0 && a->n_values[i] > 0;
}

const char *args_value(const args *a, const char *name)
{
	int i = spec_index(a, name);

	return i >= 0 && a->n_values[i] > 0 ? a->values[i][a->n_values[i] - 1] : NULL;
}

size_t args_list(const args *a, const char *name, const char *const **out)
{
	int i = spec_index(a, name);

	if (i < 0 || a->n_values[i] == 0) {
		*out = NULL;
		return 0;
	}
	*out = a->values[i];
	return a->n_values[i];
}

int args_u64(const args *a, const char *name, uint64_t min, uint64_t max, uint64_t def,
	     uint64_t *out, otter_error *err)
{
	const char *v = args_value(a, name);

	if (!v) {
		*out = def;
		return 0;
	}
	if (parse_u64_range(v, min, max, out) < 0)
		return otter_error_set(err, OTTER_E_INVALID,
				       "--%s: '%.40s' is not a whole number in %" PRIu64 "..%" PRIu64,
				       name, v, min, max);
	return 0;
}

int args_duration(const args *a, const char *name, int64_t def, int64_t *out, otter_error *err)
{
	const char *v = args_value(a, name);

	if (!v) {
		*out = def;
		return 0;
	}
	if (otter_repo_parse_duration(v, out) < 0)
		return otter_error_set(err, OTTER_E_INVALID,
				       "--%s: '%.40s' is not a duration (a whole number and a unit: "
				       "90d, 12h, 30m, 45s, 2w)",
				       name, v);
	return 0;
}

void cli_human_duration(int64_t secs, char out[32])
{
	if (secs >= 2 * 86400)
		strfmt(out, 32, "%" PRId64 "d", secs / 86400);
	else if (secs >= 2 * 3600)
		strfmt(out, 32, "%" PRId64 "h", secs / 3600);
	else if (secs >= 120)
		strfmt(out, 32, "%" PRId64 "m", secs / 60);
	else
		strfmt(out, 32, "%" PRId64 "s", secs);
}

/* ---- messages ---- */

int cli_fail(const otter_error *err)
{
	fprintf(stderr, "otter-repo: %s: %s\n", cli_command, err->msg[0] ? err->msg : "failed");
	return 1;
}

int cli_failf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "otter-repo: %s: ", cli_command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

void cli_info(const char *fmt, ...)
{
	va_list ap;

	if (cli_quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "otter-repo: %s: warning: ", cli_command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- passphrases ---- */

/* GLOBAL: the passphrase of this run, read once; wiped at exit. */
static char passphrase_buf[1024];
static bool passphrase_read;

static void wipe_passphrase(void)
{
	OPENSSL_cleanse(passphrase_buf, sizeof(passphrase_buf));
}

int cli_passphrase(const args *a, const char **out, otter_error *err)
{
	const char *fdarg = args_value(a, "passphrase-fd");
	const char *env = args_value(a, "passphrase-env");
	size_t len = 0;

	*out = NULL;
	if (fdarg && env)
		return otter_error_set(err, OTTER_E_INVALID,
				       "give --passphrase-fd or --passphrase-env, not both");
	if (passphrase_read) {
		*out = passphrase_buf;
		return 0;
	}
	if (env) {
		const char *v = getenv(env);
		if (!v)
			return otter_error_set(err, OTTER_E_INVALID,
					       "--passphrase-env: the variable '%.64s' is not set", env);
		len = strlen(v);
		if (len >= sizeof(passphrase_buf))
			return otter_error_set(err, OTTER_E_INVALID, "passphrase too long");
		memcpy(passphrase_buf, v, len + 1);
	} else if (fdarg) {
		uint64_t fd;

		if (parse_u64_range(fdarg, 0, INT_MAX, &fd) < 0)
			return otter_error_set(err, OTTER_E_INVALID,
					       "--passphrase-fd: '%.20s' is not a file descriptor",
					       fdarg);
		/* Up to the first newline or the end, like gpg --passphrase-fd. */
		for (;;) {
			char c;
			ssize_t n = read((int)fd, &c, 1);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return otter_error_set_errno(err, errno,
							     "reading the passphrase from fd %s",
							     fdarg);
			if (n == 0 || c == '\n')
				break;
			if (len + 1 >= sizeof(passphrase_buf))
				return otter_error_set(err, OTTER_E_INVALID, "passphrase too long");
			passphrase_buf[len++] = c;
		}
		if (len > 0 && passphrase_buf[len - 1] == '\r')
			len--;
		passphrase_buf[len] = '\0';
	} else {
		return 0;
	}
	if (len == 0)
		return otter_error_set(err, OTTER_E_INVALID, "the passphrase is empty");
	atexit(wipe_passphrase);
	passphrase_read = true;
	*out = passphrase_buf;
	return 0;
}

/* ---- key files ---- */

int cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len, otter_error *err)
{
	int r = fileio_read(AT_FDCWD, path, max, out, len, err);

	if (r == OTTER_E_NOT_FOUND)
		return r;
	return r < 0 ? otter_error_prefix(err, r, "'%s'", path) : 0;
}

/*
 * The absolute, symlink-free name of the folder that holds path; the folder need not exist
 * (its longest existing ancestor is resolved, the rest appended). *existing_out is that
 * ancestor.
 */
static char *real_parent(const char *path, char **existing_out)
{
	_cleanup_free_ char *copy = otter_strdup(path);
	_cleanup_free_ char *abs = NULL;
	size_t cut;

	if (!copy)
		return NULL;
	if (copy[0] == '/') {
		abs = otter_strdup(dirname(copy));
	} else {
		_cleanup_free_ char *cwd = realpath(".", NULL);
		abs = cwd ? path_join(cwd, dirname(copy)) : NULL;
	}
	if (!abs)
		return NULL;
	cut = strlen(abs);
	for (;;) {
		char saved = abs[cut], *real;

		abs[cut] = '\0';
		real = realpath(cut ? abs : "/", NULL);
		abs[cut] = saved;
		if (real) {
			*existing_out = real;
			return abs[cut] ? path_join(real, abs + cut) : otter_strdup(real);
		}
		if (errno != ENOENT || cut == 0)
			return NULL;
		while (cut > 0 && abs[cut - 1] != '/')
			cut--;
		if (cut > 0)
			cut--; /* before the slash */
	}
}

static bool inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int cli_check_key_location(const char *path, const char *repo_dir, otter_error *err)
{
	_cleanup_free_ char *existing = NULL;
	_cleanup_free_ char *parent = real_parent(path, &existing);
	_cleanup_free_ char *repo_real = NULL;
	char probe[PATH_MAX + 32];

	if (!parent)
		return otter_error_set_errno(err, errno, "key '%s': its folder", path);
	if (repo_dir && (repo_real = realpath(repo_dir, NULL)) && inside(repo_real, parent))
		goto refuse;
	/* Any folder from the key's up to / that holds a repository configuration. */
	for (char *p = existing;;) {
		struct stat st;

		strfmt(probe, sizeof(probe), "%s/%s", strcmp(p, "/") == 0 ? "" : p,
		       OTTER_REPO_CONFIG_NAME);
		if (stat(probe, &st) == 0) {
			free(repo_real);
			repo_real = otter_strdup(p);
			goto refuse;
		}
		char *slash = strrchr(p, '/');
		if (!slash || slash == p)
			break;
		*slash = '\0';
	}
	{
		struct stat st;
		if (stat("/" OTTER_REPO_CONFIG_NAME, &st) == 0) {
			free(repo_real);
			repo_real = otter_strdup("/");
			goto refuse;
		}
	}
	return 0;
refuse:
	return otter_error_set(err, OTTER_E_INVALID,
			       "key '%s' is inside the repository folder '%s': private keys must "
			       "never live there (it is published, copied and backed up with the "
			       "repository); keep them elsewhere",
			       path, repo_real ? repo_real : "?");
}

int cli_load_private_key(const char *path, const char *passphrase, const char *repo_dir,
			 otter_key **out, otter_error *err)
{
	_cleanup_free_ uint8_t *pem = NULL;
	struct stat st;
	size_t len = 0;
	int r;

	r = cli_check_key_location(path, repo_dir, err);
	if (r < 0)
		return r;
	r = cli_read_file(path, 64 * 1024, &pem, &len, err);
	if (r == OTTER_E_NOT_FOUND)
		return otter_error_prefix(err, r, "private key");
	if (r < 0)
		return r;
	r = otter_key_load_pem(out, pem, len, passphrase, err);
	if (r < 0 && !passphrase && memmem(pem, len, "ENCRYPTED PRIVATE KEY", 21)) {
		OPENSSL_cleanse(pem, len);
		otter_error_clear(err);
		return otter_error_set(err, OTTER_E_CRYPTO,
				       "key '%s' is encrypted: give its passphrase with "
				       "--passphrase-fd N or --passphrase-env VAR (online keys: "
				       "[passphrase] in %s)",
				       path, OTTER_REPO_CONFIG_NAME);
	}
	OPENSSL_cleanse(pem, len);
	if (r < 0)
		return otter_error_prefix(err, r, "key '%s'", path);
	if (!otter_key_has_private(*out)) {
		*out = otter_key_free(*out);
		return otter_error_set(err, OTTER_E_INVALID,
				       "key '%s' is a public key: signing needs the private key",
				       path);
	}
	/* As ssh does: a private key others can read may already be someone else's. */
	if (stat(path, &st) < 0) {
		int e = errno;
		*out = otter_key_free(*out);
		return otter_error_set_errno(err, e, "private key '%s'", path);
	}
	if ((st.st_mode & 077) != 0) {
		*out = otter_key_free(*out);
		return otter_error_set(err, OTTER_E_INVALID,
				       "private key '%s' is accessible by group or others (mode "
				       "%04o): refusing to use it. Run 'chmod 600 %s' (and check "
				       "who may have copied it)",
				       path, (unsigned)(st.st_mode & 07777), path);
	}
	return 0;
}

int cli_load_public_key(const char *path, otter_key **out, otter_error *err)
{
	_cleanup_free_ uint8_t *pem = NULL;
	size_t len = 0;
	int r;

	r = cli_read_file(path, 64 * 1024, &pem, &len, err);
	if (r == OTTER_E_NOT_FOUND)
		return otter_error_prefix(err, r, "public key");
	if (r < 0)
		return r;
	/* A private key file would need its passphrase and should not travel: ask for .pub. */
	if (memmem(pem, len, "PRIVATE KEY-----", 16)) {
		OPENSSL_cleanse(pem, len);
		return otter_error_set(err, OTTER_E_INVALID,
				       "'%s' is a private key: give the public key file (.pub)",
				       path);
	}
	r = otter_key_load_pem(out, pem, len, NULL, err);
	return r < 0 ? otter_error_prefix(err, r, "public key '%s'", path) : 0;
}

void keys_free(otter_key **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		otter_key_free(keys[i]);
	free(keys);
}

int key_id(const otter_key *key, char out[OTTER_KEYID_HEX_LEN + 1], otter_error *err)
{
	return otter_repo_keyid(key, out, NULL, err);
}
