/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent's configuration ([update]), state file and construction, and its state machine
 * after boot with fake clocks (every timeout). The download cycle itself is exercised end to
 * end by tests/integration/test_agent*.py. */
#include "test-common.h"
#include "test-fixtures.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <otter/agent.h>
#include <otter/crypto.h>
#include <otter/slot.h>

#include "lib/agent/agent-private.h"
#include "util/fileio.h"

struct fixture {
	char *dir;
	char conf[512];
	char data[512];
};

static const char base_conf[] = "[system]\n"
				"compatible=unit\n"
				"bootloader=grub\n"
				"data-directory=%s/data\n"
				"cmdline=%s/cmdline\n"
				"[bootloader]\n"
				"grubenv=%s/grubenv\n"
				"[slot.rootfs.0]\n"
				"device=%s/a.img\n"
				"bootname=A\n"
				"[slot.rootfs.1]\n"
				"device=%s/b.img\n"
				"bootname=B\n";

static void write_conf(struct fixture *f, const char *update)
{
	char text[4096];
	otter_error err = OTTER_ERROR_INIT;
	int n = snprintf(text, sizeof(text), base_conf, f->dir, f->dir, f->dir, f->dir, f->dir);

	snprintf(text + n, sizeof(text) - (size_t)n, "%s", update);
	assert_ok(fileio_write_atomic_path(f->conf, text, strlen(text), 0644, &err));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = test_tmpdir();
	snprintf(f->conf, sizeof(f->conf), "%s/system.conf", f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void test_agent_config_defaults_and_values(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;
	agent_config cfg;

	write_conf(f, "[update]\nrepository=https://a.example/r https://b.example/r\n"
		      "poll-interval=60\nhealth-check=test -e /run/ok   # a comment\n");
	assert_ok(agent_config_load(&sys, &cfg, f->conf, &err));
	assert_string_equal(cfg.repository, "https://a.example/r https://b.example/r");
	assert_true(cfg.poll_interval == 60);
	assert_true(cfg.poll_jitter == 300);
	assert_true(cfg.confirm_deadline == 300);
	assert_string_equal(cfg.health_check, "test -e /run/ok");
	assert_string_equal(cfg.trusted_root, "/etc/otter/root.json");
	assert_string_equal(cfg.reboot_command, "/sbin/reboot");
	assert_string_equal(cfg.release_prefix, "releases/");
	assert_null(cfg.hardware_id);
	agent_config_clear(&cfg);
	otter_system_free(sys);
	/* Without [update]: the defaults. */
	write_conf(f, "");
	assert_ok(agent_config_load(&sys, &cfg, f->conf, &err));
	assert_null(cfg.repository);
	assert_true(cfg.retry_max == 3600);
	agent_config_clear(&cfg);
	otter_system_free(sys);
}

static void test_agent_config_errors(void **state)
{
	static const struct {
		const char *update;
		const char *needle;
	} cases[] = {
		{"[update]\nrepositry=https://x\n", "repositry"},
		{"[update]\npoll-interval=5\n", "poll-interval"},          /* below 10 */
		{"[update]\npoll-interval=ten\n", "poll-interval"},
		{"[update]\nretry-min=100\nretry-max=10\n", "retry-min"},
		{"[update]\ntrusted-root=relative/root.json\n", "trusted-root"},
		{"[update]\nrelease-prefix=../x/\n", "release-prefix"},
		{"[update]\n[update]\n", "twice"},
	};
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;
	agent_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		otter_error_clear(&err);
		write_conf(f, cases[i].update);
		assert_err(agent_config_load(&sys, &cfg, f->conf, &err), OTTER_E_CONFIG, &err,
			   cases[i].needle);
		assert_non_null(strstr(err.msg, "system.conf:"));
		assert_null(sys);
	}
	/* The plain system loader refuses [update] as unknown; the agent's accepts it. */
	write_conf(f, "[update]\nrepository=https://x.example/r\n");
	otter_error_clear(&err);
	assert_err(otter_system_load(&sys, f->conf, &err), OTTER_E_CONFIG, &err, "update");
	assert_ok(otter_agent_system_load(&sys, f->conf, &err));
	otter_system_free(sys);
}

static void test_agent_new_mirrors(void **state)
{
	struct fixture *f = *state;
	otter_agent_options o = OTTER_AGENT_OPTIONS_INIT;
	otter_error err = OTTER_ERROR_INIT;
	otter_agent *a = NULL;

	o.config_path = f->conf;
	write_conf(f, "[update]\nrepository=  https://a.example/r\thttp://b/x  file:///mnt/r  \n");
	assert_ok(otter_agent_new(&a, &o, &err));
	assert_int_equal(a->n_mirrors, 3);
	assert_string_equal(a->mirrors[0], "https://a.example/r");
	assert_string_equal(a->mirrors[1], "http://b/x");
	assert_string_equal(a->mirrors[2], "file:///mnt/r");
	a = otter_agent_free(a);
	write_conf(f, "[update]\nrepository=ftp://a.example/r\n");
	assert_err(otter_agent_new(&a, &o, &err), OTTER_E_CONFIG, &err, "ftp://a.example/r");
	otter_error_clear(&err);
	write_conf(f, "[update]\nrepository=a b c d e f g h i\n");
	assert_err(otter_agent_new(&a, &o, &err), OTTER_E_CONFIG, &err, NULL);
	otter_error_clear(&err);
	/* Offline: the folder becomes the only mirror; a missing one is an error. */
	write_conf(f, "[update]\nrepository=https://a.example/r\n");
	o.offline_dir = f->dir;
	assert_ok(otter_agent_new(&a, &o, &err));
	assert_int_equal(a->n_mirrors, 1);
	assert_int_equal(strncmp(a->mirrors[0], "file:///tmp/otter-test-", 23), 0);
	a = otter_agent_free(a);
	o.offline_dir = "/nonexistent/usb";
	assert_err(otter_agent_new(&a, &o, &err), OTTER_E_IO, &err, "/nonexistent/usb");
}

static void test_agent_state_roundtrip(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	agent_state st = {0}, back;
	bool damaged;

	/* No file: a fresh idle state. */
	assert_ok(agent_state_load(f->data, &back, &damaged, &err));
	assert_int_equal(back.state, OTTER_AGENT_IDLE);
	assert_false(damaged);
	st.state = OTTER_AGENT_PENDING_CONFIRM;
	strcpy(st.current_version, "1.1");
	strcpy(st.current_release, "releases/x/1.1.json");
	strcpy(st.pending_version, "1.2");
	strcpy(st.pending_release, "releases/x/1.2.json");
	strcpy(st.pending_bootname, "B");
	st.pending_since = 1893456000;
	st.last_check = 1893455000;
	strcpy(st.last_error, "a \"quoted\" error");
	st.failures = 3;
	agent_state_add_failed(&st, "1.0.1");
	agent_state_add_failed(&st, "1.0.1"); /* once */
	assert_ok(agent_state_save(f->data, &st, &err));
	assert_ok(agent_state_load(f->data, &back, &damaged, &err));
	assert_false(damaged);
	assert_int_equal(back.state, OTTER_AGENT_PENDING_CONFIRM);
	assert_string_equal(back.pending_bootname, "B");
	assert_true(back.pending_since == 1893456000);
	assert_string_equal(back.last_error, "a \"quoted\" error");
	assert_true(back.failures == 3);
	assert_int_equal(back.n_failed, 1);
	assert_true(agent_state_failed(&back, "1.0.1"));
	assert_true(agent_state_failed(&back, "1.0.1.0")); /* same version */
	assert_false(agent_state_failed(&back, "1.0.2"));
}

static void test_agent_state_failed_list_is_bounded(void **state)
{
	agent_state st = {0};
	char v[32];

	for (int i = 0; i <= AGENT_MAX_FAILED; i++) {
		snprintf(v, sizeof(v), "1.%d", i);
		agent_state_add_failed(&st, v);
	}
	assert_int_equal(st.n_failed, AGENT_MAX_FAILED);
	assert_false(agent_state_failed(&st, "1.0")); /* the oldest made room */
	snprintf(v, sizeof(v), "1.%d", AGENT_MAX_FAILED);
	assert_true(agent_state_failed(&st, v));
}

static void test_agent_state_damaged_is_set_aside(void **state)
{
	static const char *const bad[] = {
		"{\"state\":\"flying\"}",
		"{\"state\":\"idle\",\"failed-releases\":[\"x.y\"]}",
		"{\"state\":\"idle\",\"pending\":{\"since\":\"yesterday\"}}",
		"{\"state\":\"idle\",\"last-error\":\"\\u0001\"}",
		"{\"state\":\"idle\",\"consecutive-failures\":-1}",
		"not json",
		"{\"state\":\"idle\",\"state\":\"idle\"}",
	};
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	char path[600], aside[700];
	agent_state st;
	bool damaged;

	snprintf(path, sizeof(path), "%s/agent.json", f->data);
	snprintf(aside, sizeof(aside), "%s.damaged", path);
	assert_ok(fileio_mkdir_p(f->data, 0755, &err));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_ok(fileio_write_atomic_path(path, bad[i], strlen(bad[i]), 0644, &err));
		assert_ok(agent_state_load(f->data, &st, &damaged, &err));
		assert_true(damaged);
		assert_int_equal(st.state, OTTER_AGENT_IDLE);
		assert_non_null(strstr(st.last_error, "damaged"));
		assert_int_equal(access(path, F_OK), -1);
		assert_int_equal(access(aside, F_OK), 0);
	}
	/* Larger than the cap: damaged too, not read into memory. */
	{
		size_t n = AGENT_STATE_MAX + 1;
		char *big = malloc(n);
		memset(big, ' ', n);
		assert_ok(fileio_write_atomic_path(path, big, n, 0644, &err));
		free(big);
		assert_ok(agent_state_load(f->data, &st, &damaged, &err));
		assert_true(damaged);
		assert_non_null(strstr(st.last_error, "limit"));
	}
}

static void test_agent_status_json(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	agent_state st = {0};
	json_t *o;

	write_conf(f, "[update]\nrepository=https://a.example/r\n");
	st.state = OTTER_AGENT_ROLLED_BACK;
	agent_state_add_failed(&st, "2.0");
	assert_ok(agent_state_save(f->data, &st, &err));
	o = otter_agent_status_json(f->conf, &err);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "state")), "rolled-back");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o,
									     "failed-releases"), 0)),
			    "2.0");
	assert_null(json_object_get(o, "pending"));
	json_decref(o);
	for (int s = 0; s < _OTTER_AGENT_STATE_MAX; s++)
		assert_string_not_equal(otter_agent_state_name((otter_agent_state)s), "unknown");
	assert_string_equal(otter_agent_state_name(_OTTER_AGENT_STATE_MAX), "unknown");
}

/* ---- the state machine, with fake clocks ---- */

struct fake {
	int64_t wall, mono_ms, boot;
	char boot_id[40];
	uint64_t random;
};

static int64_t fake_wall(void *u) { return ((struct fake *)u)->wall; }
static int64_t fake_mono(void *u) { return ((struct fake *)u)->mono_ms; }
static int64_t fake_boot(void *u) { return ((struct fake *)u)->boot; }
static uint64_t fake_random(void *u) { return ((struct fake *)u)->random; }
static void fake_sleep(void *u, unsigned ms) { ((struct fake *)u)->mono_ms += ms; }

static void fake_boot_id(void *u, char out[40])
{
	snprintf(out, 40, "%s", ((struct fake *)u)->boot_id);
}

static const otter_agent_hooks fake_hooks = {fake_wall, fake_mono, fake_boot, fake_boot_id,
					     fake_random, fake_sleep, NULL};

static void put(struct fixture *f, const char *name, const void *data, size_t len)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	tfx_write_file(path, data, len);
}

static void booted(struct fixture *f, const char *bootname)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/cmdline", f->dir);
	tfx_set_cmdline(path, bootname);
}

/* Slots A (booted) and B, release 2 written into B and activated, the reboot command
 * counting its calls. */
static void device(struct fixture *f)
{
	static uint8_t slot[64 * 1024], img[8192];
	otter_error err = OTTER_ERROR_INIT;
	uint8_t digest[32];
	char update[1200], path[700];
	otter_system *sys = NULL;

	put(f, "a.img", slot, sizeof(slot));
	put(f, "b.img", slot, sizeof(slot));
	snprintf(path, sizeof(path), "%s/grubenv", f->dir);
	tfx_write_grubenv(path, NULL);
	booted(f, "A");
	snprintf(update, sizeof(update), "[update]\nreboot-command=echo r >> %s/reboots\n"
		 "confirm-deadline=300\nretry-min=60\nretry-max=3600\npoll-interval=3600\n"
		 "poll-jitter=300\n", f->dir);
	write_conf(f, update);
	assert_ok(otter_agent_system_load(&sys, f->conf, &err));
	memset(img, 0x42, sizeof(img));
	snprintf(path, sizeof(path), "%s/image", f->dir);
	assert_ok(fileio_write_atomic_path(path, img, sizeof(img), 0644, &err));
	assert_ok(otter_hash_buf(OTTER_HASH_SHA256, img, sizeof(img), digest, &err));
	assert_ok(otter_slot_install(sys, "rootfs", path, sizeof(img), digest, NULL, &err));
	otter_system_free(sys);
}

static void set_state(struct fixture *f, otter_agent_state s, int64_t since)
{
	otter_error err = OTTER_ERROR_INIT;
	agent_state st;
	bool damaged;

	assert_ok(agent_state_load(f->data, &st, &damaged, &err));
	st.state = s;
	strcpy(st.pending_version, "2");
	strcpy(st.pending_release, "releases/unit/2.json");
	strcpy(st.pending_bootname, "B");
	st.pending_since = since;
	strcpy(st.pending_boot_id, "one");
	st.pending_uptime = 100;
	assert_ok(agent_state_save(f->data, &st, &err));
}

static otter_agent *agent(struct fixture *f, struct fake *clock)
{
	otter_agent_options o = OTTER_AGENT_OPTIONS_INIT;
	otter_agent_hooks h = fake_hooks;
	otter_error err = OTTER_ERROR_INIT;
	otter_agent *a = NULL;

	h.userdata = clock;
	o.config_path = f->conf;
	o.hooks = &h;
	assert_ok(otter_agent_new(&a, &o, &err));
	return a;
}

static size_t reboots(struct fixture *f)
{
	char path[700];
	uint8_t *data = NULL;
	size_t len = 0, n = 0;
	otter_error err = OTTER_ERROR_INIT;

	snprintf(path, sizeof(path), "%s/reboots", f->dir);
	if (access(path, F_OK) != 0)
		return 0;
	assert_ok(fileio_read(AT_FDCWD, path, 4096, &data, &len, &err));
	for (size_t i = 0; i < len; i++)
		n += data[i] == '\n';
	free(data);
	return n;
}

/* pending-reboot on the old slot: the reboot is requested, then again every 5 minutes. */
static void test_agent_fsm_reboot_retry(void **state)
{
	struct fixture *f = *state;
	struct fake clock = {.wall = 1000, .boot = 50, .boot_id = "one"};
	otter_error err = OTTER_ERROR_INIT;
	otter_agent *a;

	device(f);
	set_state(f, OTTER_AGENT_PENDING_REBOOT, 0);
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(reboots(f), 1);
	assert_int_equal(a->st.state, OTTER_AGENT_PENDING_REBOOT);
	assert_int_equal(a->st.pending_since, 1000);
	clock.wall = 1000 + 299;
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(reboots(f), 1);
	clock.wall = 1000 + 300;
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(reboots(f), 2);
	assert_int_equal(a->st.pending_since, 1300);
	otter_agent_free(a);
}

/* pending-reboot, then the new slot boots: pending-confirm, healthy in time: confirmed. */
static void test_agent_fsm_boot_and_confirm(void **state)
{
	struct fixture *f = *state;
	struct fake clock = {.wall = 5000, .boot = 20, .boot_id = "two"};
	otter_error err = OTTER_ERROR_INIT;
	otter_agent *a;

	device(f);
	set_state(f, OTTER_AGENT_PENDING_REBOOT, 1000);
	booted(f, "B");
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_CONFIRMED);
	assert_string_equal(a->st.current_version, "2");
	assert_string_equal(a->st.pending_version, "");
	assert_int_equal(reboots(f), 0);
	otter_agent_free(a);
}

/* The confirmation deadline runs on the boot clock, within one boot. */
static void test_agent_fsm_confirm_deadline(void **state)
{
	struct fixture *f = *state;
	struct fake clock = {.wall = 5000, .boot = 100 + 299, .boot_id = "one"};
	otter_error err = OTTER_ERROR_INIT;
	otter_agent *a;

	device(f);
	booted(f, "B");
	/* One second left: confirmed (a wall clock jump changes nothing). */
	set_state(f, OTTER_AGENT_PENDING_CONFIRM, 1000);
	clock.wall = 999999;
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_CONFIRMED);
	otter_agent_free(a);

	/* A new boot starts the deadline again, whatever the boot clock says. */
	set_state(f, OTTER_AGENT_PENDING_CONFIRM, 1000);
	snprintf(clock.boot_id, sizeof(clock.boot_id), "two");
	clock.boot = 100000;
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_CONFIRMED);
	otter_agent_free(a);

	/* The deadline passed in the same boot: rolled back, marked bad, reboot requested. */
	set_state(f, OTTER_AGENT_PENDING_CONFIRM, 1000);
	snprintf(clock.boot_id, sizeof(clock.boot_id), "one");
	clock.boot = 100 + 300;
	clock.wall = 7000;
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_ROLLED_BACK);
	assert_true(agent_state_failed(&a->st, "2"));
	assert_non_null(strstr(a->st.last_error, "300 s deadline"));
	assert_int_equal(reboots(f), 1);
	/* Still on the failed slot: the reboot is requested again, not within 10 s. */
	clock.wall = 7009;
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(reboots(f), 1);
	clock.wall = 7010;
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(reboots(f), 2);
	/* Back on the old slot: the rollback is done. */
	booted(f, "A");
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_ROLLED_BACK);
	assert_string_equal(a->st.pending_version, "");
	otter_agent_free(a);
}

/* The boot environment as the bootloader left it (GRUB variables, NULL-terminated pairs). */
static void grubenv(struct fixture *f, const char *const *kv)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/grubenv", f->dir);
	tfx_write_grubenv(path, kv);
}

/*
 * agent.json says "installing" (saved before the activation): slot's lifecycle of the
 * release's bootname tells whether the activation reached the environment.
 */
static void test_agent_fsm_interrupted_install(void **state)
{
	struct fixture *f = *state;
	struct fake clock = {.wall = 4000, .boot = 30, .boot_id = "one"};
	otter_error err = OTTER_ERROR_INIT;
	otter_agent *a;

	/* Activated (B first), still on A: pending, so the reboot is requested. */
	device(f);
	set_state(f, OTTER_AGENT_INSTALLING, 0);
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_PENDING_REBOOT);
	assert_int_equal(reboots(f), 1);
	otter_agent_free(a);

	/* ... and booted B before agent.json said so: trying, so it is confirmed. */
	set_state(f, OTTER_AGENT_INSTALLING, 0);
	booted(f, "B");
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_CONFIRMED);
	assert_string_equal(a->st.current_version, "2");
	assert_int_equal(reboots(f), 1);
	otter_agent_free(a);

	/* The activation never reached the environment: the install is done again. */
	grubenv(f, (const char *[]){"ORDER", "A", NULL});
	booted(f, "A");
	set_state(f, OTTER_AGENT_INSTALLING, 0);
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_FAILED);
	assert_non_null(strstr(a->st.last_error, "install of release 2 was interrupted"));
	assert_false(agent_state_failed(&a->st, "2"));
	assert_int_equal(reboots(f), 1);
	otter_agent_free(a);
}

/* pending-reboot, then the bootloader falls back or the environment loses the activation. */
static void test_agent_fsm_fallback_and_lost_activation(void **state)
{
	struct fixture *f = *state;
	struct fake clock = {.wall = 4000, .boot = 30, .boot_id = "one"};
	otter_error err = OTTER_ERROR_INIT;
	otter_agent *a;

	/* B was tried three times and never confirmed; back on A. */
	device(f);
	set_state(f, OTTER_AGENT_PENDING_REBOOT, 3900);
	grubenv(f, (const char *[]){"ORDER", "B A", "B_OK", "1", "B_TRY", "3", NULL});
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_ROLLED_BACK);
	assert_true(agent_state_failed(&a->st, "2"));
	assert_non_null(strstr(a->st.last_error, "the bootloader fell back"));
	assert_string_equal(a->st.pending_version, "");
	assert_int_equal(reboots(f), 0);
	otter_agent_free(a);

	/* Activated again, then the environment is reset to its defaults: not the release's
	 * fault, not recorded as failed, installed again by the next cycle. */
	device(f);
	set_state(f, OTTER_AGENT_PENDING_REBOOT, 3900);
	grubenv(f, NULL);
	a = agent(f, &clock);
	assert_ok(otter_agent_boot_check(a, &err));
	assert_int_equal(a->st.state, OTTER_AGENT_FAILED);
	assert_non_null(strstr(a->st.last_error, "no longer puts slot B of release 2 first"));
	assert_int_equal(reboots(f), 0);
	otter_agent_free(a);
}

/* Backoff doubles from retry-min up to retry-max; jitter stays within its bounds. */
static void test_agent_fsm_backoff_and_jitter(void **state)
{
	static const uint64_t want[] = {60, 120, 240, 480, 960, 1920, 3600, 3600};
	struct fixture *f = *state;
	struct fake clock = {.wall = 1, .boot = 1};
	otter_agent *a;

	device(f);
	a = agent(f, &clock);
	/* No failure: the interval plus 0..poll-jitter. */
	a->st.failures = 0;
	clock.random = 0;
	assert_int_equal(agent_next_delay(a), 3600);
	clock.random = 300;
	assert_int_equal(agent_next_delay(a), 3600 + 300);
	clock.random = 301;
	assert_int_equal(agent_next_delay(a), 3600);
	for (uint64_t v = 0; v < 2000; v += 7) {
		clock.random = v * 0x9E3779B97F4A7C15ull;
		assert_in_range(agent_next_delay(a), 3600, 3600 + 300);
	}
	/* After n failures: retry-min * 2^(n-1), at most retry-max, plus up to a quarter. */
	for (size_t n = 1; n <= sizeof(want) / sizeof(want[0]); n++) {
		a->st.failures = n;
		clock.random = 0;
		assert_int_equal(agent_next_delay(a), want[n - 1]);
		clock.random = want[n - 1] / 4;
		assert_int_equal(agent_next_delay(a), want[n - 1] + want[n - 1] / 4);
		clock.random = UINT64_MAX;
		assert_in_range(agent_next_delay(a), want[n - 1], want[n - 1] + want[n - 1] / 4);
	}
	a->st.failures = 1000;
	clock.random = 0;
	assert_int_equal(agent_next_delay(a), 3600);
	otter_agent_free(a);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_agent_config_defaults_and_values),
		T(test_agent_config_errors),
		T(test_agent_new_mirrors),
		T(test_agent_state_roundtrip),
		T(test_agent_state_failed_list_is_bounded),
		T(test_agent_state_damaged_is_set_aside),
		T(test_agent_status_json),
		T(test_agent_fsm_reboot_retry),
		T(test_agent_fsm_boot_and_confirm),
		T(test_agent_fsm_confirm_deadline),
		T(test_agent_fsm_interrupted_install),
		T(test_agent_fsm_fallback_and_lost_activation),
		T(test_agent_fsm_backoff_and_jitter),
	};
	return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
