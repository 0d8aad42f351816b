// SPDX-License-Identifier: MIT
/*
 * test_broker_pidfd — ferryd learns of a server's death from the process itself (its
 * pidfd), not only from its connections: a server whose broker connections live on in a
 * forked child (fork without exec keeps them open) still loses its names within 100 ms
 * of kill -9, and watchers hear FERRY_EV_DIED. ferryd holds one pidfd per process, not
 * one per connection: three listeners of one process cost it four descriptors.
 */
#include "testutil.h"

#include "brokerutil.h"

#include <dirent.h>
#include <ferry/ferry.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>

#define SEC ((int64_t)1000000000)

static int fds_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ferryd's descriptor count once it has stopped changing (it closes the connections of
 * clients that hung up, such as brokerutil's readiness probes, when it gets to them). */
static int settled_fds(pid_t pid)
{
    int n = fds_of(pid);
    for (int same = 0; same < 5; sleep_ms(10)) {
        int m = fds_of(pid);
        same = m == n ? same + 1 : 0;
        n = m;
    }
    return n;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_start(&b);
    int fds = fd_count();
    ferry_watch *w;
    CHECK_EQ(ferry_watch_open("org.pid.*", &w, SEC), 0);
    int before = settled_fds(b.pid);

    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t srv = fork();
    CHECK(srv >= 0);
    if (srv == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        const char *names[] = {"org.pid.a", "org.pid.b", "org.pid.c"};
        ferry_listener *l[3];
        for (int i = 0; i < 3; i++) CHECK_EQ(ferry_register(names[i], NULL, NULL, &l[i], SEC), 0);
        pid_t heir = fork(); /* keeps every broker connection open after we die */
        CHECK(heir >= 0);
        if (heir == 0) {
            pause(); /* wait here until killed */
            _exit(0);
        }
        CHECK(write(ready[1], &heir, sizeof heir) == sizeof heir);
        pause();
        _exit(0);
    }
    close(ready[1]);
    pid_t heir;
    CHECK(read(ready[0], &heir, sizeof heir) == sizeof heir);
    close(ready[0]);
    ferry_watch_event ev;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
        CHECK_EQ(ev.kind, FERRY_EV_OWNED);
    }
    CHECK_EQ(settled_fds(b.pid), before + 4); /* three connections and one pidfd */

    int64_t t0 = now_ns();
    CHECK_EQ(kill(srv, SIGKILL), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
        CHECK_EQ(ev.kind, FERRY_EV_DIED);
        CHECK_EQ(ev.info.pid, srv);
    }
    int64_t took = now_ns() - t0;
    printf("names freed %lld us after kill -9 (connections still open in pid %d)\n",
           (long long)(took / 1000), (int)heir);
    CHECK(took < SEC / 10);
    CHECK_EQ(settled_fds(b.pid), before); /* connections and pidfd closed by ferryd */
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.pid.a", &in, SEC), -ENOENT);
    waitpid(srv, NULL, 0);
    kill(heir, SIGKILL);
    ferry_watch_close(w);
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
