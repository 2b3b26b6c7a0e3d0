/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the system configuration (INI) parser: any input either parses into a
 * system whose slots satisfy the A/B invariants, or fails with a message; nothing crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <otter/system.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;

	if (otter_system_parse(&sys, "fuzz.conf", data, size, &err) < 0) {
		if (err.code == 0 || !err.msg[0])
			abort();
		return 0;
	}
	if (otter_system_n_slots(sys) == 0 || otter_system_n_bootnames(sys) < 2)
		abort();
	for (size_t i = 0; i < otter_system_n_slots(sys); i++) {
		const otter_slot *s = otter_system_slot(sys, i);

		if (otter_system_find_slot(sys, otter_slot_name(s)) != s ||
		    otter_slot_device(s)[0] != '/' || !otter_slot_bootname(s)[0])
			abort();
	}
	if (otter_system_tries(sys) < 1 || otter_system_tries(sys) > 9)
		abort();
	otter_system_free(sys);
	return 0;
}
