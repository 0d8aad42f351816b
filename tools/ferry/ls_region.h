// SPDX-License-Identifier: MIT
/*
 * ls_region.h — what `ferry ls` and `ferry rm` know of regions and states
 * (ls_region.c): recognizing a persistent region's file, finding who holds a region
 * (by device and inode, in every /proc/PID/fd and /proc/PID/maps the caller may read),
 * and removing a persistent region's file the caller owns.
 */
#ifndef FERRY_TOOL_LS_REGION_H
#define FERRY_TOOL_LS_REGION_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* The header in front of a region's user bytes (region/region.h's FERRY__REGION_HDR;
 * ls_region.c asserts they agree). */
#define LSR_HDR 4096

/* The kind of the region file open at fd (st: its fstat), read from its header with
 * pread (bounded, never mapped): FERRY_OBJ_REGION or FERRY_OBJ_STATE, or 0 when it is
 * not a regular file holding a region header. */
uint32_t lsr_file_kind(int fd, const struct stat *st);

/* A region to find the holders of: in dev and ino; out the rest. */
typedef struct lsr_target {
    uint64_t dev, ino;
    int holders;         /* processes (not this one) with a descriptor or a mapping of it */
    int unknown;         /* some process's fds or maps could not be read: maybe more */
    char path[PATH_MAX]; /* a persistent region's file, as a holder's fd or map shows it
                            ("" when none was seen; a memfd shows none) */
    int volatile_;       /* a holder showed it as a memfd: volatile (no file) */
} lsr_target;

/* Scan every process but this one and `skip` (ferryd, which keeps a published region's
 * descriptors: not a holder in the user's sense; 0 when unknown, and then it counts) once
 * for the n targets. Never fails: what cannot be read is counted as unknown. */
void lsr_scan(lsr_target *t, size_t n, pid_t skip);

/*
 * `ferry rm` of a persistent region's file: path (lstat: a symlink is not followed; the
 * last component is looked up in its directory, opened once, and removed there with
 * unlinkat only if it is still the regular file checked: same device and inode) must be
 * a region or state file owned by the caller's effective uid — and, when want_ino is not
 * 0, the inode want_dev/want_ino (a region named in ferryd). Prints what it did (or
 * would do, dry) on stdout, a refusal or an error on stderr. Returns 0 removed (or would
 * be), 1 refused or failed, -ENOENT no such file, -ENOTSUP it is no region file, or not
 * the one wanted (the caller says what it is instead).
 */
int lsr_remove(const char *path, int dry, uint64_t want_dev, uint64_t want_ino);

#endif
