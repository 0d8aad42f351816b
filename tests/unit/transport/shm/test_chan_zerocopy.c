// SPDX-License-Identifier: MIT
/*
 * test_chan_zerocopy — ferry_loan/ferry_commit and ferry_peek/ferry_release, with a forked
 * peer:
 *  - round trip: a loaned pointer is 32-byte aligned; what is written there is what the
 *    peer's ferry_peek shows in place (type, len, bytes, no fds); ferry_release gives it
 *    back; both directions;
 *  - misuse: loan twice -> -EBUSY (and ferry_send / ferry_sendmsg -> -EBUSY while a loan
 *    is outstanding); commit without a loan -> -EINVAL; commit with len > the loaned len
 *    or a negative type -> -EINVAL and the loan stays usable; loan len > max_msg ->
 *    -EMSGSIZE and no loan is left outstanding; peek twice -> -EBUSY; release without a
 *    peek -> -EINVAL; peek FERRY_NOW on empty -> -EAGAIN;
 *  - lengths: commit shorter than the loan (10 of 4096), 0 bytes, exactly max_msg, and
 *    100 loans of varied sizes, each aligned, each received intact and in order;
 *  - peek takes a type filter (passes over a message, which stays queued in order);
 *    peek hands over a message's fds; ferry_recv takes a loaned message and peek takes a
 *    ferry_send one;
 *  - capacity 0: a loan whose commit nobody takes: -ETIMEDOUT after the loan's 100 ms
 *    (the timeout covers the whole send), -EAGAIN with FERRY_NOW, never delivered,
 *    counted as drops; capacity 1 full: loan FERRY_NOW -> -EAGAIN, 50 ms -> -ETIMEDOUT;
 *  - no fd leaks in either process.
 */
#include "chantest.h"

#include <sys/mman.h>

#define LOANS 100

static size_t max_msg; /* of the channel under test: each process sets it from its end */

/* Loaned pointers that were not 32-byte aligned: counted (with the first one's offset)
 * and checked at the end, so that one failure does not hide the rest of the test. */
static int misaligned;
static unsigned first_misalign;

static void check_aligned32(const void *p)
{
    if (((uintptr_t)p & 31) != 0 && misaligned++ == 0) first_misalign = (uintptr_t)p & 63;
}

static void loan_commit(ferry_chan *ch, size_t loan, size_t len, int64_t type, uint64_t seq)
{
    void *p = NULL;
    CHECK_EQ(ferry_loan(ch, loan, &p, T5S), 0);
    CHECK(p != NULL);
    check_aligned32(p);
    fill_seq(p, len, seq);
    CHECK_EQ(ferry_commit(ch, type, len), 0);
}

static void peek_check(ferry_chan *ch, int64_t filter, int64_t type, size_t len, uint64_t seq)
{
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = -5;
    int r = ferry_peek(ch, filter, &m, T5S);
    if (r != 0) fprintf(stderr, "peek (seq %" PRIu64 "): %s\n", seq, ferry_strerror(r));
    CHECK_EQ(r, 0);
    CHECK_EQ(m.type, type);
    CHECK_EQ(m.len, len);
    CHECK_EQ(m.nfds, 0);
    CHECK(len == 0 || m.data != NULL);
    CHECK(check_seq(m.data, len, seq));
    CHECK_EQ(ferry_release(ch), 0);
}

static size_t loan_len(int i)
{
    return (size_t)(i * 377) % 3000 + 1;
}

/* ---------------------------------------------------------------- child */

static void child_main(ferry_chan *b, ctl *c)
{
    max_msg = ferry_chan_max_msg(b);
    ferry_msg m;
    memset(&m, 0, sizeof m);

    STAGE("child: misuse on empty");
    CHECK_EQ(ferry_release(b), -EINVAL);
    CHECK_EQ(ferry_peek(b, 0, &m, FERRY_NOW), -EAGAIN);
    ctl_put(c, 'r');

    STAGE("child: first peek");
    ctl_expect(c, '1');
    memset(&m, 0, sizeof m);
    CHECK_EQ(ferry_peek(b, 0, &m, T5S), 0);
    CHECK_EQ(m.type, 7);
    CHECK_EQ(m.len, 1000);
    CHECK_EQ(m.nfds, 0);
    CHECK(check_seq(m.data, 1000, 1));
    ferry_msg m2;
    memset(&m2, 0, sizeof m2);
    CHECK_EQ(ferry_peek(b, 0, &m2, FERRY_NOW), -EBUSY);
    CHECK_EQ(ferry_release(b), 0);
    CHECK_EQ(ferry_release(b), -EINVAL);

    STAGE("child: filter, short, empty");
    peek_check(b, 9, 9, 0, 0); /* passes over type 8 */
    peek_check(b, 0, 8, 10, 2);

    STAGE("child: max by copy");
    uint8_t *big = malloc(max_msg + 64);
    CHECK(big != NULL);
    CHECK_EQ(ferry_recv(b, big, max_msg + 64, T5S), (ssize_t)max_msg);
    CHECK(check_seq(big, max_msg, 3));
    free(big);

    STAGE("child: 100 loans");
    for (int i = 0; i < LOANS; i++) peek_check(b, 0, 0, loan_len(i), 100 + (uint64_t)i);

    STAGE("child: send by copy, peek");
    memset(&m, 0, sizeof m);
    CHECK_EQ(ferry_peek(b, 0, &m, T5S), 0);
    CHECK_EQ(m.type, 0);
    CHECK_EQ(m.len, 5);
    CHECK(memcmp(m.data, "plain", 5) == 0);
    CHECK_EQ(ferry_release(b), 0);

    STAGE("child: peek with fd");
    int n0 = fd_count();
    memset(&m, 0, sizeof m);
    CHECK_EQ(ferry_peek(b, 4, &m, T5S), 0);
    CHECK_EQ(m.type, 4);
    CHECK_EQ(m.len, 3);
    CHECK(memcmp(m.data, "fd!", 3) == 0);
    CHECK_EQ(m.nfds, 1);
    CHECK(fd_is_cloexec(m.fds[0]));
    char buf[16] = {0};
    CHECK_EQ(pread(m.fds[0], buf, sizeof buf, 0), 6);
    CHECK(memcmp(buf, "in-fd!", 6) == 0);
    CHECK_EQ(ferry_release(b), 0);
    CHECK(fd_is_open(m.fds[0])); /* the fd is ours, release does not close it */
    CHECK_EQ(fd_count(), n0 + 1);
    close(m.fds[0]);
    CHECK_EQ(fd_count(), n0);
    CHECK_EQ(ferry_peek(b, 0, &m, FERRY_NOW), -EAGAIN);

    STAGE("child: loan back");
    loan_commit(b, 256, 256, 3, 5000);
    ctl_put(c, 'a');
    ctl_expect(c, 'q');
}

/* ---------------------------------------------------------------- parent */

static void parent_main(ferry_chan *a, ctl *c)
{
    max_msg = ferry_chan_max_msg(a);
    void *p = NULL, *p2 = NULL;

    STAGE("parent: misuse without a loan");
    CHECK_EQ(ferry_commit(a, 0, 0), -EINVAL);
    CHECK_EQ(ferry_release(a), -EINVAL);
    CHECK_EQ(ferry_loan(a, max_msg + 1, &p, T5S), -EMSGSIZE);
    CHECK_EQ(ferry_commit(a, 0, 0), -EINVAL); /* no loan left outstanding */
    ctl_expect(c, 'r');

    STAGE("parent: first loan");
    CHECK_EQ(ferry_loan(a, 1000, &p, T5S), 0);
    CHECK(p != NULL);
    check_aligned32(p);
    CHECK_EQ(ferry_loan(a, 10, &p2, FERRY_NOW), -EBUSY);
    CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), -EBUSY);
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = "x";
    m.len = 1;
    CHECK_EQ(ferry_sendmsg(a, &m, FERRY_NOW), -EBUSY);
    fill_seq(p, 1000, 1);
    CHECK_EQ(ferry_commit(a, 7, 1001), -EINVAL);
    CHECK_EQ(ferry_commit(a, -1, 1000), -EINVAL);
    CHECK_EQ(ferry_commit(a, 7, 1000), 0);
    CHECK_EQ(ferry_commit(a, 7, 1000), -EINVAL);
    ctl_put(c, '1'); /* the peer consumes from here on, so the ring never stays full */

    STAGE("parent: short, empty, max");
    loan_commit(a, 4096, 10, 8, 2);
    loan_commit(a, 0, 0, 9, 0);
    loan_commit(a, max_msg, max_msg, 10, 3);

    STAGE("parent: 100 loans");
    for (int i = 0; i < LOANS; i++)
        loan_commit(a, loan_len(i) + 64, loan_len(i), 0, 100 + (uint64_t)i);
    CHECK_EQ(ferry_send(a, "plain", 5, T5S), 0);
    int mfd = memfd_create("zc", MFD_CLOEXEC);
    CHECK(mfd >= 0);
    CHECK_EQ(write(mfd, "in-fd!", 6), 6);
    send_fds(a, 4, "fd!", &mfd, 1);
    close(mfd);

    STAGE("parent: peek the loan back");
    ctl_expect(c, 'a');
    peek_check(a, 0, 3, 256, 5000);
    ctl_put(c, 'q');
}

/* ---------------------------------------------------------------- in-process cases */

static void rendezvous_loans(void)
{
    STAGE("capacity 0 loans");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 0;
    ferry_chan *s = NULL, *r = NULL;
    CHECK_EQ(ferry_pair(&o, &s, &r), 0);
    void *p = NULL;
    char buf[64];
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_loan(s, 10, &p, 100 * MS), 0);
    memcpy(p, "withdrawn1", 10);
    CHECK_EQ(ferry_commit(s, 0, 10), -ETIMEDOUT);
    int64_t el = now_ns() - t0;
    CHECK(el >= 100 * MS);
    CHECK(el < 1 * SEC);
    CHECK_EQ(ferry_recv(r, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_loan(s, 10, &p, FERRY_NOW), 0);
    memcpy(p, "withdrawn2", 10);
    CHECK_EQ(ferry_commit(s, 0, 10), -EAGAIN);
    CHECK_EQ(ferry_recv(r, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_commit(s, 0, 10), -EINVAL); /* the loan is over */
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(s, &st), 0);
    CHECK_EQ(st.drops, 2);
    CHECK_EQ(ferry_chan_stats(r, &st), 0);
    CHECK_EQ(st.recv_msgs, 0);
    ferry_chan_close(s);
    ferry_chan_close(r);

    STAGE("capacity 1 full loans");
    o.capacity = 1;
    CHECK_EQ(ferry_pair(&o, &s, &r), 0);
    CHECK_EQ(ferry_send(s, "x", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_loan(s, 10, &p, FERRY_NOW), -EAGAIN);
    t0 = now_ns();
    CHECK_EQ(ferry_loan(s, 10, &p, 50 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    CHECK_EQ(ferry_commit(s, 0, 0), -EINVAL);
    CHECK_EQ(ferry_recv(r, buf, sizeof buf, FERRY_NOW), 1);
    CHECK_EQ(ferry_loan(s, 10, &p, FERRY_NOW), 0);
    memcpy(p, "0123456789", 10);
    CHECK_EQ(ferry_commit(s, 2, 10), 0);
    ferry_msg m;
    memset(&m, 0, sizeof m);
    CHECK_EQ(ferry_peek(r, 2, &m, FERRY_NOW), 0);
    CHECK_EQ(m.len, 10);
    CHECK(memcmp(m.data, "0123456789", 10) == 0);
    CHECK_EQ(ferry_release(r), 0);
    ferry_chan_close(s);
    ferry_chan_close(r);
}

int main(void)
{
    watchdog_arm();
    int base = fd_count();
    run_pair(NULL, child_main, parent_main);
    rendezvous_loans();
    CHECK_EQ(fd_count(), base);
    if (misaligned)
        fprintf(stderr, "%d loaned pointers not 32-byte aligned (the first at offset %u mod 64)\n",
                misaligned, first_misalign);
    CHECK_EQ(misaligned, 0);
    printf("test_chan_zerocopy: ok\n");
    return 0;
}
