// SPDX-License-Identifier: MIT
/*
 * fdchan.c — ferry frames over kernel file descriptors (see fdchan.h for the rules).
 */
#define _GNU_SOURCE
#include "fdchan.h"

#include "core/crc32c.h"
#include "core/frame.h"
#include "core/time.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FDCHAN_BACKLOG_MAX ((size_t)8 << 20) /* bytes of parsed, untaken messages */
#define HELLO_LEN          8u
/* packet mode: a joiner's HELLO may name the identity it relays for (fdchan.h) */
#define HELLO_MAX (HELLO_LEN + FERRY_REMOTE_ID_MAX)
/* stream: the read buffer, a 64 KiB message and its header (one read takes it whole);
 * longer frames bypass it */
#define RBUF_SIZE ((size_t)(64 << 10) + FERRY__FRAME_HDR)
/* A poll that returned within this many ns found the data there already (it did not
 * sleep): the next blocking receive reads first again (see find). */
#define QUICK_POLL_NS 1500

typedef struct fmsg {
    struct fmsg *next;
    int64_t type;
    uint32_t len, nfds;
    uint32_t room; /* bytes of data[] allocated */
    int fds[FERRY_MAX_FDS];
    uint8_t data[];
} fmsg;

typedef struct fdchan {
    struct ferry_chan base;
    int rfd, wfd;
    int sock; /* a socket (MSG_NOSIGNAL), else a pipe or FIFO */
    unsigned kind;
    uint32_t max_msg;
    _Atomic int dead; /* 0, -EPIPE or -EBADMSG; only ever set once */
    /* -EPIPE once a write found the peer gone (0 before): sends fail at once, while
     * receives go on taking what the peer sent before it went, up to the end of its
     * stream (then dead is set). Only ever set once. */
    _Atomic int tx_dead;
    int reset_seen;             /* a read said ECONNRESET once: what is queued is read next */
    unsigned long forks_at_new; /* stream socket: the fork count when the end was made */
    uint64_t tx_seq, rx_seq;
    /* receive */
    uint8_t *rbuf; /* stream: unparsed bytes rbuf[rstart .. rlen) */
    size_t rstart, rlen, rcap;
    /* stream: a frame too long for rbuf, whose payload is being read straight into place
     * (part_dst): its message part_msg, or the caller's buffer (part_msg NULL; only while
     * that receive lasts). part_got of part_f.len bytes are there. */
    int part_on;
    ferry__frame part_f;
    uint8_t *part_dst;
    fmsg *part_msg;
    size_t part_got;
    uint32_t part_crc; /* with a crc: the running crc of the header and the bytes got */
    /* During a receive: the caller's message, into which the next frame may be read
     * directly when it is the one the receive will return (direct_fits); NULL when not.
     * delivered: a frame went there, and the receive returns it. */
    ferry_msg *direct;
    int64_t direct_filter;
    int delivered;
    /* A large message's memory, kept for the next large one (no allocation and no page
     * faults each time): packet, max_msg bytes, the next packet is read into it (unless
     * it goes to the caller); stream, the memory of a frame too long for rbuf, the next
     * such frame's payload goes into it when it is large enough. */
    struct fmsg *spare;
    fmsg *qhead, **qtail;
    size_t qbytes;
    uint32_t qfds, qfds_max; /* fds in queued messages, and the bound (max_skipped_fds) */
    /* A blocking receive polls before it reads (one read when the data is there, poll +
     * read when it is not): set when a read found nothing, cleared when a poll found the
     * data there already (see find). */
    int wait_first;
    /* send: the rest of a frame the kernel took only part of */
    uint8_t *pend;
    size_t pend_off, pend_len;
    /* stream: bytes the kernel surely takes whole now, as last asked (wait_room) less
     * what was written since; pipe_cap: a pipe's size, asked once (0: not yet) */
    size_t room;
    int pipe_cap;
    /* ferry_chan_poll_fd */
    int efd, epfd, ready;
    int has_cred;
    ferry_cred cred;
    /* packet mode, a creator (fdchan.h, "The HELLO's type field"): the joiner's HELLO, taken
     * by the receiving side (check_frame), which sets joiner_no_fds and remote[] (the
     * identity believed, "" none) and then hello_seen (release); other threads look at
     * them only after an acquire load of hello_seen, or at the HELLO still queued in the
     * kernel (joiner_hello). Never changed once set. */
    int creator;
    uid_t relay_uid;
    _Atomic int hello_seen;
    int joiner_no_fds;
    char remote[FERRY_REMOTE_ID_MAX + 1];
    char *unlink1, *unlink2;
    const ferry__fdchan_io *io; /* a stream layer (tls) or NULL: see fdchan.h */
    void *io_ctx;
} fdchan;

/* ------------------------------------------------------------------ helpers */

/* Forks of this process (and, in a child, of its parent) since the first stream socket
 * end was made: counted by pthread_atfork handlers. A stream socket end made before a
 * fork may share its socket with another process, whose copy must not be disturbed by
 * this copy's close (see ferry__fdchan_close). Relaxed: the count is only compared with
 * itself, and a fork and a close of the same end in two threads race anyway. */
static _Atomic unsigned long forks;
static pthread_once_t forks_once = PTHREAD_ONCE_INIT;

static void count_fork(void)
{
    atomic_fetch_add_explicit(&forks, 1, memory_order_relaxed);
}

static void forks_init(void)
{
    pthread_atfork(NULL, count_fork, count_fork);
}

int ferry__wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = ferry__remaining(deadline);
        if (left <= 0) return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        int ms = left == INT64_MAX ? -1 : (int)((left + 999999) / 1000000);
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return -errno;
    }
}

/* Read stream bytes: through the stream layer when there is one. */
static ssize_t rd(fdchan *c, void *buf, size_t len)
{
    return c->io ? c->io->read(c->io_ctx, buf, len) : read(c->rfd, buf, len);
}

/* Wait for input: not at all while the stream layer holds some already (its socket may
 * have nothing more to say). */
static int wait_in(fdchan *c, int64_t deadline)
{
    if (c->io && c->io->pending(c->io_ctx)) return 0;
    return ferry__wait_fd(c->rfd, POLLIN, deadline);
}

int ferry__fdchan_max_from_opts(const ferry_chan_opts *o, size_t limit, size_t *max)
{
    size_t m = o && o->max_msg ? o->max_msg : FDCHAN_DEFAULT_MAX;
    if (m > limit) m = o && o->max_msg ? 0 : limit; /* asked for too much: refuse */
    if (m == 0 || m > FERRY_MAX_MSG_LIMIT) return -EINVAL;
    *max = m;
    return 0;
}

static int fail(fdchan *c, int err)
{
    int zero = 0;
    if (atomic_compare_exchange_strong(&c->dead, &zero, err) && err == -EBADMSG) {
        /* A peer that broke the rules is cut off: it sees the link hang up. Only the
         * receiving side finds a bad frame, so it closes only what it owns: a socket is
         * shut down both ways; a pipe's read end is closed (its writer gets EPIPE). */
        if (c->sock) {
            shutdown(c->rfd, SHUT_RDWR);
        } else {
            close(c->rfd);
            c->rfd = -1;
        }
    }
    if (c->epfd >= 0 && !c->ready) { /* an event loop must hear about it */
        uint64_t one = 1;
        c->ready = write(c->efd, &one, sizeof one) == sizeof one;
    }
    return atomic_load(&c->dead);
}

#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100 /* Linux 6.18: no SIGPIPE from this write */
#endif

/* 1 once a pwritev2 said the kernel does not know RWF_NOSIGNAL (before Linux 6.18): from
 * then on a pipe's writes take the signal mask way (write_pipe_masked). Relaxed: every
 * thread that reads 0 finds out the same thing for itself. Tests set it to check that
 * way on a kernel that has the flag. */
_Atomic int ferry__fdchan_no_nosignal;

/* Write to a pipe or FIFO without SIGPIPE where the kernel cannot be told so: SIGPIPE is
 * blocked in this thread for the write, and a SIGPIPE the write raised (it is this
 * thread's, pending while blocked) is taken back before the mask is restored. A SIGPIPE
 * that was pending before is the caller's and stays. The mask is the calling thread's
 * only; the process's disposition of SIGPIPE is never touched (a library must not). Three
 * system calls besides the write where SIGPIPE was not blocked (block, write, restore);
 * where the caller blocks SIGPIPE already: ask what is pending, write (no restore). */
static ssize_t write_pipe_masked(int fd, const struct iovec *iov, int niov)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    /* Unblocked until now, no SIGPIPE can be pending for this thread (it would have been
     * delivered): only a caller that blocks it may have one waiting. */
    int blocked = sigismember(&old, SIGPIPE);
    int was_pending = blocked && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t n = writev(fd, iov, niov); /* the descriptor is O_NONBLOCK */
    int e = errno;
    if (n < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    if (!blocked) pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return n;
}

/* Write without SIGPIPE: sockets say MSG_NOSIGNAL, pipes RWF_NOSIGNAL (one system call
 * either way); on a kernel without RWF_NOSIGNAL a pipe's write is wrapped in the signal
 * mask (write_pipe_masked). What the kernel took is taken off c->room. */
static ssize_t write_frame(fdchan *c, struct iovec *iov, int niov, const int *fds, unsigned nfds)
{
    ssize_t n;
    if (c->io) {
        n = c->io->writev(c->io_ctx, iov, niov);
    } else if (c->sock) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * FERRY_MAX_FDS)];
        } ctrl;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        if (nfds) {
            memset(&ctrl, 0, sizeof ctrl);
            mh.msg_control = ctrl.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
        }
        n = sendmsg(c->wfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else if (!atomic_load_explicit(&ferry__fdchan_no_nosignal, memory_order_relaxed)) {
        /* -1: a pipe has no offset (pwritev2 then writes as writev) */
        n = pwritev2(c->wfd, iov, niov, -1, RWF_NOSIGNAL);
        /* Nothing was written: an older kernel (EOPNOTSUPP; ENOSYS before pwritev2), or a
         * seccomp filter that refuses pwritev2 (EPERM: a pipe write never says it). */
        if (n < 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EPERM)) {
            atomic_store_explicit(&ferry__fdchan_no_nosignal, 1, memory_order_relaxed);
            n = write_pipe_masked(c->wfd, iov, niov);
        }
    } else {
        n = write_pipe_masked(c->wfd, iov, niov);
    }
    if (n > 0) c->room = c->room > (size_t)n ? c->room - (size_t)n : 0;
    return n;
}

/* A write failed with e. The peer gone (EPIPE and the like) ends the sending side only
 * (tx_dead): what the peer sent before it went is still in this end's kernel buffer and
 * the receives take it, then find the end of the stream themselves (a close never
 * destroys what that end sent). Seq_cst, as dead: a receiving thread may read it. */
static int write_error(fdchan *c, int e)
{
    if (e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ESHUTDOWN) {
        atomic_store(&c->tx_dead, -EPIPE);
        return -EPIPE;
    }
    if (e == EBADF) return -EINVAL; /* one of the caller's fds */
    return -e;
}

/* Write what is left of a begun frame. */
static int flush(fdchan *c, int64_t deadline)
{
    while (c->pend_off < c->pend_len) {
        struct iovec iov = {c->pend + c->pend_off, c->pend_len - c->pend_off};
        ssize_t n = write_frame(c, &iov, 1, NULL, 0);
        if (n > 0) {
            c->pend_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return write_error(c, errno);
        int rc = ferry__wait_fd(c->wfd, POLLOUT, deadline);
        if (rc < 0) return rc;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_off = c->pend_len = 0;
    return 0;
}

/*
 * On a byte stream, wait (until the deadline) for room for a whole frame of `size` bytes,
 * so that a frame is started only when the kernel will take all of it: a frame begun and
 * not finished would leave the receiver waiting for the rest. Only a send with a deadline
 * needs this; one without (FERRY_FOREVER) always finishes what it begins. The kernel tells no exact
 * figure, so this errs on the safe side: for a pipe, its size less what is queued and
 * one page (the buffer is kept in pages); for a socket, half its send buffer (the rest
 * is the kernel's bookkeeping) less what is queued. A frame larger than the whole buffer
 * can never fit: it is written as the reader makes room (see send_frame). A peer that is
 * gone ends the wait at once (the write that follows says -EPIPE).
 * The figure is asked only when the room known from the last time is used up: what was
 * free then, less what this end wrote since (write_frame), is free now or more, as the
 * reader only ever takes bytes out (and a TCP send buffer only grows while autotuned). So
 * a send asks the kernel (ioctl + getsockopt on a socket, ioctl on a pipe) once per that
 * many bytes, not each time.
 * Returns 0, or -EAGAIN / -ETIMEDOUT with nothing sent.
 */
static int wait_room(fdchan *c, size_t size, ferry__when *w)
{
    /* A packet, or a pipe write of at most PIPE_BUF, is atomic: all of it or EAGAIN. A
     * send without a deadline finishes any frame it begins (send_frame writes the rest as
     * the reader makes room, as a blocking write would): nothing to ask the kernel. */
    if ((c->kind & FDCHAN_PACKET) || (!c->sock && size <= 4096) || size <= c->room ||
        w->at == FERRY__NO_DEADLINE)
        return 0;
    for (int backoff = 50;; backoff = backoff < 2000 ? backoff * 2 : 2000) {
        int queued = 0, cap;
        socklen_t l = sizeof cap;
        if (c->sock) {
            if (ioctl(c->wfd, SIOCOUTQ, &queued) < 0 ||
                getsockopt(c->wfd, SOL_SOCKET, SO_SNDBUF, &cap, &l) < 0)
                return 0;
            cap /= 2;
        } else {
            if (!c->pipe_cap && (c->pipe_cap = fcntl(c->wfd, F_GETPIPE_SZ)) < 0) c->pipe_cap = 0;
            if (!c->pipe_cap || ioctl(c->wfd, FIONREAD, &queued) < 0) return 0;
            cap = c->pipe_cap - 4096;
        }
        c->room = cap > queued ? (size_t)(cap - queued) : 0;
        if (size > (size_t)cap || size <= c->room) return 0;
        int64_t at = ferry__when_at(w), left = ferry__remaining(at);
        if (left <= 0) return at == 0 ? -EAGAIN : -ETIMEDOUT;
        /* POLLOUT would say yes already (some room is there), so sleep on nothing but
         * the peer's end: poll reports POLLERR/POLLHUP whatever it is asked, which is
         * when the reader is gone (a pipe without readers, a reset connection). Then the
         * write goes ahead and fails: -EPIPE at once, not at the deadline. */
        int64_t ns = (int64_t)backoff * 1000;
        if (ns > left) ns = left;
        struct timespec ts = {0, (long)ns};
        struct pollfd p = {.fd = c->wfd, .events = 0};
        int n = ppoll(&p, 1, &ts, NULL);
        if (n > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL))) return 0;
    }
}

/* Send one frame: the header (seq = next) and payload, with fds on a packet link. */
static int send_frame(fdchan *c, uint64_t seq, int64_t type, const void *data, uint32_t len,
                      const int *fds, unsigned nfds, ferry__when *w)
{
    ferry__frame f = {.flags = (c->kind & FDCHAN_CHECKSUM) ? FERRY__F_CRC : 0,
                      .nfds = (uint8_t)nfds,
                      .type = type,
                      .seq = seq,
                      .len = len,
                      .crc = 0};
    if (f.flags & FERRY__F_CRC) f.crc = ferry__frame_crc(&f, data);
    uint8_t hdr[FERRY__FRAME_HDR];
    ferry__frame_encode(&f, hdr);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, len}};
    size_t total = sizeof hdr + len;
    int rc = wait_room(c, total, w);
    if (rc < 0) return rc;
    for (;;) {
        ssize_t n = write_frame(c, iov, len ? 2 : 1, fds, nfds);
        if (n == (ssize_t)total) return 0;
        if (n > 0 && w->at == FERRY__NO_DEADLINE) { /* the rest follows, from here */
            size_t done = (size_t)n;
            for (int i = 0; i < 2 && done; i++) {
                size_t from = done < iov[i].iov_len ? done : iov[i].iov_len;
                iov[i].iov_base = (uint8_t *)iov[i].iov_base + from;
                iov[i].iov_len -= from;
                done -= from;
            }
            total -= (size_t)n;
            fds = NULL; /* (a stream carries no fds today; a packet is never split) */
            nfds = 0;
            int rc = ferry__wait_fd(c->wfd, POLLOUT, FERRY__NO_DEADLINE);
            if (rc < 0) return rc;
            continue;
        }
        if (n > 0) { /* the kernel took part of the frame: the rest must follow it */
            c->pend_len = total - (size_t)n;
            c->pend_off = 0;
            c->pend = malloc(c->pend_len);
            if (!c->pend) return fail(c, -EPIPE); /* cannot finish the frame: give up */
            size_t skip = (size_t)n;
            for (int i = 0, k = 0; i < 2; i++) {
                size_t l = iov[i].iov_len, from = skip < l ? skip : l;
                skip -= from;
                if (l > from) memcpy(c->pend + k, (uint8_t *)iov[i].iov_base + from, l - from);
                k += (int)(l - from);
            }
            int rc = flush(c, ferry__when_at(w));
            return rc == -EAGAIN || rc == -ETIMEDOUT ? 0 : rc; /* begun is delivered */
        }
        if (n < 0 && errno == EMSGSIZE) return -EMSGSIZE;
        if (n < 0 && errno == ETOOMANYREFS) { /* too many of this user's fds in flight */
            /* The peer must take some first: a full channel, as far as the sender can
             * tell (nothing was sent). Poll for it every millisecond until the deadline. */
            int64_t at = ferry__when_at(w), left = ferry__remaining(at);
            if (left <= 0) return at == 0 ? -EAGAIN : -ETIMEDOUT;
            usleep((useconds_t)(left < 1000000 ? (left + 999) / 1000 : 1000));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return write_error(c, errno);
        int rc = ferry__wait_fd(c->wfd, POLLOUT, ferry__when_at(w));
        if (rc < 0) return rc;
    }
}

/* ------------------------------------------------------------------ receiving */

static void msg_free(fmsg *m)
{
    for (uint32_t i = 0; i < m->nfds; i++) close(m->fds[i]);
    free(m);
}

/* The joiner's HELLO (f, its payload), read by this creator: 0, whether the joiner takes
 * no fds (*no_fds), and the identity believed (remote: "" when none was named, or the
 * joiner is not the trusted relay); -EBADMSG when it disagrees on the shape or names a
 * malformed identity (whoever sent it). Reads only what never changes once the end is
 * made (kind, max_msg, cred, relay_uid), so any thread may call it. */
static int parse_joiner_hello(const fdchan *c, const ferry__frame *f, const uint8_t *payload,
                              int *no_fds, char remote[FERRY_REMOTE_ID_MAX + 1])
{
    uint32_t max, flags;
    if (f->len < HELLO_LEN || f->len > HELLO_MAX) return -EBADMSG;
    memcpy(&max, payload, 4);
    memcpy(&flags, payload + 4, 4);
    if (max != c->max_msg || flags != (c->kind & FDCHAN_CHECKSUM)) return -EBADMSG;
    uint64_t t = (uint64_t)f->type; /* other bits: hints of later versions, ignored */
    size_t n = f->len - HELLO_LEN;
    if (!(t & FDCHAN_HT_REMOTE) != !n) return -EBADMSG; /* an identity exactly when said */
    if (n && !(c->kind & FDCHAN_PACKET)) return -EBADMSG;
    for (size_t i = 0; i < n; i++)
        if (payload[HELLO_LEN + i] < 0x21 || payload[HELLO_LEN + i] > 0x7e) return -EBADMSG;
    *no_fds = (t & FDCHAN_HT_NO_FDS) != 0;
    remote[0] = 0;
    /* believed only from the uid this end trusts, as the kernel stamped it */
    if (n && (c->kind & FDCHAN_TRUST_RELAY) && c->has_cred && c->cred.uid == c->relay_uid) {
        memcpy(remote, payload + HELLO_LEN, n);
        remote[n] = 0;
    }
    return 0;
}

/* Check a decoded frame, whose payload is at `payload`, against the channel's rules:
 * strict seq, as many fds as the header says, known flags, a crc where the channel needs
 * one and a right one wherever it is (sum: the crc already made as the payload came in,
 * or NULL to make it now). 0: a message; 1: the peer's HELLO (checked, and nothing to
 * queue); -EBADMSG. */
static int check_frame(fdchan *c, const ferry__frame *f, const uint8_t *payload, unsigned nfds,
                       const uint32_t *sum)
{
    if (f->seq != c->rx_seq || f->nfds != nfds || (f->flags & ~FERRY__F_CRC) ||
        ((c->kind & FDCHAN_CHECKSUM) && !(f->flags & FERRY__F_CRC)) ||
        ((f->flags & FERRY__F_CRC) &&
         (sum ? *sum != f->crc : ferry__frame_check_crc(f, payload) < 0)))
        return -EBADMSG;
    if (c->rx_seq++ == 0) { /* the joiner's HELLO: it must agree on the shape */
        int no_fds;
        char remote[FERRY_REMOTE_ID_MAX + 1];
        if (parse_joiner_hello(c, f, payload, &no_fds, remote) < 0) return -EBADMSG;
        c->joiner_no_fds = no_fds;
        memcpy(c->remote, remote, sizeof remote);
        /* release: joiner_no_fds and remote[] are written before another thread that
         * sees hello_seen (acquire, joiner_hello) reads them */
        atomic_store_explicit(&c->hello_seen, 1, memory_order_release);
        return 1;
    }
    return 0;
}

/* Check a decoded frame (check_frame) and make a message of it: `into`, when the payload
 * was read into it already, else a new one. HELLO frames are checked and swallowed (NULL,
 * 0). */
static int accept_frame(fdchan *c, const ferry__frame *f, const uint8_t *payload, const int *fds,
                        unsigned nfds, fmsg *into, const uint32_t *sum, fmsg **out)
{
    *out = NULL;
    int rc = check_frame(c, f, payload, nfds, sum);
    if (rc != 0) return rc < 0 ? rc : 0;
    fmsg *m = into ? into : malloc(sizeof *m + f->len);
    if (!m) return -ENOMEM;
    if (!into) m->room = f->len;
    m->next = NULL;
    m->type = f->type;
    m->len = f->len;
    m->nfds = nfds;
    if (nfds) memcpy(m->fds, fds, nfds * sizeof(int));
    if (!into) memcpy(m->data, payload, f->len);
    *out = m;
    return 0;
}

static void enqueue(fdchan *c, fmsg *m)
{
    *c->qtail = m;
    c->qtail = &m->next;
    c->qbytes += m->len + sizeof *m;
    c->qfds += m->nfds;
    /* The receive in progress will return this one (or an earlier one): no later frame
     * may go straight to the caller. */
    if (c->direct && ferry__filter_match(c->direct_filter, m->type)) c->direct = NULL;
}

/* May this stream frame (header decoded, payload not yet checked) be read straight into
 * the caller's buffer? Only when the receive in progress would return it: the filter
 * takes it, nothing queued comes first (enqueue sees to that), it fits (a longer one
 * must stay queued for -EMSGSIZE, the buffer untouched), and it is not the HELLO. */
static int direct_fits(const fdchan *c, const ferry__frame *f)
{
    return c->direct && c->rx_seq != 0 && f->len <= c->direct->cap &&
           ferry__filter_match(c->direct_filter, f->type);
}

/* A checked frame is in the caller's buffer: the receive returns it, and takes no more. */
static void deliver(fdchan *c, const ferry__frame *f, const int *fds, unsigned nfds)
{
    ferry_msg *m = c->direct;
    m->type = f->type;
    m->len = f->len;
    m->nfds = nfds;
    if (nfds) memcpy(m->fds, fds, nfds * sizeof(int));
    c->direct = NULL;
    c->delivered = 1;
}

/* Memory for a message of len bytes: the spare when it is large enough, else new. */
static fmsg *take_spare(fdchan *c, size_t len)
{
    fmsg *m = c->spare;
    if (m && m->room >= len) {
        c->spare = NULL;
        return m;
    }
    if (!(m = malloc(sizeof *m + len))) return NULL;
    m->room = (uint32_t)len;
    m->nfds = 0;
    return m;
}

/* A message the caller is done with: a large one (a packet buffer of full size, or the
 * memory of a stream frame too long for rbuf) becomes the spare if it is larger than the
 * one kept; the rest is freed. */
static void recycle(fdchan *c, fmsg *m)
{
    int large = (c->kind & FDCHAN_PACKET) ? m->room == c->max_msg
                                          : FERRY__FRAME_HDR + (size_t)m->room > RBUF_SIZE;
    if (!m->nfds && large && (!c->spare || c->spare->room < m->room)) {
        free(c->spare);
        c->spare = m;
    } else {
        msg_free(m);
    }
}

/* A frame too long for rbuf: its header is decoded, and the first n bytes of its payload
 * (all that followed the header in rbuf) are at head. Its place is chosen now, the
 * caller's buffer when it fits there, else a message, and the rest of the payload is
 * read straight into it (fill_part), not through rbuf. */
static int begin_part(fdchan *c, const ferry__frame *f, const uint8_t *head, size_t n)
{
    fmsg *m = NULL;
    if (direct_fits(c, f)) {
        c->part_dst = c->direct->data;
    } else {
        if (!(m = take_spare(c, f->len))) return -ENOMEM;
        c->part_dst = m->data;
    }
    memcpy(c->part_dst, head, n);
    c->part_f = *f;
    c->part_msg = m;
    c->part_got = n;
    c->part_on = 1;
    if (f->flags & FERRY__F_CRC) { /* the crc of the header with crc 0 (ferry__frame_crc) */
        ferry__frame z = *f;
        uint8_t h[FERRY__FRAME_HDR];
        z.crc = 0;
        ferry__frame_encode(&z, h);
        c->part_crc = ferry__crc32c(ferry__crc32c(0, h, sizeof h), head, n);
    }
    return 0;
}

/* The receive that owns the caller's buffer is ending with its frame still coming in:
 * what arrived moves into a message of its own, where the rest will go. */
static int detach_part(fdchan *c)
{
    if (!c->part_on || c->part_msg) return 0;
    fmsg *m = take_spare(c, c->part_f.len);
    if (!m) return -ENOMEM;
    memcpy(m->data, c->part_dst, c->part_got);
    c->part_msg = m;
    c->part_dst = m->data;
    return 0;
}

/* The frame in progress, once all its payload is in: checked like any frame (a bad one
 * is -EBADMSG, as if it had come through rbuf), then handed to the caller (it is in the
 * caller's buffer already) or queued. */
static int end_part(fdchan *c)
{
    fmsg *m = c->part_msg, *out;
    c->part_on = 0;
    c->part_msg = NULL;
    if (!m) { /* (never the HELLO: that is at most HELLO_LEN bytes) */
        int rc = check_frame(c, &c->part_f, c->part_dst, 0, &c->part_crc);
        if (rc == 0) deliver(c, &c->part_f, NULL, 0);
        return rc < 0 ? rc : 0;
    }
    int rc = accept_frame(c, &c->part_f, m->data, NULL, 0, m, &c->part_crc, &out);
    if (rc < 0 || !out) { /* (a HELLO is never this long: max is HELLO_LEN for seq 0) */
        free(m);
        return rc < 0 ? rc : 0;
    }
    enqueue(c, out);
    return 0;
}

/* Drop the frame in progress (the channel is failing: it can never be completed). */
static void drop_part(fdchan *c)
{
    if (c->part_on) free(c->part_msg); /* (NULL when it was the caller's buffer) */
    c->part_msg = NULL;
    c->part_on = 0;
}

/* Parse whole frames out of the stream buffer. A frame longer than the whole buffer is
 * begun as a part (and everything left in rbuf is its payload); what is left of a frame
 * not yet whole is moved to the front, so that there is room after it for the rest. */
static int parse_stream(fdchan *c)
{
    while (c->rlen - c->rstart >= FERRY__FRAME_HDR) {
        size_t have = c->rlen - c->rstart;
        ferry__frame f;
        uint32_t max = c->rx_seq == 0 ? HELLO_LEN : c->max_msg;
        if (ferry__frame_decode(c->rbuf + c->rstart, max, &f) < 0) return -EBADMSG;
        const uint8_t *payload = c->rbuf + c->rstart + FERRY__FRAME_HDR;
        size_t need = FERRY__FRAME_HDR + f.len;
        if (need > c->rcap) { /* then have < need too */
            int rc = begin_part(c, &f, payload, have - FERRY__FRAME_HDR);
            if (rc < 0) return rc;
            c->rstart = c->rlen = 0; /* all that was in rbuf belongs to it */
            return 0;
        }
        if (have < need) break;
        if (direct_fits(c, &f)) { /* checked here, then copied once: to the caller */
            int rc = check_frame(c, &f, payload, 0, NULL);
            if (rc < 0) return rc;
            if (f.len) memcpy(c->direct->data, payload, f.len);
            deliver(c, &f, NULL, 0);
        } else {
            fmsg *m;
            int rc = accept_frame(c, &f, payload, NULL, 0, NULL, NULL, &m);
            if (rc < 0) return rc;
            if (m) enqueue(c, m);
        }
        c->rstart += need;
    }
    if (c->rstart) { /* keep the start of the next frame at the front */
        memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
        c->rlen -= c->rstart;
        c->rstart = 0;
    }
    return 0;
}

/* A read failed with e: 0 (nothing there now: wait), 1 (try again) or -EPIPE. A socket
 * whose peer closed with data of ours unread reports ECONNRESET once (the kernel hands
 * out the error before the queue, and clears it): what the peer sent before it closed is
 * still queued here and comes next, then the end of stream. A second reset is the end. */
static int read_error(fdchan *c, int e)
{
    if (e == EAGAIN || e == EINTR) return 0;
    if (e == EBADMSG) return -EBADMSG; /* the stream layer found it corrupt */
    if (e == ECONNRESET && !c->reset_seen) {
        c->reset_seen = 1;
        return 1;
    }
    return -EPIPE;
}

/* Read more of the frame in progress, never past its end (what follows it is the next
 * frame's, and goes to rbuf). Returns as fill; a read that leaves the frame unfinished
 * took all the kernel had, so it says 0 (wait) rather than 1 (try again). */
static int fill_part(fdchan *c)
{
    size_t left = c->part_f.len - c->part_got;
    ssize_t n = rd(c, c->part_dst + c->part_got, left);
    if (n < 0) return read_error(c, errno);
    if (n == 0) return -EPIPE; /* a frame cut short by the end is lost with the peer */
    /* The crc is made as the payload comes in, while the rest is still on its way: at
     * the end only the last piece is left to sum. */
    if (c->part_f.flags & FERRY__F_CRC)
        c->part_crc = ferry__crc32c(c->part_crc, c->part_dst + c->part_got, (size_t)n);
    c->part_got += (size_t)n;
    if ((size_t)n < left) return 0;
    int rc = end_part(c);
    return rc < 0 ? rc : 1;
}

/* Read stream bytes into rbuf and parse them. */
static int fill_rbuf(fdchan *c)
{
    if (!c->rbuf) {
        if (!(c->rbuf = malloc(RBUF_SIZE))) return -ENOMEM;
        c->rcap = RBUF_SIZE;
    }
    /* parse_stream leaves room: the frame in progress fits in rbuf, and starts at 0 */
    size_t space = c->rcap - c->rlen;
    uint64_t seq = c->rx_seq;
    ssize_t n = rd(c, c->rbuf + c->rlen, space);
    if (n < 0) return read_error(c, errno);
    if (n == 0) return -EPIPE; /* a frame cut short by the end is lost with the peer */
    c->rlen += (size_t)n;
    int rc = parse_stream(c);
    /* A short read that finished no frame took all the kernel had: wait (0), as
     * fill_part does, rather than read again only to hear EAGAIN. */
    return rc < 0 ? rc : (size_t)n < space && c->rx_seq == seq ? 0 : 1;
}

/*
 * Read one packet (with its fds). Its payload goes straight to where it is used: the
 * caller's buffer when the receive in progress will surely return it, which is when it
 * takes any type (filter 0), nothing is queued before it, the HELLO is past, and the
 * buffer holds max_msg bytes, so that no valid packet can be too long for it (the header
 * is not known before the read, and one that is too long must stay queued with the
 * caller's buffer untouched). Otherwise into a message's own memory (the spare). Either
 * way, the kernel's copy is the only one.
 */
static int read_packet(fdchan *c)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * FERRY_MAX_FDS)];
    } ctrl;
    ferry_msg *to = c->direct;
    int hello = c->rx_seq == 0; /* the joiner's HELLO: into hbuf (max_msg may be smaller) */
    uint8_t hbuf[HELLO_MAX];
    if (to && (c->direct_filter != 0 || to->cap < c->max_msg || c->qhead || hello)) to = NULL;
    if (!to && !hello && !c->spare) {
        if (!(c->spare = malloc(sizeof(fmsg) + c->max_msg))) return -ENOMEM;
        c->spare->room = c->max_msg;
        c->spare->nfds = 0;
    }
    uint8_t hdr[FERRY__FRAME_HDR], *dst = to ? (uint8_t *)to->data : hello ? hbuf : c->spare->data;
    /* max_msg bytes of room, no more: a longer packet is MSG_TRUNC, i.e. -EBADMSG */
    struct iovec iov[2] = {{hdr, sizeof hdr}, {dst, hello ? sizeof hbuf : c->max_msg}};
    struct msghdr mh = {
        .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl};
    ssize_t n = recvmsg(c->rfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return read_error(c, errno);
    if (n == 0) return -EPIPE;
    int fds[FERRY_MAX_FDS + 8];
    unsigned nfds = 0;
    int overflow = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            if (nfds < sizeof fds / sizeof fds[0])
                fds[nfds++] = fd;
            else {
                close(fd);
                overflow = 1;
            }
        }
    }
    ferry__frame f;
    fmsg *m = NULL;
    uint32_t max = hello ? HELLO_MAX : c->max_msg;
    int rc = -EBADMSG;
    int good = !overflow && !(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) && n >= FERRY__FRAME_HDR &&
               ferry__frame_decode(hdr, max, &f) == 0 && (size_t)n == FERRY__FRAME_HDR + f.len;
    if (good && to) { /* (never the HELLO: rx_seq > 0) */
        if ((rc = check_frame(c, &f, dst, nfds, NULL)) == 0) {
            deliver(c, &f, fds, nfds);
            return 1;
        }
    } else if (good) {
        /* A large payload stays where it was read (no copy); a small one is copied into
         * a message of its own size, and the big buffer serves the next packet. */
        rc = accept_frame(c, &f, dst, fds, nfds,
                          hello || (size_t)f.len + 4096 < c->max_msg ? NULL : c->spare, NULL, &m);
    }
    if (rc < 0) {
        for (unsigned i = 0; i < nfds; i++) close(fds[i]);
        return rc;
    }
    if (m == c->spare) c->spare = NULL; /* it is this message now */
    if (m) enqueue(c, m);
    return 1;
}

/* Take in what the kernel has now: 1 progress, 0 nothing there, -EPIPE end of stream,
 * -EBADMSG / -ENOMEM. After an error the channel fails (the callers see to it), so a
 * frame in progress is dropped: it can never be finished. */
static int fill(fdchan *c)
{
    if (c->kind & FDCHAN_PACKET) return read_packet(c);
    int rc = c->part_on ? fill_part(c) : fill_rbuf(c);
    if (rc < 0) drop_part(c);
    return rc;
}

/* May more be taken in from the kernel? Not while the queue of messages the receives
 * passed over is at its bound in bytes or in fds (max_skipped_fds): then the kernel's
 * buffer fills and the sender is held back. One packet may bring FERRY_MAX_FDS fds, so
 * at most qfds_max + FERRY_MAX_FDS - 1 are held. */
static int may_pull(const fdchan *c)
{
    return c->qbytes < FDCHAN_BACKLOG_MAX && c->qfds < c->qfds_max;
}

/* The first queued message matching filter (the lowest type for filter < 0), or NULL;
 * *link points at the pointer to it. */
static fmsg *pick(fdchan *c, int64_t filter, fmsg ***link)
{
    fmsg *best = NULL, **best_link = NULL;
    for (fmsg **l = &c->qhead; *l; l = &(*l)->next) {
        if (!ferry__filter_match(filter, (*l)->type)) continue;
        if (!best || (filter < 0 && (*l)->type < best->type)) {
            best = *l;
            best_link = l;
        }
        if (filter >= 0) break;
    }
    *link = best_link;
    return best;
}

static void update_ready(fdchan *c)
{
    if (c->epfd < 0) return;
    int want =
        c->qhead != NULL || atomic_load(&c->dead) != 0 || (c->io && c->io->pending(c->io_ctx));
    uint64_t v = 1;
    if (want && !c->ready)
        c->ready = write(c->efd, &v, sizeof v) == sizeof v;
    else if (!want && c->ready)
        c->ready = !(read(c->efd, &v, sizeof v) == sizeof v);
}

/* The queue is at its bound and nothing queued matches: wait (until the deadline) for
 * the peer to go, without taking anything more from the kernel. Asked for POLLRDHUP
 * only, poll does not wake for data; it reports POLLRDHUP when a socket peer has shut
 * down its sending side (closed, or died: no more will come), POLLHUP when a pipe or
 * FIFO has no writer left or a socket is shut down both ways, POLLERR on a reset. Then
 * -EPIPE: nothing that could still arrive is reachable past the bound (reading on would
 * let the peer's last burst fill this end's fd table), while an untyped receive still
 * drains everything the peer sent, in order. The channel is not failed for it. */
static int wait_hangup(const fdchan *c, int64_t deadline)
{
    for (;;) {
        int64_t left = ferry__remaining(deadline);
        if (left <= 0) return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        struct timespec ts = {left / 1000000000, left % 1000000000};
        struct pollfd p = {.fd = c->rfd, .events = POLLRDHUP};
        int n = ppoll(&p, 1, left == INT64_MAX ? NULL : &ts, NULL);
        if (n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) return -EPIPE;
        if (n < 0 && errno != EINTR) return -errno;
    }
}

/* Find the message to hand out next: 0, and *out points at the queue's pointer to it (it
 * stays queued until the caller unlinks it); or 1, it went straight into c->direct. */
static int find(fdchan *c, int64_t filter, ferry__when *w, fmsg ***out)
{
    int first = 1; /* no read yet in this receive */
    for (;;) {
        fmsg **link;
        /* A "lowest type" filter must see everything that has arrived before it picks. */
        int rc = 1;
        if (filter < 0)
            while (may_pull(c) && !atomic_load(&c->dead) && (rc = fill(c)) > 0) {
            }
        if (rc < 0) fail(c, rc == -ENOMEM ? -EBADMSG : rc);
        if (c->delivered) return 1; /* straight into the caller's buffer */
        if (pick(c, filter, &link)) {
            *out = link;
            return 0;
        }
        int dead = atomic_load(&c->dead);
        if (dead) return dead;
        if (may_pull(c)) {
            /* A blocking receive whose last read found nothing polls first: poll + read
             * when it has to wait (not read, poll, read), two calls when the data is
             * there after all. A poll that came back at once had the data there: the next
             * one reads first again (one call when the data is there). */
            if (first && c->wait_first && w->timeout != 0) {
                int64_t t0 = ferry__now_ns();
                rc = wait_in(c, ferry__when_at(w));
                if (rc < 0) return rc;
                if (ferry__now_ns() - t0 < QUICK_POLL_NS) c->wait_first = 0;
            }
            first = 0; /* (the reads after the first one come after a read or a poll) */
            rc = fill(c);
            if (rc > 0) continue;
            if (rc < 0) {
                fail(c, rc == -ENOMEM ? -EBADMSG : rc);
                continue; /* hand out what was queued first */
            }
            c->wait_first = 1;
            rc = wait_in(c, ferry__when_at(w));
        } else { /* full of messages the filter passes over (bytes or fds): only time
                  * can help (the one receiving thread is this one), or the peer's end */
            rc = wait_hangup(c, ferry__when_at(w));
        }
        if (rc < 0) return rc;
    }
}

/* ------------------------------------------------------------------ ops */

/*
 * A creator (packet mode) that needs the joiner's HELLO now (a send with fds, the
 * relayed identity) from a thread that may not be the receiving one. Once the receiving
 * side took it (hello_seen), its record; before, the HELLO itself, looked at in the
 * kernel's queue (MSG_PEEK: nothing is taken, so the receiving side still reads and
 * checks it; no control buffer, so no descriptor is installed). Waits until deadline for
 * it (a joiner sends it as soon as it has the creator's: one round trip after the
 * accept). Returns whether the joiner takes no fds (0 or 1), with the identity believed
 * in remote (if non-NULL); -EAGAIN / -ETIMEDOUT (not there yet), -EPIPE, -EBADMSG.
 */
static int joiner_hello(fdchan *c, int64_t deadline, char remote[FERRY_REMOTE_ID_MAX + 1])
{
    for (int later = 0;;) {
        /* acquire: pairs with check_frame's release; joiner_no_fds and remote[] are set */
        if (atomic_load_explicit(&c->hello_seen, memory_order_acquire)) {
            if (remote) memcpy(remote, c->remote, sizeof c->remote);
            return c->joiner_no_fds;
        }
        int dead = atomic_load(&c->dead);
        if (dead) return dead;
        uint8_t pk[FERRY__FRAME_HDR + HELLO_MAX];
        ssize_t n = recv(c->rfd, pk, sizeof pk, MSG_PEEK | MSG_DONTWAIT);
        ferry__frame f;
        /* A first packet that is no frame at all is refused by the receiving side too,
         * whatever its place (a longer one is cut here: its header is enough). */
        if (n > 0 &&
            (n < (ssize_t)FERRY__FRAME_HDR ||
             ferry__frame_decode(pk, c->max_msg > HELLO_MAX ? c->max_msg : HELLO_MAX, &f) < 0))
            return -EBADMSG;
        if (n > 0 && f.seq == 0) {
            char r[FERRY_REMOTE_ID_MAX + 1];
            int no_fds;
            if ((size_t)n != FERRY__FRAME_HDR + f.len || f.nfds || (f.flags & ~FERRY__F_CRC) ||
                ((c->kind & FDCHAN_CHECKSUM) && !(f.flags & FERRY__F_CRC)) ||
                ferry__frame_check_crc(&f, pk + FERRY__FRAME_HDR) < 0 ||
                parse_joiner_hello(c, &f, pk + FERRY__FRAME_HDR, &no_fds, r) < 0)
                return -EBADMSG; /* the receiving side will refuse it too */
            if (remote) memcpy(remote, r, sizeof r);
            return no_fds;
        }
        if (n == 0) return -EPIPE;
        if (n < 0 && errno != EAGAIN && errno != EINTR) return -EPIPE;
        /* n > 0: a later frame is first. The receiving side has taken the HELLO and is
         * about to record it, or the joiner broke the rules (never recorded: after 100
         * looks, -EBADMSG) */
        if (n > 0 && ++later > 100) return -EBADMSG;
        int64_t left = ferry__remaining(deadline);
        if (left <= 0) return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        int64_t slice = n > 0 ? 1000000 : 10000000; /* wait for the record, or the HELLO */
        if (left < slice) slice = left;
        if (n > 0) {
            struct timespec ts = {0, slice};
            nanosleep(&ts, NULL);
        } else {
            struct pollfd p = {.fd = c->rfd, .events = POLLIN};
            poll(&p, 1, (int)((slice + 999999) / 1000000));
        }
    }
}

int ferry__fdchan_sendmsg(ferry_chan *ch, const ferry_msg *m, ferry__when *w)
{
    fdchan *c = (fdchan *)ch;
    int dead = atomic_load(&c->dead);
    if (!dead) dead = atomic_load(&c->tx_dead);
    if (dead) return dead;
    if (m->len > c->max_msg) return -EMSGSIZE;
    if (m->nfds && (!(c->kind & FDCHAN_PACKET) || (c->kind & FDCHAN_PEER_NO_FDS)))
        return -EOPNOTSUPP; /* nothing sent: the end stays usable */
    if (m->nfds && c->creator) {
        /* does the joiner take fds? its HELLO says */
        int rc = joiner_hello(c, ferry__when_at(w), NULL);
        if (rc < 0) return rc;
        if (rc) return -EOPNOTSUPP;
    }
    if (c->pend) { /* the rest of the last frame goes first */
        int rc = flush(c, ferry__when_at(w));
        if (rc < 0) return rc;
    }
    int rc = send_frame(c, c->tx_seq + 1, m->type, m->data, (uint32_t)m->len, m->fds, m->nfds, w);
    if (rc < 0) return rc;
    c->tx_seq++;
    FERRY__COUNT(c->base.st.sent_msgs, 1);
    FERRY__COUNT(c->base.st.sent_bytes, m->len);
    return 0;
}

ssize_t ferry__fdchan_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds,
                              ferry__when *w)
{
    fdchan *c = (fdchan *)ch;
    fmsg **link = NULL; /* messages that arrived whole before a broken frame still count */
    /* The frame this receive returns may be read straight into m->data (the only copy
     * is the kernel's): not with a "lowest type" filter, which must see everything that
     * has arrived before it picks. */
    c->direct = filter >= 0 ? m : NULL;
    c->direct_filter = filter;
    c->delivered = 0;
    int rc = find(c, filter, w, &link);
    c->direct = NULL;
    if (c->part_on && !c->part_msg && detach_part(c) < 0) { /* m->data is the caller's again */
        drop_part(c);
        fail(c, -EBADMSG); /* as any -ENOMEM while receiving */
    }
    if (rc == 1) { /* it is in m already: type, len, fds */
        size_t len = m->len;
        if (!keep_fds) {
            for (uint32_t i = 0; i < m->nfds; i++) close(m->fds[i]);
            m->nfds = 0;
        }
        FERRY__COUNT(c->base.st.recv_msgs, 1);
        FERRY__COUNT(c->base.st.recv_bytes, len);
        update_ready(c);
        return (ssize_t)len;
    }
    if (rc < 0) {
        update_ready(c);
        return rc;
    }
    fmsg *msg = *link;
    m->type = msg->type;
    m->len = msg->len;
    if (msg->len > m->cap) return -EMSGSIZE; /* it stays queued, where it is */
    *link = msg->next;
    if (c->qtail == &msg->next) c->qtail = link;
    c->qbytes -= msg->len + sizeof *msg;
    c->qfds -= msg->nfds;
    if (msg->len) memcpy(m->data, msg->data, msg->len);
    if (keep_fds) {
        m->nfds = msg->nfds;
        memcpy(m->fds, msg->fds, msg->nfds * sizeof(int));
        msg->nfds = 0;
    }
    uint32_t len = msg->len;
    recycle(c, msg);
    FERRY__COUNT(c->base.st.recv_msgs, 1);
    FERRY__COUNT(c->base.st.recv_bytes, len);
    update_ready(c);
    return (ssize_t)len;
}

int ferry__fdchan_fd(ferry_chan *ch)
{
    fdchan *c = (fdchan *)ch;
    if (c->epfd >= 0) return c->epfd;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN};
    if (ep < 0 || c->efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->rfd, &ev) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, c->efd, &ev) < 0) {
        int e = -errno;
        if (ep >= 0) close(ep);
        if (c->efd >= 0) close(c->efd);
        c->efd = -1;
        return e;
    }
    c->epfd = ep;
    /* Take in what the kernel holds (the peer's HELLO, say), so that the descriptor's
     * readiness means a message; messages queued here make it readable too. */
    int rc = 0;
    while (may_pull(c) && !atomic_load(&c->dead) && (rc = fill(c)) > 0) {
    }
    if (rc < 0) fail(c, rc == -ENOMEM ? -EBADMSG : rc);
    update_ready(c);
    return ep;
}

size_t ferry__fdchan_max_msg(const ferry_chan *ch)
{
    return ((const fdchan *)ch)->max_msg;
}

int ferry__fdchan_peer(const ferry_chan *ch, ferry_cred *out)
{
    const fdchan *c = (const fdchan *)ch;
    if (!c->has_cred) return -EOPNOTSUPP;
    *out = c->cred;
    return 0;
}

ssize_t ferry__fdchan_peer_remote(const ferry_chan *ch, char *buf, size_t cap)
{
    /* (joiner_hello only reads the end, and peeks at the socket) */
    fdchan *c = (fdchan *)ch;
    if (!c->creator) return -ENOENT; /* a joiner: its creator names nobody */
    char r[FERRY_REMOTE_ID_MAX + 1];
    int rc = joiner_hello(c, 0, r);
    if (rc < 0) return rc;
    size_t n = strlen(r);
    if (n == 0) return -ENOENT;
    if (cap <= n) return -ENAMETOOLONG;
    memcpy(buf, r, n + 1);
    return (ssize_t)n;
}

void *ferry__fdchan_io_ctx(const ferry_chan *ch)
{
    return ((const fdchan *)ch)->io_ctx;
}

void ferry__fdchan_set_cred(ferry_chan *ch, const ferry_cred *cred)
{
    fdchan *c = (fdchan *)ch;
    c->cred = *cred;
    c->has_cred = 1;
}

void ferry__fdchan_close(ferry_chan *ch)
{
    fdchan *c = (fdchan *)ch;
    if (c->pend && !atomic_load(&c->dead) && !atomic_load(&c->tx_dead))
        flush(c, 0); /* what the kernel takes now */
    free(c->pend);
    int forked = atomic_load_explicit(&forks, memory_order_relaxed) != c->forks_at_new;
    if (c->io) c->io->close(c->io_ctx, forked || c->rfd < 0); /* its goodbye before our FIN */
    if (c->sock && !(c->kind & FDCHAN_PACKET) && c->rfd >= 0 && !forked) {
        /* TCP answers a close with data unread by a reset, and a reset throws away what
         * this end sent and the peer has not yet taken. So: the end of our stream goes
         * after our data (FIN), and what the peer sent is read and dropped first (as much
         * as is there now, bounded: this never waits). A seqpacket peer loses nothing
         * that way: it reads what is queued before the reset (read_error). Not after a
         * fork: the socket may be another process's too (a copy closed in the process
         * that does not use it), and only the last close reaches TCP anyway. */
        shutdown(c->wfd, SHUT_WR);
        char sink[16384];
        for (int i = 0; i < 4096 && recv(c->rfd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++) {
        }
    }
    while (c->qhead) {
        fmsg *m = c->qhead;
        c->qhead = m->next;
        msg_free(m);
    }
    free(c->rbuf);
    drop_part(c);
    free(c->spare);
    if (c->epfd >= 0) close(c->epfd);
    if (c->efd >= 0) close(c->efd);
    if (c->wfd >= 0 && c->wfd != c->rfd) close(c->wfd);
    if (c->rfd >= 0) close(c->rfd);
    if (c->unlink1) unlink(c->unlink1);
    if (c->unlink2) unlink(c->unlink2);
    free(c->unlink1);
    free(c->unlink2);
    free(c);
}

/* ------------------------------------------------------------------ making */

/* This end's HELLO. A creator: the shape (flags word: FDCHAN_CHECKSUM, FDCHAN_NO_FDS),
 * and in packet mode the type bit that it reads a named identity. A joiner: the shape it
 * agrees to, and its hints in the type field (fdchan.h): never FDCHAN_NO_FDS in the
 * flags word (older creators refuse any bit there they did not send), and the identity
 * only to a creator that reads it (creator_type: its HELLO's type). */
static int send_hello(fdchan *c, int joiner, uint64_t creator_type, const char *relay_for)
{
    uint8_t p[HELLO_MAX];
    uint32_t hello[2] = {c->max_msg, c->kind & (FDCHAN_CHECKSUM | (joiner ? 0 : FDCHAN_NO_FDS))};
    memcpy(p, hello, HELLO_LEN);
    uint32_t len = HELLO_LEN;
    uint64_t type = 0;
    int pkt = (c->kind & FDCHAN_PACKET) != 0;
    if (!joiner) {
        type = pkt ? FDCHAN_HT_READS_REMOTE : 0;
    } else if (pkt) {
        if (c->kind & FDCHAN_NO_FDS) type |= FDCHAN_HT_NO_FDS;
        if (relay_for && (creator_type & FDCHAN_HT_READS_REMOTE)) {
            size_t n = strlen(relay_for); /* (checked by ferry__chan_opts_in) */
            if (n > FERRY_REMOTE_ID_MAX) n = FERRY_REMOTE_ID_MAX;
            memcpy(p + HELLO_LEN, relay_for, n);
            len += (uint32_t)n;
            type |= FDCHAN_HT_REMOTE;
        }
    }
    ferry__when now = ferry__when_in(1000000000); /* an empty link takes 40 bytes */
    return send_frame(c, 0, (int64_t)type, p, len, NULL, 0, &now);
}

/* A joiner: read the creator's HELLO (the first frame) to learn the shape; *type gets
 * its type field (what the creator reads in the joiner's HELLO). */
static int await_hello(fdchan *c, int64_t deadline, uint64_t *type)
{
    uint8_t hdr[FERRY__FRAME_HDR + HELLO_LEN];
    size_t got = 0;
    while (got < sizeof hdr) {
        ssize_t n = rd(c, hdr + got, sizeof hdr - got);
        if (n > 0) {
            got += (size_t)n;
            if (c->kind & FDCHAN_PACKET) break; /* one packet is the whole HELLO */
            continue;
        }
        /* A FIFO nobody has opened for writing yet reads as end of file: wait for the
         * creator (poll reports POLLHUP only once a writer came and went). */
        if (n == 0 && (c->sock || got)) return -EPIPE;
        if (n < 0 && errno == ECONNRESET && !c->reset_seen) { /* read_error: queued first */
            c->reset_seen = 1;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return errno == ECONNRESET ? -EPIPE : -EBADMSG;
        struct pollfd p = {.fd = c->rfd, .events = POLLIN};
        int rc = wait_in(c, deadline);
        if (rc < 0) return rc;
        if (n == 0 && poll(&p, 1, 0) == 1 && !(p.revents & POLLIN)) return -EPIPE;
    }
    ferry__frame f;
    if (got != sizeof hdr || ferry__frame_decode(hdr, HELLO_LEN, &f) < 0 || f.seq != 0 ||
        f.len != HELLO_LEN || f.nfds || ferry__frame_check_crc(&f, hdr + FERRY__FRAME_HDR) < 0)
        return -EBADMSG;
    uint32_t max, flags;
    memcpy(&max, hdr + FERRY__FRAME_HDR, 4);
    memcpy(&flags, hdr + FERRY__FRAME_HDR + 4, 4);
    if (max == 0 || max > FERRY_MAX_MSG_LIMIT || (flags & ~(FDCHAN_CHECKSUM | FDCHAN_NO_FDS)))
        return -EBADMSG;
    c->max_msg = max;
    c->kind |= (flags & FDCHAN_CHECKSUM) | ((flags & FDCHAN_NO_FDS) ? FDCHAN_PEER_NO_FDS : 0);
    c->rx_seq = 1;
    *type = (uint64_t)f.type;
    return 0;
}

int ferry__fdchan_new(const ferry__fdchan_cfg *cfg, int64_t deadline, ferry_chan **out)
{
    fdchan *c = calloc(1, sizeof *c);
    int rc = c ? 0 : -ENOMEM;
    if (c) {
        c->base.ops = cfg->ops;
        c->rfd = cfg->rfd;
        c->wfd = cfg->wfd;
        struct stat st;
        c->sock = fstat(cfg->wfd, &st) == 0 && S_ISSOCK(st.st_mode);
        if (c->sock && !(cfg->kind & FDCHAN_PACKET)) {
            pthread_once(&forks_once, forks_init);
            c->forks_at_new = atomic_load_explicit(&forks, memory_order_relaxed);
        }
        c->kind = cfg->kind;
        c->max_msg = (uint32_t)cfg->max_msg;
        c->qtail = &c->qhead;
        c->qfds_max = cfg->max_skipped_fds ? cfg->max_skipped_fds : FERRY_SKIPPED_FDS_DEFAULT;
        c->efd = c->epfd = -1;
        c->io = cfg->io;
        c->io_ctx = cfg->io_ctx;
        c->creator = cfg->max_msg > 0 && (cfg->kind & FDCHAN_PACKET);
        c->relay_uid = cfg->relay_uid;
        if ((cfg->unlink1 && !(c->unlink1 = strdup(cfg->unlink1))) ||
            (cfg->unlink2 && !(c->unlink2 = strdup(cfg->unlink2))))
            rc = -ENOMEM;
    }
    uint64_t creator_type = 0;
    if (rc == 0 && cfg->max_msg == 0) rc = await_hello(c, deadline, &creator_type);
    /* A joiner whose creator sent its HELLO and messages and closed already: only the
     * reply fails (-EPIPE). The channel is made anyway, so that what the creator sent is
     * drained, then -EPIPE (a close never destroys what that end sent): the failed write
     * ended the sending side only (write_error), so sends say -EPIPE at once and the
     * receives take the creator's messages first. Only then: a joiner that never got a
     * whole HELLO (the stream ended first: -EPIPE from await_hello) knows no shape, and
     * has no channel. */
    if (rc == 0) {
        rc = send_hello(c, cfg->max_msg == 0, creator_type, cfg->relay_for);
        if (rc == -EPIPE && cfg->max_msg == 0) rc = 0;
    }
    if (rc < 0) {
        if (c) {
            free(c->unlink1); /* on failure the caller's paths stay where they are */
            free(c->unlink2);
            c->unlink1 = c->unlink2 = NULL;
            ferry__fdchan_close(&c->base);
        } else {
            if (cfg->io) cfg->io->close(cfg->io_ctx, 1);
            close(cfg->rfd);
            if (cfg->wfd != cfg->rfd) close(cfg->wfd);
        }
        return rc;
    }
    *out = &c->base;
    return 0;
}

const ferry__chan_ops ferry__fdchan_ops = {
    .sendmsg = ferry__fdchan_sendmsg,
    .recvmsg = ferry__fdchan_recvmsg,
    .fd = ferry__fdchan_fd,
    .max_msg = ferry__fdchan_max_msg,
    .close = ferry__fdchan_close,
};

const ferry__chan_ops ferry__fdchan_peer_ops = {
    .sendmsg = ferry__fdchan_sendmsg,
    .recvmsg = ferry__fdchan_recvmsg,
    .fd = ferry__fdchan_fd,
    .max_msg = ferry__fdchan_max_msg,
    .peer = ferry__fdchan_peer,
    .peer_remote = ferry__fdchan_peer_remote,
    .close = ferry__fdchan_close,
};
