// SPDX-License-Identifier: MIT
/*
 * cmd_msg.c — `ferry send TARGET` and `ferry recv TARGET`: messages to and from a URL
 * (ferry_chan_open, or ferry_listen with --listen) or a ferryd name (ferry_connect, or
 * ferry_register with --listen; a name that is a published mailbox is sent to / received
 * from as one, a broadcast is subscribed to). Also the engine of `ferry mailbox send|recv`
 * and `ferry sub` (cmd_obj.c), which insist on their kind.
 *
 * Rules: every wait is made in slices (io.c) so SIGINT/SIGTERM end the command cleanly,
 * closing what it made (a listener's queues, FIFOs and socket files are removed); recv
 * ends at --count messages, or when the peer closes (0; 6 when fewer than --count came);
 * with --listen it accepts the next peer after one closes. Received fds are printed
 * (where they point) and closed. The receive buffer starts at the channel's max_msg and
 * never grows past it.
 */
#define _GNU_SOURCE
#include "commands.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { T_CHAN, T_MAILBOX, T_BCAST };

typedef struct target {
    int kind;
    const char *spec;
    ferry_listener *l;
    ferry_chan *ch;
    ferry_mailbox *mb;
    ferry_bcast *bc;
    ferry_sub *sub;
} target;

static void target_close(target *t)
{
    ferry_chan_close(t->ch);
    ferry_listener_close(t->l);
    ferry_mailbox_close(t->mb);
    ferry_sub_close(t->sub);
    ferry_bcast_close(t->bc);
    memset(t, 0, sizeof *t);
}

/* Wait (in slices) for the next peer of a listener. */
static int accept_peer(target *t, const cli_opts *o)
{
    cli_deadline d;
    cli_deadline_set(&d, o->timeout_ns);
    for (;;) {
        int64_t s = cli_slice(&d);
        if (s == -EINTR || s == -ETIMEDOUT) return (int)s;
        int rc = ferry_accept(t->l, &t->ch, s);
        if (rc != -ETIMEDOUT && rc != -EAGAIN) return rc;
    }
}

/* Open what TARGET names for sending (sending 1) or receiving. want: -1 anything, else
 * the FERRY_OBJ_* kind the command insists on. Returns 0 or -errno; *what names the step
 * that failed. */
static int target_open(target *t, const cli_opts *o, const char *spec, int sending, int want,
                       const char **what)
{
    memset(t, 0, sizeof *t);
    t->spec = spec;
    ferry_chan_opts co;
    ferry_chan_opts_init(&co);
    co.mode = o->mode;
    int64_t to = o->timeout_ns;
    int rc;
    *what = spec;
    if (cli_is_url(spec)) {
        if (want >= 0) return -EINVAL;
        if (!o->listen) return ferry_chan_open(spec, &co, &t->ch, to);
        if ((rc = ferry_listen(spec, &co, &t->l)) < 0) return rc;
        char url[512];
        if (ferry_listener_url(t->l, url, sizeof url) > 0) /* tcp port 0: the port it got */
            fprintf(stderr, "ferry %s: listening on %s\n", sending ? "send" : "recv", url);
        return accept_peer(t, o);
    }
    if (o->listen) {
        if (want >= 0) return -EINVAL;
        ferry_policy pol;
        ferry_policy_init(&pol);
        pol.mode = o->mode;
        if ((rc = ferry_register(spec, &pol, &co, &t->l, to)) < 0) return rc;
        fprintf(stderr, "ferry %s: listening as %s\n", sending ? "send" : "recv", spec);
        return accept_peer(t, o);
    }
    uint32_t kind = 0;
    if (want < 0) {
        rc = ferry_connect(spec, o->unix_kind ? FERRY_KIND_UNIX : FERRY_KIND_SHM, &co, &t->ch, to);
        if (rc != -EPROTOTYPE) return rc;
    }
    ferry_name_info info;
    if ((rc = ferry_lookup(spec, &info, to)) < 0) return rc;
    kind = info.kind;
    if (want >= 0 && kind != (uint32_t)want) return -EPROTOTYPE;
    if (kind == FERRY_OBJ_MAILBOX) {
        t->kind = T_MAILBOX;
        return ferry_mailbox_open(spec, &t->mb, to);
    }
    if (kind == FERRY_OBJ_BCAST && !sending) {
        t->kind = T_BCAST;
        if ((rc = ferry_bcast_open(spec, &t->bc, to)) < 0) return rc;
        return ferry_bcast_subscribe(t->bc, o->drop_oldest ? FERRY_SUB_DROP_OLDEST : 0, &t->sub);
    }
    return -EPROTOTYPE;
}

static int send_one(target *t, const cli_opts *o, int64_t type, const void *data, size_t len,
                    int fd)
{
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.data = (void *)data;
    m.len = len;
    if (fd >= 0) {
        m.nfds = 1;
        m.fds[0] = fd;
    }
    cli_deadline d;
    cli_deadline_set(&d, o->timeout_ns);
    for (;;) {
        int64_t s = cli_slice(&d);
        if (s == -EINTR || s == -ETIMEDOUT) return (int)s;
        int rc = t->kind == T_MAILBOX ? ferry_mailbox_send(t->mb, type, data, len, s)
                                      : ferry_sendmsg(t->ch, &m, s);
        if (rc != -ETIMEDOUT && rc != -EAGAIN) return rc;
    }
}

int msg_send(const char *cmd, const cli_opts *o, const char *spec, const char *payload, int want)
{
    cli_signals();
    int fd = -1;
    if (o->fd_path && (fd = open(o->fd_path, O_RDONLY | O_CLOEXEC)) < 0)
        return cli_fail(cmd, o->fd_path, -errno);
    cli_input in;
    int rc = cli_input_open(&in, o, payload);
    if (rc < 0) {
        if (fd >= 0) close(fd);
        cli_input_close(&in);
        return cli_fail(cmd, rc == -EINVAL ? "input does not decode as --format says" : "input",
                        rc);
    }
    target t;
    const char *what;
    rc = target_open(&t, o, spec, 1, want, &what);
    if (rc == 0 && fd >= 0 && t.kind != T_CHAN) rc = -EOPNOTSUPP, what = "--fd on a mailbox";
    int ex = 0;
    if (rc == -EINTR) { /* stopped while waiting for a peer: nothing to say */
    } else if (rc < 0) {
        ex = cli_fail(cmd, what, rc);
    } else {
        const void *data;
        size_t len;
        long n = 0;
        while ((rc = cli_input_next(&in, &data, &len)) == 1) {
            if (n++ > 0 && o->interval_ns > 0) cli_sleep_ns(o->interval_ns);
            if (cli_stop) break;
            if ((rc = send_one(&t, o, in.type, data, len, fd)) < 0) break;
        }
        if (rc < 0 && rc != -EINTR)
            ex = cli_fail(cmd, rc == -EINVAL && n ? "input does not decode as --format says" : spec,
                          rc);
    }
    target_close(&t);
    cli_input_close(&in);
    if (fd >= 0) close(fd);
    return ex;
}

/* The next message of t into *buf (grown up to max as needed). Returns its length, or
 * -errno. */
static ssize_t recv_one(target *t, const cli_opts *o, char **buf, size_t *cap, size_t max,
                        cli_meta *meta, int fds[FERRY_MAX_FDS])
{
    cli_deadline d;
    cli_deadline_set(&d, o->timeout_ns);
    memset(meta, 0, sizeof *meta);
    for (;;) {
        int64_t s = cli_slice(&d);
        if (s == -EINTR || s == -ETIMEDOUT) return s;
        ssize_t rc;
        int64_t type = 0;
        if (t->kind == T_MAILBOX) {
            rc = ferry_mailbox_recv(t->mb, o->type_filter, &type, *buf, *cap, s);
        } else if (t->kind == T_BCAST) {
            rc = ferry_sub_recv(t->sub, *buf, *cap, &type, s);
            meta->has_lost = 1;
            meta->lost = ferry_sub_lost(t->sub);
        } else {
            ferry_msg m;
            memset(&m, 0, sizeof m);
            m.data = *buf;
            m.cap = *cap;
            rc = ferry_recvmsg(t->ch, &m, o->type_filter, s);
            if (rc == -EMSGSIZE && m.len > *cap && m.len <= max) {
                char *nb = realloc(*buf, m.len);
                if (!nb) return -ENOMEM;
                *buf = nb;
                *cap = m.len;
                continue;
            }
            if (rc >= 0) {
                type = m.type;
                meta->nfds = (int)m.nfds;
                memcpy(fds, m.fds, sizeof m.fds);
                meta->fds = fds;
                meta->has_cred = ferry_chan_peer(t->ch, &meta->cred) == 0;
            }
        }
        if (rc == -ETIMEDOUT || rc == -EAGAIN) continue;
        meta->has_type = 1;
        meta->type = type;
        return rc;
    }
}

int msg_recv(const char *cmd, const cli_opts *o, const char *spec, int want)
{
    cli_signals();
    target t;
    const char *what;
    int rc = target_open(&t, o, spec, 0, want, &what);
    if (rc < 0) {
        target_close(&t);
        return rc == -EINTR ? 0 : cli_fail(cmd, what, rc);
    }
    size_t max;
    if (t.kind == T_MAILBOX) {
        ferry_mailbox_counters st;
        ferry_mailbox_counters_init(&st);
        rc = ferry_mailbox_stats(t.mb, &st);
        max = rc < 0 ? 1 << 20 : st.max_msg;
    } else if (t.kind == T_BCAST) {
        max = ferry_bcast_max_msg(t.bc);
    } else {
        max = ferry_chan_max_msg(t.ch);
    }
    if (max == 0 || max > FERRY_MAX_MSG_LIMIT) max = FERRY_MAX_MSG_LIMIT;
    /* A channel says how large a message is (-EMSGSIZE, m.len): start small and grow.
     * Mailboxes and broadcasts do not: take their max_msg at once. */
    size_t cap = t.kind != T_CHAN || max < 65536 ? max : 65536;
    char *buf = malloc(cap);
    int ex = 0;
    long got = 0;
    if (!buf) {
        target_close(&t);
        return cli_fail(cmd, "buffer", -ENOMEM);
    }
    while (o->count < 0 || got < o->count) {
        cli_meta meta;
        int fds[FERRY_MAX_FDS];
        ssize_t n = recv_one(&t, o, &buf, &cap, max, &meta, fds);
        if (n == -EPIPE && t.l && !cli_stop) { /* --listen: the peer left; take the next */
            ferry_chan_close(t.ch);
            t.ch = NULL;
            n = accept_peer(&t, o);
            if (n == 0) continue;
            if (n == -EBUSY) n = -EPIPE; /* fifo, sysvmq: one peer per listener, it left */
        }
        if (n == -EINTR) break;
        if (n == -EPIPE && o->count < 0) break; /* the end of the stream */
        if (n < 0) {
            ex = cli_fail(cmd, spec, (int)n);
            break;
        }
        cli_print_msg(stdout, o, buf, (size_t)n, &meta);
        for (int i = 0; i < meta.nfds; i++) close(fds[i]);
        got++;
        if (ferror(stdout)) {
            ex = cli_fail(cmd, "stdout", -EIO);
            break;
        }
    }
    free(buf);
    target_close(&t);
    return ex;
}

static void send_usage(FILE *f)
{
    fputs("usage: ferry send TARGET [--data STRING | --file PATH | --lines] [options]\n"
          "  TARGET: a URL (shm:///p, unix:///p, tcp://h:p, fifo:///p, posixmq:///n,\n"
          "  sysvmq://KEY) or a ferryd name (a server, or a published mailbox).\n"
          "  The message: --data, --file, or stdin (all of it; one per line with --lines).\n"
          "  --format raw|text|hex|json|base64   how the input is decoded (default text)\n"
          "  --type N          the message type (default 0)\n"
          "  --count N         send the message N times (--lines: at most N lines)\n"
          "  --interval T      pause between messages (e.g. 100ms)\n"
          "  --fd PATH         send PATH, opened read-only, with each message (shm, unix)\n"
          "  --listen          listen on TARGET (a URL, or own the name) for one peer\n"
          "  --mode OCTAL      --listen: the socket's or the name's mode (default 0600)\n"
          "  --unix            a name: a unix channel instead of shared memory\n"
          "  --timeout T       each wait: 2.5s, 100ms, forever (default), now\n"
          "  Exit: 0 sent, 2 usage, 3 timeout, 4 no such name / nobody listens,\n"
          "  5 permission denied, 6 peer gone, 7 wrong kind of name, 1 other.\n",
          f);
}

static void recv_usage(FILE *f)
{
    fputs("usage: ferry recv TARGET [options]\n"
          "  TARGET: a URL or a ferryd name (a server, a mailbox, or a broadcast).\n"
          "  Prints each message: [type T, N bytes, uid U gid G pid P, fd PATH] payload\n"
          "  (sender identity where the transport knows it).\n"
          "  --format raw|text|hex|json|base64   how to print (default text; raw: bytes only)\n"
          "  -q, --quiet       the payload only, without type, size and sender\n"
          "  --type-filter N   0 any, N > 0 exactly N, N < 0 the lowest type <= -N\n"
          "  --count N         stop after N messages (default: until the peer closes)\n"
          "  --listen          listen on TARGET (a URL, or own the name); after a peer\n"
          "                    closes, accept the next\n"
          "  --mode OCTAL      --listen: the socket's or the name's mode (default 0600)\n"
          "  --unix            a name: a unix channel instead of shared memory\n"
          "  --drop-oldest     a broadcast: never hold the publisher back (losses counted)\n"
          "  --timeout T       each wait: 2.5s, 100ms, forever (default), now\n"
          "  Exit: 0, 2 usage, 3 timeout, 4 no such name / nobody listens, 5 permission\n"
          "  denied, 6 peer gone before --count messages, 7 wrong kind of name, 1 other.\n",
          f);
}

int send_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("send", argc, argv,
                       CLI_O_IN | CLI_O_FORMAT | CLI_O_COUNT | CLI_O_TIMEOUT | CLI_O_LISTEN |
                           CLI_O_MODE | CLI_O_UNIX,
                       1, 1, send_usage, &o);
    if (rc >= 0) return rc;
    return msg_send("send", &o, o.pos[0], NULL, -1);
}

int recv_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("recv", argc, argv,
                       CLI_O_OUT | CLI_O_FORMAT | CLI_O_COUNT | CLI_O_TIMEOUT | CLI_O_LISTEN |
                           CLI_O_MODE | CLI_O_UNIX | CLI_O_OBJ,
                       1, 1, recv_usage, &o);
    if (rc >= 0) return rc;
    return msg_recv("recv", &o, o.pos[0], -1);
}
