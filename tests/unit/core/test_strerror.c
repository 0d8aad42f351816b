// SPDX-License-Identifier: MIT
/*
 * test_strerror.c — ferry_strerror(): every code ferry returns has its own string,
 * "NAME: meaning", the same for -e and e; 0 is "success"; anything else (including
 * INT_MIN) is "unknown error". Never NULL.
 */
#include <ferry/ferry.h>

#include "testutil.h"

#include <limits.h>

#define E(x)                                                                                       \
    {                                                                                              \
        x, #x                                                                                      \
    }
static const struct {
    int code;
    const char *name;
} codes[] = {
    E(ETIMEDOUT),  E(EAGAIN),       E(EPIPE),      E(EMSGSIZE),        E(EBADMSG),
    E(EACCES),     E(ENOENT),       E(EDQUOT),     E(EOPNOTSUPP),      E(EINVAL),
    E(ENOBUFS),    E(EBUSY),        E(ENOMEM),     E(EMFILE),          E(ENFILE),
    E(EBADF),      E(ECONNREFUSED), E(EADDRINUSE), E(ENAMETOOLONG),    E(EPROTONOSUPPORT),
    E(EEXIST),     E(EINTR),        E(ENOSYS),     E(EPERM),           E(ENOTCONN),
    E(ECONNRESET), E(ENOSPC),       E(EOWNERDEAD), E(ENOTRECOVERABLE), E(ESRCH),
    E(E2BIG),      E(EFAULT),       E(ENOTSUP),    E(EADDRNOTAVAIL),   E(ECONNABORTED),
    E(EIO),        E(EOVERFLOW),    E(EPROTO),     E(ENOTSOCK),        E(ENOTDIR),
    E(ELOOP),      E(EROFS),        E(EDEADLK),    E(EPROTOTYPE),      E(ECANCELED),
};
#define NCODES (sizeof codes / sizeof codes[0])

int main(void)
{
    for (size_t i = 0; i < NCODES; i++) {
        const char *s = ferry_strerror(-codes[i].code);
        CHECK(s != NULL);
        CHECK(strcmp(s, "unknown error") != 0);
        CHECK(ferry_strerror(codes[i].code) == s);
        /* "NAME: meaning" — except for an alias (ENOTSUP is EOPNOTSUPP on Linux). */
        int alias = 0;
        for (size_t j = 0; j < i; j++) alias |= codes[j].code == codes[i].code;
        if (!alias) {
            size_t n = strlen(codes[i].name);
            if (strncmp(s, codes[i].name, n) != 0 || s[n] != ':' || s[n + 1] != ' ') {
                fprintf(stderr, "%s: bad string \"%s\"\n", codes[i].name, s);
                return 1;
            }
            CHECK(strlen(s) > n + 2);
        }
        /* Distinct codes have distinct strings. */
        for (size_t j = 0; j < i; j++)
            if (codes[j].code != codes[i].code)
                CHECK(strcmp(ferry_strerror(codes[j].code), s) != 0);
    }

    CHECK(strcmp(ferry_strerror(0), "success") == 0);
    const int unknown[] = {9999, -9999, 4095, -4095, INT_MAX, INT_MIN, INT_MIN + 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = ferry_strerror(unknown[i]);
        CHECK(s != NULL);
        CHECK(strcmp(s, "unknown error") == 0);
    }
    printf("ok: strerror (%zu codes)\n", NCODES);
    return 0;
}
