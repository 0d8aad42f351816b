// SPDX-License-Identifier: MIT
/*
 * test_fs_races — the filesystem races of a listener's socket file and of fifo://
 * (docs/security.md): run as root; the parts that need another user run in children
 * that drop to throwaway uids (secutil.h).
 *  - chmod after bind: right after bind() / mkfifo() makes a name in a directory others
 *    may write, the "attacker" (this test's wrapper of bind and mkfifo, -Wl,--wrap: the
 *    worst moment, every time) replaces it with a symlink to a file of the listener's
 *    user. unix:// and shm:// bind in a private directory and place the finished socket
 *    file: no moment to swap, the listen works, mode exactly 0666; with a path too long
 *    for that, and on fifo://, the swap happens and ferry_listen (mode 0666) is -EACCES.
 *    Always the symlink's target keeps its mode 0600. A symlink planted before
 *    ferry_listen: the listen is -EADDRINUSE and the target is untouched.
 *  - stale replacement: 150 rounds of 4 processes that call ferry_listen at once on a
 *    stale socket file (bound, then its socket closed): exactly one gets 0, the others
 *    -EADDRINUSE, and the file is then the winner's live listener (a connect succeeds).
 *  - a live listener whose backlog is full (connects nobody accepts, until EAGAIN): a
 *    second ferry_listen on its path returns -EADDRINUSE at once (< 2 s; it used to
 *    block in connect) and the live listener's file is the same inode afterwards.
 *  - fifo:// opens only FIFOs owned by the caller's euid or root, never a symlink:
 *    regular files at the FIFOs' paths -EACCES; FIFOs of another throwaway uid (mode
 *    0666, a reader present) -EACCES for a throwaway uid; a symlink to our own FIFO
 *    -EACCES; root's FIFOs are accepted (the open then waits for a HELLO: -ETIMEDOUT).
 *  Nothing is left behind (the temporary directory is removed empty).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <dirent.h>
#include <ftw.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define U1 ((ident){61301, 61301, 0, {0}})
#define U2 ((ident){61302, 61302, 0, {0}})

static char dir[64];

/* ------------------------------------------------------------------ the attacker */

/* Armed (swap_target set): the next name bind() or mkfifo() makes in a directory that
 * others may write (mode o+w, as the attacker's uid could) is replaced at once by a
 * symlink to swap_target; the name goes to swapped and the attacker is disarmed. A name
 * made in a directory only its owner can enter is out of the attacker's reach. */
static char swap_target[256], swapped[256];

int __real_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __real_mkfifo(const char *path, mode_t mode);
int __wrap_mkfifo(const char *path, mode_t mode);

static void swap_now(const char *path)
{
    char parent[256];
    size_t n = strlen(path);
    if (!swap_target[0] || !path[0] || n >= sizeof parent) return;
    memcpy(parent, path, n + 1);
    char *slash = strrchr(parent, '/');
    struct stat st;
    if (!slash) return;
    *slash = '\0';
    if (stat(parent, &st) < 0 || !(st.st_mode & S_IWOTH)) return;
    CHECK(unlink(path) == 0);
    CHECK(symlink(swap_target, path) == 0);
    memcpy(swapped, path, n + 1);
    swap_target[0] = '\0';
}

int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    int r = __real_bind(fd, sa, len);
    if (r == 0 && sa->sa_family == AF_UNIX) swap_now(((const struct sockaddr_un *)sa)->sun_path);
    return r;
}

int __wrap_mkfifo(const char *path, mode_t mode)
{
    int r = __real_mkfifo(path, mode);
    if (r == 0) swap_now(path);
    return r;
}

/* ------------------------------------------------------------------ helpers */

static void path_of(char *buf, size_t cap, const char *name)
{
    CHECK((size_t)snprintf(buf, cap, "%s/%s", dir, name) < cap);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0);
    return st.st_mode & 07777;
}

static int dir_entries(void)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int listen_mode(const char *url, unsigned mode, ferry_listener **l)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.mode = mode;
    return ferry_listen(url, &o, l);
}

static void set_path(struct sockaddr_un *sa, const char *path)
{
    size_t n = strlen(path);
    CHECK(n < sizeof sa->sun_path);
    memcpy(sa->sun_path, path, n + 1);
}

/* A socket file at path whose socket is closed: stale. */
static void make_stale(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_path(&sa, path);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    CHECK(__real_bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(listen(s, 1) == 0);
    close(s);
}

/* A non-blocking connect to path: 0 (connected or queued), or -errno. */
static int try_connect(const char *path, int *out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_path(&sa, path);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = -errno;
        close(s);
        return e;
    }
    if (out)
        *out = s;
    else
        close(s);
    return 0;
}

/* ------------------------------------------------------------------ chmod after bind */

/* The attacker swaps the first name the listener makes where it can: with the socket
 * bound in a private directory (unix, shm) there is no such name and the listen works
 * (the socket file has exactly 0666); where the name is made in place (FIFOs, and a
 * socket path too long for the private directory) the listen is -EACCES. Either way the
 * symlink's target keeps its mode 0600. */
static void check_symlink_swap(const char *scheme, const char *suffix, const char *sub)
{
    char target[256], where[256], base[300], url[320];
    path_of(target, sizeof target, "victim-file");
    path_of(where, sizeof where, sub);
    if (sub[0]) {
        CHECK(mkdir(where, 0777) == 0);
        CHECK(chmod(where, 0777) == 0);
    }
    snprintf(base, sizeof base, "%s/%s", where, sub[0] ? "s" : "sock");
    int t = open(target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    CHECK(t >= 0);
    close(t);
    CHECK(chmod(target, 0600) == 0);
    snprintf(url, sizeof url, "%s://%s", scheme, base);
    int want_swap = strcmp(scheme, "fifo") == 0 || sub[0];

    snprintf(swap_target, sizeof swap_target, "%s", target);
    swapped[0] = '\0';
    ferry_listener *l = NULL;
    int rc = listen_mode(url, 0666, &l);
    swap_target[0] = '\0';
    if (rc != (want_swap ? -EACCES : 0) || !swapped[0] != !want_swap)
        fprintf(stderr, "%s listen (%s): %d, swapped \"%s\"\n", scheme, base, rc, swapped);
    if (mode_of(target) != 0600) fprintf(stderr, "%s: target mode %o\n", scheme, mode_of(target));
    CHECK_EQ(mode_of(target), 0600);
    CHECK_EQ(!swapped[0], !want_swap);
    struct stat st;
    if (want_swap) {
        CHECK_EQ(rc, -EACCES);
        CHECK(lstat(swapped, &st) == 0 && S_ISLNK(st.st_mode)); /* the attacker's link */
        CHECK(unlink(swapped) == 0);
        char other[320];
        snprintf(other, sizeof other, "%s.c2s", base); /* fifo: the first FIFO went */
        CHECK(lstat(other, &st) < 0 && errno == ENOENT);
    } else {
        CHECK_EQ(rc, 0);
        CHECK(lstat(base, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == geteuid());
        CHECK_EQ(st.st_mode & 07777, 0666);
        ferry_listener_close(l);
    }

    /* planted before: the name is taken */
    char made[320];
    snprintf(made, sizeof made, "%s%s", base, suffix);
    CHECK(symlink(target, made) == 0);
    rc = listen_mode(url, 0666, &l);
    CHECK_EQ(rc, -EADDRINUSE);
    CHECK_EQ(mode_of(target), 0600);
    CHECK(unlink(made) == 0);
    CHECK(unlink(target) == 0);
    if (sub[0]) CHECK(rmdir(where) == 0);
    CHECK_EQ(dir_entries(), 0);
    printf("ok   %s%s: %s; a symlink planted before -EADDRINUSE; its target keeps 0600\n", scheme,
           sub[0] ? " (a path too long for the private directory)" : "",
           want_swap ? "the name swapped for a symlink right after it is made: -EACCES"
                     : "bound in a private directory, no moment for a swap: 0666 exactly");
}

/* ------------------------------------------------------------------ stale replacement */

#define RACERS 4
#define ROUNDS 150

static void check_stale_race(void)
{
    char path[256], url[320];
    path_of(path, sizeof path, "race.sock");
    snprintf(url, sizeof url, "unix://%s", path);
    int doubles = 0;
    for (int round = 0; round < ROUNDS; round++) {
        make_stale(path);
        int go[2], res[2], done[2];
        CHECK(pipe2(go, O_CLOEXEC) == 0 && pipe2(res, O_CLOEXEC) == 0 &&
              pipe2(done, O_CLOEXEC) == 0);
        pid_t pids[RACERS];
        for (int i = 0; i < RACERS; i++) {
            pids[i] = fork();
            CHECK(pids[i] >= 0);
            if (pids[i] == 0) {
                close(go[1]);
                close(res[0]);
                close(done[1]);
                char c;
                CHECK(read(go[0], &c, 1) == 0); /* all start when the parent closes it */
                ferry_listener *l = NULL;
                int rc = ferry_listen(url, NULL, &l);
                CHECK(write(res[1], &rc, sizeof rc) == sizeof rc);
                CHECK(read(done[0], &c, 1) == 0);
                if (rc == 0) ferry_listener_close(l);
                _exit(0);
            }
        }
        close(go[0]);
        close(res[1]);
        close(done[0]);
        close(go[1]); /* go */
        int wins = 0, inuse = 0;
        for (int i = 0; i < RACERS; i++) {
            int rc;
            CHECK(read(res[0], &rc, sizeof rc) == sizeof rc);
            if (rc == 0)
                wins++;
            else if (rc == -EADDRINUSE)
                inuse++;
            else
                fprintf(stderr, "round %d: ferry_listen: %d\n", round, rc);
        }
        if (wins != 1) {
            fprintf(stderr, "round %d: %d listeners won\n", round, wins);
            doubles++;
        }
        CHECK(wins + inuse == RACERS);
        if (wins == 1) CHECK_EQ(try_connect(path, NULL), 0); /* the winner's, live */
        close(done[1]);
        close(res[0]);
        for (int i = 0; i < RACERS; i++) wait_ok(pids[i]);
        struct stat st;
        if (lstat(path, &st) == 0) CHECK(unlink(path) == 0); /* (only if none won) */
    }
    CHECK_EQ(doubles, 0);
    CHECK_EQ(dir_entries(), 0);
    printf("ok   %d rounds of %d listeners at once on a stale socket file: exactly one wins, "
           "its file is live\n",
           ROUNDS, RACERS);
}

/* ------------------------------------------------------------------ full backlog */

static void check_full_backlog(void)
{
    char path[256], url[320];
    path_of(path, sizeof path, "busy.sock");
    snprintf(url, sizeof url, "unix://%s", path);
    ferry_listener *l = NULL;
    CHECK_EQ(ferry_listen(url, NULL, &l), 0);
    struct stat before, after;
    CHECK(lstat(path, &before) == 0);
    int conns[1024], n = 0, rc = 0;
    while (n < 1024 && (rc = try_connect(path, &conns[n])) == 0) n++;
    CHECK_EQ(rc, -EAGAIN); /* the backlog is full */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(10); /* the old stale check blocked here for good */
        ferry_listener *l2 = NULL;
        int64_t t0 = now_ns();
        int r = ferry_listen(url, NULL, &l2);
        int64_t el = now_ns() - t0;
        if (r != -EADDRINUSE || el >= 2 * SEC)
            fprintf(stderr, "second listen: %d after %.1f ms\n", r, el / 1e6);
        CHECK_EQ(r, -EADDRINUSE);
        CHECK(el < 2 * SEC);
        _exit(0);
    }
    wait_ok(pid);
    CHECK(lstat(path, &after) == 0);
    CHECK(after.st_ino == before.st_ino && S_ISSOCK(after.st_mode)); /* never unlinked */
    for (int i = 0; i < n; i++) close(conns[i]);
    ferry_listener_close(l);
    CHECK_EQ(dir_entries(), 0);
    printf("ok   a live listener with a full backlog (%d pending): a second listen is "
           "-EADDRINUSE at once, the file stays\n",
           n);
}

/* ------------------------------------------------------------------ fifo owner and type */

static char fifo_base[256];

static void open_expect(void *arg)
{
    int want = *(int *)arg;
    char url[320];
    snprintf(url, sizeof url, "fifo://%s", fifo_base);
    ferry_chan *ch = NULL;
    int rc = ferry_chan_open(url, NULL, &ch, 200 * MS);
    if (rc != want) fprintf(stderr, "fifo open as uid %d: %d (want %d)\n", (int)getuid(), rc, want);
    CHECK_EQ(rc, want);
}

/* The two FIFOs (or files, with is_fifo 0) at fifo_base, owned by uid, mode 0666, with
 * a reader on c2s and a writer on s2c held by this process so that opens would succeed
 * (fds returned in r, w; -1 for files). */
static void make_pair(int is_fifo, uid_t uid, int *r, int *w)
{
    char c2s[300], s2c[300];
    snprintf(c2s, sizeof c2s, "%s.c2s", fifo_base);
    snprintf(s2c, sizeof s2c, "%s.s2c", fifo_base);
    *r = *w = -1;
    for (int i = 0; i < 2; i++) {
        const char *p = i ? s2c : c2s;
        if (is_fifo) {
            CHECK(__real_mkfifo(p, 0666) == 0);
        } else {
            int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
            CHECK(fd >= 0);
            close(fd);
        }
        CHECK(chmod(p, 0666) == 0);
        CHECK(chown(p, uid, uid) == 0);
    }
    if (is_fifo) {
        *r = open(c2s, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        CHECK(*r >= 0);
    }
}

static void drop_pair(int r, int w)
{
    char p[300];
    if (r >= 0) close(r);
    if (w >= 0) close(w);
    snprintf(p, sizeof p, "%s.c2s", fifo_base);
    CHECK(unlink(p) == 0);
    snprintf(p, sizeof p, "%s.s2c", fifo_base);
    CHECK(unlink(p) == 0);
}

static void check_fifo_owner(void)
{
    path_of(fifo_base, sizeof fifo_base, "f");
    int r, w, want;
    ident u1 = U1, u2 = U2;

    make_pair(0, u1.uid, &r, &w); /* regular files, even our own */
    want = -EACCES;
    open_expect(&want);
    run_as(&u1, open_expect, &want);
    drop_pair(r, w);

    make_pair(1, u2.uid, &r, &w); /* another user's FIFOs */
    run_as(&u1, open_expect, &want);
    drop_pair(r, w);

    make_pair(1, u1.uid, &r, &w); /* our own FIFO, but through a symlink */
    char c2s[300], link[300];
    snprintf(c2s, sizeof c2s, "%s.c2s", fifo_base);
    path_of(link, sizeof link, "g.c2s");
    CHECK(rename(c2s, link) == 0);
    CHECK(symlink(link, c2s) == 0);
    run_as(&u1, open_expect, &want);
    CHECK(unlink(c2s) == 0);
    CHECK(rename(link, c2s) == 0);
    drop_pair(r, w);

    make_pair(1, 0, &r, &w); /* root's FIFOs are accepted: the open waits for a HELLO */
    want = -ETIMEDOUT;
    run_as(&u1, open_expect, &want);
    drop_pair(r, w);
    CHECK_EQ(dir_entries(), 0);
    printf("ok   fifo:// refuses (-EACCES) regular files, another uid's FIFOs and a symlink; "
           "root's FIFOs are opened\n");
}

/* A failed check exits: remove what this run made (in the process that made it). */
static pid_t main_pid;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) < 0 ? 0 : 0;
}

static void cleanup(void)
{
    if (getpid() == main_pid && dir[0]) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* test_fs_races [PART]: symlink, stale, backlog or fifo; all by default. */
int main(int argc, char **argv)
{
    const char *part = argc > 1 ? argv[1] : "";
#define PART(p) (!part[0] || strcmp(part, p) == 0)
    require_root();
    test_deadline(110);
    snprintf(dir, sizeof dir, "/tmp/ferry-fsrace-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    main_pid = getpid();
    atexit(cleanup);
    CHECK(chmod(dir, 0777) == 0); /* the throwaway uids work here too */
    int base = fd_count();
    if (PART("symlink")) {
        /* a directory name that leaves room for "/s" but not for "/.XXXXXX/s" */
        char longsub[128];
        size_t dl = strlen(dir), n = 98 - dl - 1;
        CHECK(n < sizeof longsub);
        memset(longsub, 'd', n);
        longsub[n] = '\0';
        check_symlink_swap("unix", "", "");
        check_symlink_swap("shm", "", "");
        check_symlink_swap("unix", "", longsub);
        check_symlink_swap("fifo", ".s2c", "");
    }
    if (PART("stale")) check_stale_race();
    if (PART("backlog")) check_full_backlog();
    if (PART("fifo")) check_fifo_owner();
    CHECK_EQ(fd_count(), base);
    CHECK(rmdir(dir) == 0);
    printf("test_fs_races: ok\n");
    return 0;
}
