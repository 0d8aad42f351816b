// SPDX-License-Identifier: MIT
/*
 * ls_region.c — regions and states for `ferry ls` / `ferry rm` (ls_region.h).
 *
 * Rules:
 *  - A region file is recognized by its header (src/region/region.h: magic, layout, kind),
 *    read once with pread into a private copy; nothing in it steers anything but the
 *    answer. The file is opened O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY relative to
 *    its directory, and only a regular file is read.
 *  - Holders are what the kernel shows: a process holds a region when one of its fds, or
 *    one of its mappings, is the region's inode (device and inode number); ferryd itself,
 *    which keeps a published region's descriptors, is left out when its pid is known
 *    (its lock file; under socket activation it is not, and counts). ferryd knows
 *    only the publisher; the processes that opened the region by name, inherited it or
 *    got its descriptor hold it as well, and only /proc tells. A process whose fds or maps
 *    the caller may not read (another uid's, unless root) makes the count a lower bound
 *    ("unknown").
 *  - rm removes a file only when it is a region or state owned by the caller's effective
 *    uid; the name is resolved once to a directory descriptor and a last component, the
 *    file checked there with fstatat(AT_SYMLINK_NOFOLLOW) (and its header read through an
 *    O_NOFOLLOW open), and unlinkat'ed there only if still the same inode.
 */
#define _GNU_SOURCE
#include "ls_region.h"

#include <ferry/ferry.h>

#include "region/region.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

_Static_assert(LSR_HDR == FERRY__REGION_HDR, "ls_region.h: the region header's size");

uint32_t lsr_file_kind(int fd, const struct stat *st)
{
    if (!S_ISREG(st->st_mode) || st->st_size < (off_t)FERRY__REGION_HDR) return 0;
    uint32_t w[4]; /* magic, layout, kind, flags: a private copy */
    if (pread(fd, w, sizeof w, 0) != (ssize_t)sizeof w) return 0;
    if (w[0] != FERRY__REGION_MAGIC || w[1] != FERRY__REGION_LAYOUT) return 0;
    return w[2] == FERRY_OBJ_REGION || w[2] == FERRY_OBJ_STATE ? w[2] : 0;
}

/* A memfd's link reads "/memfd:NAME (deleted)". */
static int is_memfd_path(const char *p)
{
    return strncmp(p, "/memfd:", 7) == 0;
}

/* What a holder's link or map says: a memfd (volatile), a live name (kept), or a name
 * " (deleted)" — the file was removed, or renamed over (a region file is built under a
 * temporary name and linked in): no use, left out. */
static void set_path(lsr_target *t, const char *p)
{
    if (is_memfd_path(p)) {
        t->volatile_ = 1;
        return;
    }
    size_t n = strlen(p);
    static const char del[] = " (deleted)";
    if (t->path[0] || (n >= sizeof del - 1 && strcmp(p + n - (sizeof del - 1), del) == 0)) return;
    snprintf(t->path, sizeof t->path, "%s", p);
}

/* Mark every target held by this process (at most once each: seen[]). */
static void hold(lsr_target *t, size_t n, unsigned char *seen, uint64_t dev, uint64_t ino,
                 const char *path)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].ino != ino || t[i].dev != dev) continue;
        if (!seen[i]) {
            seen[i] = 1;
            t[i].holders++;
        }
        if (path) set_path(&t[i], path);
    }
}

static void scan_fds(int procfd, const char *pid, lsr_target *t, size_t n, unsigned char *seen,
                     int *unreadable)
{
    char sub[NAME_MAX + 8];
    snprintf(sub, sizeof sub, "%s/fd", pid);
    int dfd = openat(procfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        if (errno == EACCES || errno == EPERM) *unreadable = 1;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.') continue;
        if (fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) continue;
        int wanted = 0;
        for (size_t i = 0; i < n && !wanted; i++)
            wanted = t[i].ino == (uint64_t)st.st_ino && t[i].dev == (uint64_t)st.st_dev;
        if (!wanted) continue; /* readlink only what is looked for */
        char link[PATH_MAX];
        ssize_t k = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        link[k > 0 ? k : 0] = '\0';
        hold(t, n, seen, (uint64_t)st.st_dev, (uint64_t)st.st_ino, k > 0 ? link : NULL);
    }
    closedir(d);
}

static void scan_maps(int procfd, const char *pid, lsr_target *t, size_t n, unsigned char *seen,
                      int *unreadable)
{
    char sub[NAME_MAX + 8];
    snprintf(sub, sizeof sub, "%s/maps", pid);
    int fd = openat(procfd, sub, O_RDONLY | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        if (errno == EACCES || errno == EPERM) *unreadable = 1;
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        unsigned maj, min;
        unsigned long long ino;
        int off = 0;
        /* start-end perms offset MAJ:MIN inode [path] */
        if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu %n", &maj, &min, &ino, &off) != 3 || !ino)
            continue;
        if (len > 0 && line[len - 1] == '\n') line[len - 1] = '\0';
        const char *path = off > 0 && line[off] == '/' ? line + off : NULL;
        hold(t, n, seen, (uint64_t)makedev(maj, min), (uint64_t)ino, path);
    }
    if (ferror(f)) *unreadable = 1; /* maps of another uid: open works, read says EACCES */
    free(line);
    fclose(f);
}

void lsr_scan(lsr_target *t, size_t n, pid_t skip)
{
    if (n == 0) return;
    for (size_t i = 0; i < n; i++) {
        t[i].holders = 0;
        t[i].unknown = 0;
        t[i].path[0] = '\0';
        t[i].volatile_ = 0;
    }
    unsigned char *seen = calloc(n, 1);
    DIR *proc = opendir("/proc");
    if (!seen || !proc) {
        for (size_t i = 0; i < n; i++) t[i].unknown = 1;
        free(seen);
        if (proc) closedir(proc);
        return;
    }
    char self[32], other[32];
    snprintf(self, sizeof self, "%d", (int)getpid());
    snprintf(other, sizeof other, "%d", skip > 0 ? (int)skip : -1);
    struct dirent *pe;
    while ((pe = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)pe->d_name[0]) || strcmp(pe->d_name, self) == 0 ||
            strcmp(pe->d_name, other) == 0)
            continue;
        memset(seen, 0, n);
        int unreadable = 0;
        scan_fds(dirfd(proc), pe->d_name, t, n, seen, &unreadable);
        scan_maps(dirfd(proc), pe->d_name, t, n, seen, &unreadable);
        if (unreadable)
            for (size_t i = 0; i < n; i++) t[i].unknown = 1;
    }
    closedir(proc);
    free(seen);
}

int lsr_remove(const char *path, int dry, uint64_t want_dev, uint64_t want_ino)
{
    char dbuf[PATH_MAX], bbuf[PATH_MAX];
    if (snprintf(dbuf, sizeof dbuf, "%s", path) >= (int)sizeof dbuf) {
        fprintf(stderr, "ferry rm: %s: %s\n", path, strerror(ENAMETOOLONG));
        return 1;
    }
    snprintf(bbuf, sizeof bbuf, "%s", path);
    const char *dir = dirname(dbuf), *base = basename(bbuf);
    if (!base[0] || strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -ENOTSUP;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return -ENOENT;
        fprintf(stderr, "ferry rm: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct stat st, fst;
    int rc;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = errno == ENOENT ? -ENOENT : 1;
        if (rc == 1) fprintf(stderr, "ferry rm: %s: %s\n", path, strerror(errno));
        goto out;
    }
    rc = -ENOTSUP;
    if (!S_ISREG(st.st_mode)) goto out; /* a symlink among others: never followed */
    int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == EACCES) { /* cannot tell what it is: not ours to judge */
            fprintf(stderr, "ferry rm: %s: %s; left alone\n", path, strerror(errno));
            rc = 1;
        }
        goto out;
    }
    uint32_t kind = fstat(fd, &fst) == 0 && fst.st_ino == st.st_ino && fst.st_dev == st.st_dev
                        ? lsr_file_kind(fd, &fst)
                        : 0;
    close(fd);
    if (!kind ||
        (want_ino && ((uint64_t)fst.st_ino != want_ino || (uint64_t)fst.st_dev != want_dev)))
        goto out;
    const char *what = kind == FERRY_OBJ_STATE ? "state" : "region";
    if (fst.st_uid != geteuid()) {
        fprintf(stderr,
                "ferry rm: %s: a persistent %s owned by uid %u, not by you (uid %u); "
                "left alone\n",
                path, what, (unsigned)fst.st_uid, (unsigned)geteuid());
        rc = 1;
        goto out;
    }
    if (dry) {
        printf("would remove %s %s\n", what, path);
        rc = 0;
        goto out;
    }
    /* Still the inode just checked? (Only the directory's writers could have swapped it,
     * and they may remove it anyway; a sticky directory lets only its owner.) */
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != fst.st_ino ||
        st.st_dev != fst.st_dev) {
        fprintf(stderr, "ferry rm: %s: changed while looked at; left alone\n", path);
        rc = 1;
        goto out;
    }
    if (unlinkat(dfd, base, 0) < 0) {
        fprintf(stderr, "ferry rm: %s: %s\n", path, strerror(errno));
        rc = 1;
        goto out;
    }
    printf("removed %s %s\n", what, path);
    rc = 0;
out:
    close(dfd);
    return rc;
}
