// SPDX-License-Identifier: MIT
/*
 * test_mutex.c — ferry_mutex basics, in both modes (plain and FERRY_MUTEX_FAIR):
 *  - lock/unlock/trylock; relock by the owner thread -EDEADLK (lock and trylock);
 *    unlock by a thread that does not hold it -EPERM (another thread, another process,
 *    nobody holding); consistent without EOWNERDEAD -EINVAL;
 *  - held by another process: trylock -EBUSY, lock(FERRY_NOW) -EAGAIN, lock(bound)
 *    -ETIMEDOUT after [t, t + 1 s); signals (SIGALRM every 5 ms, no SA_RESTART) neither
 *    shorten nor lengthen the bound; the lock is taken as soon as the holder lets go;
 *  - adoption of garbage -EBADMSG (bad fd, /dev/null, a pipe, unsealed and wrong-size
 *    memfds, another kind's object, a wrong version, scribbled flags or pthread kind),
 *    and the adopted fd is closed on failure;
 *  - sharing: across fork (the handle), across exec (an inherited fd number, adopted by
 *    the new program), and by name through a real ferryd (ferry_publish +
 *    ferry_mutex_open; -ENOENT for a missing name, -EPROTOTYPE for another kind).
 * Every case runs in its own process and checks its fd count before and after.
 */
#include "mutex_testutil.h"

#include "sync/obj.h"

#include <sys/time.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static uint32_t mode; /* the flags of the current round */

/* ------------------------------------------------------------------ basics */

static void case_basic(void)
{
    int fds = fd_count();
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(1u << 5, &m), -EINVAL);
    CHECK_EQ(ferry_mutex_create(mode, NULL), -EINVAL);
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    CHECK(ferry_mutex_fd(m) >= 0);
    CHECK(fcntl(ferry_mutex_fd(m), F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(ferry_mutex_unlock(m), -EPERM); /* nobody holds it */
    CHECK_EQ(ferry_mutex_consistent(m), -EINVAL);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), 0);
        CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), -EDEADLK);
        CHECK_EQ(ferry_mutex_lock(m, 10 * MS), -EDEADLK);
        CHECK_EQ(ferry_mutex_lock(m, FERRY_NOW), -EDEADLK);
        CHECK_EQ(ferry_mutex_trylock(m), -EDEADLK);
        CHECK_EQ(ferry_mutex_consistent(m), -EINVAL);
        CHECK_EQ(ferry_mutex_unlock(m), 0);
        CHECK_EQ(ferry_mutex_unlock(m), -EPERM);
        CHECK_EQ(ferry_mutex_trylock(m), 0);
        CHECK_EQ(ferry_mutex_unlock(m), 0);
        CHECK_EQ(ferry_mutex_lock(m, FERRY_NOW), 0);
        CHECK_EQ(ferry_mutex_unlock(m), 0);
        CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), 0);
        CHECK_EQ(ferry_mutex_unlock(m), 0);
    }
    /* close while holding releases it (and leaves glibc's robust list sane) */
    CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), 0);
    int dup = fcntl(ferry_mutex_fd(m), F_DUPFD_CLOEXEC, 0);
    ferry_mutex_close(m);
    CHECK_EQ(ferry_mutex_adopt(dup, &m), 0);
    CHECK_EQ(ferry_mutex_trylock(m), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    ferry_mutex_close(NULL);
    CHECK_EQ(fd_count(), fds);
}

/* Unlock from a thread that does not hold it. */
static void *unlock_thread(void *arg)
{
    ferry_mutex *m = arg;
    CHECK_EQ(ferry_mutex_unlock(m), -EPERM);
    CHECK_EQ(ferry_mutex_trylock(m), -EBUSY);
    CHECK_EQ(ferry_mutex_lock(m, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_mutex_consistent(m), -EINVAL);
    return NULL;
}

static void case_other_thread(void)
{
    int fds = fd_count();
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, unlock_thread, m) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------ another process holds */

static void case_held_elsewhere(void)
{
    int fds = fd_count();
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    holder h;
    hold_start(&h, m); /* a forked child holds it: the handle works across fork */
    CHECK_EQ(ferry_mutex_trylock(m), -EBUSY);
    CHECK_EQ(ferry_mutex_lock(m, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_mutex_unlock(m), -EPERM);
    CHECK_EQ(ferry_mutex_consistent(m), -EINVAL);
    const int64_t bounds[] = {1 * MS, 50 * MS, 300 * MS};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        int64_t t0 = now_ns();
        CHECK_EQ(ferry_mutex_lock(m, bounds[i]), -ETIMEDOUT);
        int64_t el = now_ns() - t0;
        if (el < bounds[i] || el >= bounds[i] + SEC)
            fprintf(stderr, "bound %lld ns took %lld ns\n", (long long)bounds[i], (long long)el);
        CHECK(el >= bounds[i] && el < bounds[i] + SEC);
    }
    /* Waiting forever: taken right after the holder lets go. */
    put_byte(h.down[1], 'U');
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), 0);
    CHECK(now_ns() - t0 < 2 * SEC);
    wait_ok(h.pid);
    close(h.up[0]);
    close(h.down[1]);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    /* A bounded wait that succeeds. */
    hold_start(&h, m);
    put_byte(h.down[1], 'U');
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), 0);
    wait_ok(h.pid);
    close(h.up[0]);
    close(h.down[1]);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    CHECK_EQ(fd_count(), fds);
}

static _Atomic int alarms;
static void on_tick(int sig)
{
    (void)sig;
    atomic_fetch_add(&alarms, 1);
}

static void case_eintr(void)
{
    int fds = fd_count();
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    holder h;
    hold_start(&h, m);
    struct sigaction sa = {.sa_handler = on_tick}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_mutex_lock(m, 300 * MS), -ETIMEDOUT);
    int64_t el = now_ns() - t0;
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
#ifdef UNDER_TSAN
    sleep_ms(1); /* TSan holds a handler back until a call it intercepts, and merges */
    CHECK(atomic_load(&alarms) >= 1);
#else
    CHECK(atomic_load(&alarms) > 10);    /* the signals did come */
#endif
    CHECK(el >= 300 * MS && el < 300 * MS + SEC);
    hold_release(&h);
    ferry_mutex_close(m);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------------ adopt */

static int sealed_memfd(size_t size, int seals)
{
    int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)size) == 0);
    if (seals) CHECK(fcntl(fd, F_ADD_SEALS, seals) == 0);
    return fd;
}

/* adopt must refuse fd with -EBADMSG and close it. */
static void refused(int fd)
{
    ferry_mutex *m = NULL;
    CHECK_EQ(ferry_mutex_adopt(fd, &m), -EBADMSG);
    CHECK(m == NULL);
    CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
}

/* A real mutex object's fd with one word changed (at offset off). */
static int scribbled(size_t off, uint32_t val)
{
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    int fd = fcntl(ferry_mutex_fd(m), F_DUPFD_CLOEXEC, 0);
    ferry_mutex_close(m);
    uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    memcpy(p + off, &val, sizeof val);
    munmap(p, 4096);
    return fd;
}

static void case_adopt_garbage(void)
{
    int fds = fd_count();
    ferry_mutex *m = NULL;
    CHECK_EQ(ferry_mutex_adopt(-1, &m), -EBADMSG);
    refused(open("/dev/null", O_RDWR | O_CLOEXEC));
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    close(p[1]);
    refused(p[0]);
    refused(sealed_memfd(4096, 0));                              /* not sealed */
    refused(sealed_memfd(0, F_SEAL_SHRINK | F_SEAL_GROW));       /* empty */
    refused(sealed_memfd(4096, F_SEAL_SHRINK | F_SEAL_GROW));    /* zeros: no header */
    refused(sealed_memfd(1 << 27, F_SEAL_SHRINK | F_SEAL_GROW)); /* too large */
    /* Another kind's object, a real one of the right size. */
    int fd;
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(FERRY_OBJ_SEM, 4096, &fd, &seg), 0);
    ferry__seg_unmap(&seg);
    refused(fd);
    /* A mutex object, each header word and the flags and pthread kind scribbled. */
    refused(scribbled(0, 0x12345678));                          /* magic */
    refused(scribbled(4, FERRY_OBJ_BARRIER));                   /* kind */
    refused(scribbled(8, FERRY__OBJ_VERSION + 1));              /* version */
    refused(scribbled(12, 8192));                               /* size */
    refused(scribbled(sizeof(ferry__obj_hdr), 0x80));           /* flags */
    if (!(mode & FERRY_MUTEX_FAIR))                             /* fair mode has no pthread mutex */
        refused(scribbled(sizeof(ferry__obj_hdr) + 8 + 16, 0)); /* pthread kind */
    /* And an untouched one is accepted (the scribbles above were the only fault). */
    CHECK_EQ(ferry_mutex_adopt(scribbled(sizeof(ferry__obj_hdr) + 4, 0), &m), 0);
    CHECK_EQ(ferry_mutex_trylock(m), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------------ exec */

static int exec_child(int fd, int said)
{
    ferry_mutex *m;
    int rc = ferry_mutex_adopt(fd, &m);
    if (rc != 0) {
        fprintf(stderr, "exec child: adopt %d\n", rc);
        return 1;
    }
    if ((rc = ferry_mutex_trylock(m)) != -EBUSY) { /* the parent holds it */
        fprintf(stderr, "exec child: trylock %d\n", rc);
        return 1;
    }
    /* Only now may the parent let go: it used to sleep 100 ms instead, which an exec'd
     * TSan binary on a loaded machine can outlast (then this trylock found it free). */
    if (write(said, "B", 1) != 1) return 1;
    close(said);
    if ((rc = ferry_mutex_lock(m, 10 * SEC)) != 0) { /* until the parent lets go */
        fprintf(stderr, "exec child: lock %d\n", rc);
        return 1;
    }
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    return 0;
}

static void case_exec(void)
{
    int fds = fd_count();
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), 0);
    int inh = dup(ferry_mutex_fd(m)); /* no FD_CLOEXEC: crosses exec */
    CHECK(inh >= 0);
    int said[2]; /* the child says it found the mutex held (only then do we unlock) */
    CHECK(pipe(said) == 0);
    CHECK(fcntl(said[0], F_SETFD, FD_CLOEXEC) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char arg[16], arg2[16];
        snprintf(arg, sizeof arg, "%d", inh);
        snprintf(arg2, sizeof arg2, "%d", said[1]);
        char *args[] = {"test_mutex", "--exec-child", arg, arg2, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(inh);
    close(said[1]);
    CHECK_EQ(get_byte_ms(said[0], 10000), 'B'); /* the child adopted and found it held */
    close(said[0]);
    sleep_ms(20); /* usually: the child is waiting in lock now (either way is correct) */
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    wait_ok(pid);
    CHECK_EQ(ferry_mutex_trylock(m), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------------ by name */

static void named_child(void *arg)
{
    int *said = arg;
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_open("org.test.mutex", &m, 5 * SEC), 0);
    CHECK_EQ(ferry_mutex_trylock(m), -EBUSY); /* the parent holds it */
    put_byte(said[1], 'B');                   /* only now may it let go */
    CHECK_EQ(ferry_mutex_lock(m, 10 * SEC), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
}

static void case_named(void)
{
    test_broker b;
    broker_start(&b);
    int fds = fd_count();
    ferry_mutex *m, *m2;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    ferry_pub *pub, *pub2;
    CHECK_EQ(
        ferry_publish("org.test.mutex", ferry_mutex_fd(m), FERRY_OBJ_MUTEX, NULL, &pub, 5 * SEC),
        0);
    CHECK_EQ(ferry_mutex_open("org.test.nothere", &m2, 5 * SEC), -ENOENT);
    /* A semaphore-kind object under another name. */
    int sfd;
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(FERRY_OBJ_SEM, 4096, &sfd, &seg), 0);
    ferry__seg_unmap(&seg);
    CHECK_EQ(ferry_publish("org.test.sem", sfd, FERRY_OBJ_SEM, NULL, &pub2, 5 * SEC), 0);
    CHECK_EQ(ferry_mutex_open("org.test.sem", &m2, 5 * SEC), -EPROTOTYPE);
    /* Opened in this process too: a second mapping of the same lock. */
    CHECK_EQ(ferry_mutex_open("org.test.mutex", &m2, 5 * SEC), 0);
    CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), 0);
    CHECK_EQ(ferry_mutex_trylock(m2), -EDEADLK); /* the same lock, this thread holds it */
    int said[2];
    CHECK(pipe2(said, O_CLOEXEC) == 0);
    pid_t pid = spawn(named_child, said);
    CHECK_EQ(get_byte_ms(said[0], 10000), 'B');
    close(said[0]);
    close(said[1]);
    sleep_ms(20);
#ifdef UNDER_TSAN
    /* TSan knows a pthread mutex by its address: the other mapping is another mutex. */
    CHECK_EQ(ferry_mutex_unlock(m), 0);
#else
    CHECK_EQ(ferry_mutex_unlock(m2), 0); /* through either handle */
#endif
    wait_ok(pid);
    ferry_mutex_close(m2);
    ferry_pub_close(pub2);
    close(sfd);
    /* Opened objects outlive the name. */
    ferry_pub_close(pub);
    CHECK_EQ(ferry_mutex_open("org.test.mutex", &m2, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_mutex_trylock(m), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--exec-child") == 0)
        return exec_child(atoi(argv[2]), atoi(argv[3]));
    const uint32_t modes[] = {0, FERRY_MUTEX_FAIR};
    for (int i = 0; i < 2; i++) {
        mode = modes[i];
        printf("test_mutex: mode %s\n", mode ? "fair" : "plain");
        run_case("basic", case_basic, 20);
        run_case("other thread", case_other_thread, 20);
        run_case("held by another process", case_held_elsewhere, 20);
        run_case("EINTR and the deadline", case_eintr, 20);
        run_case("adopt garbage", case_adopt_garbage, 20);
        run_case("exec", case_exec, 20);
        run_case("by name through ferryd", case_named, 20);
    }
    printf("test_mutex: ok\n");
    return 0;
}
