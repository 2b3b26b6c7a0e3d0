/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_CRYPTO_PRIVATE_H
#define OTTER_LIB_CRYPTO_PRIVATE_H

#include <otter/crypto.h>

/* Moves OpenSSL's error queue into err after "what", then clears the queue. */
int crypto_error(otter_error *err, int code, const char *what);

#endif
