// SPDX-License-Identifier: MIT
/*
 * conf.h — the conformance suite's table of transports and the per-transport plumbing
 * behind it (schemes.c), and the before/after inventory of kernel objects (leftovers.c).
 * The checks themselves, the same for every transport, are in conformance.c.
 *
 * A row of the table (struct form) is one address form of one URL scheme: "unix" has
 * two (a socket file and an abstract name), "tcp" two (IPv4 and IPv6), "shm" two (a
 * listener and ferry_pair). The program runs every check on every form of the scheme
 * it is given. A row says how a connected pair is made (ferry_listen in the parent and
 * ferry_chan_open in a forked child, or a pair function before fork) and what the
 * transport can do; a check whose feature a row lacks asserts the documented refusal
 * (-EOPNOTSUPP) or, where nothing can be asserted, prints why it is skipped.
 */
#ifndef FERRY_CONF_H
#define FERRY_CONF_H

#include "testutil.h" /* first: defines _GNU_SOURCE */

#include <ferry/ferry.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capacity modes a transport offers (form.capmodes); the others must be refused by
 * ferry_listen / the pair function with -EOPNOTSUPP. */
#define CAPM_ZERO      (1u << 0) /* capacity 0: rendezvous */
#define CAPM_N         (1u << 1) /* capacity N: at most N messages queued */
#define CAPM_RING      (1u << 2) /* FERRY_CAP_RING: as many as the buffer holds */
#define CAPM_UNBOUNDED (1u << 3) /* FERRY_UNBOUNDED: a send never blocks */
#define CAPM_ALL       (CAPM_ZERO | CAPM_N | CAPM_RING | CAPM_UNBOUNDED)
/* With CAPM_RING: the limit moves on its own (tcp: the peer's kernel keeps taking data
 * into its receive buffer while the application reads nothing), so a send after the
 * first -EAGAIN may succeed a little later; only the -EAGAIN and the delivery of
 * everything sent are asserted. */
#define CAPM_RING_LOOSE (1u << 4)
/* Capacity N is accepted but counted in bytes (System V: msg_qbytes = N full-size
 * messages), so more than N small messages fit: the exact count is not asserted. */
#define CAPM_N_BYTES (1u << 5)

/* How the two ends of a channel are made. */
typedef enum addr_kind {
    ADDR_PAIR,          /* form.pair() in the parent before fork */
    ADDR_SHM,           /* shm:///TMPDIR/sN.sock */
    ADDR_UNIX_PATH,     /* unix:///TMPDIR/uN.sock */
    ADDR_UNIX_ABSTRACT, /* unix://@ferry-conf-PID-N */
    ADDR_TCP4,          /* tcp://127.0.0.1:PORT */
    ADDR_TCP6,          /* tcp://[::1]:PORT */
    ADDR_FIFO,          /* fifo:///TMPDIR/fN (FIFOs fN.c2s and fN.s2c) */
    ADDR_POSIXMQ,       /* posixmq:///ferry-conf-PID-N */
    ADDR_SYSVMQ,        /* sysvmq://KEY (decimal) */
    ADDR_TLS4,          /* tls://127.0.0.1:PORT */
    ADDR_TLS6,          /* tls://[::1]:PORT */
} addr_kind;

/* The kernel object under a stream transport's channel end, for the garbage checks. */
typedef enum raw_kind {
    RAW_NONE,      /* not a byte stream (shm rings, queues) */
    RAW_SEQPACKET, /* an AF_UNIX SOCK_SEQPACKET socket */
    RAW_TCP,       /* an AF_INET / AF_INET6 SOCK_STREAM socket */
    RAW_FIFO,      /* the FIFO PATH.c2s, opened for writing */
    RAW_PIPE,      /* an anonymous pipe's write end */
    RAW_TLS,       /* TLS records on TCP: garbage goes into the encrypted stream as plaintext
                      (ferry__tls_inject), as a peer holding the session could write it */
} raw_kind;

typedef int (*pair_fn)(const ferry_chan_opts *o, ferry_chan **a, ferry_chan **b);

/* One row of the table. */
typedef struct form {
    const char *scheme;  /* the program's argument and the CTest suffix: "unix" */
    const char *name;    /* the address form: "path", "abstract", "ipv4", "listen", ... */
    addr_kind addr;      /* how a pair is made */
    pair_fn pair;        /* ADDR_PAIR: the pair function, NULL when not built */
    const char *missing; /* ADDR_PAIR without pair: what to do about it */
    bool fds;            /* fds ride on messages (else sendmsg with fds: -EOPNOTSUPP) */
    bool creds;          /* ferry_chan_peer knows the peer (else -EOPNOTSUPP) */
    bool death;          /* peer death is seen: -EPIPE once drained */
    bool pollable;       /* ferry_chan_poll_fd gives a pollable fd (else -EOPNOTSUPP) */
    bool zerocopy;       /* ferry_loan/commit/peek/release (else -EOPNOTSUPP) */
    bool crc_always;     /* every frame must carry a crc (a frame without: -EBADMSG) */
    bool raw_peer;       /* a raw writer can stand in for ferry_chan_open */
    bool emsgsize_held;  /* a message refused with -EMSGSIZE leaves the kernel's queue and is
                            held apart: it comes out on the next receive it matches, ahead
                            of older messages (System V: msgrcv cannot look without taking) */
    int64_t type_max;    /* the largest message type, 0: INT64_MAX (sysvmq keeps the top
                            mtypes for itself) */
    int raw_peer_err;    /* what a raw peer's junk gets at ferry_accept or the first receive;
                            0: -EBADMSG (tls: -EPROTO at ferry_accept, not TLS) */
    unsigned capmodes;   /* CAPM_* */
    raw_kind raw;        /* the stream under a channel end, RAW_NONE if none */
    const char *note;    /* what cannot be checked on this transport, and why */
} form;

extern const form conf_forms[];
extern const size_t conf_nforms;

/* One address of a form: the URL and what a raw peer or the inventory needs. */
typedef struct addr {
    char url[320];
    char path[256]; /* unix/fifo: the path; abstract: the name without '@'; mq: "/name" */
    int family;     /* tcp: AF_INET or AF_INET6 */
    uint16_t port;  /* tcp */
    long key;       /* sysvmq */
} addr;

/* ---------------------------------------------------------------- schemes.c */

/* Remember the temporary directory for socket files and FIFOs (call once). */
void conf_init(const char *tmpdir);

/* tls rows: make a CA and a server certificate for localhost, 127.0.0.1 and ::1 (as PEM
 * files in a private directory) and point FERRY_TLS_CERT, FERRY_TLS_KEY and FERRY_TLS_CA
 * at them, so that every ferry_listen and ferry_chan_open with NULL options (the
 * environment's defaults) meets. conf_tls_end removes them. Both exit 2 without TLS. */
void conf_tls_begin(void);
void conf_tls_end(void);

/* Bytes into an end's TLS stream as plaintext (the garbage of RAW_TLS): tls.c's
 * ferry__tls_inject. 0 or -errno. */
int conf_tls_inject(ferry_chan *ch, const void *buf, size_t len);

/* Why f cannot run here (a pair function not built, no IPv6 loopback), or NULL. */
const char *form_unavailable(const form *f);

/* Make a fresh address of f (a new name or key, a free tcp port) into *a and record it
 * for the inventory (leftovers_note_addr). 0 or a negative errno. */
int addr_make(const form *f, addr *a);

/* A raw peer in place of ferry_chan_open (f->raw_peer): connect a raw socket to a, or
 * open a's FIFOs as a client would. Returns the fd to write into; *extra is a second fd
 * the caller closes too (the FIFO read end), or -1. Fails the test on error. */
int raw_connect(const form *f, const addr *a, int *extra);

/* A set of open descriptor numbers (< 1024). */
typedef struct fdset {
    uint64_t bits[16];
} fdset;

void fdset_take(fdset *s);

/* The stream fd of this process's channel end: the one descriptor of kind f->raw that
 * is open now and was not in before (taken just before the end was made). Fails the
 * test unless there is exactly one. */
int raw_find(const form *f, const addr *a, const fdset *before);

/* Kinds of garbage for the mid-stream check. */
enum {
    G_JUNK,     /* bytes that are no frame at all */
    G_VERSION,  /* a frame header with version 2 */
    G_RESERVED, /* reserved byte set */
    G_FLAGS,    /* an unknown flag bit */
    G_NFDS,     /* 17 fds */
    G_LEN,      /* payload length max_msg + 1 */
    G_TYPE,     /* a negative type */
    G_CRC,      /* a crc that does not match */
    G_NOCRC,    /* no crc where every frame must carry one (crc_always only) */
    G_COUNT
};

/* Write garbage of that kind for a channel of max_msg into buf (>= 128 bytes); returns
 * its length, 0 when the kind does not apply to f. *what names it. */
size_t garbage_make(const form *f, int kind, size_t max_msg, uint8_t *buf, const char **what);

/* ---------------------------------------------------------------- leftovers.c */

/* Inventory of what a transport can leave behind: the temporary directory, /dev/mqueue,
 * System V message queues (/proc/sysvipc/msg), ferry names in /dev/shm, abstract unix
 * sockets named by this run, tcp listeners. Begin before the first channel, end after
 * the last: fails the test if anything this run made is still there. */
void leftovers_begin(const char *tmpdir);
void leftovers_end(void);
/* Attribute an address (names, keys, ports) or a process to this run. */
void leftovers_note_addr(const addr *a);
void leftovers_note_pid(pid_t pid);
/* Number of entries in the temporary directory. */
int tmpdir_entries(void);
/* Number of ferry memfd mappings in this process (shm segments still mapped). */
int memfd_maps(void);

#endif
