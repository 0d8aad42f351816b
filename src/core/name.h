// SPDX-License-Identifier: MIT
/*
 * name.h — the naming rules of ferry's names (names in ferryd, watch patterns): what a
 * valid name and a valid pattern are, and which names a pattern matches. Core, so every
 * area applies the same rules: the broker (client, ferryd, the policy file) and the
 * objects that watch names (sync/event.c) alike. Pure functions: no state, no I/O.
 */
#ifndef FERRY_CORE_NAME_H
#define FERRY_CORE_NAME_H

#define FERRY__NAME_MAX 255 /* bytes, without the NUL */
#define FERRY__PART_MAX 63

#include <stddef.h>

/* Is pat (of length n) a prefix pattern ("x.y.*")? Only the shape: validity is
 * ferry__pattern_valid's. */
static inline int ferry__pattern_is_prefix(const char *pat, size_t n)
{
    return n >= 2 && pat[n - 2] == '.' && pat[n - 1] == '*';
}

/* 0 if name is a valid name (ferry.h: 1..255 bytes of dot-separated parts, each 1..63
 * of [A-Za-z0-9_-]), else -EINVAL. NULL is -EINVAL. */
int ferry__name_valid(const char *name);

/* 0 if pat is a valid watch pattern: a valid name, a valid name followed by ".*" (255
 * bytes in all, like a name: a longer one could match no name), or "*"; else -EINVAL. */
int ferry__pattern_valid(const char *pat);

/* Does name match the (valid) pattern? 1 or 0. "a.b.*" matches "a.b.c" and "a.b.c.d",
 * not "a.b" nor "a.bc". */
int ferry__pattern_match(const char *pat, const char *name);

#endif
