// SPDX-License-Identifier: MIT
/*
 * segment.c — sealed memfd segments (see segment.h).
 */
#define _GNU_SOURCE
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

static int map_fd(int fd, size_t size, ferry__seg *out)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return -errno;
    out->base = p;
    out->size = size;
    return 0;
}

int ferry__seg_create(size_t size, int *fd, ferry__seg *out)
{
    int mfd = memfd_create("ferry", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) return -errno;
    int rc = 0;
    if (ftruncate(mfd, (off_t)size) < 0 ||
        fcntl(mfd, F_ADD_SEALS, REQUIRED_SEALS | F_SEAL_SEAL) < 0)
        rc = -errno;
    if (rc == 0) rc = map_fd(mfd, size, out);
    if (rc < 0) {
        close(mfd);
        return rc;
    }
    *fd = mfd;
    return 0;
}

int ferry__seg_map_checked(int fd, size_t size, ferry__seg *out)
{
    /* The seals first: F_GET_SEALS answers for memfds (tmpfs, hugetlbfs) alone and asks no
     * file system, where an fstat of a FUSE file a hostile peer sent would wait on that
     * file system's server. */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS) return -EBADMSG;
    struct stat st;
    if (fstat(fd, &st) < 0) return -EBADMSG;
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size != size) return -EBADMSG;
    return map_fd(fd, size, out);
}

void ferry__seg_unmap(ferry__seg *s)
{
    if (s->base) munmap(s->base, s->size);
    s->base = NULL;
    s->size = 0;
}
