// SPDX-License-Identifier: MIT
/*
 * daemonutil.h — the real ferryd (FERRYD_PATH) run as a program, for the tests of what
 * it shows the outside (command line, service-manager notifications, logs):
 *   ferryd_spawn()   fork + exec with environment changes and stdout/stderr on given fds
 *                    (the child dies with the test: PR_SET_PDEATHSIG);
 *   ferryd_run()     run to its exit, capturing stdout and stderr (small outputs);
 *   dgram_listen()   an AF_UNIX datagram socket at a path or an abstract "@name", with
 *                    SO_PASSCRED, to play systemd's notify socket or syslog's /dev/log;
 *   dgram_recv()     one datagram within a deadline, with the sender's pid;
 *   slurp()          a file's contents;
 *   copy_program()   a copy of a program (ferryd) in a fresh 0755 directory, for another
 *                    uid to execute when the build tree sits where it cannot enter;
 *   activation_socket(), activation_env()  socket activation as systemd does it: the
 *                    listening socket, and in the forked child fd 3, LISTEN_PID and
 *                    LISTEN_FDS.
 * Include after testutil.h and brokerutil.h.
 */
#ifndef FERRY_DAEMONUTIL_H
#define FERRY_DAEMONUTIL_H

#include <poll.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Apply env changes: "K=V" sets, "K" unsets. */
static inline void env_apply(const char *const *env)
{
    for (; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        if (!eq) {
            unsetenv(*env);
            continue;
        }
        char k[128];
        snprintf(k, sizeof k, "%.*s", (int)(eq - *env), *env);
        setenv(k, eq + 1, 1);
    }
}

/* Start FERRYD_PATH with args (after argv[0]; NULL-terminated) and env changes; its
 * stdout and stderr on out and err (-1: this process's). Its pid. */
static inline pid_t ferryd_spawn(const char *const *args, const char *const *env, int out, int err)
{
    const char *argv[32] = {"ferryd"};
    int n = 1;
    for (; args && *args && n < 31; args++) argv[n++] = *args;
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        env_apply(env);
        if (out >= 0 && dup2(out, 1) != 1) _exit(126);
        if (err >= 0 && dup2(err, 2) != 2) _exit(126);
        execv(FERRYD_PATH, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

typedef struct run_out {
    int status; /* the exit status; -1 killed */
    char out[16384], err[16384];
} run_out;

/* Read what fd holds (a pipe whose writers are gone) into buf (NUL-terminated). */
static inline void read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap &&
           ((n = read(fd, buf + len, cap - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0) len += (size_t)n;
    buf[len] = '\0';
}

/* Run ferryd with args and env changes to its exit; stdout, stderr and status in *r. */
static inline void ferryd_run(const char *const *args, const char *const *env, run_out *r)
{
    int o[2], e[2];
    CHECK(pipe2(o, O_CLOEXEC) == 0 && pipe2(e, O_CLOEXEC) == 0);
    pid_t pid = ferryd_spawn(args, env, o[1], e[1]);
    close(o[1]);
    close(e[1]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid); /* outputs are small: they fit in the pipes */
    read_all(o[0], r->out, sizeof r->out);
    read_all(e[0], r->err, sizeof r->err);
    close(o[0]);
    close(e[0]);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An address from "/path" or "@abstract". */
static inline socklen_t dgram_addr(const char *name, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strlen(name);
    CHECK(n < sizeof sa->sun_path);
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@') {
        sa->sun_path[0] = '\0';
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* A datagram socket bound at name ("/path" or "@abstract"), with SO_PASSCRED. */
static inline int dgram_listen(const char *name)
{
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct sockaddr_un sa;
    socklen_t l = dgram_addr(name, &sa);
    CHECK(bind(s, (struct sockaddr *)&sa, l) == 0);
    int one = 1;
    CHECK(setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0);
    return s;
}

/* One datagram from s within ms milliseconds into buf (NUL-terminated), the sender's pid
 * in *pid. Its length, or -1 when none came in time. */
static inline ssize_t dgram_recv(int s, char *buf, size_t cap, int ms, pid_t *pid)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    int rc;
    while ((rc = poll(&p, 1, ms)) < 0 && errno == EINTR) {
    }
    if (rc <= 0) return -1;
    struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(struct ucred))];
    } cm;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof cm};
    ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    CHECK(n >= 0);
    buf[n] = '\0';
    *pid = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred u;
            memcpy(&u, CMSG_DATA(c), sizeof u);
            *pid = u.pid;
        }
    return n;
}

/* The contents of path (NUL-terminated; cut at cap - 1); "" when it cannot be read. */
static inline void slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    read_all(fd, buf, cap);
    close(fd);
}

/* Copy the program src into the directory made from the mkdtemp template dir (changed in
 * place; mode 0755) as copy (cap bytes: "DIR/NAME"), mode 0755. The caller removes both. */
static inline void copy_program(const char *src, char *dir, const char *name, char *copy,
                                size_t cap)
{
    CHECK(mkdtemp(dir) != NULL);
    CHECK(chmod(dir, 0755) == 0);
    snprintf(copy, cap, "%s/%s", dir, name);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    CHECK(in >= 0);
    int out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    CHECK(out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) CHECK(write(out, buf, (size_t)n) == n);
    CHECK(n == 0);
    close(in);
    CHECK(close(out) == 0);
}

/* A listening SOCK_SEQPACKET socket at path, as a service manager makes one: mode (0:
 * left as bind made it), backlog. The caller closes it. */
static inline int activation_socket(const char *path, mode_t mode, int backlog)
{
    int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    if (mode) CHECK(chmod(path, mode) == 0);
    CHECK(listen(lfd, backlog) == 0);
    return lfd;
}

/* In the forked child that execs an activated ferryd: lfd as fd 3, not close-on-exec
 * (_exit(fail) when that cannot be done), LISTEN_PID = this process, LISTEN_FDS=1. */
static inline void activation_env(int lfd, int fail)
{
    if (lfd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(lfd, 3) != 3) _exit(fail);
    char n[32];
    snprintf(n, sizeof n, "%d", (int)getpid());
    setenv("LISTEN_PID", n, 1);
    setenv("LISTEN_FDS", "1", 1);
}

/* Wait (up to 10 s) until nothing listens at path any more. 1 when it stopped. */
static inline int wait_unconnectable(const char *path)
{
    for (int i = 0; i < 1000; i++) {
        if (!broker_connectable(path)) return 1;
        sleep_ms(10);
    }
    return 0;
}

#endif
