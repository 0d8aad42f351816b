// SPDX-License-Identifier: MIT
/*
 * test_scribble_mailbox — issue 11, finding 2: a sharer that scribbles on a mailbox.
 *
 * Two throwaway uids share a mailbox (inherited across fork, as any sharer would hold
 * it). The attacker takes the memfd out of the carrier (as ferry_mailbox_adopt does),
 * maps it, and for 1,000 rounds writes what a hostile sharer would: the lock word and
 * state (0, garbage, its own live thread id, a dead id, a forged "inconsistent" or "not
 * recoverable"), the indices, counts and links the lock guards (head, tail, free stack,
 * high-water mark, the waiter FIFO's assignments), and the slot table's states, links,
 * seqs, lengths and senders — with values chosen at the edges (0, NIL, nslots, nslots±1,
 * huge) and at random. Meanwhile the victim only sends and receives with 50 ms deadlines.
 *
 * Asserted: the victim never crashes (it exits 0, under ASan too: the test is built with
 * the sanitizer of its build); every call returns within its deadline plus a generous
 * bound (the 1 s grace mailboxes give honest lock holders, plus 3 s for a loaded VM);
 * every result is a valid message (a length <= cap) or -EBADMSG, -ENOTRECOVERABLE,
 * -ETIMEDOUT (nothing else). Before the fix (a glibc robust mutex in the object, whose
 * robust-list links glibc writes through on unlock) the victim hung in the lock (no
 * deadline) until the watchdog failed the test.
 * Runs as root (prints SKIP otherwise).
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "core/plock.h"
#include "mailbox/internal.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ROUNDS   1000
#define CALL_NS  (50 * MS)
#define SLACK_NS (4 * SEC) /* grace (1 s) + a loaded, sanitized VM */
#define MAX_MSG  64

static const ident ATTACKER = {60711, 60711, 0, {0}};
static const ident VICTIM = {60712, 60712, 0, {0}};

typedef struct shared {
    _Atomic int attacker_done;
    _Atomic uint64_t calls, msgs, sent, received, ebadmsg, enotrec, etimedout, other, late;
    _Atomic int64_t worst_over; /* ns past a deadline, the worst seen */
    _Atomic int other_rc;
} shared;

static ferry_mailbox *mb;
static shared *sh;
static ferry__mailbox_layout lay;

/* ------------------------------------------------------------------ the attacker */

/* The memfd out of the carrier (what adopt does), mapped read-write. */
static uint8_t *map_object(size_t *size)
{
    int fd = ferry_mailbox_fd(mb);
    char buf[8];
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    CHECK(recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC) > 0);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    CHECK(c && c->cmsg_type == SCM_RIGHTS);
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof fds);
    struct stat st;
    CHECK(fstat(fds[0], &st) == 0);
    *size = (size_t)st.st_size;
    uint8_t *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    CHECK(p != MAP_FAILED);
    close(fds[0]);
    close(fds[1]);
    return p;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A value for an index, count or length: an edge or random. */
static uint64_t nasty(uint32_t nslots)
{
    switch (rnd() % 12) {
    case 0:
        return 0;
    case 1:
        return UINT32_MAX; /* NIL */
    case 2:
        return UINT32_MAX - 1;
    case 3:
        return nslots;
    case 4:
        return nslots - 1;
    case 5:
        return nslots + 1;
    case 6:
        return rnd() % nslots;
    case 7:
        return rnd() % nslots;
    case 8:
        return UINT64_MAX;
    case 9:
        return (uint64_t)1 << 40;
    case 10:
        return rnd() & 0xffffffffu;
    default:
        return rnd();
    }
}

static void put32(uint8_t *p, size_t off, uint64_t v)
{
    __atomic_store_n((uint32_t *)(p + (off & ~(size_t)3)), (uint32_t)v, __ATOMIC_RELAXED);
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
    __atomic_store_n((uint64_t *)(p + (off & ~(size_t)7)), v, __ATOMIC_RELAXED);
}

static void attacker(void *arg)
{
    (void)arg;
    size_t size;
    uint8_t *p = map_object(&size);
    CHECK(size >= lay.table_off + (size_t)lay.nslots * lay.entry_len);
    uint64_t self = ferry__plock_self();
    for (int round = 0; round < ROUNDS; round++) {
        int writes = 1 + (int)(rnd() % 8);
        for (int k = 0; k < writes; k++) {
            switch (rnd() % 6) {
            case 0: { /* the lock */
                size_t off = lay.lock_off + (rnd() % lay.lock_len);
                uint64_t v;
                switch (rnd() % 6) {
                case 0:
                    v = 0;
                    break;
                case 1:
                    v = self;
                    break; /* held by a live thread */
                case 2:
                    v = (rnd() << 24) | 1;
                    break; /* a made-up (dead) holder */
                case 3:
                    v = rnd() % 4;
                    break; /* state: inconsistent, broken */
                default:
                    v = rnd();
                    break;
                }
                if (rnd() & 1)
                    put64(p, off, v);
                else
                    put32(p, off, v);
                break;
            }
            case 1:
            case 2: /* the guarded fields and the waiter FIFO */
                put32(p, lay.guarded_off + rnd() % lay.guarded_len, nasty(lay.nslots));
                break;
            case 3:
            case 4: { /* the slot table */
                size_t e = lay.table_off + (rnd() % lay.nslots) * lay.entry_len;
                size_t f = (rnd() % (lay.entry_len / 4)) * 4;
                if (rnd() & 1)
                    put64(p, e + f, nasty(lay.nslots));
                else
                    put32(p, e + f, nasty(lay.nslots));
                break;
            }
            default: /* anywhere in the header page or the table */
                put32(p, 64 + rnd() % (lay.table_off + (size_t)lay.nslots * lay.entry_len - 64),
                      rnd());
                break;
            }
        }
        /* Mostly let "not recoverable" go again (it is a word like any other), so that
         * the victim spends the run in the mailbox's code, not failing at its door. */
        if (rnd() % 16) put32(p, lay.lock_off + 8, 0);
        /* Mostly short pauses; sometimes a burst with none. */
        if (rnd() % 4) {
            struct timespec ts = {0, (long)(rnd() % 5000) * 1000};
            nanosleep(&ts, NULL);
        }
    }
    /* Leave the lock to a dead or made-up holder, or free: the victim goes on. */
    put64(p, lay.lock_off, 0);
    atomic_store(&sh->attacker_done, 1);
    munmap(p, size);
}

/* ------------------------------------------------------------------ the victim */

static void account(int64_t rc, int64_t t0, size_t cap)
{
    int64_t over = now_ns() - t0 - CALL_NS;
    if (over > SLACK_NS) atomic_fetch_add(&sh->late, 1);
    int64_t w = atomic_load(&sh->worst_over);
    while (over > w && !atomic_compare_exchange_weak(&sh->worst_over, &w, over)) {
    }
    atomic_fetch_add(&sh->calls, 1);
    if (rc >= 0 && (size_t)rc <= cap)
        atomic_fetch_add(&sh->msgs, 1);
    else if (rc == -EBADMSG)
        atomic_fetch_add(&sh->ebadmsg, 1);
    else if (rc == -ENOTRECOVERABLE)
        atomic_fetch_add(&sh->enotrec, 1);
    else if (rc == -ETIMEDOUT)
        atomic_fetch_add(&sh->etimedout, 1);
    else {
        atomic_fetch_add(&sh->other, 1);
        atomic_store(&sh->other_rc, (int)rc);
    }
}

static void victim(void *arg)
{
    (void)arg;
    uint8_t buf[MAX_MSG];
    memset(buf, 0x5a, sizeof buf);
    for (uint64_t i = 0; !atomic_load(&sh->attacker_done) || i < 200; i++) {
        int64_t t0 = now_ns();
        int rc = ferry_mailbox_send(mb, (int64_t)(i % 3), buf, 1 + i % MAX_MSG, CALL_NS);
        account(rc, t0, 0);
        if (rc == 0) atomic_fetch_add(&sh->sent, 1);
        int64_t type;
        t0 = now_ns();
        ssize_t n = ferry_mailbox_recv(mb, (int64_t)(i % 4) - 1, &type, buf, sizeof buf, CALL_NS);
        account(n, t0, sizeof buf);
        if (n >= 0) atomic_fetch_add(&sh->received, 1);
    }
}

int main(void)
{
    require_root();
    test_deadline(100);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = 16;
    o.max_msg = MAX_MSG;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    ferry__mailbox_get_layout(mb, &lay);
    pid_t v = spawn_as(&VICTIM, victim, NULL);
    pid_t a = spawn_as(&ATTACKER, attacker, NULL);
    wait_ok(a);
    int st;
    CHECK_EQ(waitpid(v, &st, 0), v);
    printf("victim: %llu sent, %llu received; ", (unsigned long long)sh->sent,
           (unsigned long long)sh->received);
    printf("%llu calls, %llu valid, -EBADMSG %llu, -ENOTRECOVERABLE %llu, "
           "-ETIMEDOUT %llu, other %llu (%d), late %llu, worst %.1f ms past a deadline\n",
           (unsigned long long)sh->calls, (unsigned long long)sh->msgs,
           (unsigned long long)sh->ebadmsg, (unsigned long long)sh->enotrec,
           (unsigned long long)sh->etimedout, (unsigned long long)sh->other, sh->other_rc,
           (unsigned long long)sh->late, sh->worst_over / 1e6);
    if (WIFSIGNALED(st)) printf("victim killed by signal %d\n", WTERMSIG(st));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* never a crash */
    CHECK_EQ(sh->other, 0);                       /* only data or the documented errors */
    CHECK_EQ(sh->late, 0);                        /* never far past a deadline */
    CHECK(sh->calls >= 400);
    ferry_mailbox_close(mb);
    munmap(sh, sizeof *sh);
    printf("test_scribble_mailbox: ok\n");
    return 0;
}
