// SPDX-License-Identifier: MIT
/*
 * test_region_basic — a region is made, mapped, shared by fork and by descriptor: both
 * sides see each other's writes; the size, the descriptor (a memfd, sealed, mode 0444,
 * nothing in /dev/shm), bad arguments, adopting descriptors that are no region
 * (-EBADMSG), and no descriptor leaks.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void sealed_memfd(int fd, int growable)
{
    char p[64], link[256];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, link, sizeof link - 1);
    CHECK(n > 0);
    link[n] = '\0';
    CHECK(strncmp(link, "/memfd:ferry-", 13) == 0); /* never a name in /dev/shm */
    int seals = fcntl(fd, F_GET_SEALS);
    CHECK(seals >= 0);
    CHECK((seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) == (F_SEAL_SHRINK | F_SEAL_SEAL));
    CHECK(!!(seals & F_SEAL_GROW) == !growable);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    CHECK_EQ(st.st_mode & 07777, 0444);
}

/* An unsealed 8192-byte memfd holding hdr: the first 256 bytes of r's header, with the
 * user size (offset 64) set to 4096 (a valid image until the caller changes it). */
static int image_memfd(ferry_region *r, char hdr[256])
{
    int fd = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(ftruncate(fd, 8192) == 0);
    CHECK_EQ(pread(ferry_region_fd(r), hdr, 256, 0), 256);
    uint64_t us = 4096;
    memcpy(hdr + 64, &us, 8);
    CHECK_EQ(pwrite(fd, hdr, 256, 0), 256);
    return fd;
}

int main(void)
{
    int fds0 = fd_count();
    ferry_region *r;
    CHECK_EQ(ferry_region_create(0, NULL, &r), -EINVAL);
    CHECK_EQ(ferry_region_create(FERRY_REGION_MAX_SIZE + 1, NULL, &r), -EINVAL);
    ferry_region_opts o;
    ferry_region_opts_init(&o);
    CHECK_EQ(o.size, sizeof o);
    CHECK_EQ(o.mode, 0600);
    o.flags = FERRY_REGION_EXCL; /* without FILE */
    CHECK_EQ(ferry_region_create(100, &o, &r), -EINVAL);
    o.flags = 1u << 20;
    CHECK_EQ(ferry_region_create(100, &o, &r), -EINVAL);
    o.flags = 0;
    o.size = 0;
    CHECK_EQ(ferry_region_create(100, &o, &r), -EINVAL);
    CHECK_EQ(fd_count(), fds0);

    CHECK_EQ(ferry_region_create(10000, NULL, &r), 0);
    CHECK_EQ(ferry_region_size(r), 10000);
    CHECK_EQ(ferry_region_writable(r), 1);
    CHECK_EQ(ferry_region_version(r), 0);
    sealed_memfd(ferry_region_fd(r), 0);
    void *a;
    CHECK_EQ(ferry_region_map(r, 0, &a), -EINVAL);
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_WRITE, &a), -EINVAL);
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, &a), 0);
    CHECK(((uintptr_t)a & 4095) == 0);
    unsigned char *p = a;
    for (int i = 0; i < 10000; i++) CHECK_EQ(p[i], 0);
    memcpy(p, "hello", 6);
    p[9999] = 0x5a;

    /* by fork: the child's handle works, and writes are seen both ways */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        void *b;
        CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, &b), 0);
        CHECK(strcmp(b, "hello") == 0);
        CHECK_EQ(((unsigned char *)b)[9999], 0x5a);
        memcpy((char *)b + 100, "child", 6);
        CHECK_EQ(ferry_region_notify(r), 0);
        ferry_region_close(r);
        _exit(0);
    }
    wait_ok(pid);
    CHECK(strcmp((char *)p + 100, "child") == 0);
    CHECK_EQ(ferry_region_version(r), 1);

    /* by descriptor: a dup adopted (as if received), the same memory */
    int d = fcntl(ferry_region_fd(r), F_DUPFD_CLOEXEC, 0);
    CHECK(d >= 0);
    ferry_region *r2;
    CHECK_EQ(ferry_region_adopt(d, &r2), 0);
    CHECK_EQ(ferry_region_writable(r2), 1);
    CHECK_EQ(ferry_region_size(r2), 10000);
    CHECK_EQ(ferry_region_version(r2), 1);
    void *b;
    CHECK_EQ(ferry_region_map(r2, FERRY_REGION_READ | FERRY_REGION_WRITE, &b), 0);
    CHECK(b != a);
    CHECK(strcmp(b, "hello") == 0);
    memcpy((char *)b + 200, "adopted", 8);
    CHECK(strcmp((char *)p + 200, "adopted") == 0);
    CHECK_EQ(ferry_region_unmap(r2, b), 0);
    CHECK_EQ(ferry_region_unmap(r2, b), -EINVAL);
    CHECK_EQ(ferry_region_unmap(r2, a), -EINVAL); /* another handle's mapping */
    ferry_region_close(r2);

    /* descriptors that are no region: -EBADMSG, and adopt closes them */
    int fdn = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING); /* unsealed */
    CHECK(ftruncate(fdn, 8192) == 0);
    CHECK_EQ(ferry_region_adopt(fdn, &r2), -EBADMSG);
    CHECK_EQ(fcntl(fdn, F_GETFD), -1);
    fdn = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING); /* sealed, no header */
    CHECK(ftruncate(fdn, 8192) == 0);
    CHECK(fcntl(fdn, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    CHECK_EQ(ferry_region_adopt(fdn, &r2), -EBADMSG);
    /* a real region's memfd, reopened write-only: unreadable, refused */
    char pth[64];
    snprintf(pth, sizeof pth, "/proc/self/fd/%d", ferry_region_fd(r));
    if (geteuid() == 0) { /* the owner cannot open a 0444 inode for writing; root can */
        int wo = open(pth, O_WRONLY | O_CLOEXEC);
        CHECK(wo >= 0);
        CHECK_EQ(ferry_region_adopt(wo, &r2), -EBADMSG);
    }
    /* a header that claims growable on a memfd sealed against growing: refused */
    char hdr[256];
    fdn = image_memfd(r, hdr);
    int ok = image_memfd(r, hdr); /* the same, valid */
    CHECK(fcntl(ok, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    CHECK_EQ(ferry_region_adopt(ok, &r2), 0); /* control: this one is a region */
    ferry_region_close(r2);
    hdr[12] = 1; /* flags: growable */
    CHECK_EQ(pwrite(fdn, hdr, sizeof hdr, 0), (long)sizeof hdr);
    CHECK(fcntl(fdn, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    CHECK_EQ(ferry_region_adopt(fdn, &r2), -EBADMSG);
    /* a write seal (the writer's mappings would fail): refused */
    fdn = image_memfd(r, hdr);
    CHECK(fcntl(fdn, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0);
    CHECK_EQ(ferry_region_adopt(fdn, &r2), -EBADMSG);
    int pp[2];
    CHECK(pipe2(pp, O_CLOEXEC) == 0);
    CHECK_EQ(ferry_region_adopt(pp[0], &r2), -EBADMSG);
    close(pp[1]);
    CHECK_EQ(ferry_region_adopt(-1, &r2), -EINVAL);
    /* a state is not a region, nor a region a state */
    ferry_state *st;
    CHECK_EQ(ferry_state_create(64, NULL, &st), 0);
    CHECK_EQ(ferry_region_adopt(fcntl(ferry_state_fd(st), F_DUPFD_CLOEXEC, 0), &r2), -EBADMSG);
    ferry_state *st2 = (ferry_state *)1;
    CHECK_EQ(ferry_state_adopt(fcntl(ferry_region_fd(r), F_DUPFD_CLOEXEC, 0), &st2), -EBADMSG);
    CHECK(st2 == NULL);
    ferry_state_close(st);

    CHECK_EQ(ferry_region_sync(r), 0); /* volatile: nothing to write, 0 */
    CHECK_EQ(ferry_region_sync(NULL), -EINVAL);
    ferry_region_close(r); /* unmaps a too */
    ferry_region_close(NULL);
    CHECK_EQ(fd_count(), fds0);
    puts("ok");
    return 0;
}
