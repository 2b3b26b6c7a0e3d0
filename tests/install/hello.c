/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program built against the installed libotter (headers, pkg-config file, shared library),
 * as an integrator's code would be. tests/install/test-install.sh compiles and runs it.
 */
#include <otter/crypto.h>
#include <otter/error.h>
#include <otter/json.h>
#include <otter/tuf.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
	otter_error err = OTTER_ERROR_INIT;
	char hex[2 * 64 + 1];
	int r;

	/* SHA-256("abc"), FIPS 180-2 appendix B.1 */
	r = otter_hash_buf_hex(OTTER_HASH_SHA256, "abc", 3, hex, &err);
	if (r < 0) {
		fprintf(stderr, "otter_hash_buf_hex: %s\n", err.msg);
		return 1;
	}
	if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0) {
		fprintf(stderr, "sha256(abc) = %s\n", hex);
		return 1;
	}

	r = otter_error_set(&err, OTTER_E_INVALID, "hello: %s", "error path");
	if (r != OTTER_E_INVALID || strcmp(err.msg, "hello: error path") != 0) {
		fprintf(stderr, "otter_error_set: %d %s\n", r, err.msg);
		return 1;
	}
	printf("libotter works: sha256(abc) = %s\n", hex);
	return 0;
}
