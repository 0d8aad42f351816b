// SPDX-License-Identifier: MIT
/*
 * ring_designs.c — a self-contained experiment: what does a receiver save by waiting on the
 * record's own commit word (ferry's ring, src/shm/ring.h) instead of on a separate head
 * index line? It measures both ring designs side by side, with the bare cache line as floor.
 *
 * Two processes (fork), pinned to CPU 0 (parent) and CPU 1 (child), share one
 * MAP_SHARED|MAP_ANONYMOUS region holding two SPSC rings of 256 KiB (one per direction).
 * Records are laid out as in ferry: 64-byte aligned, a 32-byte header (ferry's field
 * layout), the payload right after it, padding to 64 bytes; a record never crosses the
 * ring's end (a WRAP record pads to the end instead). The parent ping-pongs messages of 8,
 * 64 and 256 bytes with the child, which echoes each one back, in three designs:
 *   index       the producer writes header + payload, then stores the ring's head index
 *               (release) on its own cache line; the consumer spins on that line (acquire),
 *               then reads the record.
 *   record-seq  ferry's design: no head index. The producer clears the next slot's seq word,
 *               then stores the record's seq (release) in the record header; the consumer
 *               spins (acquire) on the seq word of the record it expects.
 *   spin-line   the physical floor: one shared cache line carrying a counter, as ferry
 *               bench's spin-baseline. Reference only: it carries no payload, and it is
 *               measured again next to each size so that every ratio compares runs taken
 *               close together in time.
 * In both ring designs the consumer publishes its tail (release) on its own line after
 * every message and the producer re-reads it only when the ring looks full (cached); both
 * write the same header fields and copy the payload in and out through a local buffer, as
 * ferry_send/ferry_recv do, in ferry's order (payload, header, [clear next slot], publish).
 * So the only difference is the line the consumer waits on.
 *
 * Each round trip is timed with clock_gettime(CLOCK_MONOTONIC), one call per round trip
 * (every figure includes one clock read). Per run: a warm-up, then the measured round
 * trips; the table gives p50/p99/p99.9, p50 over the spin-line p50 of the same repetition
 * and size, and the mean (the percentiles are quantized by the clock, which may tick in
 * steps of 10 ns under a hypervisor; the mean is not). The whole set is repeated,
 * interleaved (index, record-seq, spin-line for each size, then again); last come the
 * medians per design and size of the p50s and of the means, and the index - record-seq
 * difference, paired within each repetition, expressed in ns and in cache-line transfers
 * (one transfer taken as half a spin-line round trip).
 *
 * Rules: every wait is a spin with `pause` (no futex, no syscall) bounded by a deadline
 * (WAIT_TIMEOUT_NS), and a failing side raises a shared abort flag, so the program always
 * stops by itself. Every payload carries its sequence number in its first and last 8 bytes
 * and every header its seq and length; both sides check them, so a broken ring cannot give
 * a pretty number. Exit 0 on success, 1 when a payload or header check fails, 2 on any
 * other failure (timeout, mmap, fork, bad arguments).
 *
 * Build and run (from the repository root):
 *   gcc -std=c11 -O2 -Wall -Wextra -Werror bench/ring_designs.c -o /tmp/rd && /tmp/rd
 * Options: --quick (fewer round trips: the CTest smoke test), --iters N, --reps N.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include <errno.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING_BYTES      ((uint64_t)256 * 1024) /* one direction, a power of two */
#define REC_ALIGN       64u
#define HDR_BYTES       32u
#define REC_MAGIC       0x59525246u /* "FRRY" */
#define F_WRAP          0x01u       /* pads to the ring's end; no payload */
#define MAX_PAYLOAD     256u
#define SPIN_CHECK      4096u /* spins between two looks at the clock and the abort flag */
#define WAIT_TIMEOUT_NS ((int64_t)15 * 1000 * 1000 * 1000) /* 2 s ran out at load 60 */
#define MAX_REPS        9
#define PARENT_CPU      0
#define CHILD_CPU       1

enum { OK = 0, BAD_PAYLOAD = 1, FAILED = 2 }; /* also the exit codes */

enum design { D_INDEX, D_RECSEQ, D_SPIN, N_DESIGNS };
static const char *const design_name[N_DESIGNS] = {"index", "record-seq", "spin-line"};

static const uint32_t sizes[] = {8, 64, 256};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

/* The record header as it lies in the ring: ferry's 32-byte layout (src/shm/ring.h). */
typedef struct rec {
    uint32_t magic;
    uint8_t version, flags, nfds, reserved;
    int64_t type;
    _Atomic uint64_t seq; /* record-seq: the commit word; index: a check value only */
    uint32_t len, crc;
} rec;

_Static_assert(sizeof(rec) == HDR_BYTES, "record header must be 32 bytes");

/* One direction. Each group on its own cache line, written by one side only. */
typedef struct ring {
    alignas(64) _Atomic uint64_t head; /* producer-written, per message; index design only */
    alignas(64) _Atomic uint64_t tail; /* consumer-written, per message; read when full */
    alignas(64) unsigned char data[RING_BYTES];
} ring;

typedef struct shared {
    ring r[2];                          /* r[0]: parent -> child, r[1]: child -> parent */
    alignas(64) _Atomic uint64_t line;  /* spin-line */
    alignas(64) _Atomic uint32_t ready; /* the child is pinned and about to wait */
    _Atomic uint32_t abort;             /* a side failed: the other stops waiting */
} shared;

typedef struct tx { /* producer's private state for one ring */
    ring *r;
    enum design d;
    uint64_t head;       /* where the next record goes (free-running byte count) */
    uint64_t tail_cache; /* the consumer's tail, as last read */
    uint64_t seq;        /* seq of the last record written */
} tx;

typedef struct rx { /* consumer's private state for one ring */
    ring *r;
    enum design d;
    uint64_t scan;       /* where the next record is */
    uint64_t head_cache; /* index design: the producer's head, as last read */
    uint64_t expect;     /* seq of the next record */
} rx;

static shared *g_sh;         /* the current run's region (each process its own mapping) */
static const char *g_who;    /* "parent" or "child", for messages */
static char g_why[160] = ""; /* the parent's first failure, for the final message */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Record a failure, tell the other side to stop waiting, and return code. */
static int fail(int code, const char *what, uint64_t a, uint64_t b)
{
    snprintf(g_why, sizeof g_why, "%s: %s (%llu, %llu)", g_who, what, (unsigned long long)a,
             (unsigned long long)b);
    fprintf(stderr, "ring_designs: %s\n", g_why);
    /* Relaxed: the flag carries no data; it only ends the other side's spins early. */
    atomic_store_explicit(&g_sh->abort, 1, memory_order_relaxed);
    return code;
}

typedef struct spin {
    unsigned k;
    int64_t deadline;
} spin;

/* One step of a bounded spin: pause; every SPIN_CHECK steps look at the abort flag and the
 * clock. 0 means give up (the other side failed, or WAIT_TIMEOUT_NS passed). */
static inline int spin_more(spin *s)
{
    cpu_relax();
    if (++s->k % SPIN_CHECK != 0) return 1;
    /* Relaxed: nothing is read on the strength of this flag; see fail(). */
    if (atomic_load_explicit(&g_sh->abort, memory_order_relaxed)) return 0;
    int64_t t = now_ns();
    if (s->deadline == 0)
        s->deadline = t + WAIT_TIMEOUT_NS;
    else if (t > s->deadline)
        return 0;
    return 1;
}

static int spin_gave_up(const char *what, uint64_t a, uint64_t b)
{
    /* Relaxed: as in spin_more. */
    if (atomic_load_explicit(&g_sh->abort, memory_order_relaxed)) return FAILED;
    return fail(FAILED, what, a, b);
}

static rec *rec_at(ring *r, uint64_t pos)
{
    return (rec *)(r->data + (pos & (RING_BYTES - 1)));
}

static uint64_t footprint(uint32_t len)
{
    return (HDR_BYTES + len + REC_ALIGN - 1) & ~(uint64_t)(REC_ALIGN - 1);
}

/* ------------------------------------------------------------------ producer */

/* Make the record h (header and payload written) visible; the next one goes at `next`. */
static void tx_publish(tx *t, rec *h, uint64_t next)
{
    uint64_t seq = ++t->seq;
    if (t->d == D_RECSEQ) {
        /* Relaxed: clear the next slot's commit word so stale bytes of an earlier lap can
         * never pass for a committed record. The release store below orders this clearing
         * before the new seq, and the consumer looks at the next slot only after acquiring
         * that seq, so it always sees 0 or the next record's own seq there. */
        atomic_store_explicit(&rec_at(t->r, next)->seq, 0, memory_order_relaxed);
        /* Release: the header, the payload and the clearing above happen before any
         * consumer load (acquire) that reads this seq. This store is the publication. */
        atomic_store_explicit(&h->seq, seq, memory_order_release);
    } else {
        /* Relaxed: here seq is only a check value; the release store of head publishes it
         * together with the rest of the record. */
        atomic_store_explicit(&h->seq, seq, memory_order_relaxed);
        /* Release: the whole record (header, seq, payload) happens before any consumer
         * load (acquire) that reads this head. This store is the publication. */
        atomic_store_explicit(&t->r->head, next, memory_order_release);
    }
    t->head = next;
}

static void put_header(rec *h, uint8_t flags, uint32_t len)
{
    h->magic = REC_MAGIC;
    h->version = 1;
    h->flags = flags;
    h->nfds = 0;
    h->reserved = 0;
    h->type = 0;
    h->len = len;
    h->crc = 0;
}

/* Wait until `need` bytes from the head are free. The cached tail is usually enough; only
 * when it says "full" do we pull the consumer's tail line over. */
static int tx_room(tx *t, uint64_t need)
{
    if (t->head + need - t->tail_cache <= RING_BYTES) return OK;
    spin s = {0, 0};
    do {
        /* Acquire: pairs with the consumer's release store of tail; its reads of every byte
         * below tail are done before we overwrite them. */
        uint64_t tail = atomic_load_explicit(&t->r->tail, memory_order_acquire);
        if (tail > t->head || tail < t->tail_cache) return fail(FAILED, "bad tail", tail, t->head);
        t->tail_cache = tail;
        if (t->head + need - tail <= RING_BYTES) return OK;
    } while (spin_more(&s));
    return spin_gave_up("ring full: the consumer does not move", t->head, t->tail_cache);
}

/* Reserve room for a payload of len bytes; NULL on failure. A record that would cross the
 * ring's end is preceded by a WRAP record that pads to the end. Room is always kept for
 * the next header slot too (ferry does the same; record-seq clears it on publishing). */
static unsigned char *tx_begin(tx *t, uint32_t len)
{
    uint64_t fp = footprint(len), to_end = RING_BYTES - (t->head & (RING_BYTES - 1));
    uint64_t need = (fp <= to_end ? fp : to_end + fp) + REC_ALIGN;
    if (tx_room(t, need) != OK) return NULL;
    if (fp > to_end) {
        rec *w = rec_at(t->r, t->head);
        put_header(w, F_WRAP, 0);
        tx_publish(t, w, t->head + to_end);
    }
    return (unsigned char *)rec_at(t->r, t->head) + HDR_BYTES;
}

static void tx_commit(tx *t, uint32_t len)
{
    rec *h = rec_at(t->r, t->head);
    put_header(h, 0, len);
    tx_publish(t, h, t->head + footprint(len));
}

/* ------------------------------------------------------------------ consumer */

/* Wait for the next message and return its header (WRAP records passed over), or NULL. */
static rec *rx_wait(rx *x, int *rc)
{
    for (;;) {
        rec *h = rec_at(x->r, x->scan);
        uint64_t s;
        spin sp = {0, 0};
        if (x->d == D_RECSEQ) {
            for (;;) {
                /* Acquire: pairs with the producer's release store of this record's seq;
                 * once it is read, the header, the payload and the cleared seq of the
                 * next slot are visible. We spin on the record's own first line. */
                s = atomic_load_explicit(&h->seq, memory_order_acquire);
                if (s != 0) break;
                if (!spin_more(&sp)) {
                    *rc = spin_gave_up("no record committed", x->scan, x->expect);
                    return NULL;
                }
            }
        } else {
            while (x->head_cache == x->scan) {
                /* Acquire: pairs with the producer's release store of head; every record
                 * below it is fully written once it is read. We spin on the head line. */
                x->head_cache = atomic_load_explicit(&x->r->head, memory_order_acquire);
                if (x->head_cache == x->scan && !spin_more(&sp)) {
                    *rc = spin_gave_up("head does not move", x->scan, x->expect);
                    return NULL;
                }
            }
            if (x->head_cache - x->scan > RING_BYTES) {
                *rc = fail(BAD_PAYLOAD, "head out of range", x->head_cache, x->scan);
                return NULL;
            }
            /* Relaxed: ordered after the record's writes by the acquire of head above. */
            s = atomic_load_explicit(&h->seq, memory_order_relaxed);
        }
        if (s != x->expect || h->magic != REC_MAGIC || h->version != 1) {
            *rc = fail(BAD_PAYLOAD, "bad header: seq / expected", s, x->expect);
            return NULL;
        }
        x->expect++;
        if (h->flags & F_WRAP) {
            uint64_t off = x->scan & (RING_BYTES - 1);
            if (h->len != 0 || off + footprint(0) > RING_BYTES) {
                *rc = fail(BAD_PAYLOAD, "bad WRAP record", h->len, off);
                return NULL;
            }
            x->scan += RING_BYTES - off;
            continue;
        }
        /* Ask for the record's second line now, so its transfer overlaps the header checks
         * (as ferry's rx_next does), in both designs alike; only when there is one. */
        if (h->len > REC_ALIGN - HDR_BYTES) __builtin_prefetch((unsigned char *)h + REC_ALIGN);
        return h;
    }
}

/* The record of len bytes at the scan position has been read: publish our progress. */
static void rx_done(rx *x, uint32_t len)
{
    x->scan += footprint(len);
    /* Release: our reads of every record below the new tail are done before the producer,
     * which acquires tail, may overwrite those bytes. */
    atomic_store_explicit(&x->r->tail, x->scan, memory_order_release);
}

/* ------------------------------------------------------------------ messages */

static void put_seq(unsigned char *buf, uint32_t len, uint64_t seq)
{
    memcpy(buf, &seq, 8);
    memcpy(buf + len - 8, &seq, 8);
}

static int check_seq(const unsigned char *buf, uint32_t len, uint64_t want)
{
    uint64_t first, last;
    memcpy(&first, buf, 8);
    memcpy(&last, buf + len - 8, 8);
    if (first != want) return fail(BAD_PAYLOAD, "payload: first 8 bytes / expected", first, want);
    if (last != want) return fail(BAD_PAYLOAD, "payload: last 8 bytes / expected", last, want);
    return OK;
}

/* ferry_send: copy buf into the ring in place and publish it. */
static int ring_send(tx *t, const unsigned char *buf, uint32_t len)
{
    unsigned char *p = tx_begin(t, len);
    if (!p) return FAILED;
    memcpy(p, buf, len);
    tx_commit(t, len);
    return OK;
}

/* ferry_recv: copy the next message out of the ring, free its bytes, check its payload. */
static int ring_recv(rx *x, unsigned char *buf, uint32_t len, uint64_t want)
{
    int rc = OK;
    rec *h = rx_wait(x, &rc);
    if (!h) return rc;
    uint32_t got = h->len;
    if (got != len) return fail(BAD_PAYLOAD, "length / expected", got, len);
    memcpy(buf, (unsigned char *)h + HDR_BYTES, len);
    rx_done(x, len);
    return check_seq(buf, len, want);
}

/* spin-line: wait until the line holds want. Anything but want or our own last value is
 * corruption. */
static int line_wait(uint64_t want, uint64_t mine)
{
    spin s = {0, 0};
    for (;;) {
        /* Acquire: pairs with the other side's release store, so whatever it wrote before
         * is visible here (nothing in this floor, but a channel publishes a payload this
         * way, so the floor pays for the same ordering). */
        uint64_t v = atomic_load_explicit(&g_sh->line, memory_order_acquire);
        if (v == want) return OK;
        if (v != mine) return fail(BAD_PAYLOAD, "spin line: value / expected", v, want);
        if (!spin_more(&s)) return spin_gave_up("no answer on the spin line", v, want);
    }
}

static void line_post(uint64_t v)
{
    /* Release: orders our earlier writes before the other side's acquire (see line_wait). */
    atomic_store_explicit(&g_sh->line, v, memory_order_release);
}

/* ------------------------------------------------------------------ the two sides */

/* The child: echo `total` messages back, checking each one first. Returns an exit code. */
static int echo(enum design d, uint32_t len, uint64_t total)
{
    unsigned char buf[MAX_PAYLOAD];
    if (d == D_SPIN) {
        for (uint64_t i = 0; i < total; i++) {
            int rc = line_wait(2 * i + 1, 2 * i);
            if (rc != OK) return rc;
            line_post(2 * i + 2);
        }
        return OK;
    }
    rx in = {.r = &g_sh->r[0], .d = d, .expect = 1};
    tx out = {.r = &g_sh->r[1], .d = d};
    for (uint64_t i = 0; i < total; i++) {
        int rc = ring_recv(&in, buf, len, i);
        if (rc == OK) rc = ring_send(&out, buf, len);
        if (rc != OK) return rc;
    }
    return OK;
}

/* The parent: total round trips; the last total - warm are timed into lat[]. */
static int drive(enum design d, uint32_t len, uint64_t warm, uint64_t total, uint64_t *lat)
{
    unsigned char buf[MAX_PAYLOAD], back[MAX_PAYLOAD];
    for (uint32_t k = 0; k < len; k++) buf[k] = (unsigned char)(k * 7 + 1);
    tx out = {.r = &g_sh->r[0], .d = d};
    rx in = {.r = &g_sh->r[1], .d = d, .expect = 1};
    int64_t prev = now_ns();
    for (uint64_t i = 0; i < total; i++) {
        int rc;
        if (d == D_SPIN) {
            line_post(2 * i + 1);
            rc = line_wait(2 * i + 2, 2 * i + 1);
        } else {
            put_seq(buf, len, i);
            rc = ring_send(&out, buf, len);
            if (rc == OK) rc = ring_recv(&in, back, len, i);
        }
        if (rc != OK) return rc;
        int64_t t = now_ns();
        if (i >= warm) lat[i - warm] = (uint64_t)(t - prev);
        prev = t;
    }
    return OK;
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

/* One measured run: a fresh zeroed region, a fresh child. */
static int run_one(enum design d, uint32_t len, uint64_t warm, uint64_t n, uint64_t *lat)
{
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (sh == MAP_FAILED) {
        snprintf(g_why, sizeof g_why, "mmap: %s", strerror(errno));
        return FAILED;
    }
    g_sh = sh;
    g_who = "parent";
    fflush(stdout); /* the child must not inherit (and later lose or repeat) buffered text */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(g_why, sizeof g_why, "fork: %s", strerror(errno));
        munmap(sh, sizeof *sh);
        return FAILED;
    }
    if (pid == 0) {
        g_who = "child";
        (void)pin(CHILD_CPU); /* failure was reported once by main() */
        /* Relaxed: ready carries no data (the region is zero from mmap, before fork); it
         * only says that the child is pinned and about to wait. */
        atomic_store_explicit(&sh->ready, 1, memory_order_relaxed);
        _exit(echo(d, len, warm + n));
    }
    int rc = OK;
    spin s = {0, 0};
    /* Relaxed: see the store above. */
    while (!atomic_load_explicit(&sh->ready, memory_order_relaxed))
        if (!spin_more(&s)) {
            rc = spin_gave_up("the child did not start", 0, 0);
            break;
        }
    if (rc == OK) rc = drive(d, len, warm, warm + n, lat);
    /* The child's every wait is bounded and it sees the abort flag, so this returns. */
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    int crc = w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : FAILED;
    if (crc != OK && (rc == OK || g_why[0] == 0))
        snprintf(g_why, sizeof g_why, "child failed (exit %d; see its message above)", crc);
    if (crc == BAD_PAYLOAD || (rc == OK && crc != OK)) rc = crc; /* a bad payload wins */
    munmap(sh, sizeof *sh);
    return rc;
}

/* ------------------------------------------------------------------ statistics */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile num/den of sorted v[0..n). */
static uint64_t pct(const uint64_t *v, uint64_t n, uint64_t num, uint64_t den)
{
    uint64_t rank = (n * num + den - 1) / den;
    return v[rank ? rank - 1 : 0];
}

typedef struct fig {
    uint64_t p50, p99, p999;
    double mean; /* not quantized like the percentiles (the clock ticks in ~10 ns steps here) */
} fig;

static double median(double *v, int n) /* median of n <= MAX_REPS values (sorts v) */
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: ring_designs [--quick] [--iters N] [--reps N]\n"
                    "  --quick    20000 round trips per run (smoke test)\n"
                    "  --iters N  measured round trips per run (default 200000)\n"
                    "  --reps N   repetitions of the whole set, 1..9 (default 3)\n");
}

int main(int argc, char **argv)
{
    uint64_t n = 200000, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            n = 20000;
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 100, 100000000, &n) < 0) return usage(), FAILED;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 1, MAX_REPS, &reps) < 0) return usage(), FAILED;
        } else {
            usage();
            return FAILED;
        }
    }
    uint64_t warm = n / 10 < 2000 ? 2000 : n / 10;

    cpu_set_t allowed;
    int pinned = sched_getaffinity(0, sizeof allowed, &allowed) == 0 &&
                 CPU_ISSET(PARENT_CPU, &allowed) && CPU_ISSET(CHILD_CPU, &allowed) &&
                 pin(PARENT_CPU) == 0;
    if (!pinned)
        fprintf(stderr,
                "ring_designs: warning: cannot pin to CPUs %d and %d; running unpinned"
                " (figures are not comparable)\n",
                PARENT_CPU, CHILD_CPU);

    uint64_t *lat = malloc(n * sizeof *lat);
    if (!lat) return fprintf(stderr, "ring_designs: out of memory\n"), FAILED;
    static fig res[MAX_REPS][N_SIZES][N_DESIGNS];
    int64_t t0 = now_ns();

    printf("ring_designs: %llu measured round trips per run (after %llu warm-up), %llu "
           "repetitions, CPUs %d/%d%s\n",
           (unsigned long long)n, (unsigned long long)warm, (unsigned long long)reps, PARENT_CPU,
           CHILD_CPU, pinned ? "" : " (NOT pinned)");
    printf("spin-line carries no payload: its row at each size is the floor measured next to "
           "that size's runs.\n\n");
    printf("%-4s %-11s %5s %8s %8s %9s %9s %8s\n", "rep", "design", "size", "p50_ns", "p99_ns",
           "p99.9_ns", "p50/spin", "mean_ns");
    for (uint64_t r = 0; r < reps; r++) {
        for (size_t s = 0; s < N_SIZES; s++) {
            for (int d = 0; d < N_DESIGNS; d++) {
                int rc = run_one((enum design)d, sizes[s], warm, n, lat);
                if (rc != OK) {
                    fprintf(stderr, "ring_designs: %s %u B failed: %s\n", design_name[d], sizes[s],
                            g_why);
                    free(lat);
                    return rc;
                }
                double sum = 0;
                for (uint64_t i = 0; i < n; i++) sum += (double)lat[i];
                qsort(lat, n, sizeof *lat, cmp_u64);
                res[r][s][d] = (fig){pct(lat, n, 1, 2), pct(lat, n, 99, 100),
                                     pct(lat, n, 999, 1000), sum / (double)n};
            }
            for (int d = 0; d < N_DESIGNS; d++) {
                const fig *f = &res[r][s][d];
                printf("%-4llu %-11s %5u %8llu %8llu %9llu %9.2f %8.1f\n",
                       (unsigned long long)r + 1, design_name[d], sizes[s],
                       (unsigned long long)f->p50, (unsigned long long)f->p99,
                       (unsigned long long)f->p999, (double)f->p50 / (double)res[r][s][D_SPIN].p50,
                       f->mean);
            }
        }
    }
    free(lat);

    printf(
        "\nmedian over the %llu repetitions of the p50 (min..max of the p50s) and of the mean:\n",
        (unsigned long long)reps);
    printf("%-11s %5s %8s %15s %9s %8s\n", "design", "size", "p50_ns", "p50_range", "p50/spin",
           "mean_ns");
    for (size_t s = 0; s < N_SIZES; s++) {
        double med[N_DESIGNS], lo[N_DESIGNS], hi[N_DESIGNS], mmean[N_DESIGNS];
        for (int d = 0; d < N_DESIGNS; d++) {
            double v[MAX_REPS], m[MAX_REPS];
            lo[d] = 1e300;
            hi[d] = 0;
            for (uint64_t r = 0; r < reps; r++) {
                v[r] = (double)res[r][s][d].p50;
                m[r] = res[r][s][d].mean;
                lo[d] = v[r] < lo[d] ? v[r] : lo[d];
                hi[d] = v[r] > hi[d] ? v[r] : hi[d];
            }
            med[d] = median(v, (int)reps);
            mmean[d] = median(m, (int)reps);
        }
        for (int d = 0; d < N_DESIGNS; d++) {
            char range[32];
            snprintf(range, sizeof range, "[%.0f..%.0f]", lo[d], hi[d]);
            printf("%-11s %5u %8.0f %15s %9.2f %8.1f\n", design_name[d], sizes[s], med[d], range,
                   med[d] / med[D_SPIN], mmean[d]);
        }
        /* Paired per repetition (the runs of one repetition and size are adjacent in time).
         * A round trip is two messages, and spin-line's round trip is two one-way line
         * transfers, so one transfer costs about spin / 2 and the saving per message, in
         * transfers, is ((index - record_seq) / 2) / (spin / 2) = (index - record_seq) / spin. */
        double dp[MAX_REPS], dm[MAX_REPS], xp[MAX_REPS], xm[MAX_REPS];
        for (uint64_t r = 0; r < reps; r++) {
            const fig *f = res[r][s];
            dp[r] = (double)f[D_INDEX].p50 - (double)f[D_RECSEQ].p50;
            dm[r] = f[D_INDEX].mean - f[D_RECSEQ].mean;
            xp[r] = dp[r] / (double)f[D_SPIN].p50;
            xm[r] = dm[r] / f[D_SPIN].mean;
        }
        double mdp = median(dp, (int)reps), mdm = median(dm, (int)reps);
        printf("  %u B, index - record-seq per round trip (median of paired differences): "
               "p50 %+.0f ns, mean %+.1f ns;\n"
               "  per message: p50 %+.0f ns = %+.2f line transfers, mean %+.1f ns = %+.2f "
               "line transfers\n",
               sizes[s], mdp, mdm, mdp / 2, median(xp, (int)reps), mdm / 2, median(xm, (int)reps));
    }
    printf("\ntotal %.1f s\n", (double)(now_ns() - t0) / 1e9);
    return OK;
}
