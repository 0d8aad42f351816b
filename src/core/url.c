// SPDX-License-Identifier: MIT
/*
 * url.c — split "scheme://rest" (see url.h). No allocation; the caller owns everything.
 * The scheme comes out in lower case: schemes are case-insensitive (RFC 3986 §3.1), so
 * "SHM://" and "Unix://" name shm and unix. The rest is the transport's, untouched.
 */
#include "url.h"

#include <errno.h>
#include <string.h>

int ferry__url_split(const char *url, char scheme[16], const char **rest)
{
    if (!url || !scheme || !rest) return -EINVAL;
    const char *sep = strstr(url, "://");
    size_t n = sep ? (size_t)(sep - url) : 0;
    if (n == 0 || n > 15) return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = url[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a'); /* RFC 3986: case-insensitive */
        int ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
        if (!ok) return -EINVAL;
        scheme[i] = c;
    }
    scheme[n] = '\0';
    *rest = sep + 3;
    return 0;
}
