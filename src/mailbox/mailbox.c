// SPDX-License-Identifier: MIT
/*
 * mailbox.c — ferry_mailbox: a many-to-many queue of typed messages in a sealed memfd
 * (shm/obj.h, kind FERRY_OBJ_MAILBOX); ferry.h "mailboxes" is the contract.
 *
 * The object:
 *   page 0   the header: the common obj.h header; the shape (capacity, flags, nslots,
 *            max_msg, dsize), written at create and read once at adopt onto the handle,
 *            checked against the mapping and never read from shared memory again; the
 *            lock (core/plock.h: a futex word owned by {tid, start time}); the fields it
 *            guards (next_seq,
 *            the queue's head and tail, the free stack, the exclusive hold, counters,
 *            waiter counts, the FIFO of waiting receivers rxq); four futex words.
 *   table    nslots entries of 64 bytes: {state, owner, seq, type, len, prev, next}.
 *   data     nslots areas of dsize bytes (max_msg rounded up to 64), one per entry.
 * The descriptor. A memfd cannot be polled, so the object's descriptor is a carrier, as
 * for an event queue (src/sync/event.c has the reasoning): socketpair(SOCK_SEQPACKET) ->
 * (A, B); one message "FMB1" with SCM_RIGHTS [memfd, A] sent on A waits in B's queue for
 * good. B is ferry_mailbox_fd (what ferryd keeps, what adopt takes); an adopter reads the
 * message with MSG_PEEK (it stays), maps the memfd and closes it, and keeps A: the
 * doorbell's receiving end (the poll fd), while a 1-byte send on B rings it. Once someone
 * asked for a poll fd (polled), every unlock makes the doorbell match the queue (ring
 * when nready > 0 and bell is 0, drain when nready == 0 and bell is 1) — under the lock,
 * so the two change together.
 * The table is apart from the data so that scanning it touches only its own pages: a
 * memfd page is allocated only once touched, so an FERRY_UNBOUNDED mailbox costs memory
 * for the messages it held at once, not for its cap.
 *
 * A slot's state, changed only under the lock:
 *   FREE     unused.
 *   WRITING  claimed by a sender (owner = its process id) that is copying its message
 *            in, outside the lock (or holds it as a loan). Invisible to receivers.
 *   READY    queued: seq (the order of publication, from next_seq), type, len are set.
 *   TAKEN    handed to a receiver (owner = its process id) that copies it out outside
 *            the lock (or holds it as a peek), then frees it.
 *   HANDED   queued for one waiting receiver (owner = its process id; its rxq entry names
 *            the slot): the fair hand-out (see take). Not in the queue; becomes TAKEN
 *            when that receiver wakes, or READY again if it leaves or dies first.
 * The state word is the truth. Derived from it, under the lock: the READY queue (a
 * doubly linked list in seq order: publication appends, a return inserts at its seq),
 * the stack of FREE slots below hiwat (slots above it were never used), and nready /
 * nbusy. They are rebuilt from the states (repair) when a lock holder died, and when
 * a link or count is found not to fit (only a sharer that scribbled can cause that):
 * every link is bounds-checked before it is followed and every walk is bounded. Every step changes
 * state as its last write, so a process killed at any instruction inside the lock leaves slots that
 * are each in one of these states: after -EOWNERDEAD (plock.h: the holder was found dead
 * within a slice of a waiter's wait) the next locker rebuilds the derived
 * structures, counts the recovery and marks the mutex consistent. A counter is updated next to, not
 * atomically with, its state change, so each such death may leave one counter one off (sent and
 * received one short, lost or returned one over); the recoveries are counted so that a reader knows
 * how far to trust them.
 *
 * Hostile sharers. Anyone holding the mailbox can write any word of it at any time, the
 * lock's too (then two processes may be inside at once). So every index, link, count,
 * state and length is read once (RD) into a local that is checked and then used; every
 * index is checked against the private nslots where it is used; every walk is bounded by
 * nslots steps; the rebuild sorts private copies rather than following links; a length
 * past max_msg drops its message (torn, -EBADMSG). No value makes a caller touch memory
 * outside the mapping or loop without a bound, and every wait, the lock's included, ends
 * by the call's deadline (plus MB_GRACE_NS for the lock: see mb_lock). What such a sharer
 * can do is what any writer of the data can: lose, forge, reorder or delay messages.
 *
 * Per-sender order. Slots record their sender (the process, proc.h). A message is taken
 * (pick) or handed (handoff) only if no older message of its sender is HANDED to a waiter
 * that has not taken it yet (passes_handed), and hand-out walks the queue in seq order
 * (handoff_queued). So when a waiter dies with a message handed to it, its sender's
 * later messages wait in the queue until reclaim puts that one back: it is received
 * first. (It used to be otherwise: the later ones flowed to other receivers meanwhile.)
 *
 * Ordering. Every shared field but the futex words is read and written under the lock,
 * whose acquire/release orders them. The data of a slot is written outside the lock by
 * its one WRITING owner and published by the locked store of READY (the unlock releases
 * the data with it; a receiver's lock acquires it), and read outside the lock by its one
 * TAKEN owner, whose lock acquired it; nobody else touches a WRITING or TAKEN slot's data
 * (but a reclaimer, which frees slots whose owner is dead).
 *
 * Waiting. A waiter, under the lock, finds nothing to do, reads the futex word
 * (relaxed: the lock orders it), counts itself in the waiter count, unlocks and
 * FUTEX_WAITs on that value for at most a slice (20 ms). A waker changes the state and,
 * if the count is not 0, bumps the word, both under the lock, and FUTEX_WAKEs everyone
 * after unlocking. Since the bump comes after the waiter's read (both locked), either
 * the waiter's FUTEX_WAIT sees the new value and returns at once, or it is asleep and
 * woken: no wake-up is lost. A waiter killed while counted leaves the count high: wakers
 * then make a needless system call each. Words: msg_ftx (receivers: a message became
 * READY), room_ftx (senders: a slot became FREE), take_ftx (rendezvous senders: a
 * message was taken), hold_ftx (attachers: the hold was given up).
 *
 * Dead processes. A caller that finds nothing to do (no message to take, no free slot,
 * the hold taken) reclaims, at most once a slice (and only if some slot is busy or the
 * hold taken): a dead waiter's rxq entry is removed and what was handed to it queued
 * again (never delivered: not lost); every WRITING or TAKEN slot whose owner is dead
 * (proc.h) is freed (WRITING: counted torn) or, TAKEN, freed and counted lost — or, with
 * FERRY_MAILBOX_AT_LEAST_ONCE, made READY again with its old seq (back at its place in
 * the queue) and counted returned. A dead holder of the exclusive hold loses it to the
 * next attacher.
 *
 * Selection, under the lock, by a walk of the queue from its head: filter 0 the head;
 * > 0 the first of that type; < 0 the first of the lowest type <= -filter. A message
 * queued while receivers wait is handed instead (see take). Sends pop the free stack
 * (the most recently freed slot first: its pages are warm), else take slot hiwat.
 */
#define _GNU_SOURCE /* syscall() for futexes, MSG_CMSG_CLOEXEC */
#include "mailbox/internal.h"
#include "core/abi.h"
#include "core/filter.h"
#include "core/futex.h"
#include "core/plock.h"
#include "core/proc.h"
#include "broker/client.h"
#include "shm/obj.h"

#include "core/time.h"
#include "ferry/ferry.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { S_FREE = 0, S_WRITING = 1, S_READY = 2, S_TAKEN = 3, S_HANDED = 4 };

#define MB_PAGE        4096u
#define MB_TABLE_OFF   MB_PAGE
#define MB_ENTRY       64u
#define MB_CAP_DEFAULT 64u
#define MB_MSG_DEFAULT 4096u
#define MB_MSG_MAX     ((size_t)16 << 20)
#define MB_RV_SLOTS    64u /* capacity 0: senders at once */
#define MB_RXQ         64u /* waiting receivers served in FIFO order */
#define MB_SLICE_NS    ((int64_t)20 * 1000 * 1000)
#define MB_GRACE_NS    ((int64_t)1000 * 1000 * 1000) /* see mb_lock */
#define NIL            UINT32_MAX
#define MB_FLAGS       (FERRY_MAILBOX_EXCLUSIVE | FERRY_MAILBOX_AT_LEAST_ONCE)

typedef struct mbslot {
    uint32_t state; /* S_* */
    uint32_t pad0;
    uint64_t owner; /* WRITING, TAKEN: the owning process (proc.h) */
    uint64_t seq;   /* READY, TAKEN: order of publication */
    int64_t type;
    uint64_t len;
    uint32_t prev, next; /* READY: the queue, in seq order; FREE: next on the free stack */
    uint64_t sender;     /* READY, HANDED, TAKEN: the sending process (proc.h) */
    char pad1[MB_ENTRY - 56];
} mbslot;
_Static_assert(sizeof(mbslot) == MB_ENTRY, "table entry size");

/* A waiting receiver (under the lock). */
typedef struct mbwaiter {
    uint64_t ticket; /* 0: a free entry; else its place in the FIFO of waiters */
    uint64_t owner, token;
    int64_t filter;
    uint32_t assigned; /* NIL, or the slot HANDED to it */
    uint32_t pad;
} mbwaiter;

typedef struct mbshm {
    ferry__obj_hdr hdr;
    /* the shape: written at create, read once at adopt */
    uint32_t capacity, flags, nslots, pad0;
    uint64_t max_msg, dsize;
    /* guarded by lock */
    _Alignas(64) ferry__plock lock; /* plock.h: no pointers, safe with hostile sharers */
    uint64_t next_seq;
    uint32_t nready, nbusy; /* READY slots; WRITING, TAKEN and HANDED slots */
    uint32_t head, tail;    /* the READY queue, oldest first (NIL: empty) */
    uint32_t free_top;      /* the stack of FREE slots below hiwat (NIL: empty) */
    uint32_t hiwat;         /* slots at and above it have never been used (FREE) */
    uint32_t rx_wait, tx_wait, rv_wait, hold_wait;
    uint32_t polled;              /* someone asked for a poll fd: keep the doorbell exact */
    uint32_t nhanded;             /* HANDED slots (0: no hand-out to look at in pick) */
    uint32_t bell;                /* 1: a doorbell byte is (believed) in the ring's queue */
    uint64_t hold_id, hold_token; /* exclusive: the holder (0: none) */
    uint64_t sent, received, lost, returned, withdrawn, torn, recovered;
    /* futex words: bumped under the lock, read by FUTEX_WAIT outside it */
    _Alignas(64) _Atomic uint32_t msg_ftx, room_ftx, take_ftx, hold_ftx;
    /* guarded by lock: the waiting receivers */
    _Alignas(64) uint64_t next_ticket;
    mbwaiter rxq[MB_RXQ];
} mbshm;
_Static_assert(sizeof(mbshm) <= MB_PAGE, "the header fits its page");

struct ferry_mailbox {
    ferry__seg seg;
    int fd;   /* B: the carrier, the object's descriptor, the doorbell's sending end */
    int ring; /* A: the doorbell's receiving end, the poll fd */
    mbshm *h;
    mbslot *tab;
    char *data;
    /* private copies of the shape */
    uint32_t capacity, flags, nslots;
    size_t max_msg, dsize;
    uint64_t token;     /* tells this handle's hold from another's in the same process */
    pthread_mutex_t lk; /* guards loan and peek */
    int64_t loan, peek; /* slot indices, or -1 */
};

static _Atomic uint64_t next_token = 1;

/* ------------------------------------------------------------------ small helpers */

static size_t round_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

/* The object's size for nslots of dsize bytes, or 0 if larger than obj.h allows. */
static size_t obj_size(uint32_t nslots, size_t dsize)
{
    size_t tab = round_up((size_t)nslots * MB_ENTRY, MB_PAGE);
    if (dsize > FERRY__OBJ_MAX / (nslots ? nslots : 1)) return 0;
    size_t total = MB_TABLE_OFF + tab + (size_t)nslots * dsize;
    return total > FERRY__OBJ_MAX ? 0 : total;
}

static char *slot_data(ferry_mailbox *mb, uint32_t i)
{
    return mb->data + (size_t)i * mb->dsize;
}

/* Wakes owed after unlocking (bit per futex word). */
enum { W_MSG = 1, W_ROOM = 2, W_TAKE = 4, W_HOLD = 8 };

/* Under the lock: bump the word if someone waits on it, and note the wake-up owed. */
static void owe(uint32_t waiters, _Atomic uint32_t *ftx, int bit, int *wakes)
{
    if (!waiters) return;
    /* relaxed: the lock orders the bump after the state change and after any waiter's
     * locked read of the word. */
    atomic_fetch_add_explicit(ftx, 1, memory_order_relaxed);
    *wakes |= bit;
}

static void pay(ferry_mailbox *mb, int wakes)
{
    if (wakes & W_MSG) ferry__futex_wake(&mb->h->msg_ftx, INT32_MAX);
    if (wakes & W_ROOM) ferry__futex_wake(&mb->h->room_ftx, INT32_MAX);
    if (wakes & W_TAKE) ferry__futex_wake(&mb->h->take_ftx, INT32_MAX);
    if (wakes & W_HOLD) ferry__futex_wake(&mb->h->hold_ftx, INT32_MAX);
}

/* Drain the doorbell (at most a bounded number of bytes: more only from a hostile
 * sharer). */
static void drain(ferry_mailbox *mb)
{
    char b[64];
    for (int i = 0; i < 64; i++)
        if (recv(mb->ring, b, sizeof b, MSG_DONTWAIT) <= 0) break;
}

/* A word of the object that a sharer may change at any time (an index, a length, a
 * state): read it once, relaxed, into a local that is then checked and used. Never read
 * such a field twice between its check and its use. */
#define RD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* A READY slot and its seq, for the rebuild's sort (private memory). */
typedef struct ready_ent {
    uint64_t seq;
    uint32_t i;
} ready_ent;

static int ready_cmp(const void *a, const void *b)
{
    const ready_ent *x = a, *y = b;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Rebuild every derived structure from the slots' states (under the lock): after a lock
 * holder died (it may have been half way through relinking), or when a link is found
 * broken (a sharer scribbled). A state that is none of S_* is made FREE (counted torn).
 * Every word is read once (RD) and every index checked before use; no walk follows a
 * link: the READY queue is rebuilt by sorting the READY slots by seq (private copies, in
 * a private array: O(n log n) whatever the seqs say), the free stack by one pass. */
static void repair(ferry_mailbox *mb)
{
    mbshm *h = mb->h;
    uint32_t hi = RD(h->hiwat);
    if (hi > mb->nslots) hi = mb->nslots;
    h->hiwat = hi;
    h->head = h->tail = h->free_top = NIL;
    h->nready = h->nbusy = h->nhanded = 0;
    for (uint32_t k = 0; k < MB_RXQ; k++) { /* an assignment must name a HANDED slot */
        mbwaiter *e = &h->rxq[k];
        uint32_t a = RD(e->assigned);
        if (RD(e->ticket) && a != NIL && (a >= hi || RD(mb->tab[a].state) != S_HANDED))
            e->assigned = NIL;
    }
    if (h->polled) { /* a holder may have died between ringing and noting it */
        drain(mb);
        h->bell = 0; /* mb_unlock rings again if a message is queued */
    }
    /* malloc under the lock, sized by our private nslots only; if it fails, the queue is
     * rebuilt in slot order (sound, out of order): only after a crash and under OOM. */
    ready_ent *ord = malloc((size_t)(hi ? hi : 1) * sizeof *ord);
    uint32_t n = 0;
    for (uint32_t i = hi; i-- > 0;) { /* downwards: the free stack pops low slots first */
        mbslot *s = &mb->tab[i];
        uint32_t st = RD(s->state);
        if (st == S_HANDED) { /* handed to a waiter that still has it, or back */
            int held = 0;
            for (uint32_t k = 0; k < MB_RXQ && !held; k++)
                held = RD(h->rxq[k].ticket) && RD(h->rxq[k].assigned) == i;
            if (!held) s->state = st = S_READY;
        }
        if (st == S_WRITING || st == S_TAKEN || st == S_HANDED) {
            h->nbusy++;
            if (st == S_HANDED) h->nhanded++;
        } else if (st == S_READY) {
            if (ord) {
                ord[n] = (ready_ent){RD(s->seq), i};
            } else { /* no memory: link in slot order (descending i: push at the head) */
                uint32_t old = RD(h->head);
                s->prev = NIL;
                s->next = old;
                if (old == NIL)
                    h->tail = i;
                else if (old < mb->nslots)
                    mb->tab[old].prev = i;
                h->head = i;
            }
            n++;
        } else {
            if (st != S_FREE) h->torn++;
            s->state = S_FREE;
            s->next = h->free_top;
            h->free_top = i;
        }
    }
    if (ord) {
        qsort(ord, n, sizeof *ord, ready_cmp);
        for (uint32_t j = 0; j < n; j++) {
            mbslot *s = &mb->tab[ord[j].i];
            s->prev = j ? ord[j - 1].i : NIL;
            s->next = j + 1 < n ? ord[j + 1].i : NIL;
        }
        if (n) {
            h->head = ord[0].i;
            h->tail = ord[n - 1].i;
        }
        free(ord);
    }
    h->nready = n;
}

/* ---- slot transitions, under the lock. The state is written last (see the header). */

static int link_ok(ferry_mailbox *mb, uint32_t i)
{
    return i == NIL || i < mb->nslots;
}

/* Take slot i (READY) out of the queue. Its links are read once and checked; if they do
 * not fit (only a sharer that scribbled can cause that), the queue is rebuilt first.
 * Every index is checked again where it is used (a sharer may write meanwhile). */
static void unlink_ready(ferry_mailbox *mb, uint32_t i)
{
    mbshm *h = mb->h;
    mbslot *s = &mb->tab[i];
    uint32_t p = RD(s->prev), n = RD(s->next);
    if (!link_ok(mb, p) || !link_ok(mb, n)) {
        repair(mb); /* relinks i soundly */
        p = RD(s->prev);
        n = RD(s->next);
    }
    if (p == NIL)
        h->head = n;
    else if (p < mb->nslots)
        mb->tab[p].next = n;
    if (n == NIL)
        h->tail = p;
    else if (n < mb->nslots)
        mb->tab[n].prev = p;
    if (h->nready) h->nready--;
}

/* A FREE slot, now WRITING for this process; or -1 when none. */
static int64_t claim(ferry_mailbox *mb)
{
    mbshm *h = mb->h;
    uint32_t i = RD(h->free_top);
    if (i != NIL && (i >= mb->nslots || RD(mb->tab[i].state) != S_FREE)) {
        repair(mb);
        i = RD(h->free_top);
    }
    if (i != NIL && i < mb->nslots && RD(mb->tab[i].state) == S_FREE) {
        h->free_top = RD(mb->tab[i].next); /* checked when popped */
    } else {
        uint32_t hw = RD(h->hiwat);
        if (hw >= mb->nslots || RD(mb->tab[hw].state) != S_FREE) return -1;
        i = hw;
        h->hiwat = hw + 1; /* first: a death before the state write leaves i FREE below */
    }
    mbslot *s = &mb->tab[i];
    s->owner = ferry__proc_self();
    s->state = S_WRITING;
    h->nbusy++;
    return i;
}

/* WRITING or TAKEN or READY slot i -> FREE. */
static void to_free(ferry_mailbox *mb, uint32_t i)
{
    mbshm *h = mb->h;
    mbslot *s = &mb->tab[i];
    if (RD(s->state) == S_READY)
        unlink_ready(mb, i);
    else if (h->nbusy)
        h->nbusy--;
    s->state = S_FREE;
    s->next = h->free_top;
    h->free_top = i;
}

/* WRITING (appended: its seq is the newest), TAKEN or HANDED (back at its seq's place)
 * -> READY. The walk from the tail is bounded by nslots steps and checks every link;
 * anything that does not fit makes the slot READY and rebuilds the queue instead. */
static void to_ready(ferry_mailbox *mb, uint32_t i)
{
    mbshm *h = mb->h;
    mbslot *s = &mb->tab[i];
    if (RD(s->state) == S_HANDED && h->nhanded) h->nhanded--;
    uint64_t seq = RD(s->seq);
    uint32_t after = RD(h->tail), next;
    for (uint32_t steps = 0;; steps++) {
        if (after == NIL) break;
        if (after >= mb->nslots || steps > mb->nslots) goto rebuild;
        if (RD(mb->tab[after].seq) <= seq) break;
        after = RD(mb->tab[after].prev);
    }
    next = after == NIL ? RD(h->head) : RD(mb->tab[after].next);
    if (!link_ok(mb, next)) goto rebuild;
    s->prev = after;
    s->next = next;
    if (next == NIL)
        h->tail = i;
    else
        mb->tab[next].prev = i;
    if (after == NIL)
        h->head = i;
    else
        mb->tab[after].next = i;
    if (h->nbusy) h->nbusy--;
    h->nready++;
    s->state = S_READY;
    return;
rebuild:
    s->state = S_READY; /* let repair place it */
    repair(mb);
}

/* READY slot i -> TAKEN by this process. */
static void to_taken(ferry_mailbox *mb, uint32_t i)
{
    mbslot *s = &mb->tab[i];
    unlink_ready(mb, i);
    s->owner = ferry__proc_self();
    s->state = S_TAKEN;
    mb->h->nbusy++;
}

/*
 * Per-sender order (under the lock): would taking (or handing out) a message of sender
 * snd with seq q pass an older message of the same sender that is HANDED to a waiter
 * that has not taken it yet? Such a message is not the taker's to take: if that waiter
 * died before taking it, it would come back after the newer one was received. So a
 * message is taken, or handed, only once no older one of its sender is still handed:
 * the waiter takes it (it was woken for it), or dies and reclaim puts it back in the
 * queue, first. Only HANDED slots can hold a sender back (nhanded says whether any
 * exists); TAKEN ones are received already (a dead taker's message is lost, in order,
 * or with FERRY_MAILBOX_AT_LEAST_ONCE returned: see the header).
 */
static int passes_handed(ferry_mailbox *mb, uint64_t snd, uint64_t q)
{
    mbshm *h = mb->h;
    if (!h->nhanded) return 0;
    for (uint32_t k = 0; k < MB_RXQ; k++) {
        mbwaiter *e = &h->rxq[k];
        uint32_t a = RD(e->assigned);
        if (!RD(e->ticket) || a >= mb->nslots) continue;
        mbslot *t = &mb->tab[a];
        if (RD(t->state) == S_HANDED && RD(t->sender) == snd && RD(t->seq) < q) return 1;
    }
    return 0;
}

/* The fair hand-out: READY slot i -> HANDED to the oldest waiting receiver whose filter
 * takes it and who has nothing handed yet, if there is one; it then sees it as soon as it
 * wakes, and nobody else can take it meanwhile. Not while an older message of its sender
 * is handed (passes_handed): it then waits in the queue. 1 if handed. */
static int handoff(ferry_mailbox *mb, uint32_t i, int *wakes)
{
    mbshm *h = mb->h;
    mbslot *s = &mb->tab[i];
    if (RD(s->state) != S_READY) return 0;
    int64_t type = RD(s->type);
    mbwaiter *best = NULL;
    for (uint32_t k = 0; k < MB_RXQ; k++) {
        mbwaiter *e = &h->rxq[k];
        if (!e->ticket || e->assigned != NIL || !ferry__filter_match(e->filter, type)) continue;
        if (!best || e->ticket < best->ticket) best = e;
    }
    if (!best || passes_handed(mb, RD(s->sender), RD(s->seq))) return 0;
    unlink_ready(mb, i);
    s->owner = best->owner;
    s->state = S_HANDED;
    h->nbusy++;
    h->nhanded++;
    best->assigned = i;
    owe(h->rx_wait, &h->msg_ftx, W_MSG, wakes);
    return 1;
}

/* Hand queued messages to the waiters that have nothing handed, oldest message first
 * (after a message was queued, or a hand-out ended: one taken, or put back). In seq
 * order, so that a message never goes out while an older one of its sender that a waiter
 * could take stays queued; a message held back by passes_handed stays queued until the
 * hand-out before it ends (then this runs again). The walk is bounded by nslots steps and
 * stops once no waiter is free. */
static void handoff_queued(ferry_mailbox *mb, int *wakes)
{
    mbshm *h = mb->h;
    /* A registered waiter is outside the lock only in sleep_on, counted in rx_wait: none
     * counted, none to hand to (the common, uncontended case skips the scan). */
    if (!h->rx_wait) return;
    uint32_t free_waiters = 0;
    for (uint32_t k = 0; k < MB_RXQ; k++)
        free_waiters += h->rxq[k].ticket && h->rxq[k].assigned == NIL;
    uint32_t i = RD(h->head);
    for (uint32_t steps = 0; free_waiters && i < mb->nslots && steps <= mb->nslots; steps++) {
        uint32_t next = RD(mb->tab[i].next); /* before handoff unlinks i */
        free_waiters -= (uint32_t)handoff(mb, i, wakes);
        i = next;
    }
}

/* Take waiter entry e out of the FIFO; a slot handed to it goes back to the queue (and
 * on to the next waiter). */
static void unregister(ferry_mailbox *mb, mbwaiter *e, int *wakes)
{
    uint32_t a = RD(e->assigned);
    e->ticket = 0;
    e->assigned = NIL;
    if (a < mb->nslots && RD(mb->tab[a].state) == S_HANDED) {
        to_ready(mb, a); /* its old seq: its old place */
        handoff_queued(mb, wakes);
        owe(mb->h->rx_wait, &mb->h->msg_ftx, W_MSG, wakes);
    }
}

/*
 * Take the lock (plock.h) for a call whose deadline is w (NULL: a call without one).
 * Honest holders keep it for microseconds, so the wait is bounded by the later of the
 * deadline and MB_GRACE_NS from now: a FERRY_NOW call or one whose deadline passed while
 * it copied still gets the lock from an honest holder (a preempted one included), and a
 * sharer that holds it for good delays a call at most MB_GRACE_NS past its deadline
 * (-ETIMEDOUT, or -EAGAIN for FERRY_NOW). A holder that died inside: every slot is in a
 * valid state (see the header), so the derived structures are rebuilt and the lock made
 * consistent. -EBADMSG: the lock was made not recoverable (only a sharer writing the
 * lock word can do that: ferry never leaves it inconsistent).
 */
static int mb_lock(ferry_mailbox *mb, ferry__when *w)
{
    ferry__plock *lk = &mb->h->lock;
    int r = ferry__plock_trylock(lk); /* the common case: no clock read */
    if (r == -EBUSY) {
        int64_t at = w ? ferry__when_at(w) : 0, grace = ferry__now_ns() + MB_GRACE_NS;
        r = ferry__plock_lock(lk, at == FERRY__NO_DEADLINE ? at : at > grace ? at : grace);
        if (r == -ETIMEDOUT && w && at == 0) r = -EAGAIN;
    }
    if (r == -EOWNERDEAD) {
        repair(mb);
        mb->h->recovered++;
        ferry__plock_consistent(lk);
        return 0;
    }
    if (r == -ETIMEDOUT || r == -EAGAIN || r == 0) return r;
    return -EBADMSG; /* -ENOTRECOVERABLE; -EDEADLK: a sharer wrote our id in the word */
}

/* Under the lock: make the doorbell say whether a message is queued (only once someone
 * polls: otherwise it costs nothing). Done under the lock, so the doorbell and the queue
 * change together: the ring polls readable exactly while nready > 0. A process killed
 * between its send and setting bell leaves one byte too many, drained at the next
 * transition to empty (bell is set again before that by the next want). */
static void bell_sync(ferry_mailbox *mb)
{
    mbshm *h = mb->h;
    if (!h->polled) return;
    if (h->nready > 0 && !h->bell) {
        if (send(mb->fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) h->bell = 1;
    } else if (h->nready == 0 && h->bell) {
        drain(mb);
        h->bell = 0;
    }
}

static void mb_unlock(ferry_mailbox *mb)
{
    bell_sync(mb);
    ferry__plock_unlock(&mb->h->lock); /* -EPERM only if a sharer wrote the word */
}

/* Wait on ftx (under the lock; returns with it held): count in *count, unlock, sleep
 * at most left (and a slice), lock by w's deadline. < 0 (mb_lock's errors): the lock
 * is not held. */
static int sleep_on(ferry_mailbox *mb, _Atomic uint32_t *ftx, uint32_t *count, int64_t left,
                    ferry__when *w)
{
    /* relaxed: read under the lock, which orders it before any waker's bump. */
    uint32_t v = atomic_load_explicit(ftx, memory_order_relaxed);
    (*count)++;
    mb_unlock(mb);
    ferry__futex_wait(ftx, v, left < MB_SLICE_NS ? left : MB_SLICE_NS);
    int rc = mb_lock(mb, w);
    if (rc < 0) return rc;
    if (*count) (*count)--;
    return 0;
}

/*
 * Under the lock: free or return the slots of dead owners, and drop a dead holder's hold
 * (at most once a slice per call: *last is the time of the last run). Returns the number
 * of changes; wakes owed are added to *wakes. A verdict per owner is cached for the scan.
 */
static int reclaim(ferry_mailbox *mb, int64_t *last, int *wakes)
{
    int64_t now = ferry__coarse_ns();
    if (*last != 0 && now - *last < MB_SLICE_NS) return 0;
    *last = now;
    mbshm *h = mb->h;
    if (h->nbusy == 0 && h->hold_id == 0) return 0; /* nobody to look at */
    uint64_t me = ferry__proc_self();
    enum { CACHE = 8 };
    uint64_t ids[CACHE];
    int dead[CACHE], nc = 0, changed = 0;
    uint32_t hi = h->hiwat <= mb->nslots ? h->hiwat : mb->nslots;
    for (uint32_t k = 0; k < MB_RXQ; k++) { /* waiters that died waiting */
        mbwaiter *e = &h->rxq[k];
        if (!e->ticket || e->owner == me || !ferry__proc_dead(e->owner)) continue;
        unregister(mb, e, wakes); /* what it was handed was never delivered: queued again */
        changed++;
    }
    for (uint32_t i = 0; i < hi && h->nbusy; i++) {
        mbslot *s = &mb->tab[i];
        if (s->state == S_HANDED && s->owner != me && ferry__proc_dead(s->owner)) {
            to_ready(mb, i); /* handed to a dead waiter whose entry is gone: queued again */
            handoff_queued(mb, wakes);
            changed++;
            continue;
        }
        if (s->state != S_WRITING && s->state != S_TAKEN) continue;
        uint64_t o = s->owner;
        if (o == me) continue;
        int d = -1;
        for (int k = 0; k < nc; k++)
            if (ids[k] == o) d = dead[k];
        if (d < 0) {
            d = ferry__proc_dead(o);
            if (nc < CACHE) {
                ids[nc] = o;
                dead[nc++] = d;
            }
        }
        if (!d) continue;
        changed++;
        if (s->state == S_WRITING) {
            h->torn++;
            to_free(mb, i);
            owe(h->tx_wait, &h->room_ftx, W_ROOM, wakes);
        } else if (mb->flags & FERRY_MAILBOX_AT_LEAST_ONCE) {
            h->returned++;
            to_ready(mb, i); /* keeps its seq: back at its place */
            handoff_queued(mb, wakes);
            owe(h->rx_wait, &h->msg_ftx, W_MSG, wakes);
        } else {
            h->lost++;
            to_free(mb, i);
            owe(h->tx_wait, &h->room_ftx, W_ROOM, wakes);
        }
    }
    if (h->hold_id != 0 && h->hold_id != me && ferry__proc_dead(h->hold_id)) {
        h->hold_id = h->hold_token = 0;
        owe(h->hold_wait, &h->hold_ftx, W_HOLD, wakes);
        changed++;
    }
    return changed;
}

/* ------------------------------------------------------------------ sending */

/* Claim a slot, waiting for room as the capacity says. The index, or < 0. */
static int64_t claim_wait(ferry_mailbox *mb, ferry__when *w)
{
    mbshm *h = mb->h;
    int64_t last = 0, idx;
    int wakes = 0, rc = mb_lock(mb, w);
    if (rc < 0) return rc;
    for (;;) {
        if ((idx = claim(mb)) >= 0) break;
        if (reclaim(mb, &last, &wakes) > 0) continue;
        if (mb->capacity == FERRY_UNBOUNDED) {
            idx = -ENOBUFS;
            break;
        }
        int64_t left = ferry__when_left(w);
        if (left < 0) {
            idx = left;
            break;
        }
        if ((rc = sleep_on(mb, &h->room_ftx, &h->tx_wait, left, w)) < 0) return rc;
    }
    mb_unlock(mb);
    pay(mb, wakes);
    return idx;
}

/* Under the lock: make the WRITING slot i READY. Returns its seq. */
static uint64_t publish(ferry_mailbox *mb, uint32_t i, int64_t type, size_t len, int *wakes)
{
    mbshm *h = mb->h;
    mbslot *s = &mb->tab[i];
    uint64_t seq = h->next_seq++;
    s->seq = seq;
    s->sender = ferry__proc_self();
    s->type = type;
    s->len = len;
    /* to_ready writes the state last: a death before it leaves the slot WRITING
     * (reclaimed as torn, never seen); the unlock that follows releases the data
     * written outside the lock with it. */
    to_ready(mb, i);
    h->sent++;
    owe(h->rx_wait, &h->msg_ftx, W_MSG, wakes);
    handoff_queued(mb, wakes);
    return seq;
}

/* Rendezvous: wait until the message (slot i, seq) is taken; withdraw it on timeout. */
static int await_taken(ferry_mailbox *mb, uint32_t i, uint64_t seq, ferry__when *w)
{
    mbshm *h = mb->h;
    mbslot *s = &mb->tab[i];
    int64_t last = 0;
    int wakes = 0, rc = mb_lock(mb, w);
    if (rc < 0) return rc;
    for (;;) {
        if (s->state != S_READY || s->seq != seq) {
            rc = 0; /* taken (and maybe finished, and the slot reused since) */
            break;
        }
        reclaim(mb, &last, &wakes);
        int64_t left = ferry__when_left(w);
        if (left < 0) {
            to_free(mb, i); /* withdrawn: no receiver will see it */
            h->withdrawn++;
            owe(h->tx_wait, &h->room_ftx, W_ROOM, &wakes);
            rc = (int)left;
            break;
        }
        if ((rc = sleep_on(mb, &h->take_ftx, &h->rv_wait, left, w)) < 0) return rc;
    }
    mb_unlock(mb);
    pay(mb, wakes);
    return rc;
}

int ferry_mailbox_send(ferry_mailbox *mb, int64_t type, const void *buf, size_t len,
                       int64_t timeout_ns)
{
    if (!mb || type < 0 || (!buf && len)) return -EINVAL;
    if (len > mb->max_msg) return -EMSGSIZE;
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    int64_t idx = claim_wait(mb, &w);
    if (idx < 0) return (int)idx;
    if (len) memcpy(slot_data(mb, (uint32_t)idx), buf, len); /* ours alone: WRITING */
    int wakes = 0, rc = mb_lock(mb, &w);
    if (rc < 0) return rc;
    uint64_t seq = publish(mb, (uint32_t)idx, type, len, &wakes);
    mb_unlock(mb);
    pay(mb, wakes);
    if (mb->capacity == 0) return await_taken(mb, (uint32_t)idx, seq, &w);
    return 0;
}

int ferry_mailbox_loan(ferry_mailbox *mb, void **buf, int64_t timeout_ns)
{
    ferry__when w;
    if (!mb || !buf || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (mb->capacity == 0) return -EOPNOTSUPP;
    pthread_mutex_lock(&mb->lk);
    int rc = 0;
    if (mb->loan >= 0) {
        rc = -EBUSY;
    } else {
        int64_t idx = claim_wait(mb, &w);
        if (idx < 0) {
            rc = (int)idx;
        } else {
            mb->loan = idx;
            *buf = slot_data(mb, (uint32_t)idx);
        }
    }
    pthread_mutex_unlock(&mb->lk);
    return rc;
}

int ferry_mailbox_commit(ferry_mailbox *mb, int64_t type, size_t len)
{
    if (!mb) return -EINVAL;
    pthread_mutex_lock(&mb->lk);
    int rc = -EINVAL;
    if (mb->loan >= 0 && type >= 0 && len <= mb->max_msg) {
        int wakes = 0;
        if ((rc = mb_lock(mb, NULL)) == 0) {
            publish(mb, (uint32_t)mb->loan, type, len, &wakes);
            mb_unlock(mb);
            pay(mb, wakes);
            mb->loan = -1;
        }
    }
    pthread_mutex_unlock(&mb->lk);
    return rc;
}

/* ------------------------------------------------------------------ receiving */

/* Under the lock: the READY slot filter picks, or -1. The queue is in seq order, so
 * the first match is the oldest; for filter < 0 the first of the lowest type. */
static int64_t pick(ferry_mailbox *mb, int64_t filter)
{
    mbshm *h = mb->h;
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t best = -1;
        uint32_t i = RD(h->head), steps = 0;
        int64_t best_type = 0;
        for (; i != NIL && i < mb->nslots && steps <= mb->nslots; steps++) {
            mbslot *s = &mb->tab[i];
            if (RD(s->state) != S_READY) break; /* a broken queue */
            int64_t type = RD(s->type);
            uint32_t next = RD(s->next);
            if (ferry__filter_match(filter, type) &&
                (filter >= 0 || best < 0 || type < best_type) &&
                !passes_handed(mb, RD(s->sender), RD(s->seq))) {
                if (filter >= 0) return i;
                best = i;
                best_type = type;
                if (type == 0) return i; /* none lower */
            }
            i = next;
        }
        /* A walk that ended well and saw every READY slot (or found one) is the answer.
         * Else (cannot happen unless a sharer scribbled): rebuild, look again. */
        if (i == NIL && (best >= 0 || steps == h->nready)) return best;
        repair(mb);
    }
    return -1;
}

/* Is this handle allowed to receive? (under the lock) */
static int may_receive(ferry_mailbox *mb)
{
    if (!(mb->flags & FERRY_MAILBOX_EXCLUSIVE)) return 1;
    return mb->h->hold_id == ferry__proc_self() && mb->h->hold_token == mb->token;
}

/* Take a message: the slot index (now TAKEN by this process), or < 0. cap: -EMSGSIZE
 * (leaving it queued, *len set) if its length is larger.
 * Fairness: a caller that finds nothing registers in the FIFO of waiters (rxq, a ticket
 * from next_ticket) before it sleeps; a message queued while it waits is handed to the
 * oldest waiter it suits (handoff), so waiting receivers are served in the order they
 * came and a newcomer cannot take a message from under them. More than MB_RXQ waiters:
 * the rest wait unregistered and pick what is left (not FIFO among themselves). */
static int64_t take(ferry_mailbox *mb, int64_t filter, size_t cap, size_t *len, ferry__when *w)
{
    mbshm *h = mb->h;
    uint64_t me = ferry__proc_self(), ticket = 0;
    mbwaiter *e = NULL; /* our entry while registered */
    int64_t last = 0, idx;
    int wakes = 0, rc = mb_lock(mb, w);
    if (rc < 0) return rc;
    for (;;) {
        if (e && (e->ticket != ticket || e->owner != me || e->token != mb->token))
            e = NULL; /* not ours any more (a sharer scribbled): register again */
        if (!may_receive(mb)) {
            idx = -EPERM;
            break;
        }
        uint32_t a = e ? RD(e->assigned) : NIL;
        if (a != NIL) { /* handed to us */
            e->assigned = NIL;
            mbslot *s = a < mb->nslots ? &mb->tab[a] : NULL;
            if (s && RD(s->state) == S_HANDED) {
                uint64_t l = RD(s->len); /* once: checked, then used */
                *len = (size_t)l;
                if (l > mb->max_msg) { /* only a sharer writes that: dropped, as torn */
                    s->owner = me;
                    s->state = S_TAKEN;
                    if (h->nhanded) h->nhanded--;
                    to_free(mb, a);
                    h->torn++;
                    owe(h->tx_wait, &h->room_ftx, W_ROOM, &wakes);
                    idx = -EBADMSG;
                    break;
                }
                if (l > cap) {
                    idx = -EMSGSIZE;
                    e->assigned = a;
                    unregister(mb, e, &wakes); /* it stays queued, for the others */
                    e = NULL;
                    break;
                }
                s->owner = me;
                s->state = S_TAKEN; /* stays counted in nbusy */
                if (h->nhanded) h->nhanded--;
                idx = a;
                owe(h->rv_wait, &h->take_ftx, W_TAKE, &wakes);
                /* Messages of its sender held back behind it (passes_handed) may go. */
                if (h->nready) {
                    handoff_queued(mb, &wakes);
                    owe(h->rx_wait, &h->msg_ftx, W_MSG, &wakes);
                }
                break;
            }
        }
        if ((idx = pick(mb, filter)) >= 0) {
            mbslot *s = &mb->tab[idx];
            uint64_t l = RD(s->len); /* once: checked, then used */
            if (l > mb->max_msg) {   /* only a sharer writes that: dropped, as torn */
                to_free(mb, (uint32_t)idx);
                h->torn++;
                owe(h->tx_wait, &h->room_ftx, W_ROOM, &wakes);
                idx = -EBADMSG;
                break;
            }
            *len = (size_t)l;
            if (l > cap) {
                idx = -EMSGSIZE;
                break;
            }
            to_taken(mb, (uint32_t)idx); /* a death before its state write: still READY */
            owe(h->rv_wait, &h->take_ftx, W_TAKE, &wakes);
            break;
        }
        if (reclaim(mb, &last, &wakes) > 0) continue;
        int64_t left = ferry__when_left(w);
        if (left < 0) {
            idx = left;
            break;
        }
        if (!e) { /* join the FIFO of waiters, if there is room */
            for (uint32_t k = 0; k < MB_RXQ && !e; k++)
                if (!h->rxq[k].ticket) e = &h->rxq[k];
            if (e) {
                e->owner = me;
                e->token = mb->token;
                e->filter = filter;
                e->assigned = NIL;
                ticket = h->next_ticket++;
                if (ticket == 0) ticket = h->next_ticket++; /* 0 means free */
                e->ticket = ticket; /* last: the entry is live once it has a ticket */
            }
        }
        if ((rc = sleep_on(mb, &h->msg_ftx, &h->rx_wait, left, w)) < 0) return rc;
    }
    if (e && e->ticket == ticket && e->owner == me && e->token == mb->token)
        unregister(mb, e, &wakes);
    mb_unlock(mb);
    pay(mb, wakes);
    return idx;
}

/* Free the TAKEN slot i: the message has been received (w: the call's deadline, or
 * NULL). If the lock cannot be had (only a sharer holding it for good: see mb_lock), the
 * slot stays TAKEN by this live process: the message was delivered all the same. */
static void finish(ferry_mailbox *mb, uint32_t i, ferry__when *w)
{
    int wakes = 0;
    if (mb_lock(mb, w) < 0) return;
    mbshm *h = mb->h;
    to_free(mb, i);
    h->received++;
    owe(h->tx_wait, &h->room_ftx, W_ROOM, &wakes);
    mb_unlock(mb);
    pay(mb, wakes);
}

ssize_t ferry_mailbox_recv(ferry_mailbox *mb, int64_t filter, int64_t *type, void *buf, size_t cap,
                           int64_t timeout_ns)
{
    ferry__when w;
    if (!mb || filter == INT64_MIN || (!buf && cap) || ferry__when_from(timeout_ns, &w) < 0)
        return -EINVAL;
    size_t len = 0;
    int64_t idx = take(mb, filter, cap, &len, &w);
    if (idx < 0) return idx;
    /* Ours alone (TAKEN); the lock in take acquired the sender's data. */
    if (len) memcpy(buf, slot_data(mb, (uint32_t)idx), len);
    if (type) *type = RD(mb->tab[idx].type); /* data: whatever it says */
    finish(mb, (uint32_t)idx, &w);
    return (ssize_t)len;
}

int ferry_mailbox_peek(ferry_mailbox *mb, int64_t filter, const void **data, size_t *len,
                       int64_t *type, int64_t timeout_ns)
{
    ferry__when w;
    if (!mb || !data || !len || filter == INT64_MIN || ferry__when_from(timeout_ns, &w) < 0)
        return -EINVAL;
    pthread_mutex_lock(&mb->lk);
    int rc = 0;
    if (mb->peek >= 0) {
        rc = -EBUSY;
    } else {
        size_t n = 0;
        int64_t idx = take(mb, filter, SIZE_MAX, &n, &w);
        if (idx < 0) {
            rc = (int)idx;
        } else {
            mb->peek = idx;
            *data = slot_data(mb, (uint32_t)idx);
            *len = n;
            if (type) *type = mb->tab[idx].type;
        }
    }
    pthread_mutex_unlock(&mb->lk);
    return rc;
}

int ferry_mailbox_release(ferry_mailbox *mb)
{
    if (!mb) return -EINVAL;
    pthread_mutex_lock(&mb->lk);
    int rc = -EINVAL;
    if (mb->peek >= 0) {
        finish(mb, (uint32_t)mb->peek, NULL);
        mb->peek = -1;
        rc = 0;
    }
    pthread_mutex_unlock(&mb->lk);
    return rc;
}

/* ------------------------------------------------------------------ exclusive hold */

int ferry_mailbox_attach(ferry_mailbox *mb, int64_t timeout_ns)
{
    ferry__when w;
    if (!mb || !(mb->flags & FERRY_MAILBOX_EXCLUSIVE) || ferry__when_from(timeout_ns, &w) < 0)
        return -EINVAL;
    mbshm *h = mb->h;
    uint64_t me = ferry__proc_self();
    int64_t last = 0;
    int wakes = 0, rc = mb_lock(mb, &w);
    if (rc < 0) return rc;
    for (;;) {
        if (h->hold_id == me && h->hold_token == mb->token) break; /* ours already */
        if (h->hold_id == 0) {
            h->hold_token = mb->token;
            h->hold_id = me;
            break;
        }
        if (reclaim(mb, &last, &wakes) > 0) continue;
        int64_t left = ferry__when_left(&w);
        if (left < 0) {
            rc = left == -EAGAIN ? -EBUSY : (int)left;
            break;
        }
        if ((rc = sleep_on(mb, &h->hold_ftx, &h->hold_wait, left, &w)) < 0) return rc;
    }
    mb_unlock(mb);
    pay(mb, wakes);
    return rc;
}

int ferry_mailbox_detach(ferry_mailbox *mb)
{
    if (!mb) return -EINVAL;
    mbshm *h = mb->h;
    int wakes = 0, rc = mb_lock(mb, NULL);
    if (rc < 0) return rc;
    if (h->hold_id == ferry__proc_self() && h->hold_token == mb->token) {
        h->hold_id = h->hold_token = 0;
        owe(h->hold_wait, &h->hold_ftx, W_HOLD, &wakes);
    } else {
        rc = -EPERM;
    }
    mb_unlock(mb);
    pay(mb, wakes);
    return rc;
}

/* ------------------------------------------------------------------ the rest */

int ferry_mailbox_stats(const ferry_mailbox *cmb, ferry_mailbox_counters *ust)
{
    if (!cmb || !ust) return -EINVAL;
    /* a bad size is refused before the lock is taken (as every -EINVAL: at once) */
    if (ferry__sized_check(ust, FERRY__MAILBOX_COUNTERS_V0) < 0) return -EINVAL;
    ferry_mailbox *mb = (ferry_mailbox *)cmb; /* the lock is shared state, not the handle */
    int rc = mb_lock(mb, NULL);
    if (rc < 0) return rc;
    mbshm *h = mb->h;
    ferry_mailbox_counters full = {.size = sizeof full,
                                   .sent = h->sent,
                                   .received = h->received,
                                   .lost = h->lost,
                                   .returned = h->returned,
                                   .withdrawn = h->withdrawn,
                                   .torn = h->torn,
                                   .recovered = h->recovered,
                                   .queued = h->nready,
                                   .capacity = mb->capacity,
                                   .max_msg = mb->max_msg,
                                   .flags = mb->flags};
    /* Waiting receivers: the owners of the FIFO's entries (copied under the lock, judged
     * alive after it: ferry__proc_dead makes system calls), and, when the FIFO is full,
     * those counted in rx_wait beyond it (a waiter registers whenever a place is free, so
     * only then can one wait unregistered). Each word read once; counts bounded. */
    uint64_t owners[MB_RXQ];
    uint32_t nreg = 0;
    for (uint32_t k = 0; k < MB_RXQ; k++)
        if (RD(h->rxq[k].ticket)) owners[nreg++] = RD(h->rxq[k].owner);
    uint32_t rx = RD(h->rx_wait);
    uint64_t beyond = nreg == MB_RXQ && rx > MB_RXQ ? rx - MB_RXQ : 0;
    mb_unlock(mb);
    for (uint32_t k = 0; k < nreg; k++) full.waiting += !ferry__proc_dead(owners[k]);
    full.waiting += beyond;
    if (full.waiting > FERRY__PROC_MAX_TASKS) full.waiting = FERRY__PROC_MAX_TASKS;
    /* a full struct of this version, then the caller's prefix of it (core/abi.h) */
    return ferry__sized_out(ust, &full, sizeof full, FERRY__MAILBOX_COUNTERS_V0);
}

int ferry_mailbox_fd(const ferry_mailbox *mb)
{
    return mb ? mb->fd : -EINVAL;
}

int ferry_mailbox_poll_fd(ferry_mailbox *mb)
{
    if (!mb) return -EINVAL;
    int rc = mb_lock(mb, NULL);
    if (rc < 0) return rc;
    mb->h->polled = 1; /* from now on every unlock keeps the doorbell exact */
    mb_unlock(mb);
    return mb->ring;
}

void ferry_mailbox_close(ferry_mailbox *mb)
{
    if (!mb) return;
    pthread_mutex_lock(&mb->lk);
    if (mb->peek >= 0) finish(mb, (uint32_t)mb->peek, NULL);
    if (mb->loan >= 0 && mb_lock(mb, NULL) == 0) { /* discarded: never visible */
        int wakes = 0;
        to_free(mb, (uint32_t)mb->loan);
        owe(mb->h->tx_wait, &mb->h->room_ftx, W_ROOM, &wakes);
        mb_unlock(mb);
        pay(mb, wakes);
    }
    pthread_mutex_unlock(&mb->lk);
    if (mb->flags & FERRY_MAILBOX_EXCLUSIVE) ferry_mailbox_detach(mb); /* -EPERM: not ours */
    pthread_mutex_destroy(&mb->lk);
    ferry__seg_unmap(&mb->seg);
    close(mb->fd);
    close(mb->ring);
    free(mb);
}

/* The defaults, as a full struct of this version. */
static void opts_defaults(ferry_mailbox_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->capacity = MB_CAP_DEFAULT;
    o->max_msg = MB_MSG_DEFAULT;
}

void ferry_mailbox_opts_init_sized(ferry_mailbox_opts *o, size_t size)
{
    ferry_mailbox_opts d;
    opts_defaults(&d);
    ferry__sized_init(o, size, &d, sizeof d);
}

/* A handle over the mapped object seg (whose shape has been checked) and fd. */
static int make_handle(int fd, int ring, ferry__seg *seg, uint32_t capacity, uint32_t flags,
                       uint32_t nslots, size_t max_msg, size_t dsize, ferry_mailbox **out)
{
    ferry_mailbox *mb = calloc(1, sizeof *mb);
    if (!mb) return -ENOMEM;
    mb->seg = *seg;
    mb->fd = fd;
    mb->ring = ring;
    mb->h = seg->base;
    mb->tab = (mbslot *)((char *)seg->base + MB_TABLE_OFF);
    mb->data = (char *)seg->base + MB_TABLE_OFF + round_up((size_t)nslots * MB_ENTRY, MB_PAGE);
    mb->capacity = capacity;
    mb->flags = flags;
    mb->nslots = nslots;
    mb->max_msg = max_msg;
    mb->dsize = dsize;
    /* relaxed: a unique number, nothing to order */
    mb->token = atomic_fetch_add_explicit(&next_token, 1, memory_order_relaxed);
    mb->loan = mb->peek = -1;
    pthread_mutex_init(&mb->lk, NULL);
    *out = mb;
    return 0;
}

int ferry_mailbox_create(const ferry_mailbox_opts *opts, ferry_mailbox **out)
{
    if (!out) return -EINVAL;
    ferry_mailbox_opts o;
    opts_defaults(&o);
    int rc = ferry__sized_in(&o, sizeof o, opts, FERRY__MAILBOX_OPTS_V0); /* core/abi.h */
    if (rc < 0) return rc;
    if ((o.flags & ~MB_FLAGS) || o.max_msg == 0 || o.max_msg > MB_MSG_MAX) return -EINVAL;
    size_t dsize = round_up(o.max_msg, 64);
    uint32_t nslots;
    if (o.capacity == FERRY_UNBOUNDED || o.capacity == 0) {
        nslots = o.capacity == 0 ? MB_RV_SLOTS : FERRY_MAILBOX_MAX_SLOTS;
        while (nslots > 0 && obj_size(nslots, dsize) == 0) /* as many as fit */
            nslots = nslots > 64 ? nslots - nslots / 16 : nslots - 1;
        if (nslots == 0) return -EINVAL;
    } else {
        nslots = o.capacity;
        if (nslots > FERRY_MAILBOX_MAX_SLOTS || obj_size(nslots, dsize) == 0) return -EINVAL;
    }
    int mfd = -1, sv[2] = {-1, -1};
    ferry__seg seg;
    rc = ferry__obj_create(FERRY_OBJ_MAILBOX, obj_size(nslots, dsize), &mfd, &seg);
    if (rc < 0) return rc;
    mbshm *h = seg.base;
    /* Nobody else sees the object yet: plain initialization (a new memfd reads as zeros:
     * every slot FREE). Whoever gets it later does so through a system call (fork,
     * sendmsg, ferryd), which orders these writes before their reads. */
    h->capacity = o.capacity;
    h->flags = o.flags;
    h->nslots = nslots;
    h->max_msg = o.max_msg;
    h->dsize = dsize;
    h->next_seq = 1;
    h->next_ticket = 1;
    h->head = h->tail = h->free_top = NIL;
    ferry__plock_init(&h->lock);
    /* The carrier (src/sync/event.c's design): one message on A into B's queue holding
     * [memfd, A], read with MSG_PEEK by every adopter; B is the object's descriptor. */
    if ((rc = ferry__carrier_make(FERRY_OBJ_MAILBOX, mfd, &sv[0], &sv[1])) < 0) goto fail;
    rc = make_handle(sv[1], sv[0], &seg, o.capacity, o.flags, nslots, o.max_msg, dsize, out);
    if (rc < 0) goto fail;
    close(mfd); /* mapped, and in the carrier */
    return 0;
fail:
    ferry__seg_unmap(&seg);
    close(mfd);
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    return rc;
}

/* The memfd and the ring from carrier fd (which the caller keeps): 0, or -EBADMSG.
 * ferry__carrier_open (shm/obj.h) checks the magic, exactly [memfd, ring], the memfd a
 * mailbox object and the ring fd's own peer. */
static int carrier_open(int fd, int *mfd, int *ring)
{
    return ferry__carrier_open(fd, FERRY_OBJ_MAILBOX, mfd, ring);
}

int ferry_mailbox_adopt(int fd, ferry_mailbox **out)
{
    if (fd < 0) return -EINVAL;
    if (!out) {
        close(fd);
        return -EINVAL;
    }
    int mfd, ring;
    int rc = carrier_open(fd, &mfd, &ring);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    ferry__seg seg;
    rc = ferry__obj_map(mfd, FERRY_OBJ_MAILBOX, &seg);
    close(mfd); /* mapped (or not a mailbox): the memfd itself is no longer needed */
    if (rc < 0) {
        close(ring);
        close(fd);
        return rc;
    }
    /* The shape, read once onto private copies (a sharer may change the shared words
     * later) and checked against the mapping. */
    volatile mbshm *h = seg.base;
    uint32_t capacity = h->capacity, flags = h->flags, nslots = h->nslots;
    uint64_t max_msg = h->max_msg, dsize = h->dsize;
    int ok = !(flags & ~MB_FLAGS) && max_msg >= 1 && max_msg <= MB_MSG_MAX &&
             dsize == round_up(max_msg, 64) && nslots >= 1 && nslots <= FERRY_MAILBOX_MAX_SLOTS &&
             (capacity == 0                 ? nslots <= MB_RV_SLOTS
              : capacity == FERRY_UNBOUNDED ? 1
                                            : nslots == capacity);
    size_t need = ok ? obj_size(nslots, (size_t)dsize) : 0;
    if (!ok || need == 0 || need > seg.size) rc = -EBADMSG;
    if (rc == 0)
        rc = make_handle(fd, ring, &seg, capacity, flags, nslots, (size_t)max_msg, (size_t)dsize,
                         out);
    if (rc < 0) {
        ferry__seg_unmap(&seg);
        close(ring);
        close(fd);
    }
    return rc;
}

int ferry_mailbox_open(const char *name, ferry_mailbox **out, int64_t timeout_ns)
{
    if (!name || !out) return -EINVAL;
    int fd;
    int rc = ferry__obj_open(name, FERRY_OBJ_MAILBOX, &fd, timeout_ns);
    if (rc < 0) return rc;
    return ferry_mailbox_adopt(fd, out);
}

/* ------------------------------------------------------------------ test hooks */

#ifdef FERRY_TEST_HOOKS /* only in ferry_test_static, never in an installed library */

int ferry__mailbox_lock_and_keep(ferry_mailbox *mb)
{
    return mb_lock(mb, NULL);
}

void ferry__mailbox_scribble(ferry_mailbox *mb, uint32_t seed)
{
    if (mb_lock(mb, NULL) < 0) return;
    mbshm *h = mb->h;
    uint32_t x = seed * 2654435761u + 1;
#define NEXT() (x = x * 1103515245u + 12345u, (x >> 3) % (mb->nslots + 3) + (x & 1 ? 0 : NIL - 2))
    h->head = NEXT();
    h->tail = NEXT();
    h->free_top = NEXT();
    h->nready = NEXT();
    h->nbusy = NEXT();
    for (uint32_t i = 0; i < mb->nslots; i++) {
        mb->tab[i].prev = NEXT();
        mb->tab[i].next = NEXT();
    }
#undef NEXT
    ferry__plock_unlock(&h->lock); /* not mb_unlock: the doorbell is left as it was */
}

void ferry__mailbox_get_layout(const ferry_mailbox *mb, ferry__mailbox_layout *l)
{
    *l = (ferry__mailbox_layout){
        .lock_off = offsetof(mbshm, lock),
        .lock_len = sizeof(ferry__plock),
        .guarded_off = offsetof(mbshm, next_seq),
        .guarded_len = sizeof(mbshm) - offsetof(mbshm, next_seq),
        .table_off = MB_TABLE_OFF,
        .entry_len = MB_ENTRY,
        .nslots = mb->nslots,
        .size = mb->seg.size,
        .rx_wait_off = offsetof(mbshm, rx_wait),
        .rxq_off = offsetof(mbshm, rxq),
        .rxq_entry_len = sizeof(mbwaiter),
        .rxq_n = MB_RXQ,
    };
}
#endif
