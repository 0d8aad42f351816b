// SPDX-License-Identifier: MIT
/*
 * test_shm_hostile.c — a misbehaving peer cannot crash us or make us read out of bounds.
 *
 *  1. Refused handshakes: a SETUP whose segment fd is not a memfd, is an unsealed memfd,
 *     has the wrong size, whose shape is out of range, or whose "eventfd" is a pipe, is
 *     refused by ferry_chan_adopt with -EBADMSG before anything is mapped, and no fd
 *     leaks (the adopted fd is closed too).
 *  2. Scribbling peers, for real from another process through the shared mapping: a
 *     record with a wrong seq, a length over the maximum, a record running past the
 *     ring's end, bad magic, a bogus WRAP, a payload changed after its crc was written
 *     (FERRY_CHECKSUM), a JUMP to a well-formed new ring on a channel that is not
 *     unbounded, 20 fds on the link for a record that announces 2 (the control data is
 *     truncated: the fds that did arrive are closed); and a consumer that scribbles its
 *     tail. Each
 *     gives -EBADMSG, the channel stays closed (-EBADMSG again), and the peer sees its
 *     link hang up (-EPIPE). Run under ASan in CI: any stray access would abort.
 */
#include "testutil.h"

#include "ferry/ferry.h"
#include "shm/ring.h"
#include "shm/segment.h"
#include "transport/shm_chan.h"
#include "transport/shm_link.h"

#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#define RING 4096u
#define SIZE (FERRY__RING_CTL_BYTES + RING)

/* Send a SETUP with the given fds on sv[0]; adopt sv[1]; return adopt's result. */
static int adopt_with(const ferry__link_msg *m, int *fds, unsigned nfds)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK_EQ(ferry__link_send(sv[0], m, fds, nfds, 0), 0);
    ferry_chan *ch = NULL;
    int rc = ferry_chan_adopt(sv[1], NULL, &ch);
    if (rc == 0) ferry_chan_close(ch);
    CHECK(fcntl(sv[1], F_GETFD) < 0 && errno == EBADF); /* adopt owns it either way */
    close(sv[0]);
    return rc;
}

static int sealed_memfd(size_t size, int seals)
{
    int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)size) == 0);
    if (seals) CHECK(fcntl(fd, F_ADD_SEALS, seals) == 0);
    return fd;
}

static void test_refused_setup(void)
{
    ferry__link_msg good = {.magic = FERRY__SETUP_MAGIC,
                            .kind = FERRY__LINK_SETUP,
                            .ring_bytes = RING,
                            .max_msg = ferry__ring_max_msg(RING),
                            .mem_cap = RING,
                            .capacity = FERRY_CAP_RING};
    int seals = F_SEAL_SHRINK | F_SEAL_GROW;
    int before = fd_count();
    for (int variant = 0; variant < 8; variant++) {
        int fds[4] = {sealed_memfd(SIZE, seals), sealed_memfd(SIZE, seals), -1, -1};
        unsigned nfds = 2;
        ferry__link_msg m = good;
        int expect = -EBADMSG;
        switch (variant) {
        case 0:
            expect = 0;
            break; /* the control: a good handshake is accepted */
        case 1:    /* not a memfd: a regular file */
            close(fds[0]);
            fds[0] = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
            break;
        case 2: /* a memfd without seals */
            close(fds[1]);
            fds[1] = sealed_memfd(SIZE, 0);
            break;
        case 3: /* sealed, wrong size */
            close(fds[0]);
            fds[0] = sealed_memfd(SIZE * 2, seals);
            break;
        case 4:
            m.ring_bytes = RING + 64;
            break; /* not a power of two */
        case 5:
            m.max_msg = RING;
            break; /* larger than the ring carries */
        case 6:
            m.flags = 0x80;
            break; /* unknown flag */
        case 7:    /* the old handshake: the segments and two eventfds (now 2 fds exactly) */
            fds[2] = eventfd(0, EFD_CLOEXEC);
            fds[3] = eventfd(0, EFD_CLOEXEC);
            nfds = 4;
            break;
        }
        CHECK_EQ(adopt_with(&m, fds, nfds), expect);
        for (unsigned i = 0; i < nfds; i++) close(fds[i]);
    }
    /* Not a ferry descriptor at all. */
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    ferry_chan *ch;
    CHECK_EQ(ferry_chan_adopt(p[0], NULL, &ch), -EBADMSG);
    close(p[1]);
    CHECK_EQ(fd_count(), before);
}

/* How the child breaks the rules. */
enum scribble {
    BAD_SEQ,
    BAD_LEN,
    PAST_END,
    BAD_MAGIC,
    BAD_WRAP,
    BAD_TAIL,
    BAD_CRC,
    BAD_JUMP,
    BAD_FDS,
    NSCRIBBLE
};

/* In the child: forge a record at the producer's head of ch's outgoing ring. */
static void forge(ferry_chan *ch, enum scribble how)
{
    shm_chan *c = (shm_chan *)ch;
    shm_tx *t = &c->tx;
    if (how == BAD_CRC) { /* a good record, then one byte of its payload changed */
        CHECK_EQ(ferry_send(ch, "payload", 7, 1000000000), 0);
        uint8_t *rec = t->data + ((t->head - 64) & (t->size - 1));
        rec[FERRY__FRAME_HDR + 3] ^= 0x20;
        return;
    }
    if (how == BAD_JUMP) { /* a real, sealed ring handed over, but this channel is bounded */
        int fd;
        ferry__seg seg;
        CHECK_EQ(ferry__seg_create(2 * RING, &fd, &seg), 0);
        ferry__link_msg m = {.magic = FERRY__SETUP_MAGIC,
                             .kind = FERRY__LINK_SEG,
                             .seq = t->seq + 1,
                             .ring_bytes = 2 * RING};
        CHECK_EQ(ferry__link_send(c->link, &m, &fd, 1, 0), 0);
        close(fd);
        ferry__seg_unmap(&seg);
    }
    if (how == BAD_FDS) { /* more fds than any message may carry, sent raw on the link */
        int fds[20];
        for (int i = 0; i < 20; i++) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ferry__link_msg m = {
            .magic = FERRY__SETUP_MAGIC, .kind = FERRY__LINK_FDS, .seq = t->seq + 1};
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof fds)];
        } ctrl = {0};
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctrl.buf,
                            .msg_controllen = sizeof ctrl.buf};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(cm), fds, sizeof fds);
        CHECK_EQ(sendmsg(c->link, &mh, 0), (long long)sizeof m);
        for (int i = 0; i < 20; i++) close(fds[i]);
    }
    if (how == PAST_END) {
        /* Walk the real producer with legal 64-byte records to the ring's second-to-last
         * line, then forge a 256-byte record there that would run past the end. */
        while ((t->head & (t->size - 1)) != t->size - 2 * 64)
            CHECK_EQ(ferry_send(ch, "x", 1, 1000000000), 0);
    }
    ferry__rec *r = (ferry__rec *)(t->data + (t->head & (t->size - 1)));
    r->magic = how == BAD_MAGIC ? 0xdeadbeef : FERRY__FRAME_MAGIC;
    r->version = FERRY__FRAME_VERSION;
    r->flags = how == BAD_WRAP   ? FERRY__F_WRAP /* a WRAP must be empty: this is not */
               : how == BAD_JUMP ? FERRY__F_JUMP
                                 : 0;
    r->nfds = how == BAD_FDS ? 2 : 0;
    r->reserved = 0;
    r->type = 1;
    r->len = how == BAD_LEN ? (uint32_t)c->max_msg + 1 : how == PAST_END ? 200 : 8;
    if (how == BAD_JUMP) r->len = 0;
    r->crc = 0;
    uint64_t seq = how == BAD_SEQ ? t->seq + 7 : t->seq + 1;
    atomic_store_explicit(&r->seq, seq, memory_order_release);
}

static void test_scribble(enum scribble how)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = RING;
    if (how == BAD_CRC) o.flags |= FERRY_CHECKSUM;
    ferry_chan *a, *b;
    int before = fd_count();
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    int sync[2];
    CHECK(pipe(sync) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        close(sync[0]);
        char buf[256];
        if (how == BAD_TAIL) {
            /* As consumer: claim to have consumed more than was ever written. */
            shm_chan *c = (shm_chan *)b;
            atomic_store_explicit(&c->rx.ctl->tail, 1u << 20, memory_order_release);
        } else {
            CHECK_EQ(ferry_send(b, "ok", 2, 1000000000), 0); /* one good message first */
            forge(b, how);
        }
        CHECK(write(sync[1], "x", 1) == 1);
        /* The parent cuts us off: our link hangs up. (With a scribbled tail, wait for that
         * before receiving anything: a take would publish a true tail over the lie.) */
        if (how == BAD_TAIL) {
            struct pollfd p = {.fd = ((shm_chan *)b)->link, .events = POLLRDHUP};
            CHECK_EQ(poll(&p, 1, 5000), 1);
        }
        ssize_t r;
        while ((r = ferry_recv(b, buf, sizeof buf, 5000000000LL)) >= 0) {
        }
        CHECK_EQ(r, -EPIPE);
        ferry_chan_close(b);
        _exit(0);
    }
    ferry_chan_close(b);
    close(sync[1]);
    char x;
    CHECK(read(sync[0], &x, 1) == 1);
    close(sync[0]);
    char buf[256];
    if (how == BAD_TAIL) {
        /* The producer notices when it next looks at the consumer's indices: fill up. */
        int rc = 0;
        for (int i = 0; i < 1000 && rc == 0; i++) rc = ferry_send(a, buf, 200, FERRY_NOW);
        CHECK_EQ(rc, -EBADMSG);
        CHECK_EQ(ferry_send(a, buf, 1, FERRY_NOW), -EBADMSG);
    } else {
        CHECK_EQ(ferry_recv(a, buf, sizeof buf, 1000000000), 2);
        if (how == PAST_END) /* the legal filler records come first */
            while (ferry_recv(a, buf, sizeof buf, FERRY_NOW) == 1) {
            }
        CHECK_EQ(ferry_recv(a, buf, sizeof buf, 1000000000), -EBADMSG);
        CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EBADMSG);
    }
    ferry_chan_close(a);
    wait_ok(pid);
    CHECK_EQ(fd_count(), before);
}

/* Send a raw READY on link: `len` bytes of it, with fd attached unless fd < 0. */
static void raw_ready(int link, size_t len, int fd)
{
    ferry__link_msg m = {.magic = FERRY__SETUP_MAGIC, .kind = FERRY__LINK_READY};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctrl = {0};
    struct iovec iov = {.iov_base = &m, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = sizeof ctrl.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    CHECK_EQ(sendmsg(link, &mh, 0), (long long)len);
}

/* READY on the link (issue 15: the producer's word to an armed poll fd, which watches the
 * link): skipped in front of the fds of a record; a malformed one (fds on it, or the
 * wrong size) fails the channel with -EBADMSG, whether it is met in front of a record's
 * fds or drained for an armed poll fd; no fd it carried stays open here. */
static void test_ready(void)
{
    int before = fd_count();
    for (int variant = 0; variant < 4; variant++) {
        ferry_chan *a, *b;
        CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
        int link = ((shm_chan *)b)->link;
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(nul >= 0);
        char buf[64];
        ferry_msg m = {.data = buf, .cap = sizeof buf};
        if (variant == 0) { /* legitimate: skipped, the record's fd arrives */
            raw_ready(link, sizeof(ferry__link_msg), -1);
            ferry_msg s = {.type = 1, .data = "x", .len = 1, .nfds = 1, .fds = {nul}};
            CHECK_EQ(ferry_sendmsg(b, &s, FERRY_NOW), 0);
            CHECK_EQ(ferry_recvmsg(a, &m, 0, FERRY_NOW), 1);
            CHECK_EQ(m.nfds, 1);
            close(m.fds[0]);
        } else if (variant == 1) { /* an fd on a READY in front of a record's fds */
            raw_ready(link, sizeof(ferry__link_msg), nul);
            ferry_msg s = {.type = 1, .data = "x", .len = 1, .nfds = 1, .fds = {nul}};
            CHECK_EQ(ferry_sendmsg(b, &s, FERRY_NOW), 0);
            CHECK_EQ(ferry_recvmsg(a, &m, 0, FERRY_NOW), -EBADMSG);
        } else { /* drained for an armed poll fd: an fd on it (2), too short (3) */
            int pfd = ferry_chan_poll_fd(a);
            CHECK(pfd >= 0);
            raw_ready(link, variant == 3 ? 8 : sizeof(ferry__link_msg), variant == 2 ? nul : -1);
            CHECK_EQ(ferry_send(b, "x", 1, FERRY_NOW), 0);
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            CHECK_EQ(poll(&p, 1, 1000), 1);
            CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), 1); /* then it drains */
            CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EBADMSG);
        }
        close(nul);
        ferry_chan_close(a);
        ferry_chan_close(b);
    }
    CHECK_EQ(fd_count(), before);
}

int main(void)
{
    test_refused_setup();
    test_ready();
    for (int how = 0; how < NSCRIBBLE; how++) test_scribble((enum scribble)how);
    printf("ok\n");
    return 0;
}
