/*
 * obj.c — making and checking synchronization objects' memfds (see obj.h).
 */
#define _GNU_SOURCE /* off_t, fstat with -std=c11 */
#include "obj.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGE 4096u

int ferry__obj_create(uint32_t kind, size_t size, int *fd, ferry__seg *seg)
{
    if (size < sizeof(ferry__obj_hdr) || size > FERRY__OBJ_MAX) return -EINVAL;
    size = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
    int rc = ferry__seg_create(size, fd, seg); /* a new memfd reads as zeros */
    if (rc < 0) return rc;
    ferry__obj_hdr h = {.magic = FERRY__OBJ_MAGIC,
                        .kind = kind,
                        .version = FERRY__OBJ_VERSION,
                        .size = (uint32_t)size};
    memcpy(seg->base, &h, sizeof h);
    return 0;
}

int ferry__obj_map(int fd, uint32_t kind, ferry__seg *seg)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(ferry__obj_hdr) ||
        (size_t)st.st_size > FERRY__OBJ_MAX)
        return -EBADMSG;
    int rc = ferry__seg_map_checked(fd, (size_t)st.st_size, seg);
    if (rc < 0) return rc == -ENOMEM ? rc : -EBADMSG;
    ferry__obj_hdr h; /* one private copy: the sharers may write the header any time */
    memcpy(&h, seg->base, sizeof h);
    if (h.magic != FERRY__OBJ_MAGIC || h.kind != kind || h.version != FERRY__OBJ_VERSION ||
        h.size != (uint64_t)st.st_size) {
        ferry__seg_unmap(seg);
        return -EBADMSG;
    }
    return 0;
}
