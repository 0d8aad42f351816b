// SPDX-License-Identifier: MIT
/*
 * sockutil.c — socket chores shared by the listening transports (see sockutil.h).
 */
#define _GNU_SOURCE
#include "sockutil.h"

#include "core/time.h"
#include "fdchan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int ferry__unix_addr(const char *where, struct sockaddr_un *sa, socklen_t *len)
{
    if (!where || (where[0] != '/' && where[0] != '@') || !where[1]) return -EINVAL;
    size_t n = strlen(where);
    if (n >= sizeof sa->sun_path) return -ENAMETOOLONG;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, where, n + 1);
    if (where[0] == '@') { /* abstract: a leading NUL, and the length says where it ends */
        sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = sizeof *sa;
    }
    return 0;
}

/* Is sa a socket file nobody listens on any more (its creator died)? The connect does not
 * wait: a listener whose backlog is full answers EAGAIN, and is alive. Only a refused
 * connect (ECONNREFUSED) on a path that was the same socket file before and after it
 * (*ino) is stale: a dead socket file never comes back to life (bind makes a new one). */
static int is_stale(int type, const struct sockaddr_un *sa, socklen_t len, ino_t *ino)
{
    struct stat a, b;
    if (lstat(sa->sun_path, &a) < 0 || !S_ISSOCK(a.st_mode)) return 0;
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return 0;
    int stale = connect(s, (const struct sockaddr *)sa, len) < 0 && errno == ECONNREFUSED;
    close(s);
    if (!stale || lstat(sa->sun_path, &b) < 0 || b.st_ino != a.st_ino || b.st_dev != a.st_dev)
        return 0;
    *ino = a.st_ino;
    return 1;
}

/* Take turns with the other ferry processes that place a socket file in the directory
 * of path: an flock on the directory, waited for at most a second (a process that holds
 * it longer only makes this listen fail with -EADDRINUSE, as taking the name itself
 * would). Returns the directory's descriptor (close it to unlock), or -1. */
static int lock_dir(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t n = strlen(path);
    if (n >= sizeof dir) return -1;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash) return -1;
    slash[slash == dir ? 1 : 0] = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    for (int i = 0; i < 1000; i++) {
        if (flock(dfd, LOCK_EX | LOCK_NB) == 0) return dfd;
        if (errno != EWOULDBLOCK && errno != EINTR) break;
        usleep(1000);
    }
    close(dfd);
    return -1;
}

/* Put the listening socket file `tmp` (ours, in our private directory) at sa's path,
 * never over a live listener: link() when the name is free (atomic: exactly one of
 * several wins), else, when a stale socket file is there, rename() over it, under the
 * directory lock (lock_dir) and after checking again that it is the same stale file. A
 * socket file appears at the path only once it listens, so no listener starting at the
 * same time can take it for stale. -EADDRINUSE when the name is taken. */
static int place(int type, const struct sockaddr_un *sa, socklen_t len, const char *tmp)
{
    if (link(tmp, sa->sun_path) == 0) return 0;
    if (errno != EEXIST) return -errno;
    int dfd = lock_dir(sa->sun_path), rc = -EADDRINUSE;
    ino_t ino;
    if (dfd >= 0) {
        if (link(tmp, sa->sun_path) == 0) /* gone meanwhile */
            rc = 0;
        else if (errno == EEXIST && is_stale(type, sa, len, &ino)) {
            struct stat st; /* (is_stale saw that inode before and after its connect) */
            if (lstat(sa->sun_path, &st) == 0 && st.st_ino == ino)
                rc = rename(tmp, sa->sun_path) < 0 ? -errno : 0;
        }
        close(dfd); /* drops the lock */
    }
    return rc;
}

/* The listening socket fd (bound, mode set, listening) at sa's path, made where nobody
 * else can reach it: in a private directory (mkdtemp, 0700) next to the path, where its
 * mode is set, and only then placed at the path (place). No symlink is ever followed and
 * nothing outside that directory is changed. -ENAMETOOLONG when the private name does
 * not fit a socket address (the caller then binds in place). */
static int listen_private(int fd, int type, const struct sockaddr_un *sa, socklen_t len,
                          unsigned mode)
{
    struct sockaddr_un tmp = {.sun_family = AF_UNIX};
    const char *slash = strrchr(sa->sun_path, '/');
    size_t dlen = (size_t)(slash - sa->sun_path);
    if (!slash || dlen + sizeof "/.XXXXXX/s" > sizeof tmp.sun_path) return -ENAMETOOLONG;
    memcpy(tmp.sun_path, sa->sun_path, dlen);
    memcpy(tmp.sun_path + dlen, "/.XXXXXX", sizeof "/.XXXXXX");
    if (!mkdtemp(tmp.sun_path)) return -errno;
    size_t plen = strlen(tmp.sun_path);
    char dir[sizeof tmp.sun_path];
    memcpy(dir, tmp.sun_path, plen + 1);
    memcpy(tmp.sun_path + plen, "/s", 3);
    int rc = 0;
    if (bind(fd, (const struct sockaddr *)&tmp, sizeof tmp) < 0) rc = -errno;
    /* bind() applied the umask; give exactly the mode asked for (only widening) */
    if (rc == 0 && chmod(tmp.sun_path, mode & 0777) < 0) rc = -errno;
    if (rc == 0 && listen(fd, 128) < 0) rc = -errno;
    if (rc == 0) rc = place(type, sa, len, tmp.sun_path);
    unlink(tmp.sun_path); /* (after rename: gone already) */
    rmdir(dir);
    return rc;
}

/* Give the socket file at path exactly `mode`, without following a symlink and only if
 * it is a socket owned by this euid: what is at the path is opened with O_PATH |
 * O_NOFOLLOW, checked (fstat) and changed through that descriptor (/proc/self/fd), so a
 * symlink or another user's file swapped in after bind is refused (-EACCES), never
 * changed. (For a path too long for listen_private.) */
static int chmod_own_socket(const char *path, unsigned mode)
{
    int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0) return errno == ELOOP ? -EACCES : -errno;
    struct stat st;
    int rc = 0;
    if (fstat(pfd, &st) < 0)
        rc = -errno;
    else if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
        rc = -EACCES;
    else if ((st.st_mode & 07777) != (mode & 0777)) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        if (chmod(proc, mode & 0777) < 0) rc = -errno;
    }
    close(pfd);
    return rc;
}

/* Bind and listen in place, for a path whose private directory name would not fit a
 * socket address. A stale file is replaced under the directory lock, as in place(); the
 * socket listens before the lock is dropped. (A listener starting at the same moment
 * may see this one between its bind and its listen, and take it for stale: only here.) */
static int listen_in_place(int fd, int type, const struct sockaddr_un *sa, socklen_t len,
                           unsigned mode)
{
    int rc = bind(fd, (const struct sockaddr *)sa, len) < 0 ? -errno : 0;
    int dfd = rc == -EADDRINUSE ? lock_dir(sa->sun_path) : -1;
    if (dfd >= 0) {
        ino_t ino;
        struct stat st; /* (is_stale saw that inode before and after its connect) */
        if (is_stale(type, sa, len, &ino) && lstat(sa->sun_path, &st) == 0 && st.st_ino == ino &&
            unlink(sa->sun_path) == 0)
            rc = bind(fd, (const struct sockaddr *)sa, len) < 0 ? -errno : 0;
    }
    if (rc < 0) { /* nothing of ours at the path */
        if (dfd >= 0) close(dfd);
        return rc;
    }
    if (listen(fd, 128) < 0) rc = -errno;
    if (dfd >= 0) close(dfd); /* listening: no longer to be taken for stale */
    if (rc == 0) rc = chmod_own_socket(sa->sun_path, mode);
    if (rc < 0 && rc != -EACCES) unlink(sa->sun_path); /* (-EACCES: not ours any more) */
    return rc;
}

int ferry__unix_listen(int type, const struct sockaddr_un *sa, socklen_t len, unsigned mode)
{
    int path = sa->sun_path[0] != '\0';
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int rc = 0;
    if (!path) {
        if (bind(fd, (const struct sockaddr *)sa, len) < 0 || listen(fd, 128) < 0) rc = -errno;
    } else {
        /* The socket file takes its mode from the socket inode at bind time (less the
         * umask), so it never exists with wider permissions than asked. */
        if (fchmod(fd, mode & 0777) < 0) rc = -errno;
        if (rc == 0) rc = listen_private(fd, type, sa, len, mode);
        if (rc == -ENAMETOOLONG) rc = listen_in_place(fd, type, sa, len, mode);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int ferry__accept(int lfd, int64_t deadline)
{
    for (;;) {
        int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s >= 0) return s;
        if (errno == ECONNABORTED || errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        int rc = ferry__wait_fd(lfd, POLLIN, deadline);
        if (rc < 0) return rc;
    }
}

int ferry__connect(int domain, int type, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
    int s = socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return -errno;
    for (;;) {
        if (connect(s, sa, len) == 0) return s;
        int e = errno;
        if (e == EINTR) continue;
        if (e == EINPROGRESS) { /* tcp: wait for the handshake, then ask how it went */
            int rc = ferry__wait_fd(s, POLLOUT, deadline);
            socklen_t el = sizeof e;
            if (rc == 0 && getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0) return s;
            close(s);
            return rc < 0 ? rc : -e;
        }
        if (e != EAGAIN) { /* unix: EAGAIN means the listener's backlog is full */
            close(s);
            return -e;
        }
        if (ferry__remaining(deadline) <= 0) {
            close(s);
            return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        }
        usleep(1000);
    }
}
