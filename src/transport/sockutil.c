/*
 * sockutil.c — socket chores shared by the listening transports (see sockutil.h).
 */
#define _GNU_SOURCE
#include "sockutil.h"

#include "core/time.h"
#include "fdchan.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
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

/* A socket file nobody listens on any more (its creator died) may be replaced. */
static int is_stale(int type, const struct sockaddr_un *sa, socklen_t len)
{
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (s < 0) return 0;
    int stale = connect(s, (const struct sockaddr *)sa, len) < 0 && errno == ECONNREFUSED;
    close(s);
    struct stat st;
    return stale && lstat(sa->sun_path, &st) == 0 && S_ISSOCK(st.st_mode);
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
        if (rc == -EADDRINUSE && path && is_stale(type, sa, len) && unlink(sa->sun_path) == 0)
            rc = bind(fd, (const struct sockaddr *)sa, len) < 0 ? -errno : 0;
    }
    int bound = rc == 0 && path; /* from here on, the file is ours to remove on failure */
    /* bind() applied the umask; now give exactly the mode asked for (only widening). */
    if (bound && chmod(sa->sun_path, mode & 0777) < 0) rc = -errno;
    if (rc == 0 && listen(fd, 128) < 0) rc = -errno;
    if (rc < 0) {
        if (bound) unlink(sa->sun_path);
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
