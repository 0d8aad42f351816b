/*
 * test_ls_helper.c — a helper for test_ls.sh (built with the tests, never installed):
 *   test_ls_helper register NAME   own NAME at ferryd (policy mode 0644), print "ready",
 *                                  then accept connections (closing each) until killed
 *   test_ls_helper connect NAME    connect to NAME once and close; exit 0 or 1
 *   test_ls_helper send URL        ferry_chan_open(URL), send one message, close
 *   test_ls_helper listen URL      ferry_listen(URL) (queues: with FERRY_PERSIST and
 *                                  max_msg 1024), print "ready", wait until killed
 * Rules: "ready" is printed (and flushed) only once the name or listener exists; any
 * failure prints the ferry error on stderr and exits 1; bad usage exits 2.
 */
#include <ferry/ferry.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SEC ((int64_t)1000000000)

static void ready(void)
{
    fputs("ready\n", stdout);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: test_ls_helper register|connect NAME | listen|send URL\n", stderr);
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
        ready();
        for (;;) pause();
    }
    fputs("usage: test_ls_helper register|connect NAME | listen|send URL\n", stderr);
    return 2;
fail:
    fprintf(stderr, "test_ls_helper %s %s: %s\n", argv[1], argv[2], ferry_strerror(rc));
    return 1;
}
