// SPDX-License-Identifier: MIT
/*
 * ferryd.c — the naming-service daemon: the process around ferry__broker_run
 * (src/broker/server.c): options, the socket's directory and lock, detaching, systemd
 * activation, signals. main() is those steps in order, each a function of its own.
 *
 *   ferryd [--foreground] [--socket PATH] [--policy FILE] [--idle-ms N] [--exit-idle S]
 *          [--verbose]
 *
 * Rules:
 *  - The socket is --socket, else the path every client uses (ferry_broker_path():
 *    $FERRY_BROKER, $XDG_RUNTIME_DIR/ferry/ferryd.sock, /run/ferry/ferryd.sock). A
 *    missing directory is made 0755 (its parent must exist); the socket file is 0666:
 *    anyone may talk to ferryd, and ferryd's policy decides what they may do.
 *  - The directory must be ferryd's own (its euid's), not writable by its group or others,
 *    under directories owned by root or that euid and writable by others only when sticky;
 *    otherwise someone else could put a fake ferryd there: ferryd says why and exits with
 *    status 4. (Clients check the broker's uid too: see src/broker/client.c.)
 *  - One ferryd per socket: it holds an exclusive lock on PATH.lock for its whole life (a
 *    second one exits with status 3, "already running"); the lock file holds its pid.
 *  - systemd socket activation: with LISTEN_PID = our pid and LISTEN_FDS >= 1, fd 3 is
 *    the listening socket (SOCK_SEQPACKET) and nothing is bound or unlinked by ferryd.
 *  - Without --foreground it detaches (fork, setsid, stdio to /dev/null, or stderr to
 *    $FERRY_LOG) and the starting process exits 0 once the socket accepts connections.
 *  - SIGTERM / SIGINT: close every connection, remove the socket file, exit 0.
 *    SIGHUP: read the policy file again (--policy, $FERRY_POLICY, /etc/ferry/policy.conf).
 *  - --exit-idle S: exit when no connection has been open for S seconds (ferryd keeps no
 *    state a restart would lose; the library starts ferryd with this when it autospawns).
 *  - At start the soft RLIMIT_NOFILE is raised to the hard limit: every descriptor
 *    ferryd holds is for some client, and server.c budgets them against this limit
 *    (with reserves for root and for existing clients).
 */
#define _GNU_SOURCE
#include "broker/server.h"

#include "ferry/ferry.h"
#include "transport/sockutil.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: ferryd [--foreground] [--socket PATH] [--policy FILE] [--idle-ms N]\n"
          "              [--exit-idle SECONDS] [--verbose]\n",
          f);
}

/* Why a directory on the socket's path is unsafe (or NULL): st is its stat, last says it
 * is the socket's own directory. */
static const char *unsafe_dir(const struct stat *st, int last)
{
    if (!S_ISDIR(st->st_mode)) return "not a directory";
    if (last) { /* ours alone: nobody else may add, remove or rename a file in it */
        if (st->st_uid != geteuid()) return "owned by another uid";
        if (st->st_mode & (S_IWGRP | S_IWOTH)) return "writable by its group or others";
        return NULL;
    }
    /* Above it: nobody but root or us may rename our directory away, unless the sticky
     * bit says only a file's owner may (like /tmp). */
    if (st->st_uid != 0 && st->st_uid != geteuid()) return "owned by another uid";
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
        return "writable by its group or others without the sticky bit";
    return NULL;
}

/* Make the socket's directory when it is missing (0755; only the last level), then check
 * that nobody else could replace the socket: the directory must be ferryd's own (its
 * euid's) and not writable by its group or others, and every directory above it owned by
 * root or ferryd's euid and not writable by others unless sticky (the path is resolved
 * first: a symlink's target is what is checked). 0; -1 unsafe, -2 unusable (no such
 * directory, no access), each after a message on stderr. */
static int make_dir(const char *sock)
{
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", sock);
    if (sock[0] == '@') return 0; /* an abstract name: no directory */
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, "."); /* a file in the working directory */
    else if (slash == dir)
        slash[1] = '\0'; /* "/x.sock": the root directory */
    else
        *slash = '\0';
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "ferryd: cannot make %s: %s\n", dir, strerror(errno));
        return -2;
    }
    if (!realpath(dir, real)) {
        fprintf(stderr, "ferryd: %s: %s\n", dir, strerror(errno));
        return -2;
    }
    /* From the directory up to "/": each prefix of the resolved path. */
    int first = 1;
    for (size_t len = strlen(real);; first = 0) {
        char c = real[len];
        real[len] = '\0';
        struct stat st;
        if (stat(real, &st) < 0) {
            fprintf(stderr, "ferryd: %s: %s\n", real, strerror(errno));
            return -2;
        }
        const char *why = unsafe_dir(&st, first);
        if (why) {
            fprintf(stderr,
                    "ferryd: refusing the socket directory %s: %s is %s (uid %u, mode %04o); "
                    "another user could replace the socket\n",
                    dir, real, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
            return -1;
        }
        real[len] = c;
        if (len <= 1) break;
        while (len > 1 && real[len - 1] != '/') len--; /* to the parent's end */
        if (len > 1) len--;                            /* drop the slash, except "/" */
    }
    return 0;
}

/* Raise the soft fd limit to the hard one (ferryd uses epoll, never select: any number
 * is fine). Failing to is no error: the budget follows whatever limit holds. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        }
    }
}

static int activated_fd(void)
{
    const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
    if (!pid || !n || atol(pid) != (long)getpid() || atoi(n) < 1) return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    int fd = 3, type = 0;
    socklen_t l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_SEQPACKET) return -2;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* The command line, parsed. */
typedef struct daemon_opts {
    int foreground;
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    ferry__broker_cfg cfg; /* idle_ms, exit_idle_s, verbose, policy_path */
} daemon_opts;

#define GO (-1) /* the steps below: carry on (anything else: exit with it) */

/* Parse argv into *o, with the socket path resolved. GO, or the exit code: 0 after --help,
 * 2 on bad usage or a socket path too long. */
static int parse_args(int argc, char **argv, daemon_opts *o)
{
    static const struct option opts[] = {{"foreground", no_argument, 0, 'f'},
                                         {"socket", required_argument, 0, 's'},
                                         {"policy", required_argument, 0, 'p'},
                                         {"idle-ms", required_argument, 0, 'i'},
                                         {"exit-idle", required_argument, 0, 'x'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *policy = getenv("FERRY_POLICY");
    int c;
    memset(o, 0, sizeof *o);
    o->cfg.idle_ms = 5000;
    while ((c = getopt_long(argc, argv, "fs:p:i:x:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->foreground = 1;
            break;
        case 's':
            snprintf(o->sock, sizeof o->sock, "%s", optarg);
            break;
        case 'p':
            policy = optarg;
            break;
        case 'i':
            o->cfg.idle_ms = atoi(optarg);
            break;
        case 'x':
            o->cfg.exit_idle_s = atoi(optarg);
            break;
        case 'v':
            o->cfg.verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    o->cfg.policy_path = policy && *policy ? policy : "/etc/ferry/policy.conf";
    if (!o->sock[0] && ferry_broker_path(o->sock, sizeof o->sock) < 0) {
        fprintf(stderr, "ferryd: the socket path is too long\n");
        return 2;
    }
    return GO;
}

/* Block the signals ferryd handles (through a signalfd later) and fill *set with them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigprocmask(SIG_BLOCK, set, NULL);
}

/* Detach: fork, and in the starting process wait for the child's word (its exit status:
 * 0 once it listens) or its exit. The child (which returns GO) starts a session, puts its
 * stdio on /dev/null (stderr on $FERRY_LOG if set) and keeps ready[1] to send the word.
 * GO, or the starter's exit code. */
static int detach(int ready[2])
{
    if (pipe2(ready, O_CLOEXEC) < 0) return 1;
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) { /* wait for the word that it listens (or its exit) */
        char ok = 0;
        close(ready[1]);
        ssize_t n;
        while ((n = read(ready[0], &ok, 1)) < 0 && errno == EINTR) {
        }
        return n == 1 ? ok : 1;
    }
    close(ready[0]);
    setsid();
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    const char *log = getenv("FERRY_LOG");
    int err = log && *log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(err >= 0 ? err : nul, 2);
    }
    return GO;
}

/* Take the exclusive lock on sock.lock (kept open in *lock, -1 if never opened) and write
 * our pid into it. GO, or the exit status: 3 already running, 1 any other failure. */
static int take_lock(const char *sock, int *lock)
{
    char lockpath[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    snprintf(lockpath, sizeof lockpath, "%s.lock", sock);
    *lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*lock < 0) {
        fprintf(stderr, "ferryd: %s: %s\n", lockpath, strerror(errno));
        return 1;
    }
    if (flock(*lock, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "ferryd: already running on %s\n", sock);
        return 3;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(*lock, 0) < 0 || write(*lock, pid, (size_t)n) != n) {
    } /* the pid is a courtesy for `ferry ls`; the lock is what counts */
    return GO;
}

/* Without socket activation: a safe directory, the lock, then the listening socket in
 * *lfd. GO, or the exit status: 4 unsafe directory (the library tells its caller -EPERM),
 * 3 already running, 1 any other failure. */
static int bind_socket(const char *sock, int *lock, int *lfd)
{
    int rc = make_dir(sock);
    if (rc < 0) return rc == -1 ? 4 : 1;
    if ((rc = take_lock(sock, lock)) != GO) return rc;
    struct sockaddr_un sa;
    socklen_t len;
    rc = ferry__unix_addr(sock, &sa, &len);
    if (rc == 0) rc = *lfd = ferry__unix_listen(SOCK_SEQPACKET, &sa, len, 0666);
    if (rc < 0) {
        fprintf(stderr, "ferryd: listen on %s: %s\n", sock, strerror(-rc));
        return 1;
    }
    return GO;
}

/* Send the starting process its exit status (if it waits: ready >= 0) and close the pipe. */
static void tell_starter(int *ready, char status)
{
    if (*ready < 0) return;
    if (write(*ready, &status, 1) != 1) {
    }
    close(*ready);
    *ready = -1;
}

int main(int argc, char **argv)
{
    daemon_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != GO) return rc;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    sigset_t set;
    block_signals(&set);

    int lfd = activated_fd();
    if (lfd == -2) {
        fprintf(stderr, "ferryd: the socket systemd passed is not SOCK_SEQPACKET\n");
        return 1;
    }
    int activated = lfd >= 0;

    /* Detach first, so that the lock is held by the process that serves. */
    int ready[2] = {-1, -1};
    if (!o.foreground && (rc = detach(ready)) != GO) return rc;
    int lock = -1, status = GO;
    if (!activated) status = bind_socket(o.sock, &lock, &lfd);
    if (status == GO) {
        o.cfg.listen_fd = lfd;
        o.cfg.signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (o.cfg.signal_fd < 0) status = 1;
    }
    if (status != GO) {
        tell_starter(&ready[1], (char)status);
        if (lock >= 0) close(lock);
        return status;
    }
    tell_starter(&ready[1], 0); /* listening: the starter may go */
    rc = ferry__broker_run(&o.cfg);
    if (!activated && o.sock[0] != '@') unlink(o.sock);
    close(lfd);
    close(o.cfg.signal_fd);
    if (lock >= 0) close(lock);
    return rc < 0 ? 1 : 0;
}
