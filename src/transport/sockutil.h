// SPDX-License-Identifier: MIT
/*
 * sockutil.h — socket chores shared by the transports that listen and connect (shm's
 * meeting point, unix, tcp): Unix addresses (a path, or "@name" in the abstract
 * namespace), binding a path with an exact mode, replacing a stale socket file, accepting
 * and connecting within a deadline. Every descriptor made here has FD_CLOEXEC and
 * O_NONBLOCK.
 */
#ifndef FERRY_TRANSPORT_SOCKUTIL_H
#define FERRY_TRANSPORT_SOCKUTIL_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* "/path" or "@name" -> address and its length. -EINVAL (neither), -ENAMETOOLONG. */
int ferry__unix_addr(const char *where, struct sockaddr_un *sa, socklen_t *len);

/* A listening Unix socket of `type` at sa. A path's socket is bound, given exactly
 * `mode` (never wider, not even for a moment) and set listening in a private directory
 * (mkdtemp, 0700) next to the path, then placed there: link() on a free name, rename()
 * over a stale socket file nobody listens on (checked with a connect that never waits:
 * a live listener with a full backlog is not stale, and checked again under an flock on
 * the directory). So no symlink is followed, a name appears only once it listens, of
 * listeners starting at once exactly one wins (the others -EADDRINUSE), and a live
 * listener's file is never removed. A path too long for the private name is bound in
 * place, its mode set through an O_PATH|O_NOFOLLOW descriptor checked to be our socket
 * (else -EACCES). -errno. */
int ferry__unix_listen(int type, const struct sockaddr_un *sa, socklen_t len, unsigned mode);

/* accept4 on a non-blocking listener, waiting until deadline. Returns the new socket or
 * -ETIMEDOUT / -EAGAIN (deadline 0) / -errno. */
int ferry__accept(int lfd, int64_t deadline);

/* A non-blocking connect of a new socket (domain, type) to sa, waiting until deadline for
 * it to complete. Returns the socket or -errno (-ENOENT, -ECONNREFUSED, -ETIMEDOUT...). */
int ferry__connect(int domain, int type, const struct sockaddr *sa, socklen_t len,
                   int64_t deadline);

/* tcp.c, shared with tls.c. "host:port" or "[v6]:port" -> the first address getaddrinfo
 * gives (numeric port; 0 only when passive: the kernel picks one at bind); host_out (may
 * be NULL; 256 bytes) gets the host part, without brackets. -EINVAL (malformed), -ENOENT
 * (no such host). */
int ferry__tcp_resolve(const char *where, int passive, struct sockaddr_storage *ss, socklen_t *len,
                       char *host_out);

/* tcp.c: "SCHEME://addr:port" of the socket fd is bound to (numeric, "[v6]" for IPv6)
 * into buf; its length, or -ENAMETOOLONG / -errno. */
int ferry__tcp_bound_url(int fd, const char *scheme, char *buf, size_t cap);

#endif
