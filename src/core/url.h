// SPDX-License-Identifier: MIT
/*
 * url.h — split a ferry URL "scheme://rest" into its scheme and the rest.
 */
#ifndef FERRY_CORE_URL_H
#define FERRY_CORE_URL_H

#include <stddef.h>

/* Copy the scheme (letters, digits, '+', '-', '.'; 1..15 chars), folded to lower case,
 * into scheme[16] and point *rest just after "://". Returns 0 or -EINVAL. */
int ferry__url_split(const char *url, char scheme[16], const char **rest);

#endif
