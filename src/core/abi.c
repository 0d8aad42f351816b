// SPDX-License-Identifier: MIT
/*
 * abi.c — copying sized structs between a caller and the library (rules in abi.h).
 * Byte copies only: a caller's struct may be laid out by another version of ferry.h, so
 * nothing here reads it through our struct type beyond the size field at offset 0.
 */
#include "core/abi.h"

#include <errno.h>
#include <string.h>

void ferry__sized_init(void *o, size_t size, const void *defaults, size_t ksize)
{
    if (!o) return;
    memset(o, 0, size);
    if (size < sizeof(size_t)) return;
    memcpy(o, defaults, size < ksize ? size : ksize);
    memcpy(o, &size, sizeof size);
}

/* The caller's size, or 0 when it is not a prepared struct's (0, < v0, too large). */
static size_t caller_size(const void *p, size_t v0)
{
    size_t usize;
    memcpy(&usize, p, sizeof usize); /* read once: everything below uses this copy */
    return usize < v0 || usize < sizeof(size_t) || usize > FERRY__SIZED_MAX ? 0 : usize;
}

int ferry__sized_check(const void *p, size_t v0)
{
    return p && caller_size(p, v0) ? 0 : -EINVAL;
}

int ferry__sized_in(void *dst, size_t ksize, const void *src, size_t v0)
{
    if (!src) return 0;
    size_t usize = caller_size(src, v0);
    if (usize == 0) return -EINVAL;
    const unsigned char *s = src;
    for (size_t i = ksize; i < usize; i++)
        if (s[i] != 0) return -E2BIG; /* a field of a newer version, set: we cannot do it */
    size_t n = usize < ksize ? usize : ksize;
    /* everything but the size field: dst keeps its own (ours) */
    memcpy((unsigned char *)dst + sizeof(size_t), s + sizeof(size_t), n - sizeof(size_t));
    return 0;
}

int ferry__sized_out(void *dst, const void *src, size_t ksize, size_t v0)
{
    if (!dst) return -EINVAL;
    size_t usize = caller_size(dst, v0);
    if (usize == 0) return -EINVAL;
    size_t n = usize < ksize ? usize : ksize;
    memcpy((unsigned char *)dst + sizeof(size_t), (const unsigned char *)src + sizeof(size_t),
           n - sizeof(size_t));
    memcpy(dst, &n, sizeof n);
    return 0;
}
