/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * otter-director assign | rollout ... | fleet: the operator's commands. Each builds the JSON
 * request of its admin operation and calls dir_admin_call, so the CLI and the HTTP admin API
 * share every check; the answer is printed as a table, or as the JSON itself with --json.
 */

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otter-director/commands.h"
#include "util/strutil.h"

const char dir_cmd_assign_help[] =
	"Usage: otter-director assign --target PATH (--device ID | --tag TAG |\n"
	"                             --hardware-id HWID)... [--json]\n"
	"\n"
	"Assigns the image-repository target PATH (e.g. releases/acme/1.2.0.json) now, without\n"
	"phases, to the devices selected: a device is selected when it matches every kind of\n"
	"option given (one of the --device ids; one of the --tag tags; an ECU with one of the\n"
	"--hardware-id ids). Of each device, the ECUs with one of the --hardware-id ids get the\n"
	"target, else its primary ECU. The target must be signed by the image repository. A\n"
	"device that was in a rollout leaves it (superseded).\n"
	"\n"
	"  --target PATH        the target to install (required)\n"
	"  --device ID          a device id (repeatable)\n"
	"  --tag TAG            devices with this tag (repeatable)\n"
	"  --hardware-id HWID   devices with an ECU of this hardware id, and those ECUs\n"
	"  --json               print the answer as JSON\n";

const char dir_cmd_rollout_help[] =
	"Usage: otter-director rollout create ID --target PATH (--device ID | --tag TAG |\n"
	"                              --hardware-id HWID)... [--phases LIST]\n"
	"                              [--success-threshold PCT] [--failure-threshold PCT]\n"
	"                              [--min-reports N] [--device-cap N] [--json]\n"
	"       otter-director rollout pause|resume|cancel|retry-failed|status ID [--json]\n"
	"       otter-director rollout list [--state STATE] [--limit N] [--offset N] [--json]\n"
	"\n"
	"A rollout assigns one image-repository target to the devices its filter selects\n"
	"(--device, --tag, --hardware-id: as for 'assign'), phase by phase.\n"
	"\n"
	"  --phases LIST            cumulative phases, comma-separated: a device count (10) or a\n"
	"                           share of the selected devices (50%); default 100%\n"
	"                           e.g. --phases 10,10%,50%,100%\n"
	"  --success-threshold PCT  the next phase starts when PCT% of the current phase's\n"
	"                           devices installed the target (1-100, default 90)\n"
	"  --failure-threshold PCT  the rollout pauses by itself when more than PCT% of the\n"
	"                           reports since it was started, resumed or retried are\n"
	"                           failures (0-100, default 10)\n"
	"  --min-reports N          ... but only once there are at least N reports (default 1)\n"
	"  --device-cap N           never more than N devices in all (default: no cap)\n"
	"\n"
	"  pause         stop starting phases and taking new devices\n"
	"  resume        continue a paused rollout (the failure rule starts afresh)\n"
	"  cancel        end it; devices that have not fetched the assignment yet lose it\n"
	"  retry-failed  assign the target again to the devices whose install failed\n"
	"  status        per phase: devices assigned, downloading, installed, failed, and\n"
	"                the failure reasons devices reported, with counts\n"
	"  list          the rollouts, newest first (--state running|paused|completed|cancelled)\n";

const char dir_cmd_fleet_help[] =
	"Usage: otter-director fleet [--tag TAG] [--hardware-id HWID] [--limit N] [--offset N]\n"
	"                            [--json]\n"
	"\n"
	"Lists the devices, in id order, with what each ECU runs (the image it last reported\n"
	"installed) and its current assignment. --limit (1-1000, default 100) and --offset page\n"
	"through the fleet; --tag and --hardware-id select devices.\n";

enum {
	O_TARGET = 256, O_DEVICE, O_TAG, O_HWID, O_JSON, O_PHASES, O_SUCCESS, O_FAILURE,
	O_MINREP, O_CAP, O_STATE, O_LIMIT, O_OFFSET, O_HELP,
};

typedef struct opts {
	json_t *req;
	bool json;
	bool help;
} opts;

static int usage(const char *cmd, const char *fmt, ...) OTTER_PRINTF(2, 3);

static int usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "otter-director %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'otter-director %s --help'.\n", cmd);
	return 2;
}

static int append(json_t *req, const char *key, const char *v)
{
	json_t *a = json_object_get(req, key);

	if (!a) {
		a = json_array();
		if (!a || json_object_set_new(req, key, a) < 0)
			return -1;
	}
	return json_array_append_new(a, json_string(v));
}

static int set_number(json_t *req, const char *key, const char *v, uint64_t max)
{
	uint64_t u;

	if (parse_u64_range(v, 0, max, &u) < 0)
		return -1;
	return json_object_set_new(req, key, json_integer((json_int_t)u));
}

static int set_phases(json_t *req, const char *list)
{
	json_t *a = json_array();
	const char *p = list;

	if (!a || json_object_set_new(req, "phases", a) < 0)
		return -1;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n == 0 || json_array_append_new(a, json_stringn(p, n)) < 0)
			return -1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Parses the options of cmd (argv[optind...]); positional arguments are left for the caller. */
static int parse(const char *cmd, int argc, char **argv, const struct option *allowed, opts *o)
{
	int c;

	o->req = json_object();
	if (!o->req)
		return usage(cmd, "out of memory");
	optind = 0; /* 0: glibc forgets any earlier scan entirely */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", allowed, NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 'h':
		case O_HELP:
			o->help = true;
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_TARGET:
			r = json_object_set_new(o->req, "target", json_string(optarg));
			break;
		case O_DEVICE:
			r = append(o->req, "devices", optarg);
			break;
		case O_TAG:
			r = strcmp(cmd, "fleet") == 0
				    ? json_object_set_new(o->req, "tag", json_string(optarg))
				    : append(o->req, "tags", optarg);
			break;
		case O_HWID:
			r = strcmp(cmd, "fleet") == 0
				    ? json_object_set_new(o->req, "hardware_id",
							  json_string(optarg))
				    : append(o->req, "hardware_ids", optarg);
			break;
		case O_PHASES:
			if (set_phases(o->req, optarg) < 0)
				return usage(cmd, "--phases '%s': use e.g. 10,10%%,50%%,100%%",
					     optarg);
			break;
		case O_SUCCESS:
			if (set_number(o->req, "success_threshold", optarg, 100) < 0)
				return usage(cmd, "--success-threshold '%s': a percentage 1-100",
					     optarg);
			break;
		case O_FAILURE:
			if (set_number(o->req, "failure_threshold", optarg, 100) < 0)
				return usage(cmd, "--failure-threshold '%s': a percentage 0-100",
					     optarg);
			break;
		case O_MINREP:
		case O_CAP:
		case O_LIMIT:
		case O_OFFSET: {
			static const char *const keys[] = { "min_reports", "device_cap", "limit",
							    "offset" };
			const char *key = keys[c == O_MINREP ? 0 : c == O_CAP ? 1 : c == O_LIMIT ? 2 : 3];

			if (set_number(o->req, key, optarg, 1000000000) < 0)
				return usage(cmd, "'%s' is not a number from 0 to 1000000000",
					     optarg);
			break;
		}
		case O_STATE:
			r = json_object_set_new(o->req, "state", json_string(optarg));
			break;
		case ':':
			return usage(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage(cmd, "unknown option '%s'", argv[optind - 1]);
		}
		if (r < 0)
			return usage(cmd, "out of memory");
	}
	return 0;
}

static void opts_clear(opts *o)
{
	json_decref(o->req);
	o->req = NULL;
}

/* ---- output ---- */

static void print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		printf("%s\n", s);
	free(s);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static int64_t num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *when(const json_t *o, const char *key, char buf[32])
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return "-";
	utc_format(json_integer_value(v), buf);
	return buf;
}

static void print_status(const json_t *s)
{
	json_t *ph = json_object_get(s, "phases"), *p;
	json_t *fw = json_object_get(s, "failure_window");
	size_t i;
	char b1[32], b2[32];

	printf("rollout %s: %s, phase %" PRId64 " of %" PRId64 "\n", str(s, "id"),
	       str(s, "state"), num(s, "phase"), num(s, "n_phases"));
	if (json_is_string(json_object_get(s, "state_reason")))
		printf("  why: %s\n", str(s, "state_reason"));
	printf("  target: %s (%" PRId64 " bytes)\n", str(s, "target"), num(s, "target_length"));
	printf("  correlation id: %s\n", str(s, "correlation_id"));
	printf("  success threshold %" PRId64 "%%, failure threshold %" PRId64
	       "%% (now %" PRId64 " failed of %" PRId64 " reports, rule from %" PRId64
	       " reports)",
	       num(s, "success_threshold"), num(s, "failure_threshold"), num(fw, "failed"),
	       num(fw, "reported"), num(fw, "min_reports"));
	if (json_is_integer(json_object_get(s, "device_cap")))
		printf(", device cap %" PRId64, num(s, "device_cap"));
	printf("\n\n%-6s %-6s %8s %9s %12s %10s %7s %11s %10s  %-20s %-20s\n", "PHASE", "SPEC",
	       "DEVICES", "ASSIGNED", "DOWNLOADING", "INSTALLED", "FAILED", "SUPERSEDED",
	       "WITHDRAWN", "STARTED", "COMPLETED");
	json_array_foreach(ph, i, p) {
		json_t *reasons = json_object_get(p, "failure_reasons"), *r;
		size_t k;

		printf("%-6" PRId64 " %-6s %8" PRId64 " %9" PRId64 " %12" PRId64 " %10" PRId64
		       " %7" PRId64 " %11" PRId64 " %10" PRId64 "  %-20s %-20s\n",
		       num(p, "phase"), str(p, "spec"), num(p, "devices"), num(p, "assigned"),
		       num(p, "downloading"), num(p, "installed"), num(p, "failed"),
		       num(p, "superseded"), num(p, "withdrawn"), when(p, "started", b1),
		       when(p, "completed", b2));
		json_array_foreach(reasons, k, r)
			printf("         %6" PRId64 " x %s\n", num(r, "count"), str(r, "reason"));
	}
}

static void print_list(const json_t *l)
{
	json_t *v;
	size_t i;
	char b[32];

	printf("%-24s %-10s %-7s %8s  %-20s %s\n", "ID", "STATE", "PHASE", "DEVICES", "CREATED",
	       "TARGET");
	json_array_foreach(json_object_get(l, "rollouts"), i, v) {
		char phase[48];

		snprintf(phase, sizeof(phase), "%" PRId64 "/%" PRId64, num(v, "phase"),
			 num(v, "n_phases"));
		printf("%-24s %-10s %-7s %8" PRId64 "  %-20s %s\n", str(v, "id"), str(v, "state"),
		       phase, num(v, "devices"), when(v, "created", b), str(v, "target"));
	}
	printf("(%zu of %" PRId64 ")\n", json_array_size(json_object_get(l, "rollouts")),
	       num(l, "total"));
}

static void print_fleet(const json_t *fl)
{
	json_t *d, *e;
	size_t i, k;

	printf("%-24s %-28s %-14s %-40s %-40s %s\n", "DEVICE", "ECU", "HARDWARE", "INSTALLED",
	       "ASSIGNED", "STATUS");
	json_array_foreach(json_object_get(fl, "devices"), i, d) {
		if (json_array_size(json_object_get(d, "ecus")) == 0)
			printf("%-24s (no ECU)\n", str(d, "id"));
		json_array_foreach(json_object_get(d, "ecus"), k, e) {
			json_t *in = json_object_get(e, "installed");
			json_t *as = json_object_get(e, "assignment");
			char status[160];

			if (json_is_object(as) && json_is_string(json_object_get(as, "reason")))
				snprintf(status, sizeof(status), "%s: %s", str(as, "status"),
					 str(as, "reason"));
			else
				snprintf(status, sizeof(status), "%s",
					 json_is_object(as) ? str(as, "status") : "-");
			printf("%-24s %-28s %-14s %-40s %-40s %s\n", k ? "" : str(d, "id"),
			       str(e, "serial"), str(e, "hardware_id"),
			       json_is_object(in) ? str(in, "path") : "-",
			       json_is_object(as) ? str(as, "target") : "-", status);
		}
	}
	printf("(%zu of %" PRId64 " devices, offset %" PRId64 ")\n",
	       json_array_size(json_object_get(fl, "devices")), num(fl, "total"),
	       num(fl, "offset"));
}

/* Calls op and prints the answer with show (or as JSON). */
static int call(const dir_admin_env *env, const char *what, const char *op, const opts *o,
		void (*show)(const json_t *))
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *resp = NULL;
	int status = 0;

	if (dir_admin_call(env, op, o->req, &resp, &status, &err) < 0) {
		fprintf(stderr, "otter-director %s: %s\n", what, err.msg);
		return 1;
	}
	if (o->json)
		print_json(resp);
	else
		show(resp);
	json_decref(resp);
	return 0;
}

static void print_assign(const json_t *a)
{
	printf("assigned %s to %" PRId64 " ECUs of %" PRId64 " devices (correlation id %s)\n",
	       str(a, "target"), num(a, "ecus"), num(a, "devices"), str(a, "correlation_id"));
}

static void print_change(const json_t *s)
{
	if (json_is_integer(json_object_get(s, "withdrawn_now")))
		printf("withdrawn from %" PRId64 " devices that had not fetched it yet\n",
		       num(s, "withdrawn_now"));
	if (json_is_integer(json_object_get(s, "retried_now")))
		printf("assigned again to %" PRId64 " devices whose install failed\n",
		       num(s, "retried_now"));
	print_status(s);
}

#define OPT(name, has, val) { name, has, NULL, val }

int dir_cmd_assign(const dir_admin_env *env, int argc, char **argv)
{
	static const struct option allowed[] = {
		OPT("target", required_argument, O_TARGET),
		OPT("device", required_argument, O_DEVICE),
		OPT("tag", required_argument, O_TAG),
		OPT("hardware-id", required_argument, O_HWID),
		OPT("json", no_argument, O_JSON),
		OPT("help", no_argument, O_HELP),
		{ 0 },
	};
	opts o = { 0 };
	int r = parse("assign", argc, argv, allowed, &o);

	if (r == 0 && o.help)
		fputs(dir_cmd_assign_help, stdout);
	else if (r == 0 && optind < argc)
		r = usage("assign", "unexpected argument '%s'", argv[optind]);
	else if (r == 0)
		r = call(env, "assign", "assign", &o, print_assign);
	opts_clear(&o);
	return r;
}

int dir_cmd_rollout(const dir_admin_env *env, int argc, char **argv)
{
	static const struct option allowed[] = {
		OPT("target", required_argument, O_TARGET),
		OPT("device", required_argument, O_DEVICE),
		OPT("tag", required_argument, O_TAG),
		OPT("hardware-id", required_argument, O_HWID),
		OPT("phases", required_argument, O_PHASES),
		OPT("success-threshold", required_argument, O_SUCCESS),
		OPT("failure-threshold", required_argument, O_FAILURE),
		OPT("min-reports", required_argument, O_MINREP),
		OPT("device-cap", required_argument, O_CAP),
		OPT("state", required_argument, O_STATE),
		OPT("limit", required_argument, O_LIMIT),
		OPT("offset", required_argument, O_OFFSET),
		OPT("json", no_argument, O_JSON),
		OPT("help", no_argument, O_HELP),
		{ 0 },
	};
	static const struct {
		const char *verb, *op;
		void (*show)(const json_t *);
	} verbs[] = {
		{ "create", "rollout.create", print_status },
		{ "pause", "rollout.pause", print_change },
		{ "resume", "rollout.resume", print_change },
		{ "cancel", "rollout.cancel", print_change },
		{ "retry-failed", "rollout.retry-failed", print_change },
		{ "status", "rollout.status", print_status },
		{ "list", "rollout.list", print_list },
	};
	const char *verb;
	opts o = { 0 };
	size_t v;
	int r;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(dir_cmd_rollout_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
		if (strcmp(verb, verbs[v].verb) == 0)
			break;
	if (v == sizeof(verbs) / sizeof(verbs[0]))
		return usage("rollout", "unknown subcommand '%s'", verb);
	/* Options and the ID may come in any order after the verb. */
	r = parse("rollout", argc - 1, argv + 1, allowed, &o);
	if (r == 0 && o.help) {
		fputs(dir_cmd_rollout_help, stdout);
	} else if (r == 0) {
		int npos = argc - 1 - optind;
		bool want_id = strcmp(verb, "list") != 0;

		if (npos != (want_id ? 1 : 0))
			r = want_id ? usage("rollout", "%s needs exactly one rollout ID", verb)
				    : usage("rollout", "%s takes no argument", verb);
		else if (want_id &&
			 json_object_set_new(o.req, "id", json_string(argv[1 + optind])) < 0)
			r = usage("rollout", "out of memory");
		else {
			char what[64];

			snprintf(what, sizeof(what), "rollout %s", verb);
			r = call(env, what, verbs[v].op, &o, verbs[v].show);
		}
	}
	opts_clear(&o);
	return r;
}

int dir_cmd_fleet(const dir_admin_env *env, int argc, char **argv)
{
	static const struct option allowed[] = {
		OPT("tag", required_argument, O_TAG),
		OPT("hardware-id", required_argument, O_HWID),
		OPT("limit", required_argument, O_LIMIT),
		OPT("offset", required_argument, O_OFFSET),
		OPT("json", no_argument, O_JSON),
		OPT("help", no_argument, O_HELP),
		{ 0 },
	};
	opts o = { 0 };
	int r = parse("fleet", argc, argv, allowed, &o);

	if (r == 0 && o.help)
		fputs(dir_cmd_fleet_help, stdout);
	else if (r == 0 && optind < argc)
		r = usage("fleet", "unexpected argument '%s'", argv[optind]);
	else if (r == 0)
		r = call(env, "fleet", "fleet", &o, print_fleet);
	opts_clear(&o);
	return r;
}
