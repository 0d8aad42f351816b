// SPDX-License-Identifier: MIT
/*
 * region_open.c — regions and states opened by name through ferryd (ferry.h, "regions
 * and states by name"; docs/region-sharing.md): ferry_region_open and ferry_state_open.
 * Publishing is ferry_publish's (client.c: it sends ferryd a region's read-write and
 * read-only descriptors, a state's read-only one).
 *
 * Rules:
 *  - ferryd decides what the caller gets (the connect right: a read-only descriptor; the
 *    write right, asked with FERRY__WANT_WRITE: the read-write one); this side only
 *    checks that what came is what it asked for (the access mode of the descriptor) and
 *    hands it to the region's own adopter, which validates the object as it would one
 *    from anywhere else (seals, header read once, size from fstat).
 *  - A descriptor that is writable when read-only was asked for is refused too (-EBADMSG):
 *    a caller that asked for read-only gets a handle that cannot write, whatever ferryd
 *    sent.
 */
#define _GNU_SOURCE
#include "client.h"
#include "proto.h"

#include "region/region.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Open name (kind) with want, and check the descriptor's access mode: O_RDWR when
 * writing was asked for, O_RDONLY otherwise. The caller owns *fd on success. */
static int open_checked(const char *name, int kind, uint32_t want, int *fd, int64_t timeout_ns)
{
    int trusted;
    int rc = ferry__obj_open_want(name, kind, want, fd, &trusted, timeout_ns);
    if (rc < 0) return rc;
    int fl = fcntl(*fd, F_GETFL);
    int ok = fl >= 0 && !(fl & O_PATH) &&
             (fl & O_ACCMODE) == (want & FERRY__WANT_WRITE ? O_RDWR : O_RDONLY);
    if (!ok) {
        close(*fd);
        *fd = -1;
        return -EBADMSG;
    }
    return 0;
}

int ferry_region_open(const char *name, uint32_t prot, ferry_region **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    *out = NULL;
    uint32_t want;
    if (prot == FERRY_REGION_READ)
        want = 0;
    else if (prot == (FERRY_REGION_READ | FERRY_REGION_WRITE))
        want = FERRY__WANT_WRITE;
    else
        return -EINVAL;
    int fd;
    int rc = open_checked(name, FERRY_OBJ_REGION, want, &fd, timeout_ns);
    if (rc < 0) return rc;
    rc = ferry_region_adopt(fd, out); /* owns fd now, or closed it */
    return rc == -EINVAL ? -EBADMSG : rc;
}

int ferry_state_open(const char *name, ferry_state **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    *out = NULL;
    int fd;
    int rc = open_checked(name, FERRY_OBJ_STATE, 0, &fd, timeout_ns);
    if (rc < 0) return rc;
    rc = ferry_state_adopt(fd, out);
    return rc == -EINVAL ? -EBADMSG : rc;
}
