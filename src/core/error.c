// SPDX-License-Identifier: MIT
/*
 * error.c — ferry_strerror(): a short static name for every errno value ferry returns.
 *
 * Rules: accepts the negative value a ferry call returned or a positive errno; 0 is
 * "success" and anything not listed is "unknown error". Every string is a static
 * literal "ENAME: meaning" in a table indexed by the errno value, so the result is never
 * NULL and the function is thread-safe (it never calls strerror(), which may use a shared
 * buffer).
 */
#include <ferry/ferry.h>

#include <errno.h>
#include <limits.h>

static const char *const names[] = {
    /* The meanings ferry gives these codes (ferry.h, docs/api.md). */
    [ETIMEDOUT] = "ETIMEDOUT: deadline passed",
    [EAGAIN] = "EAGAIN: not ready (FERRY_NOW)",
    [EPIPE] = "EPIPE: peer gone",
    [EMSGSIZE] = "EMSGSIZE: message too large",
    [EBADMSG] = "EBADMSG: corrupt frame or ring",
    [EACCES] = "EACCES: denied by policy",
    [ENOENT] = "ENOENT: no such name",
    [EDQUOT] = "EDQUOT: quota exceeded",
    [EOPNOTSUPP] = "EOPNOTSUPP: not supported on this transport",
#if ENOTSUP != EOPNOTSUPP /* the same value on Linux */
    [ENOTSUP] = "ENOTSUP: not supported",
#endif
    [EINVAL] = "EINVAL: invalid argument",
    [ENOBUFS] = "ENOBUFS: memory cap reached",
    [EBUSY] = "EBUSY: a loan or peek is outstanding",
    [EPROTONOSUPPORT] = "EPROTONOSUPPORT: unknown URL scheme",
    [ECONNREFUSED] = "ECONNREFUSED: nobody listens",
    /* System errors passed through. */
    [ENOMEM] = "ENOMEM: out of memory",
    [EMFILE] = "EMFILE: too many open files in this process",
    [ENFILE] = "ENFILE: too many open files in the system",
    [EBADF] = "EBADF: bad file descriptor",
    [EADDRINUSE] = "EADDRINUSE: address in use",
    [EADDRNOTAVAIL] = "EADDRNOTAVAIL: address not available",
    [ENAMETOOLONG] = "ENAMETOOLONG: name too long",
    [EEXIST] = "EEXIST: already exists",
    [EINTR] = "EINTR: interrupted by a signal",
    [ENOSYS] = "ENOSYS: not implemented by the kernel",
    [EPERM] = "EPERM: operation not permitted",
    [ENOTCONN] = "ENOTCONN: not connected",
    [ECONNRESET] = "ECONNRESET: connection reset by peer",
    [ECONNABORTED] = "ECONNABORTED: connection aborted",
    [ENOSPC] = "ENOSPC: no space left",
    [EOWNERDEAD] = "EOWNERDEAD: lock owner died",
    [ENOTRECOVERABLE] = "ENOTRECOVERABLE: state not recoverable",
    [ESRCH] = "ESRCH: no such process",
    [E2BIG] = "E2BIG: too big",
    [EFAULT] = "EFAULT: bad address",
    [EIO] = "EIO: input/output error",
    [EOVERFLOW] = "EOVERFLOW: value too large",
    [EPROTO] = "EPROTO: protocol error",
    [ENOTSOCK] = "ENOTSOCK: not a socket",
    [ENOTDIR] = "ENOTDIR: not a directory",
    [ELOOP] = "ELOOP: too many symbolic links",
    [EROFS] = "EROFS: read-only file system",
    [EDEADLK] = "EDEADLK: deadlock avoided",
    [EPROTOTYPE] = "EPROTOTYPE: a name of another kind (server or object)",
    [ECANCELED] = "ECANCELED: call cancelled",
    /* tls:// handshakes (ferry.h "tls://"). */
    [EKEYREJECTED] = "EKEYREJECTED: the peer's certificate is not trusted",
    [EKEYEXPIRED] = "EKEYEXPIRED: the peer's certificate has expired or is not yet valid",
    [EREMCHG] = "EREMCHG: the server's certificate is not for this host name",
    [EFBIG] = "EFBIG: file too large",
};

const char *ferry_strerror(int err)
{
    if (err == 0) return "success";
    if (err == INT_MIN) return "unknown error"; /* -INT_MIN would overflow */
    if (err < 0) err = -err;
    if ((size_t)err < sizeof names / sizeof names[0] && names[err]) return names[err];
    return "unknown error";
}
