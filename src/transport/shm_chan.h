// SPDX-License-Identifier: MIT
/*
 * shm_chan.h — the state of one end of a shm channel, shared by the files of the shm
 * transport: shm.c (making, connecting and closing channels, the ops table), shm_tx.c
 * (the producer of the outgoing direction) and shm_rx.c (the consumer of the incoming
 * direction, with typed selective receive).
 *
 * Rules: the tx half is touched only by the sending thread and the rx half only by the
 * receiving thread (except rx.recvs, an atomic the sending thread reads); `dead` is
 * written by either with relaxed atomics (it only ever goes from 0 to an error).
 * Everything the peer can write (the ring control blocks and rings) is read through
 * copies that are validated before use (ring.h).
 */
#ifndef FERRY_TRANSPORT_SHM_CHAN_H
#define FERRY_TRANSPORT_SHM_CHAN_H

#include "shm/ring.h"
#include "shm/segment.h"
#include "shm/wait.h"
#include "transport.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

/* One mapped ring of the incoming direction. The first lives in the direction's first
 * segment (after its control block); later ones are whole segments (FERRY_UNBOUNDED). */
typedef struct rx_map {
    ferry__seg seg; /* empty for the first ring (it belongs to the control segment) */
    uint8_t *data;
    uint64_t size;
    uint64_t end; /* position just past this ring's JUMP record; UINT64_MAX while current */
} rx_map;

/* A record the consumer has read (header validated) but not yet taken. 56 bytes: the
 * fds live out of line (only records that carry some have them), so the skip queue
 * costs less private heap than the ring bytes its records take (64 or more each). */
typedef struct rx_entry {
    uint64_t pos, seq;
    int64_t type;
    rx_map *map;
    int *fds; /* nfds fds (malloc'd, owned by the entry); NULL while none are held
                 (capacity 0: they come with the claim) */
    uint32_t len;
    uint8_t nfds;    /* fds the record carries */
    uint8_t flags;   /* header flags */
    uint8_t claimed; /* capacity 0: this end already won the claim */
    uint32_t crc;    /* FERRY__F_CRC set in flags: checked on what is handed out */
} rx_entry;

_Static_assert(sizeof(rx_entry) <= FERRY__REC_ALIGN,
               "a queue entry costs no more private heap than its record takes of the ring");

typedef struct shm_tx {
    /* What every send reads and writes, in the first line (the struct is 64-byte
     * aligned in shm_chan): with more processes than CPUs each hand-off starts on cold
     * caches, and each line it touches is a miss. */
    ferry__ring_ctl *ctl;
    uint8_t *data;
    uint64_t size;
    uint64_t head;     /* next record position */
    uint64_t clear_to; /* every slot in [head, clear_to) is cleared (shm_tx.c: batches) */
    uint64_t tail_cache, taken_cache;
    uint64_t seq; /* seq of the last committed record */
    /* The second line. */
    uint64_t sent, cancelled;
    uint32_t recvs_seen; /* rx.recvs at the last send (tx_demote) */
    int loaned;          /* a loan is outstanding (below) */
    ferry__spin spin;
    ferry__seg grown; /* the current ring when it is not the first one */
    /* The outstanding loan. */
    uint64_t loan_pos;
    size_t loan_len;
    ferry__when loan_when;
} shm_tx;

typedef struct shm_rx {
    /* What every receive reads and writes, in the first line (as in shm_tx). */
    ferry__ring_ctl *ctl;
    /* The ring being scanned (maps[nmaps - 1]): its bytes and size - 1, kept here so
     * that a receive does not read the rx_map (another allocation: a line, maybe a page,
     * on cold caches). */
    uint8_t *data;
    uint64_t mask;
    uint64_t scan;   /* next record position to read */
    uint64_t expect; /* seq expected there */
    uint64_t taken;
    size_t qlen; /* entries in q (below) */
    /* Messages taken (low 32 bits), for the sending thread: shm_tx.c demotes a record's
     * lines only when this end received since its last send. */
    _Atomic uint32_t recvs;
    /* Gathering (shm_rx.c, ferry__shm_rx_gather): receives in a row that found their
     * record at once (last_fp below: the footprint of the last one the fast path took). */
    uint32_t run;
    /* The second line: also read by every receive (held, fds_pending, epfd). */
    int held;        /* a peek is outstanding: q[qhead + held_idx] */
    int fds_pending; /* capacity 0: a claimed entry in q still waits for its fds */
    /* ferry_chan_poll_fd(): an epoll of the link (readable when the producer sent READY,
     * or it hung up) and efd, an eventfd this end writes itself when it finds a message
     * the producer did not announce (self_set: it may hold a count). Both -1 until asked:
     * an end that is never armed holds one descriptor, its link. ferry_chan_poll_fd may
     * run in another thread than a receive: efd is written before epfd is published
     * (release), and read only after epfd was seen (acquire); self_set is exchanged. */
    _Atomic int epfd;
    int efd;
    _Atomic int self_set;
    uint64_t last_fp;
    ferry__spin spin;
    /* Spin extensions for the producer's progress on the record expected (rx_wait_cond):
     * the record they count for, the progress last seen, how many are left. */
    uint64_t ext_seq;
    uint32_t ext_done;
    uint64_t ext_left;
    rx_map *cur;   /* = maps[nmaps - 1] (its data and size - 1 are in the first line) */
    rx_map **maps; /* maps[nmaps - 1] is the ring being scanned */
    size_t nmaps;
    rx_entry *q; /* read, not yet taken, in order: q[qhead .. qhead + qlen) */
    size_t qhead, qcap;
    size_t qmax;          /* the most entries q may ever need (bounds its heap) */
    uint32_t qfds;        /* fds held by entries in q (not counting a peeked one) */
    uint32_t max_skipped; /* the local fd budget of skipped messages (ferry_chan_opts) */
    uint64_t mapped;      /* bytes of growth rings mapped now */
    int peek_private;     /* FERRY_PEEK_PRIVATE: a peek hands out a copy in pbuf */
    uint8_t *pbuf;        /* that copy (malloc'd, grown to the largest message peeked) */
    size_t pcap;
    size_t held_idx;
} shm_rx;

_Static_assert(offsetof(shm_tx, sent) == 64 && offsetof(shm_rx, held) == 64 &&
                   offsetof(shm_rx, spin) + offsetof(ferry__spin, probe) <= 128,
               "each side's per-message fields fill its first line (the receive's, two)");

/* Allocated 64-byte aligned (shm.c): base and the fields both sides read per message in
 * the first two lines, then each side's own lines (tx, rx), which also keeps a sending
 * and a receiving thread of one end off each other's lines. */
typedef struct shm_chan {
    struct ferry_chan base;
    _Atomic int dead;         /* 0, -EPIPE or -EBADMSG */
    uint32_t capacity, flags; /* flags: FERRY_CHECKSUM, FERRY_NO_FDS (the creator's) */
    int peer_no_fds;          /* adopter: the creator's SETUP said FERRY_NO_FDS */
    uint64_t max_msg;
    _Atomic int64_t next_live_check; /* coarse clock; the sending and the receiving thread
                                        both use it: relaxed (a rate limit, no data) */
    int link;                        /* control link socket */
    /* This process was registered for expedited membarriers when the end was made
     * (ferry__mb_state > 0 then). Kept here, beside what every message reads, so that a
     * publication reads no global (libferry's data page: one more TLB miss per turn
     * when processes outnumber CPUs). A registration belongs to the mm, which fork
     * copies (only exec clears it): it still holds in a fork child. */
    int mb_ok;
    /* The vDSO's clock_gettime (ferry__vdso_fn when the end was made, > 1), or NULL:
     * the liveness rate limit's clock (ferry__shm_check_alive), for the same reason. The
     * vDSO stays where it is across fork. */
    ferry__vdso_gettime_fn clock;
    int has_cred; /* met through a listener: the link's SO_PEERCRED is the peer */
    uint64_t ring_bytes, mem_cap;
    /* The link and both our futex words, with the process's watcher; read before every
     * sleep: on one line (its own: the next 64 bytes). */
    alignas(64) ferry__watch watch;
    ferry__seg seg_tx, seg_rx; /* the two first segments (control block + first ring) */
    ferry_cred cred;
    alignas(64) shm_tx tx;
    alignas(64) shm_rx rx;
} shm_chan;

_Static_assert(offsetof(shm_chan, clock) + sizeof(void *) <= 128 &&
                   offsetof(shm_chan, watch) % 64 + sizeof(ferry__watch) <= 64,
               "the per-message fields of the end sit in its first two lines, the watch in one");

/* Copy len bytes, inline for a small message (up to 64 bytes: two overlapping fixed-size
 * copies, which compile to a few vector moves), memcpy above: a call into libc and its
 * size dispatch cost as much as the rest of a small send. Either side may be the shared
 * ring; like memcpy, it reads each source byte at most twice and uses nothing it read
 * (the crc of a checksummed channel is checked on the copy). */
static inline void ferry__shm_copy(void *dst, const void *src, size_t len)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (len > 64) {
        memcpy(d, s, len);
    } else if (len >= 32) {
        /* The tail first: in the ring, a record's payload over 32 bytes reaches into its
         * second line, and the producer then writes that line before all of the first
         * (payload head, header, commit word), which the consumer is polling. */
        memcpy(d + len - 32, s + len - 32, 32);
        memcpy(d, s, 32);
    } else if (len >= 16) {
        memcpy(d, s, 16);
        memcpy(d + len - 16, s + len - 16, 16);
    } else if (len >= 8) {
        memcpy(d, s, 8);
        memcpy(d + len - 8, s + len - 8, 8);
    } else {
        for (size_t i = 0; i < len; i++) d[i] = s[i];
    }
}

/* Gathering: a side that streams faster than its peer should not take the peer's lines
 * while the peer works on them. A consumer that has read up to the producer
 * (shm_rx.c, ferry__shm_rx_gather) waits until the record FERRY__GATHER_AHEAD records
 * ahead is committed, and a producer that found the ring full (shm_tx.c, tx_gather)
 * until the consumer freed room for as many records, each at most FERRY__GATHER_NS and at most a
 * quarter of the ring ahead, looking every FERRY__GATHER_POLL pauses. Hints only: what is then read
 * or written is checked as always. */
#define FERRY__GATHER_AHEAD 128u
#define FERRY__GATHER_NS    4000
#define FERRY__GATHER_POLL  16u

static inline void ferry__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* shm_live.c */
int ferry__shm_alive(void *chan); /* ferry__alive_fn: poll the link */

#define FERRY__LIVE_CHECK_NS (10 * 1000 * 1000) /* a send or empty poll asks this often */

/* ferry__shm_alive, at most every FERRY__LIVE_CHECK_NS (coarse clock); inline: every
 * send runs it. */
static inline int ferry__shm_check_alive(shm_chan *c)
{
    struct timespec ts;
    int64_t now = c->clock && c->clock(CLOCK_MONOTONIC_COARSE, &ts) == 0
                      ? (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec
                      : ferry__coarse_ns_slow();
    /* Relaxed: a send and a receive on one end may race here; the worst outcome is one
     * extra or one late liveness poll. */
    if (__builtin_expect(now < atomic_load_explicit(&c->next_live_check, memory_order_relaxed), 1))
        return 0;
    atomic_store_explicit(&c->next_live_check, now + FERRY__LIVE_CHECK_NS, memory_order_relaxed);
    return ferry__shm_alive(c);
}
int ferry__shm_fail(shm_chan *c, int err); /* mark broken (-EBADMSG shuts the link down) */

/* shm_tx.c */
int ferry__shm_sendmsg(ferry_chan *ch, const ferry_msg *m, ferry__when *w);
int ferry__shm_loan(ferry_chan *ch, size_t len, void **buf, ferry__when *w);
int ferry__shm_commit(ferry_chan *ch, int64_t type, size_t len);
void ferry__shm_tx_free(shm_chan *c);

/* shm_rx.c */
#define FERRY__RX_BLOCKED 2 /* ferry__shm_rx_next: the fd budget holds the next record back */
/* Read the record at the scan position (the fuzz target fuzz_shm_ring drives this on
 * hostile ring memory). Returns 1 with *e filled for a message (the caller owns e->fds),
 * 0 when nothing is committed there yet, FERRY__RX_BLOCKED when the record carries fds
 * and this end already holds its budget of skipped fds (unless `exempt` and filter
 * matches the record: it is about to be taken), or an error (-EBADMSG: the producer
 * broke the rules; -EPIPE; -ENOMEM). */
int ferry__shm_rx_next(shm_chan *c, rx_entry *e, int64_t filter, int exempt);
/* The receive fast path (filter 0, nothing queued, no peek held, capacity != 0, the
 * channel not dead): the length of the message taken into m, -1 when it must go the
 * general way (nothing is consumed then), or -EBADMSG. */
ssize_t ferry__shm_rx_fast(shm_chan *c, ferry_msg *m, int keep_fds);
/* A stream's receive that found nothing: wait, bounded by FERRY__GATHER_NS and w, for
 * records to gather (probing the ring ahead of the scan position as a hint only; the
 * fuzz target fuzz_shm_ring drives it on hostile rings too). Consumes nothing. */
void ferry__shm_rx_gather(shm_chan *c, ferry__when *w);
ssize_t ferry__shm_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds,
                           ferry__when *w);
int ferry__shm_peek(ferry_chan *ch, int64_t filter, ferry_msg *m, ferry__when *w);
int ferry__shm_release(ferry_chan *ch);
int ferry__shm_fd(ferry_chan *ch);
int ferry__shm_rx_init(shm_chan *c);
void ferry__shm_rx_free(shm_chan *c);

#endif
