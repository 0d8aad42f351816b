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

/* Bind at a path where a stale socket file is: remove it and bind, so that of two
 * listeners starting at once exactly one wins and a live listener is never removed.
 * The ferry processes replacing a stale file in one directory take turns (an flock on
 * the directory, waited for at most a second); each checks again under the lock that
 * the file is still the same stale one before it unlinks it. A process that binds
 * without the lock can only win the name (bind creates it, atomically) once the stale
 * file is gone; then our bind fails with -EADDRINUSE. */
static int replace_stale(int fd, int type, const struct sockaddr_un *sa, socklen_t len)
{
    char dir[sizeof sa->sun_path];
    memcpy(dir, sa->sun_path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash) return -EADDRINUSE;
    if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -EADDRINUSE;
    int rc = -EADDRINUSE, locked = 0;
    for (int i = 0; i < 1000 && !(locked = flock(dfd, LOCK_EX | LOCK_NB) == 0); i++) {
        if (errno != EWOULDBLOCK && errno != EINTR) break;
        usleep(1000);
    }
    ino_t ino;
    struct stat now;
    if (locked && lstat(sa->sun_path, &now) < 0 && errno == ENOENT) /* gone meanwhile */
        rc = bind(fd, (const struct sockaddr *)sa, len) < 0 ? -errno : 0;
    else if (locked && is_stale(type, sa, len, &ino)) {
        struct stat st;
        /* (is_stale saw the same inode before and after its connect) */
        if (lstat(sa->sun_path, &st) == 0 && st.st_ino == ino && unlink(sa->sun_path) == 0)
            rc = bind(fd, (const struct sockaddr *)sa, len) < 0 ? -errno : 0;
    }
    close(dfd); /* drops the lock */
    return rc;
}

/* Give the socket file at path exactly `mode`, without following a symlink and only if
 * it is a socket owned by this euid: what is at the path is opened with O_PATH |
 * O_NOFOLLOW, checked (fstat) and changed through that descriptor (/proc/self/fd), so a
 * symlink or another user's file swapped in after bind is refused (-EACCES), never
 * changed. */
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

int ferry__unix_listen(int type, const struct sockaddr_un *sa, socklen_t len, unsigned mode)
{
    int path = sa->sun_path[0] != '\0';
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int rc = 0;
    /* The socket file takes its mode from the socket inode at bind time (less the umask),
     * so it never exists with wider permissions than asked. */
    if (path && fchmod(fd, mode & 0777) < 0) rc = -errno;
    if (rc == 0 && bind(fd, (const struct sockaddr *)sa, len) < 0) {
        rc = -errno;
        if (rc == -EADDRINUSE && path) rc = replace_stale(fd, type, sa, len);
    }
    int bound = rc == 0 && path; /* from here on, the file is ours to remove on failure */
    /* bind() applied the umask; now give exactly the mode asked for (only widening). */
    if (bound) rc = chmod_own_socket(sa->sun_path, mode);
    if (rc == 0 && listen(fd, 128) < 0) rc = -errno;
    if (rc < 0) {
        if (bound && rc != -EACCES) unlink(sa->sun_path); /* (-EACCES: not ours any more) */
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
