// SPDX-License-Identifier: MIT
/*
 * test_carrier — issue 11 finding 7: an event queue's or a mailbox's descriptor (a
 * "carrier": a SOCK_SEQPACKET socket whose queued message holds the object's memfd and
 * the doorbell, the socket's own peer) is checked for what it claims to be.
 *
 * Published to a real ferryd (ferry_publish: -EINVAL from ferryd) and adopted
 * (ferry_event_adopt / ferry_mailbox_adopt: -EBADMSG), each of these is refused: a
 * connection to ferryd itself, a socket pair end with nothing queued, and forged carriers
 * — the magic of the other kind, a memfd of another kind, an unsealed memfd, three
 * descriptors, a doorbell that is some other socket's peer, the carrier as its own
 * doorbell. A forged carrier made exactly like a real one is accepted (so each refusal is
 * the check's, not an accident). Over the raw protocol, a sealed memfd whose header is of
 * another kind is refused too (-EINVAL). ferryd keeps no descriptor of a refused carrier, and a
 * real queue and mailbox published 0666 open and work for another uid (60021), whose
 * check asks the kernel the same question unprivileged.
 * Needs root (to become another uid); otherwise prints SKIP and passes.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "sync/obj.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>

static const ident OTHER = {60021, 60021, 0, {0}};

#define PAIR_A (-2) /* forge(): this carrier's own peer */
#define PAIR_B (-3) /* forge(): the carrier itself */

/* A carrier-like socket: a pair (A, B) and, sent on A into B's queue, one message `magic`
 * with the descriptors fds[0..n) (PAIR_A / PAIR_B stand for the pair's own ends).
 * Returns B (ours); A is closed (the message keeps it alive). */
static int forge(const char *magic, const int *fds, int n)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    int send_fds[4];
    for (int i = 0; i < n; i++)
        send_fds[i] = fds[i] == PAIR_A ? sv[0] : fds[i] == PAIR_B ? sv[1] : fds[i];
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)magic, .iov_len = strlen(magic)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cm.buf,
                         .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
    memcpy(CMSG_DATA(c), send_fds, (size_t)n * sizeof(int));
    CHECK(sendmsg(sv[0], &msg, MSG_NOSIGNAL) == (ssize_t)strlen(magic));
    close(sv[0]);
    return sv[1];
}

/* The memfd and doorbell a real carrier holds (peeked, as an adopter does). */
static void peek_real(int carrier, int *memfd, int *ring)
{
    char buf[8];
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    CHECK_EQ(recvmsg(carrier, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC), 4);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    CHECK(c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(2 * sizeof(int)));
    int f[2];
    memcpy(f, CMSG_DATA(c), sizeof f);
    *memfd = f[0];
    *ring = f[1];
}

/* ferryd's descriptor count once it has heard every hang-up (it does so in its own time):
 * the same over three samples 20 ms apart. */
static int ferryd_fds_settled(const test_broker *b)
{
    int last = -1, same = 0;
    for (int i = 0; i < 100 && same < 3; i++) {
        int n = proc_fd_count(b->pid);
        same = n == last ? same + 1 : 1;
        last = n;
        sleep_ms(20);
    }
    return last;
}

/* fd (ours, kept) is not a carrier of kind: ferryd refuses it, and so does adopt. */
static void refused(const test_broker *b, int fd, int kind, const char *what)
{
    (void)b;
    ferry_pub *p = NULL;
    int rc = ferry_publish("org.car.bad", fd, kind, NULL, &p, 5 * SEC);
    if (rc != -EINVAL) fprintf(stderr, "%s: ferry_publish said %d\n", what, rc);
    CHECK_EQ(rc, -EINVAL);
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    CHECK(d >= 0);
    if (kind == FERRY_OBJ_EVENT) {
        ferry_event *e = NULL;
        rc = ferry_event_adopt(d, &e);
    } else {
        ferry_mailbox *mb = NULL;
        rc = ferry_mailbox_adopt(d, &mb);
    }
    if (rc != -EBADMSG) fprintf(stderr, "%s: adopt said %d\n", what, rc);
    CHECK_EQ(rc, -EBADMSG);
}

/* fd is accepted by ferryd as a carrier of kind (and ferryd keeps one descriptor). */
static void accepted(int fd, int kind)
{
    ferry_pub *p = NULL;
    CHECK_EQ(ferry_publish("org.car.good", fd, kind, NULL, &p, 5 * SEC), 0);
    ferry_pub_close(p);
}

/* PUBLISH over the raw protocol (ferry_publish checks a memfd kind itself first): ferryd's
 * own answer for fd as an object of kind. */
static int raw_publish(const test_broker *b, int fd, uint32_t kind)
{
    int s = raw_dial(b);
    uint8_t req[512], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry_policy pol;
    ferry_policy_init(&pol);
    ferry__bw_register(&w, "org.car.raw", &pol);
    ferry__bw_u32(&w, kind);
    CHECK_EQ(ferry__bsend(s, FERRY__OP_PUBLISH, 7, w.p, w.len, fd), 0);
    int64_t op;
    uint64_t seq;
    size_t len;
    int rfd;
    CHECK_EQ(raw_next(s, buf, &op, &seq, &len, &rfd, 5000), 1);
    CHECK_EQ(op, FERRY__OP_REPLY);
    CHECK_EQ(seq, 7);
    CHECK_EQ(rfd, -1);
    ferry__br r = {.p = buf, .len = len};
    int rc = (int)ferry__br_u32(&r);
    close(s); /* a published name goes with the connection */
    return rc;
}

static void other_main(void *arg)
{
    (void)arg;
    ferry_event *e;
    CHECK_EQ(ferry_event_open("org.car.ev", &e, 5 * SEC), 0);
    CHECK_EQ(ferry_event_post(e, 7, 0, 5 * SEC), 0);
    ferry_event_close(e);
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_open("org.car.mb", &mb, 5 * SEC), 0);
    ferry_mailbox_close(mb);
}

/* Until the name is gone (an unpublish is a message ferryd handles after our close). */
static void gone(const char *name)
{
    ferry_name_info in;
    for (int i = 0; i < 500 && ferry_lookup(name, &in, 5 * SEC) == 0; i++) sleep_ms(2);
    CHECK_EQ(ferry_lookup(name, &in, 5 * SEC), -ENOENT);
}

int main(void)
{
    require_root();
    test_deadline(60);
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_start(&b);
    int fds = fd_count();
    int ferryd_base = ferryd_fds_settled(&b);

    ferry_event *ev;
    CHECK_EQ(ferry_event_create(16, &ev), 0);
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(NULL, &mb), 0);
    int ev_mem, ev_ring, mb_mem, mb_ring;
    peek_real(ferry_event_fd(ev), &ev_mem, &ev_ring);
    peek_real(ferry_mailbox_fd(mb), &mb_mem, &mb_ring);
    int sem_mem;
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(FERRY_OBJ_SEM, 4096, &sem_mem, &seg), 0);
    ferry__seg_unmap(&seg);
    int raw_mem = memfd_create("unsealed", MFD_CLOEXEC);
    CHECK(raw_mem >= 0);
    CHECK(ftruncate(raw_mem, 4096) == 0);
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, raw_mem, 0);
    CHECK(map != MAP_FAILED);
    ferry__obj_hdr h = {FERRY__OBJ_MAGIC, FERRY_OBJ_EVENT, FERRY__OBJ_VERSION, 4096};
    memcpy(map, &h, sizeof h); /* an event header, but nothing stops it from shrinking */
    munmap(map, 4096);

    /* A connection to ferryd itself, and a socket with nothing queued. */
    int conn = raw_dial(&b);
    refused(&b, conn, FERRY_OBJ_EVENT, "ferryd connection (event)");
    refused(&b, conn, FERRY_OBJ_MAILBOX, "ferryd connection (mailbox)");
    close(conn);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    refused(&b, sv[0], FERRY_OBJ_EVENT, "empty socket pair");
    refused(&b, sv[1], FERRY_OBJ_MAILBOX, "empty socket pair");
    close(sv[0]);
    close(sv[1]);

    /* Forged carriers. */
    int conn2 = raw_dial(&b);
    struct {
        const char *magic;
        int fds[3], n, kind;
        const char *what;
    } bad[] = {
        {"FMB1", {ev_mem, PAIR_A}, 2, FERRY_OBJ_EVENT, "mailbox magic on an event queue"},
        {"FEV1", {mb_mem, PAIR_A}, 2, FERRY_OBJ_EVENT, "a mailbox's memfd"},
        {"FEV1", {sem_mem, PAIR_A}, 2, FERRY_OBJ_EVENT, "a semaphore's memfd"},
        {"FEV1", {raw_mem, PAIR_A}, 2, FERRY_OBJ_EVENT, "an unsealed memfd"},
        {"FEV1", {ev_mem, PAIR_A, sem_mem}, 3, FERRY_OBJ_EVENT, "three descriptors"},
        {"FEV1", {ev_mem}, 1, FERRY_OBJ_EVENT, "no doorbell"},
        {"FEV1", {ev_mem, ev_ring}, 2, FERRY_OBJ_EVENT, "another queue's doorbell"},
        {"FEV1", {ev_mem, PAIR_B}, 2, FERRY_OBJ_EVENT, "the carrier as its own doorbell"},
        {"FEV1x", {ev_mem, PAIR_A}, 2, FERRY_OBJ_EVENT, "a longer message"},
        {"FEV1", {PAIR_A, ev_mem}, 2, FERRY_OBJ_EVENT, "swapped descriptors"},
        {"FMB1", {ev_mem, PAIR_A}, 2, FERRY_OBJ_MAILBOX, "an event queue's memfd"},
        {"FMB1", {mb_mem, mb_ring}, 2, FERRY_OBJ_MAILBOX, "another mailbox's doorbell"},
        {"FMB1", {mb_mem, conn2}, 2, FERRY_OBJ_MAILBOX, "ferryd as doorbell"},
        {"FEV1", {mb_mem, PAIR_A}, 2, FERRY_OBJ_MAILBOX, "event magic on a mailbox"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int c = forge(bad[i].magic, bad[i].fds, bad[i].n);
        refused(&b, c, bad[i].kind, bad[i].what);
        close(c);
    }
    close(conn2);
    /* The duplicates each refused carrier's peek installed in ferryd were closed. */
    CHECK(ferryd_fds_settled(&b) <= ferryd_base);
    /* The memfd kinds: ferryd reads the header too, not only the seals. */
    CHECK_EQ(raw_publish(&b, sem_mem, FERRY_OBJ_MUTEX), -EINVAL);
    CHECK_EQ(raw_publish(&b, sem_mem, FERRY_OBJ_BARRIER), -EINVAL);
    CHECK_EQ(raw_publish(&b, ev_mem, FERRY_OBJ_SEM), -EINVAL);
    CHECK_EQ(raw_publish(&b, raw_mem, FERRY_OBJ_EVENT), -EINVAL);
    CHECK_EQ(raw_publish(&b, sem_mem, FERRY_OBJ_SEM), 0);
    gone("org.car.raw");
    /* Made exactly like a real one (the real memfd, its own doorbell): accepted. */
    int good_ev = forge("FEV1", (int[]){ev_mem, PAIR_A}, 2);
    accepted(good_ev, FERRY_OBJ_EVENT);
    ferry_event *ge;
    CHECK_EQ(ferry_event_adopt(good_ev, &ge), 0);
    ferry_event_close(ge);
    int good_mb = forge("FMB1", (int[]){mb_mem, PAIR_A}, 2);
    accepted(good_mb, FERRY_OBJ_MAILBOX);
    ferry_mailbox *gm;
    CHECK_EQ(ferry_mailbox_adopt(good_mb, &gm), 0);
    ferry_mailbox_close(gm);
    gone("org.car.good");

    /* The real ones, published for everyone: another uid opens and uses them. */
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0666;
    ferry_pub *pe, *pm;
    CHECK_EQ(ferry_publish("org.car.ev", ferry_event_fd(ev), FERRY_OBJ_EVENT, &pol, &pe, 5 * SEC),
             0);
    CHECK_EQ(
        ferry_publish("org.car.mb", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &pm, 5 * SEC),
        0);
    run_as(&OTHER, other_main, NULL);
    uint64_t v;
    CHECK_EQ(ferry_event_next(ev, &v, 5 * SEC), 0);
    CHECK_EQ(v, 7);
    ferry_pub_close(pe);
    ferry_pub_close(pm);
    gone("org.car.ev");
    gone("org.car.mb");

    close(ev_mem);
    close(ev_ring);
    close(mb_mem);
    close(mb_ring);
    close(sem_mem);
    close(raw_mem);
    ferry_event_close(ev);
    ferry_mailbox_close(mb);
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("test_carrier: ok\n");
    return 0;
}
