// SPDX-License-Identifier: MIT
/*
 * test_ls_helper.c — a helper for test_ls.sh (built with the tests, never installed):
 *   test_ls_helper register NAME   own NAME at ferryd (policy mode 0644), print "ready",
 *                                  then accept connections (closing each) until killed
 *   test_ls_helper connect NAME    connect to NAME once and close; exit 0 or 1
 *   test_ls_helper send URL        ferry_chan_open(URL), send one message, close
 *   test_ls_helper listen URL      ferry_listen(URL) (queues: with FERRY_PERSIST and
 *                                  max_msg 1024), print "ready URL" (ferry_listener_url:
 *                                  sysvmq://#ID for a private queue), wait until killed
 *   test_ls_helper leave URL       ferry_listen(URL) (no FERRY_PERSIST), print "ready",
 *                                  accept, receive one message, send "bye" and close the
 *                                  channel and the listener (an opener is attached: the
 *                                  listener leaves the queues to it), print "left", wait
 *                                  until killed
 *   test_ls_helper hold URL        ferry_chan_open(URL), send one message, print "ready",
 *                                  wait until killed (holding the channel)
 *   test_ls_helper poke MSQID      send one non-ferry message (mtype 1) into System V
 *                                  queue MSQID, print "ready", wait until killed
 *   test_ls_helper region NAME SIZE [PATH]  a region of SIZE bytes (a file at PATH, mode
 *                                  0600, when given; else a memfd) published as NAME
 *                                  (mode 0666: anyone may open it read-only), print
 *                                  "ready", wait until killed
 *   test_ls_helper state NAME      a state (64 bytes at most) published as NAME, likewise
 *   test_ls_helper hold-region NAME  open region NAME read-only by name and map it, print
 *                                  "ready", wait until killed
 *   test_ls_helper mkregion PATH SIZE  make a persistent region file and exit
 *   test_ls_helper forge WHAT      raw System V writes, as a hostile process would; prints
 *                                  the queue id involved and exits:
 *                                  "pair": a door (0600) and a back queue whose mode lets
 *                                  others write (0622), with a hello and an owner record
 *                                  naming this (soon dead) process; prints the door's id
 *                                  "attach=ID": appends to door ID an attach record that
 *                                  names this (soon dead) process as listener and opener
 * Rules: "ready" is printed (and flushed) only once the name, listener or channel exists;
 * any failure prints the error on stderr and exits 1; bad usage exits 2.
 */
#include <ferry/ferry.h>

#include "core/proc.h"
#include "transport/sysvmq_rec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

#define SEC ((int64_t)1000000000)

static void ready(void)
{
    fputs("ready\n", stdout);
    fflush(stdout);
}

typedef struct rec_msg {
    long mtype;
    uint8_t text[FERRY__SVQ_REC_MAX];
} rec_msg;

/* Send record r into queue id; 0 or -errno. */
static int rec_send(int id, const ferry__svq_rec *r)
{
    rec_msg m = {.mtype = FERRY__SVQ_REC_MTYPE};
    size_t n = svq_rec_encode(r, m.text);
    return msgsnd(id, &m, n, IPC_NOWAIT) == 0 ? 0 : -errno;
}

static int forge(const char *what)
{
    uint64_t me = ferry__proc_self();
    if (strcmp(what, "pair") == 0) {
        int door = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
        int back = msgget(IPC_PRIVATE, IPC_CREAT | 0622);
        if (door < 0 || back < 0) return -errno;
        ferry__svq_rec own = {.kind = FERRY__SVQ_OWNER, .door = door, .listener = me};
        ferry__svq_rec hello = {
            .kind = FERRY__SVQ_HELLO, .back = back, .max_msg = 64, .listener = me};
        int rc = rec_send(back, &own);
        if (rc == 0) rc = rec_send(door, &hello);
        if (rc == 0) printf("%d\n", door);
        return rc;
    }
    if (strncmp(what, "attach=", 7) == 0) {
        int door = atoi(what + 7);
        ferry__svq_rec a = {
            .kind = FERRY__SVQ_ATTACH, .back = 0, .door = door, .listener = me, .opener = me};
        int rc = rec_send(door, &a);
        if (rc == 0) printf("%d\n", door);
        return rc;
    }
    return -EINVAL;
}

/* The region commands (see above): an exit status, or -1 when argv is none of them. */
static int region_cmd(int argc, char **argv)
{
    ferry_region *r = NULL;
    ferry_state *st = NULL;
    ferry_pub *pub = NULL;
    ferry_region_opts o;
    ferry_region_opts_init(&o);
    int rc;
    if (strcmp(argv[1], "region") == 0 && (argc == 4 || argc == 5)) {
        if (argc == 5) {
            o.flags = FERRY_REGION_FILE;
            o.path = argv[4];
        }
        ferry_policy p;
        ferry_policy_init(&p);
        p.mode = 0666;
        if ((rc = ferry_region_create((size_t)atol(argv[3]), &o, &r)) < 0 ||
            (rc = ferry_publish(argv[2], ferry_region_fd(r), FERRY_OBJ_REGION, &p, &pub, 5 * SEC)) <
                0)
            goto fail;
    } else if (strcmp(argv[1], "state") == 0 && argc == 3) {
        ferry_policy p;
        ferry_policy_init(&p);
        p.mode = 0666;
        if ((rc = ferry_state_create(64, NULL, &st)) < 0 ||
            (rc = ferry_publish(argv[2], ferry_state_fd(st), FERRY_OBJ_STATE, &p, &pub, 5 * SEC)) <
                0)
            goto fail;
    } else if (strcmp(argv[1], "hold-region") == 0 && argc == 3) {
        void *a;
        if ((rc = ferry_region_open(argv[2], FERRY_REGION_READ, &r, 5 * SEC)) < 0 ||
            (rc = ferry_region_map(r, FERRY_REGION_READ, &a)) < 0)
            goto fail;
    } else if (strcmp(argv[1], "mkregion") == 0 && argc == 4) {
        o.flags = FERRY_REGION_FILE;
        o.path = argv[2];
        if ((rc = ferry_region_create((size_t)atol(argv[3]), &o, &r)) < 0) goto fail;
        ferry_region_close(r);
        return 0;
    } else {
        return -1;
    }
    ready();
    for (;;) pause();
fail:
    fprintf(stderr, "test_ls_helper %s %s: %s\n", argv[1], argv[2], ferry_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    int rrc = argc >= 3 ? region_cmd(argc, argv) : -1;
    if (rrc >= 0) return rrc;
    if (argc != 3) {
        fputs(
            "usage: test_ls_helper register|connect NAME | listen|leave|send|hold URL | poke ID | "
            "forge WHAT\n",
            stderr);
        return 2;
    }
    int rc;
    if (strcmp(argv[1], "register") == 0) {
        ferry_policy p;
        ferry_policy_init(&p);
        p.mode = 0644;
        ferry_listener *l;
        if ((rc = ferry_register(argv[2], &p, NULL, &l, 5 * SEC)) < 0) goto fail;
        ready();
        for (;;) { /* one client at a time, until it hangs up */
            ferry_chan *ch;
            char buf[64];
            if (ferry_accept(l, &ch, FERRY_FOREVER) < 0) continue;
            while (ferry_recv(ch, buf, sizeof buf, 10 * SEC) >= 0) {
            }
            ferry_chan_close(ch);
        }
    }
    if (strcmp(argv[1], "connect") == 0) {
        ferry_chan *ch;
        if ((rc = ferry_connect(argv[2], FERRY_KIND_UNIX, NULL, &ch, 5 * SEC)) < 0) goto fail;
        ferry_chan_close(ch);
        return 0;
    }
    if (strcmp(argv[1], "send") == 0) {
        ferry_chan *ch;
        if ((rc = ferry_chan_open(argv[2], NULL, &ch, 5 * SEC)) < 0) goto fail;
        rc = ferry_send(ch, "queued", 6, 5 * SEC);
        ferry_chan_close(ch);
        if (rc < 0) goto fail;
        return 0;
    }
    if (strcmp(argv[1], "listen") == 0) {
        ferry_chan_opts o;
        ferry_chan_opts_init(&o);
        if (strncmp(argv[2], "posixmq:", 8) == 0 || strncmp(argv[2], "sysvmq:", 7) == 0) {
            o.flags |= FERRY_PERSIST;
            o.max_msg = 1024; /* within every queue limit */
        }
        ferry_listener *l;
        if ((rc = ferry_listen(argv[2], &o, &l)) < 0) goto fail;
        char url[128];
        if ((rc = (int)ferry_listener_url(l, url, sizeof url)) < 0) goto fail;
        printf("ready %s\n", url);
        fflush(stdout);
        for (;;) pause();
    }
    if (strcmp(argv[1], "leave") == 0) {
        ferry_listener *l;
        ferry_chan *ch;
        char buf[64];
        if ((rc = ferry_listen(argv[2], NULL, &l)) < 0) goto fail;
        ready();
        if ((rc = ferry_accept(l, &ch, 5 * SEC)) < 0) goto fail;
        if ((rc = (int)ferry_recv(ch, buf, sizeof buf, 5 * SEC)) < 0) goto fail;
        if ((rc = ferry_send(ch, "bye", 3, 5 * SEC)) < 0) goto fail;
        ferry_chan_close(ch);
        ferry_listener_close(l);
        fputs("left\n", stdout);
        fflush(stdout);
        for (;;) pause();
    }
    if (strcmp(argv[1], "hold") == 0) {
        ferry_chan *ch;
        if ((rc = ferry_chan_open(argv[2], NULL, &ch, 5 * SEC)) < 0) goto fail;
        if ((rc = ferry_send(ch, "held", 4, 5 * SEC)) < 0) goto fail;
        ready();
        for (;;) pause();
    }
    if (strcmp(argv[1], "poke") == 0) {
        struct {
            long mtype;
            char text[1];
        } m = {1, {'x'}};
        if (msgsnd(atoi(argv[2]), &m, 1, IPC_NOWAIT) < 0) {
            perror("test_ls_helper poke: msgsnd");
            return 1;
        }
        ready();
        for (;;) pause();
    }
    if (strcmp(argv[1], "forge") == 0) {
        if ((rc = forge(argv[2])) < 0) {
            fprintf(stderr, "test_ls_helper forge %s: %s\n", argv[2], strerror(-rc));
            return 1;
        }
        return 0;
    }
    fputs("usage: test_ls_helper register|connect NAME | listen|leave|send|hold URL | poke ID | "
          "forge "
          "WHAT\n",
          stderr);
    return 2;
fail:
    fprintf(stderr, "test_ls_helper %s %s: %s\n", argv[1], argv[2], ferry_strerror(rc));
    return 1;
}
