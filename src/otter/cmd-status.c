/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <otter/agent.h>
#include <otter/slot.h>

#include "otter.h"
#include "util/cleanup.h"

DEFINE_CLEANUP_FUNC(otter_system, otter_system_free)

static void help(void)
{
	printf("Usage: otter status [--json]\n"
	       "\n"
	       "Shows the booted slot, the primary slot (first in the boot order), the state of\n"
	       "the last update (none, pending-reboot, trying, confirmed, rolled-back,\n"
	       "activation-lost) and, per slot: good, bad or unknown, tries left, installed\n"
	       "version and image hash. Warns (on stderr, and in \"warnings\" with --json) about\n"
	       "a boot environment a power cut can lose (a single-copy U-Boot environment).\n"
	       "When the bootloader fell back from an activated slot that ran out of tries, this\n"
	       "marks that slot bad and records the rollback in the data directory.\n"
	       "\n"
	       "  --json     machine-readable output\n"
	       "  -h, --help show this help\n");
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static int print_json(const otter_system *sys, const otter_ab_status *st, json_t *agent)
{
	json_t *root = json_object(), *slots = json_array();
	char *text;

	json_object_set_new(root, "booted", str_or_null(st->booted));
	json_object_set_new(root, "primary", str_or_null(st->primary));
	json_object_set_new(root, "update", json_string(otter_update_state_name(st->update)));
	json_object_set_new(root, "activated", str_or_null(st->activated));
	if (st->update == OTTER_UPDATE_ROLLED_BACK)
		json_object_set_new(root, "rollback",
				    json_pack("{s:o, s:o}", "failed",
					      str_or_null(st->rollback_failed), "at",
					      str_or_null(st->rollback_at)));
	else
		json_object_set_new(root, "rollback", json_null());
	for (size_t i = 0; i < st->n_slots; i++) {
		const otter_slot_info *s = &st->slots[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(otter_slot_name(s->slot)));
		json_object_set_new(o, "class", json_string(otter_slot_class(s->slot)));
		json_object_set_new(o, "bootname", json_string(otter_slot_bootname(s->slot)));
		json_object_set_new(o, "device", json_string(otter_slot_device(s->slot)));
		json_object_set_new(o, "state", json_string(otter_slot_health_name(s->health)));
		json_object_set_new(o, "booted", json_boolean(s->booted));
		json_object_set_new(o, "in-order", json_boolean(s->in_order));
		json_object_set_new(o, "tries-left", json_integer(s->tries_left));
		json_object_set_new(o, "installing", json_boolean(s->installing));
		json_object_set_new(o, "version", str_or_null(s->version));
		json_object_set_new(o, "sha256", str_or_null(s->sha256));
		json_object_set_new(o, "size",
				    s->installed ? json_integer((json_int_t)s->size) : json_null());
		json_object_set_new(o, "installed-at", str_or_null(s->installed_at));
		json_array_append_new(slots, o);
	}
	json_object_set_new(root, "slots", slots);
	json_object_set_new(root, "boot-slots", cli_boot_slots_json(sys));
	json_object_set_new(root, "warnings", st->env_warning[0]
					       ? json_pack("[s]", st->env_warning)
					       : json_array());
	json_object_set_new(root, "agent", agent ? json_incref(agent) : json_null());
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text) {
		fprintf(stderr, "otter status: out of memory\n");
		return EXIT_FAIL;
	}
	printf("%s\n", text);
	free(text);
	return EXIT_OK;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void print_agent(json_t *agent)
{
	json_t *cur = json_object_get(agent, "current"), *pend = json_object_get(agent, "pending");
	json_t *failed = json_object_get(agent, "failed-releases"), *v;
	size_t i;

	printf("agent:   %s\n", jstr(agent, "state"));
	printf("  current release: %s\n", cur ? jstr(cur, "version") : "(not installed by otter)");
	if (pend)
		printf("  pending release: %s in slots %s (%s)\n", jstr(pend, "version"),
		       jstr(pend, "bootname"), jstr(pend, "release"));
	printf("  last check: %s%s%s\n", json_object_get(agent, "last-check")
						  ? jstr(agent, "last-check") : "never",
	       json_object_get(agent, "last-result") ? ": " : "", jstr(agent, "last-result"));
	if (json_object_get(agent, "last-error"))
		printf("  last error: %s\n", jstr(agent, "last-error"));
	if (json_array_size(failed) > 0) {
		printf("  failed releases (not retried):");
		json_array_foreach(failed, i, v)
			printf(" %s", json_string_value(v));
		printf("\n");
	}
	if (json_is_object(json_object_get(agent, "uptane"))) {
		json_t *u = json_object_get(agent, "uptane");

		printf("uptane:  device %s, ECU %s (hardware %s), director %s\n", jstr(u, "device-id"),
		       jstr(u, "ecu-serial"), jstr(u, "hardware-id"), jstr(u, "director"));
		if (json_object_get(u, "key-id"))
			printf("  ECU key id: %s\n  public key: %s\n", jstr(u, "key-id"),
			       jstr(u, "public-key"));
		else
			printf("  ECU key: %s\n", jstr(u, "key-error"));
		printf("  registered: %s, report counter %" JSON_INTEGER_FORMAT "\n",
		       json_is_true(json_object_get(u, "registered")) ? "yes" : "no",
		       json_integer_value(json_object_get(u, "report-counter")));
		if (json_object_get(u, "assigned"))
			printf("  assigned: %s (correlation id %s)%s%s\n", jstr(u, "assigned"),
			       jstr(u, "correlation-id"), json_object_get(u, "install-result") ? ": " : "",
			       jstr(u, "install-result"));
		if (json_object_get(u, "attacks-detected"))
			printf("  attacks detected: %s\n", jstr(u, "attacks-detected"));
	}
}

static void print_text(const otter_system *sys, const otter_ab_status *st, json_t *agent)
{
	printf("booted:  %s\n", st->booted ? st->booted : "(unknown: no otter.slot= on the "
							  "kernel command line)");
	printf("primary: %s\n", st->primary ? st->primary : "(none: the boot order is empty)");
	printf("update:  %s", otter_update_state_name(st->update));
	if (st->update == OTTER_UPDATE_ROLLED_BACK)
		printf(" (%s failed, rolled back at %s)",
		       st->rollback_failed ? st->rollback_failed : "?", st->rollback_at);
	else if (st->update == OTTER_UPDATE_ACTIVATION_LOST)
		printf(" (%s was activated, but the boot environment no longer puts it first: "
		       "the next boot will not try it; install it again)",
		       st->activated);
	else if (st->activated)
		printf(" (activated %s)", st->activated);
	printf("\n");
	for (size_t i = 0; i < st->n_slots; i++) {
		const otter_slot_info *s = &st->slots[i];

		printf("slot %s (bootname %s, %s):\n", otter_slot_name(s->slot),
		       otter_slot_bootname(s->slot), otter_slot_device(s->slot));
		printf("  state: %s%s%s, tries left %u%s\n", otter_slot_health_name(s->health),
		       s->booted ? ", booted" : "", s->installing ? ", install incomplete" : "",
		       s->tries_left, s->in_order ? "" : ", not in the boot order");
		if (s->installed)
			printf("  installed: version %s, sha256 %s, %" PRIu64 " bytes, at %s\n",
			       s->version[0] ? s->version : "(none)", s->sha256, s->size,
			       s->installed_at);
	}
	cli_boot_slots_text(sys);
	print_agent(agent);
}

int cmd_status(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_(otter_system_freep) otter_system *sys = NULL;
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *agent = NULL;
	otter_ab_status st;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "otter status: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (cli_load_system(&sys))
		return EXIT_FAIL;
	/* Records a fallback the bootloader made (once), then reports. */
	if (otter_slot_boot_check(sys, &err) < 0 || otter_ab_status_get(sys, &st, &err) < 0)
		return cli_fail("status", &err);
	if (st.env_warning[0])
		fprintf(stderr, "otter status: warning: %s\n", st.env_warning);
	agent = otter_agent_status_json(arg_config, &err);
	if (!agent)
		return cli_fail("status", &err);
	if (json)
		return print_json(sys, &st, agent);
	print_text(sys, &st, agent);
	return EXIT_OK;
}
