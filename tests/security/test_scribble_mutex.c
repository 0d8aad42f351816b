// SPDX-License-Identifier: MIT
/*
 * test_scribble_mutex — issue 11, finding 2: a sharer that scribbles on a fair mutex
 * (FERRY_MUTEX_FAIR, the mode that may be shared with processes you do not trust).
 *
 * Two throwaway uids share a fair ferry_mutex (inherited across fork). The attacker maps
 * its memfd (ferry_mutex_fd) and for 1,000 rounds writes what a hostile sharer would,
 * over every word after the header: the lock word and state (0, its own live thread id,
 * made-up dead holders, "inconsistent", "not recoverable"), the ticket counters, the
 * sleeper and gone counts and the queue slots — mostly the first 128 bytes (the locks and
 * counters), at the edges and at random. Meanwhile the victim only locks (50 ms
 * deadline), touches its critical section and unlocks.
 *
 * Asserted: the victim never crashes (exits 0; under ASan too); every lock returns within
 * its deadline plus a generous bound (3 s: one death-check slice, a loaded sanitized VM);
 * lock says only 0, -EOWNERDEAD (then the victim calls ferry_mutex_consistent, which may
 * say -EINVAL if the state word was rewritten meanwhile), -ENOTRECOVERABLE, -ETIMEDOUT,
 * or -EDEADLK (the attacker wrote the victim's own id); unlock only 0 or -EPERM (the
 * attacker rewrote the word under it). Before the fix (a glibc robust mutex behind the
 * tickets, whose robust-list links glibc writes through on unlock) the victim crashed.
 * Runs as root (prints SKIP otherwise).
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "core/plock.h"
#include "sync/obj.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ROUNDS   1000
#define CALL_NS  (50 * MS)
#define SLACK_NS (3 * SEC)
#define PAGE     4096

static const ident ATTACKER = {60721, 60721, 0, {0}};
static const ident VICTIM = {60722, 60722, 0, {0}};

typedef struct shared {
    _Atomic int attacker_done;
    _Atomic uint64_t calls, locked, ownerdead, enotrec, etimedout, edeadlk, eperm, other, late;
    _Atomic int64_t worst_over;
    _Atomic int other_rc;
} shared;

size_t ferry__mutex_plock_offset(void); /* src/sync/mutex.c's test seam */

static ferry_mutex *mx;
static shared *sh;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t nasty(uint64_t self)
{
    switch (rnd() % 10) {
    case 0:
        return 0;
    case 1:
        return UINT32_MAX;
    case 2:
        return self; /* a live holder (the attacker) */
    case 3:
        return (rnd() << 24) | 1; /* a made-up holder */
    case 4:
        return rnd() % 4; /* small: states, counts */
    case 5:
        return rnd() % 200; /* tickets near the real ones */
    case 6:
        return (uint64_t)INT32_MAX;
    case 7:
        return UINT64_MAX;
    default:
        return rnd();
    }
}

static void attacker(void *arg)
{
    (void)arg;
    uint8_t *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_mutex_fd(mx), 0);
    CHECK(p != MAP_FAILED);
    uint64_t self = ferry__plock_self();
    const size_t lo = sizeof(ferry__obj_hdr) + 4; /* the flags are read once, at adopt */
    for (int round = 0; round < ROUNDS; round++) {
        int writes = 1 + (int)(rnd() % 6);
        for (int k = 0; k < writes; k++) {
            size_t off = rnd() % 3 ? lo + rnd() % 128 : lo + rnd() % (PAGE - lo - 8);
            uint64_t v = nasty(self);
            if (rnd() & 1)
                __atomic_store_n((uint64_t *)(p + (off & ~(size_t)7)), v, __ATOMIC_RELAXED);
            else
                __atomic_store_n((uint32_t *)(p + (off & ~(size_t)3)), (uint32_t)v,
                                 __ATOMIC_RELAXED);
        }
        /* Sometimes hammer two neighbouring words for a while, so that a write lands
         * while the victim holds the lock (what it takes to turn glibc's robust-list
         * links, which the old fair mode had in here, into a write where we chose). */
        if (rnd() % 4 == 0) {
            size_t off = (lo + 7 + rnd() % 120) & ~(size_t)7;
            uint64_t v1 = nasty(self), v2 = nasty(self);
            for (int k = 0; k < 20000; k++) {
                __atomic_store_n((uint64_t *)(p + off), v1, __ATOMIC_RELAXED);
                __atomic_store_n((uint64_t *)(p + off + 8), v2, __ATOMIC_RELAXED);
            }
        }
        /* Mostly let "not recoverable" go again (a word like any other), so that the victim
         * spends the run in the lock's code, not failing at its door. */
        if (rnd() % 16)
            __atomic_store_n((uint32_t *)(p + ferry__mutex_plock_offset() + 8), 0,
                             __ATOMIC_RELAXED);
        if (rnd() % 4) {
            struct timespec ts = {0, (long)(rnd() % 3000) * 1000};
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&sh->attacker_done, 1);
    munmap(p, PAGE);
}

static void count(int rc, int64_t t0)
{
    int64_t over = now_ns() - t0 - CALL_NS;
    if (over > SLACK_NS) atomic_fetch_add(&sh->late, 1);
    int64_t w = atomic_load(&sh->worst_over);
    while (over > w && !atomic_compare_exchange_weak(&sh->worst_over, &w, over)) {
    }
    atomic_fetch_add(&sh->calls, 1);
    switch (rc) {
    case 0:
        atomic_fetch_add(&sh->locked, 1);
        break;
    case -EOWNERDEAD:
        atomic_fetch_add(&sh->ownerdead, 1);
        break;
    case -ENOTRECOVERABLE:
        atomic_fetch_add(&sh->enotrec, 1);
        break;
    case -ETIMEDOUT:
        atomic_fetch_add(&sh->etimedout, 1);
        break;
    case -EDEADLK:
        atomic_fetch_add(&sh->edeadlk, 1);
        break;
    default:
        atomic_fetch_add(&sh->other, 1);
        atomic_store(&sh->other_rc, rc);
    }
}

static void victim(void *arg)
{
    (void)arg;
    volatile uint64_t inside = 0;
    for (uint64_t i = 0; !atomic_load(&sh->attacker_done) || i < 200; i++) {
        int64_t t0 = now_ns();
        int rc = ferry_mutex_lock(mx, CALL_NS);
        count(rc, t0);
        if (rc == -EOWNERDEAD) {
            int c = ferry_mutex_consistent(mx);
            if (c != 0 && c != -EINVAL) {
                atomic_fetch_add(&sh->other, 1);
                atomic_store(&sh->other_rc, c);
            }
        }
        if (rc == 0 || rc == -EOWNERDEAD) {
            inside++;
            int u = ferry_mutex_unlock(mx);
            if (u == -EPERM)
                atomic_fetch_add(&sh->eperm, 1);
            else if (u != 0) {
                atomic_fetch_add(&sh->other, 1);
                atomic_store(&sh->other_rc, u);
            }
        }
    }
}

int main(void)
{
    require_root();
    test_deadline(100);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK_EQ(ferry_mutex_create(FERRY_MUTEX_FAIR, &mx), 0);
    pid_t v = spawn_as(&VICTIM, victim, NULL);
    pid_t a = spawn_as(&ATTACKER, attacker, NULL);
    wait_ok(a);
    int st;
    CHECK_EQ(waitpid(v, &st, 0), v);
    printf("victim: %llu locks: 0 %llu, -EOWNERDEAD %llu, -ENOTRECOVERABLE %llu, -ETIMEDOUT "
           "%llu, -EDEADLK %llu; unlock -EPERM %llu; other %llu (%d); late %llu, worst %.1f "
           "ms past a deadline\n",
           (unsigned long long)sh->calls, (unsigned long long)sh->locked,
           (unsigned long long)sh->ownerdead, (unsigned long long)sh->enotrec,
           (unsigned long long)sh->etimedout, (unsigned long long)sh->edeadlk,
           (unsigned long long)sh->eperm, (unsigned long long)sh->other, sh->other_rc,
           (unsigned long long)sh->late, sh->worst_over / 1e6);
    if (WIFSIGNALED(st)) printf("victim killed by signal %d\n", WTERMSIG(st));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* never a crash */
    CHECK_EQ(sh->other, 0);
    CHECK_EQ(sh->late, 0);
    CHECK(sh->calls >= 200);
    ferry_mutex_close(mx);
    munmap(sh, sizeof *sh);
    printf("test_scribble_mutex: ok\n");
    return 0;
}
