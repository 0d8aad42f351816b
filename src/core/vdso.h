// SPDX-License-Identifier: MIT
/*
 * vdso.h — the kernel's vDSO clock_gettime, called without glibc's wrapper (time.c uses
 * it for every clock read the library makes). Looked up once per process; thread-safe.
 */
#ifndef FERRY_CORE_VDSO_H
#define FERRY_CORE_VDSO_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

typedef int (*ferry__vdso_gettime_fn)(clockid_t, struct timespec *);

/* The vDSO's clock_gettime, or NULL where there is none to be found (no vDSO, as under
 * valgrind, or one laid out otherwise): then use clock_gettime. */
ferry__vdso_gettime_fn ferry__vdso_gettime(void);

/* What ferry__vdso_gettime found: 0 not looked up yet, 1 none, else the function. For
 * an inline read (time.h); relaxed, see vdso.c. */
extern _Atomic uintptr_t ferry__vdso_fn;

#endif
