// SPDX-License-Identifier: MIT
/*
 * test_segment.c — sealed memfd segments (shm/segment.h): a created segment is a memfd
 * of exactly the asked size (page multiples and odd sizes), close-on-exec, sealed against
 * shrinking, growing and further sealing, mapped shared (a second mapping of the same fd
 * sees the writes); ferry__seg_map_checked maps only a memfd carrying both seals with
 * exactly the announced size, and refuses everything else with exactly -EBADMSG: a
 * wrong size (smaller, larger, zero), an unsealed memfd, one with only one of the two
 * seals, a regular file, a pipe, a closed descriptor. A refused or failed call leaves no
 * descriptor and no mapping behind.
 */
#define _GNU_SOURCE
#include "shm/segment.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void test_create(size_t size)
{
    int fd = -1;
    ferry__seg s = {0};
    CHECK_EQ(ferry__seg_create(size, &fd, &s), 0);
    CHECK(fd >= 0);
    CHECK(s.base != NULL);
    CHECK_EQ(s.size, size);
    struct stat st;
    CHECK_EQ(fstat(fd, &st), 0);
    CHECK_EQ(st.st_size, (off_t)size);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    int seals = fcntl(fd, F_GET_SEALS);
    CHECK_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
             F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    /* The seals hold: no resize, no removal (nothing can be unsealed anyway), no more. */
    CHECK_EQ(ftruncate(fd, (off_t)size / 2), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(ftruncate(fd, (off_t)size * 2), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    CHECK_EQ(errno, EPERM);

    /* Shared: a checked second mapping of the same memfd sees what the first wrote. */
    memset(s.base, 0xA5, size);
    ferry__seg t = {0};
    CHECK_EQ(ferry__seg_map_checked(fd, size, &t), 0);
    CHECK(t.base != s.base);
    CHECK_EQ(((uint8_t *)t.base)[0], 0xA5);
    CHECK_EQ(((uint8_t *)t.base)[size - 1], 0xA5);
    ((uint8_t *)t.base)[size / 2] = 7;
    CHECK_EQ(((uint8_t *)s.base)[size / 2], 7);
    ferry__seg_unmap(&t);
    CHECK(t.base == NULL && t.size == 0);
    ferry__seg_unmap(&s);
    CHECK(s.base == NULL && s.size == 0);
    ferry__seg_unmap(&s); /* an empty segment: no-op */
    close(fd);
}

static void test_create_fails(void)
{
    int fd = -7;
    ferry__seg s = {0};
    /* Size 0 cannot be mapped: the error is mmap's, and the memfd is closed again. */
    CHECK_EQ(ferry__seg_create(0, &fd, &s), -EINVAL);
    CHECK_EQ(fd, -7);
    CHECK(s.base == NULL);
    /* A size beyond what off_t holds: ftruncate refuses it. */
    CHECK_EQ(ferry__seg_create(SIZE_MAX, &fd, &s), -EINVAL);
    CHECK_EQ(fd, -7);
}

/* A memfd of size bytes with the given seals (0: none), not mapped. */
static int memfd_with(size_t size, int seals)
{
    int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, (off_t)size), 0);
    if (seals) CHECK_EQ(fcntl(fd, F_ADD_SEALS, seals), 0);
    return fd;
}

static void refused(int fd, size_t size)
{
    ferry__seg s = {(void *)0x1, 99};
    CHECK_EQ(ferry__seg_map_checked(fd, size, &s), -EBADMSG);
    CHECK(s.base == (void *)0x1 && s.size == 99); /* untouched */
}

static void test_map_checked(void)
{
    enum { SZ = 8192 };
    int fd = memfd_with(SZ, F_SEAL_SHRINK | F_SEAL_GROW);
    ferry__seg s = {0};
    CHECK_EQ(ferry__seg_map_checked(fd, SZ, &s), 0); /* F_SEAL_SEAL is not required */
    ferry__seg_unmap(&s);
    refused(fd, SZ - 1);
    refused(fd, SZ + 1);
    refused(fd, SZ / 2);
    refused(fd, 0);
    refused(fd, SIZE_MAX);
    close(fd);

    fd = memfd_with(SZ, 0); /* unsealed: the peer could shrink it under us */
    refused(fd, SZ);
    close(fd);
    fd = memfd_with(SZ, F_SEAL_SHRINK);
    refused(fd, SZ);
    close(fd);
    fd = memfd_with(SZ, F_SEAL_GROW);
    refused(fd, SZ);
    close(fd);
    fd = memfd_create("test", MFD_CLOEXEC); /* sealing not allowed: F_SEAL_SEAL set */
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, SZ), 0);
    refused(fd, SZ);
    close(fd);

    /* Not a memfd at all. */
    fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, SZ), 0);
    refused(fd, SZ);
    close(fd);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    refused(p[0], SZ);
    refused(p[0], 0);
    close(p[0]);
    close(p[1]);
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    refused(fd, 0);
    close(fd);
    refused(-1, SZ);
    refused(p[0], SZ); /* closed now */
}

int main(void)
{
    int fds = fd_count();
    test_create(4096);
    test_create(100); /* not a page multiple */
    test_create(1 << 20);
    test_create_fails();
    test_map_checked();
    CHECK_EQ(fd_count(), fds);
    printf("ok: segment\n");
    return 0;
}
