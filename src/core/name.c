// SPDX-License-Identifier: MIT
/*
 * name.c — the naming rules every name in ferry follows (see name.h): valid names and
 * watch patterns, and matching a name against a pattern.
 */
#define _POSIX_C_SOURCE 200809L /* strnlen with -std=c11 */
#include "core/name.h"

#include <errno.h>
#include <string.h>

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int ferry__name_valid(const char *name)
{
    if (!name) return -EINVAL;
    size_t len = 0, part = 0;
    for (; name[len]; len++) {
        if (len == FERRY__NAME_MAX) return -EINVAL;
        if (name[len] == '.') {
            if (part == 0) return -EINVAL;
            part = 0;
        } else if (name_char(name[len]) && part < FERRY__PART_MAX) {
            part++;
        } else {
            return -EINVAL;
        }
    }
    return part > 0 ? 0 : -EINVAL; /* also catches "" and a trailing dot */
}

int ferry__pattern_valid(const char *pat)
{
    if (!pat) return -EINVAL;
    if (strcmp(pat, "*") == 0) return 0;
    size_t n = strnlen(pat, FERRY__NAME_MAX + 3);
    if (!ferry__pattern_is_prefix(pat, n)) return ferry__name_valid(pat);
    if (n > FERRY__NAME_MAX) return -EINVAL; /* a pattern, too, is at most 255 bytes */
    char base[FERRY__NAME_MAX + 1];
    memcpy(base, pat, n - 2);
    base[n - 2] = '\0';
    return ferry__name_valid(base);
}

int ferry__pattern_match(const char *pat, const char *name)
{
    if (!pat || !name) return 0;
    if (strcmp(pat, "*") == 0) return 1;
    size_t n = strlen(pat);
    if (ferry__pattern_is_prefix(pat, n)) /* "a.b." must start name, and something must follow */
        return strncmp(pat, name, n - 1) == 0 && name[n - 1] != '\0';
    return strcmp(pat, name) == 0;
}
