/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the otter-repo configuration parser (otter-repo.conf): parse, and when it
 * parses, check that what format writes parses back to the same configuration.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <otter/repo.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_repo_config c, back;
	char *text = NULL;

	otter_repo_config_init(&c);
	if (otter_repo_config_parse(&c, data, size, "fuzz.conf", &err) < 0) {
		/* A failed parse leaves the defaults. */
		if (c.n_online != 0 || c.expiry[OTTER_REPO_ROOT] != 365ll * 86400)
			abort();
		otter_repo_config_clear(&c);
		return 0;
	}
	if (otter_repo_config_format(&c, &text, &err) < 0) {
		otter_repo_config_clear(&c);
		return 0;
	}
	otter_repo_config_init(&back);
	if (otter_repo_config_parse(&back, (const uint8_t *)text, strlen(text), "formatted",
				    &err) < 0)
		abort();
	if (memcmp(back.expiry, c.expiry, sizeof(c.expiry)) != 0 ||
	    memcmp(back.margin, c.margin, sizeof(c.margin)) != 0 || back.n_online != c.n_online)
		abort();
	for (size_t i = 0; i < c.n_online; i++)
		if (strcmp(back.online[i].role, c.online[i].role) != 0 ||
		    strcmp(back.online[i].path, c.online[i].path) != 0)
			abort();
	if ((c.passphrase_env == NULL) != (back.passphrase_env == NULL) ||
	    (c.passphrase_env && strcmp(c.passphrase_env, back.passphrase_env) != 0))
		abort();
	free(text);
	otter_repo_config_clear(&back);
	otter_repo_config_clear(&c);
	return 0;
}
