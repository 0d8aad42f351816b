// SPDX-License-Identifier: MIT
/*
 * test_region_readonly — read-only is enforced by the kernel. A read-only handle (made by
 * adopting ferry_region_fd_readonly) refuses a writable map (-EACCES), notify and resize
 * (-EACCES); and the descriptor it holds refuses every write path in the kernel:
 * mmap(PROT_WRITE, MAP_SHARED) EACCES, mprotect(PROT_WRITE) EACCES, pwrite EBADF,
 * ftruncate EINVAL, F_ADD_SEALS EPERM. A child that writes to a read-only mapping dies of
 * SIGSEGV, alone (the parent and another reader go on). Run as root, a child of another
 * uid holding only the read-only descriptor cannot reopen it writable through
 * /proc/self/fd (EACCES: the memfd is mode 0444), and its waits work.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void kernel_refuses_writes(int fd, size_t size)
{
    size_t len = 4096 + size;
    errno = 0;
    CHECK(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    CHECK_EQ(errno, EACCES);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    errno = 0;
    CHECK_EQ(mprotect(m, len, PROT_READ | PROT_WRITE), -1);
    CHECK_EQ(errno, EACCES);
    munmap(m, len);
    char b = 1;
    errno = 0;
    CHECK_EQ(pwrite(fd, &b, 1, 0), -1);
    CHECK_EQ(errno, EBADF);
    errno = 0;
    CHECK_EQ(pwrite(fd, &b, 1, 4096), -1);
    CHECK_EQ(errno, EBADF);
    errno = 0;
    CHECK_EQ(ftruncate(fd, 4096 + (off_t)size * 2), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
}

static void become(uid_t uid)
{
    gid_t g = (gid_t)uid;
    CHECK(setgroups(1, &g) == 0);
    CHECK(setresgid(g, g, g) == 0);
    CHECK(setresuid(uid, uid, uid) == 0);
}

int main(void)
{
    int fds0 = fd_count();
    ferry_region_opts o;
    ferry_region_opts_init(&o);
    o.flags = FERRY_REGION_GROWABLE;
    ferry_region *w;
    CHECK_EQ(ferry_region_create(8192, &o, &w), 0);
    char *wp;
    CHECK_EQ(ferry_region_map(w, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&wp), 0);
    strcpy(wp, "written");

    int rofd = -1;
    CHECK_EQ(ferry_region_fd_readonly(NULL, &rofd), -EINVAL);
    CHECK_EQ(ferry_region_fd_readonly(w, &rofd), 0);
    CHECK(rofd >= 0);
    CHECK(fcntl(rofd, F_GETFD) & FD_CLOEXEC);
    ferry_region *r;
    CHECK_EQ(ferry_region_adopt(rofd, &r), 0);
    CHECK_EQ(ferry_region_writable(r), 0);
    CHECK_EQ(ferry_region_size(r), 8192);
    void *a;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, &a), -EACCES);
    CHECK(a == NULL);
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ, &a), 0);
    CHECK(strcmp(a, "written") == 0);
    CHECK_EQ(ferry_region_notify(r), -EACCES);
    CHECK_EQ(ferry_region_resize(r, 16384), -EACCES);
    CHECK_EQ(ferry_region_version(r), 0);
    kernel_refuses_writes(ferry_region_fd(r), 8192);
    /* the library's own mapping of a read-only handle is read-only too: mprotect fails */
    errno = 0;
    CHECK_EQ(mprotect((void *)((uintptr_t)a & ~(uintptr_t)4095), 4096, PROT_READ | PROT_WRITE), -1);
    CHECK_EQ(errno, EACCES);
    /* a read-only handle hands out read-only descriptors only */
    int ro2;
    CHECK_EQ(ferry_region_fd_readonly(r, &ro2), 0);
    kernel_refuses_writes(ro2, 8192);
    close(ro2);

    /* a scribbler on a read-only mapping dies of SIGSEGV, alone */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        ((volatile char *)a)[0] = 'X';
        _exit(0); /* not reached */
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    CHECK(strcmp(a, "written") == 0); /* unchanged; we (a reader too) go on */
    CHECK(strcmp(wp, "written") == 0);

    /* a child of another uid holding only the read-only descriptor */
    if (geteuid() == 0) {
        CHECK_EQ(ferry_region_fd_readonly(w, &ro2), 0);
        int pfd[2];
        CHECK(pipe2(pfd, O_CLOEXEC) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            ferry_region_close(r); /* keep only ro2: no writable descriptor in this child */
            close(pfd[1]);
            become(61717);
            char p[64];
            snprintf(p, sizeof p, "/proc/self/fd/%d", ro2);
            errno = 0;
            CHECK_EQ(open(p, O_RDWR | O_CLOEXEC), -1);
            CHECK_EQ(errno, EACCES);
            errno = 0;
            CHECK_EQ(fchmod(ro2, 0666), -1); /* not the owner */
            CHECK_EQ(errno, EPERM);
            kernel_refuses_writes(ro2, 8192);
            ferry_region *cr;
            CHECK_EQ(ferry_region_adopt(ro2, &cr), 0);
            CHECK_EQ(ferry_region_writable(cr), 0);
            char go;
            CHECK_EQ(read(pfd[0], &go, 1), 1); /* the parent is about to notify */
            CHECK_EQ(ferry_region_wait(cr, 0, 10LL * 1000 * 1000 * 1000), 0);
            CHECK_EQ(ferry_region_version(cr), 1);
            CHECK_EQ(ferry_region_size(cr), 16384); /* the parent grew it first */
            ferry_region_close(cr);
            _exit(0);
        }
        close(pfd[0]);
        close(ro2);
        CHECK_EQ(ferry_region_resize(w, 16384), 0); /* also notifies: version 1 */
        CHECK_EQ(write(pfd[1], "g", 1), 1);
        wait_ok(pid);
        close(pfd[1]);
    } else {
        printf("(not root: the other-uid part skipped)\n");
    }

    ferry_region_close(r);
    ferry_region_close(w);
    CHECK_EQ(fd_count(), fds0);
    puts("ok");
    return 0;
}
