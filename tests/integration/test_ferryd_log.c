// SPDX-License-Identifier: MIT
/*
 * test_ferryd_log — where ferryd's log goes, and with which priorities, with the ferryd
 * this build made. Each case makes ferryd log an info line (start: "ferryd V serving
 * PATH (pid N)"), an error (SIGHUP with a policy file whose keyword holds an escape
 * byte: "policy not reloaded ... unknown keyword") and, with --verbose, debug lines (a
 * lookup):
 *  - stderr a file, no $JOURNAL_STREAM: plain "ferryd: ..." lines; the escape byte is
 *    logged as '?', and every message is one line.
 *  - $JOURNAL_STREAM = stderr's "DEV:INO": every line starts with its priority, "<6>"
 *    for the start, "<3>" for the error, "<7>" for a request.
 *  - $JOURNAL_STREAM naming another inode, or malformed: plain lines.
 *  - syslog (root only: a private mount namespace with a tmpfs /dev holding /dev/null
 *    and a datagram socket at /dev/log that plays syslogd):
 *      --foreground --syslog: datagrams "<30>... ferryd[PID]: ferryd V serving ..."
 *      (LOG_DAEMON|LOG_INFO) and "<27>...policy not reloaded" (LOG_ERR); stderr stays
 *      empty;
 *      detached without $FERRY_LOG: syslog, from the daemon's pid;
 *      detached with $FERRY_LOG=FILE (and --syslog): plain lines in FILE, nothing to
 *      syslog;
 *      started by the library (autospawn): syslog, and nothing on the caller's stdout or
 *      stderr.
 *    The namespace child is a child subreaper, so detached daemons stay its to reap.
 *  - the library's autospawn runs ferryd with --syslog (after --socket PATH --exit-idle
 *    30) and fds 0-2 on /dev/null: a wrapper in $FERRY_FERRYD records them, and what it
 *    writes to its stdout and stderr never reaches the caller's (the test is a child
 *    subreaper too).
 */
#include "testutil.h"

#include "brokerutil.h"
#include "daemonutil.h"

#include <ferry/ferry.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define SEC ((int64_t)1000000000)
#define BAD_POLICY                                                                                 \
    "own org.x.* 0\n"                                                                              \
    "\x1b[31mevil org.y\n"

static test_broker b;
static char logpath[120];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    CHECK(fclose(f) == 0);
}

/* Wait (10 s at most) until the file at path holds needle. */
static void wait_for(const char *path, const char *needle)
{
    static char buf[65536];
    for (int i = 0; i < 1000; i++) {
        slurp(path, buf, sizeof buf);
        if (strstr(buf, needle)) return;
        sleep_ms(10);
    }
    fprintf(stderr, "'%s' never appeared in %s:\n%s\n", needle, path, buf);
    CHECK(0);
}

/* Run ferryd --foreground --verbose with stderr on logpath and env changes; make it log
 * its start, a request (debug) and a failed reload (error); stop it. The log's text in
 * buf. */
static void one_run(const char *const *env, char *buf, size_t cap)
{
    int err = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    CHECK(err >= 0);
    const char *args[] = {"--foreground", "--verbose", "--socket", b.sock,
                          "--policy",     b.policy,    NULL};
    pid_t d = ferryd_spawn(args, env, -1, err);
    close(err);
    wait_for(logpath, " serving ");
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.test.nobody", &in, 5 * SEC), -ENOENT);
    wait_for(logpath, " op ");
    write_file(b.policy, BAD_POLICY);
    CHECK_EQ(kill(d, SIGHUP), 0);
    wait_for(logpath, "policy not reloaded");
    CHECK(unlink(b.policy) == 0);
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
    slurp(logpath, buf, cap);
    CHECK(unlink(logpath) == 0);
}

/* Every line of buf starts with prefix (a priority prefix when prefix is "<"), and the
 * lines below are there. */
static void check_lines(const char *buf, int journal)
{
    char start[200], bad[200];
    snprintf(start, sizeof start, "%sferryd %s serving %s (pid ",
             journal ? "<6>" : "ferryd: ", FERRY_VERSION_STRING, b.sock);
    snprintf(bad, sizeof bad,
             "%spolicy not reloaded, keeping the old one: ", journal ? "<3>" : "ferryd: ");
    int saw_start = 0, saw_bad = 0, saw_debug = 0;
    for (const char *p = buf; *p;) {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL); /* every message ends its line */
        if (journal) {
            if (!(p[0] == '<' && p[1] >= '0' && p[1] <= '7' && p[2] == '>'))
                fprintf(stderr, "no priority: %.*s\n", (int)(nl - p), p);
            CHECK(p[0] == '<' && p[1] >= '0' && p[1] <= '7' && p[2] == '>');
            if (!strncmp(p, "<7>pid ", 7)) saw_debug = 1;
        } else {
            if (strncmp(p, "ferryd: ", 8)) fprintf(stderr, "not plain: %.*s\n", (int)(nl - p), p);
            CHECK(!strncmp(p, "ferryd: ", 8));
            if (!strncmp(p, "ferryd: pid ", 12)) saw_debug = 1;
        }
        if (!strncmp(p, start, strlen(start))) saw_start = 1;
        if (!strncmp(p, bad, strlen(bad))) {
            saw_bad = 1;
            /* the escape byte is shown as '?' and nothing else follows on the line */
            CHECK(memmem(p, (size_t)(nl - p), "'?[31mevil'", 11) != NULL);
        }
        p = nl + 1;
    }
    CHECK(!strchr(buf, '\x1b'));
    if (!saw_start || !saw_bad || !saw_debug) fprintf(stderr, "log:\n%s\n", buf);
    CHECK(saw_start && saw_bad && saw_debug);
}

static void test_stderr_and_journal(void)
{
    static char buf[65536];
    const char *plain[] = {"JOURNAL_STREAM", NULL};
    one_run(plain, buf, sizeof buf);
    check_lines(buf, 0);

    /* The journal: JOURNAL_STREAM is "DEV:INO" of stderr (the file is made first to know
     * them; one_run truncates it, the inode stays). */
    int fd = open(logpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    close(fd);
    char js[100];
    snprintf(js, sizeof js, "JOURNAL_STREAM=%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    const char *journal[] = {js, NULL};
    one_run(journal, buf, sizeof buf);
    check_lines(buf, 1);

    /* Another inode, or nonsense: plain lines. */
    fd = open(logpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    close(fd);
    snprintf(js, sizeof js, "JOURNAL_STREAM=%ju:%ju", (uintmax_t)st.st_dev,
             (uintmax_t)st.st_ino + 1);
    one_run(journal, buf, sizeof buf);
    check_lines(buf, 0);
    const char *junk[] = {"", "12", "12:", ":12", "1:2:3", "x:y", NULL};
    for (int i = 0; junk[i]; i++) {
        snprintf(js, sizeof js, "JOURNAL_STREAM=%s", junk[i]);
        one_run(journal, buf, sizeof buf);
        check_lines(buf, 0);
    }
}

static pid_t lock_pid(const char *sock);
static void rm_lock(const char *sock);

/* ------------------------------------------------------------------ autospawn */

/* The library starts ferryd with --syslog and its stdio on /dev/null: a wrapper named by
 * $FERRY_FERRYD records its argv and fds 0-2, writes to its stdout and stderr (which
 * must not reach the caller's), then execs ferryd. */
static void test_autospawn_stdio(void)
{
    char wrap[140], rec[140], autosock[120], out_path[120], text[4096];
    snprintf(wrap, sizeof wrap, "%s/wrap.sh", b.dir);
    snprintf(rec, sizeof rec, "%s/argv", b.dir);
    snprintf(autosock, sizeof autosock, "%s/auto.sock", b.dir);
    snprintf(out_path, sizeof out_path, "%s/out", b.dir);
    FILE *f = fopen(wrap, "w");
    CHECK(f != NULL);
    fprintf(
        f,
        "#!/bin/sh\n"
        "f0=$(readlink /proc/$$/fd/0) f1=$(readlink /proc/$$/fd/1) f2=$(readlink /proc/$$/fd/2)\n"
        "printf '%%s\\n' \"$@\" \"$f0\" \"$f1\" \"$f2\" > '%s'\n"
        "echo leak-out; echo leak-err >&2\n"
        "exec '%s' \"$@\"\n",
        rec, FERRYD_PATH);
    CHECK(fclose(f) == 0);
    CHECK(chmod(wrap, 0700) == 0);
    setenv("FERRY_BROKER", autosock, 1);
    setenv("FERRY_FERRYD", wrap, 1);
    unsetenv("FERRY_NO_AUTOSPAWN");
    unsetenv("FERRY_LOG");
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(out >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved1 = dup(1), saved2 = dup(2);
    CHECK(saved1 >= 0 && saved2 >= 0);
    CHECK(dup2(out, 1) == 1 && dup2(out, 2) == 2);
    ferry_name_info in;
    int rc = ferry_lookup("org.test.nobody", &in, 10 * SEC);
    CHECK(dup2(saved1, 1) == 1 && dup2(saved2, 2) == 2);
    close(saved1);
    close(saved2);
    close(out);
    CHECK_EQ(rc, -ENOENT);
    pid_t d = lock_pid(autosock);
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d); /* ours to reap: main made this process a subreaper */
    rm_lock(autosock);
    slurp(out_path, text, sizeof text);
    if (text[0]) fprintf(stderr, "the caller's stdio got: %s\n", text);
    CHECK(text[0] == '\0');
    slurp(rec, text, sizeof text);
    char want[400];
    snprintf(want, sizeof want,
             "--socket\n%s\n--exit-idle\n30\n--syslog\n/dev/null\n/dev/null\n/dev/null\n",
             autosock);
    if (strcmp(text, want)) fprintf(stderr, "the wrapper saw:\n%s\nwant:\n%s\n", text, want);
    CHECK(strcmp(text, want) == 0);
    CHECK(unlink(rec) == 0 && unlink(wrap) == 0 && unlink(out_path) == 0);
    setenv("FERRY_BROKER", b.sock, 1);
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    unsetenv("FERRY_FERRYD");
}

/* ------------------------------------------------------------------ syslog */

/* The next syslog datagram on ls holding needle (others are skipped), within 10 s, from
 * pid (when pid > 0); its text in buf. */
static void syslog_expect(int ls, pid_t pid, const char *prefix, const char *needle, char *buf,
                          size_t cap)
{
    for (int i = 0; i < 64; i++) {
        pid_t from;
        ssize_t n = dgram_recv(ls, buf, cap, 10000, &from);
        if (n < 0) break;
        if (!strstr(buf, needle)) continue;
        if (strncmp(buf, prefix, strlen(prefix)) || (pid > 0 && from != pid))
            fprintf(stderr, "syslog: '%s' from %d (want %s... from %d)\n", buf, (int)from, prefix,
                    (int)pid);
        CHECK(!strncmp(buf, prefix, strlen(prefix)));
        CHECK(pid <= 0 || from == pid);
        char tag[64];
        snprintf(tag, sizeof tag, " ferryd[%d]: ", (int)from);
        CHECK(strstr(buf, tag) != NULL);
        return;
    }
    fprintf(stderr, "syslog: no '%s'\n", needle);
    CHECK(0);
}

static void syslog_none(int ls)
{
    char buf[1024];
    pid_t from;
    ssize_t n = dgram_recv(ls, buf, sizeof buf, 0, &from);
    if (n >= 0) fprintf(stderr, "unexpected syslog: '%s' from %d\n", buf, (int)from);
    CHECK(n < 0);
}

/* The daemon's pid from sock's lock file. */
static pid_t lock_pid(const char *sock)
{
    char lock[140], buf[32];
    snprintf(lock, sizeof lock, "%s.lock", sock);
    slurp(lock, buf, sizeof buf);
    int pid = atoi(buf);
    CHECK(pid > 0);
    return pid;
}

static void rm_lock(const char *sock)
{
    char lock[140];
    snprintf(lock, sizeof lock, "%s.lock", sock);
    CHECK(unlink(lock) == 0);
}

static void syslog_cases(int ls)
{
    static char buf[4096], text[65536];
    char serving[200];
    snprintf(serving, sizeof serving, "ferryd %s serving %s (pid ", FERRY_VERSION_STRING, b.sock);

    /* --foreground --syslog: all of it to syslog, nothing on stderr. */
    int err = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(err >= 0);
    const char *fg[] = {"--foreground", "--syslog", "--socket", b.sock, "--policy", b.policy, NULL};
    const char *noenv[] = {"JOURNAL_STREAM", "FERRY_LOG", NULL};
    pid_t d = ferryd_spawn(fg, noenv, -1, err);
    close(err);
    syslog_expect(ls, d, "<30>", serving, buf, sizeof buf);
    write_file(b.policy, BAD_POLICY);
    CHECK_EQ(kill(d, SIGHUP), 0);
    syslog_expect(ls, d, "<27>", "policy not reloaded", buf, sizeof buf);
    CHECK(strstr(buf, "'?[31mevil'") != NULL);
    CHECK(unlink(b.policy) == 0);
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
    slurp(logpath, text, sizeof text);
    if (text[0]) fprintf(stderr, "stderr with --syslog: %s\n", text);
    CHECK(text[0] == '\0');
    CHECK(unlink(logpath) == 0);

    /* Detached, no $FERRY_LOG: syslog, from the daemon. */
    const char *det[] = {"--socket", b.sock, "--policy", b.policy, NULL};
    pid_t starter = ferryd_spawn(det, noenv, -1, -1);
    wait_ok(starter);
    d = lock_pid(b.sock);
    CHECK(d != starter);
    syslog_expect(ls, d, "<30>", serving, buf, sizeof buf);
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
    rm_lock(b.sock);

    /* Detached with $FERRY_LOG: the file, plain; not syslog (even with --syslog: the
     * file was asked for by name). */
    char fl[160];
    snprintf(fl, sizeof fl, "FERRY_LOG=%s", logpath);
    const char *withlog[] = {fl, "JOURNAL_STREAM", NULL};
    const char *det_syslog[] = {"--syslog", "--socket", b.sock, "--policy", b.policy, NULL};
    starter = ferryd_spawn(det_syslog, withlog, -1, -1);
    wait_ok(starter);
    d = lock_pid(b.sock);
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
    rm_lock(b.sock);
    slurp(logpath, text, sizeof text);
    char plain[220];
    snprintf(plain, sizeof plain, "ferryd: %s%d)\n", serving, (int)d);
    if (strncmp(text, plain, strlen(plain))) fprintf(stderr, "FERRY_LOG: %s\n", text);
    CHECK(!strncmp(text, plain, strlen(plain)));
    CHECK(unlink(logpath) == 0);
    syslog_none(ls);

    /* Started by the library: syslog; the caller's stdout and stderr stay untouched. */
    char autosock[120], out_path[120];
    snprintf(autosock, sizeof autosock, "%s/auto.sock", b.dir);
    snprintf(out_path, sizeof out_path, "%s/out", b.dir);
    setenv("FERRY_BROKER", autosock, 1);
    setenv("FERRY_FERRYD", FERRYD_PATH, 1);
    unsetenv("FERRY_NO_AUTOSPAWN");
    unsetenv("FERRY_LOG");
    unsetenv("JOURNAL_STREAM");
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(out >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved1 = dup(1), saved2 = dup(2);
    CHECK(saved1 >= 0 && saved2 >= 0);
    CHECK(dup2(out, 1) == 1 && dup2(out, 2) == 2);
    ferry_name_info in;
    int rc = ferry_lookup("org.test.nobody", &in, 10 * SEC);
    CHECK(dup2(saved1, 1) == 1 && dup2(saved2, 2) == 2);
    close(saved1);
    close(saved2);
    close(out);
    CHECK_EQ(rc, -ENOENT);
    d = lock_pid(autosock);
    snprintf(serving, sizeof serving, "ferryd %s serving %s (pid %d)", FERRY_VERSION_STRING,
             autosock, (int)d);
    syslog_expect(ls, d, "<30>", serving, buf, sizeof buf);
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
    rm_lock(autosock);
    slurp(out_path, text, sizeof text);
    if (text[0]) fprintf(stderr, "the caller's stdio got: %s\n", text);
    CHECK(text[0] == '\0');
    CHECK(unlink(out_path) == 0);
    setenv("FERRY_BROKER", b.sock, 1);
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
}

/* In a child: a private /dev with null and a syslog socket at /dev/log, then the cases.
 * 0 ok, 77 skipped (no namespaces here). */
static void test_syslog(void)
{
    if (geteuid() != 0) {
        printf("SKIP syslog cases: not root\n");
        return;
    }
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0) {
            printf("SKIP syslog cases: no private mount namespace: %s\n", strerror(errno));
            _exit(77);
        }
        CHECK(mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)) == 0);
        CHECK(chmod("/dev/null", 0666) == 0);
        CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
        int ls = dgram_listen("/dev/log");
        syslog_cases(ls);
        close(ls);
        _exit(0); /* the tmpfs goes with the namespace */
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77));
}

/* A failed CHECK exits: this test's own files go first, so that broker_atexit
 * (registered before, run after) can remove the directory. */
static void cleanup(void)
{
    const char *files[] = {"out", "auto.sock", "auto.sock.lock", "argv", "wrap.sh"};
    char p[160];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", b.dir, files[i]);
        unlink(p);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    broker_init(&b); /* FERRY_BROKER = b.sock, FERRY_NO_AUTOSPAWN=1 */
    atexit(cleanup);
    snprintf(logpath, sizeof logpath, "%s/ferryd.log", b.dir);
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* detached ferryds stay ours to reap */
    test_stderr_and_journal();
    test_autospawn_stdio();
    test_syslog();
    broker_stop(&b); /* removes the directory */
    printf("test_ferryd_log: ok\n");
    return 0;
}
