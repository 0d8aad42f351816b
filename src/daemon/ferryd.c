// SPDX-License-Identifier: MIT
/*
 * ferryd.c — the naming-service daemon: the process around ferry__broker_run
 * (src/broker/server.c): options, the socket's directory and lock, detaching, systemd
 * activation, signals. main() is those steps in order, each a function of its own.
 *
 *   ferryd [--foreground] [--socket PATH] [--policy FILE] [--idle-ms N] [--exit-idle S]
 *          [--syslog] [--verbose] | --help | --version
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
 *    $FERRY_LOG) and the starting process exits 0 once the socket is served (the policy
 *    loaded), else with the daemon's exit status.
 *  - The log (src/broker/log.h): when detached, plain lines in $FERRY_LOG if set, else
 *    syslog (the library starts ferryd so, with --syslog); in the foreground, syslog with
 *    --syslog, else "<N>"-prefixed lines when stderr is systemd's journal
 *    ($JOURNAL_STREAM), else plain lines on stderr. Usage errors always go to stderr.
 *  - The service manager: READY=1 to $NOTIFY_SOCKET once the socket is served,
 *    RELOADING=1/READY=1 around a reload, STOPPING=1 at the end (src/daemon/notify.h;
 *    Type=notify in dist/ferryd.service).
 *  - The environment is read with secure_getenv: a ferryd run with privilege it was
 *    given by a set-id bit or file capabilities takes nothing from its caller's
 *    environment (a service manager's ambient capabilities do not count as such).
 *  - Exit status: 0 stopped by SIGTERM/SIGINT (or --exit-idle), --help, --version;
 *    1 any failure; 2 bad usage; 3 already running; 4 unsafe socket directory.
 *  - SIGTERM / SIGINT: close every connection, remove the socket file, exit 0.
 *    SIGHUP: read the policy file again (--policy, $FERRY_POLICY, /etc/ferry/policy.conf).
 *  - --exit-idle S: exit when no connection has been open for S seconds and it holds no
 *    kept name (FERRY_POLICY_KEEP: an orphan, the one state a restart would lose); the
 *    library starts ferryd with this when it autospawns.
 *  - At start the soft RLIMIT_NOFILE is raised to the hard limit: every descriptor
 *    ferryd holds is for some client, and server.c budgets them against this limit
 *    (with reserves for root and for existing clients).
 */
#define _GNU_SOURCE
#include "broker/server.h"
#include "broker/log.h"
#include "daemon/notify.h"

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
#include <time.h>
#include <unistd.h>

#ifndef FERRY_VERSION_STRING /* the build passes the project's version */
#define FERRY_STR_(x)        #x
#define FERRY_STR(x)         FERRY_STR_(x)
#define FERRY_VERSION_STRING FERRY_STR(FERRY_VERSION_MAJOR) "." FERRY_STR(FERRY_VERSION_MINOR)
#endif

static void usage(FILE *f)
{
    fputs("usage: ferryd [--foreground] [--socket PATH] [--policy FILE] [--idle-ms N]\n"
          "              [--exit-idle SECONDS] [--syslog] [--verbose]\n"
          "       ferryd --help | --version\n",
          f);
}

static void help(void)
{
    usage(stdout);
    fputs("\n"
          "ferryd, ferry's naming service: names servers, introduces clients to them.\n"
          "\n"
          "  -f, --foreground    do not detach (under systemd, or to watch it)\n"
          "  -s, --socket PATH   listen on PATH (@NAME: an abstract socket); default\n"
          "                      $FERRY_BROKER, else $XDG_RUNTIME_DIR/ferry/ferryd.sock,\n"
          "                      else /run/ferry/ferryd.sock\n"
          "  -p, --policy FILE   the policy file; default $FERRY_POLICY, else\n"
          "                      /etc/ferry/policy.conf\n"
          "  -i, --idle-ms N     drop a connection silent without a role for N ms (5000)\n"
          "  -x, --exit-idle S   exit once no connection was open for S seconds (0: never)\n"
          "      --syslog        log to syslog (detached: the default without $FERRY_LOG)\n"
          "  -v, --verbose       log every request\n"
          "  -h, --help          this help, then exit 0\n"
          "  -V, --version       the version, then exit 0\n"
          "\n"
          "SIGTERM/SIGINT stop it (exit 0); SIGHUP reads the policy file again.\n"
          "Exit status: 0 stopped, 1 failure, 2 bad usage, 3 already running on the\n"
          "socket, 4 the socket's directory is unsafe. See ferryd(8).\n",
          stdout);
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
 * directory, no access), each after a message in the log. */
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
        ferry__log(LOG_ERR, "cannot make %s: %s", dir, strerror(errno));
        return -2;
    }
    if (!realpath(dir, real)) {
        ferry__log(LOG_ERR, "%s: %s", dir, strerror(errno));
        return -2;
    }
    /* From the directory up to "/": each prefix of the resolved path. */
    int first = 1;
    for (size_t len = strlen(real);; first = 0) {
        char c = real[len];
        real[len] = '\0';
        struct stat st;
        if (stat(real, &st) < 0) {
            ferry__log(LOG_ERR, "%s: %s", real, strerror(errno));
            return -2;
        }
        const char *why = unsafe_dir(&st, first);
        if (why) {
            ferry__log(LOG_ERR,
                       "refusing the socket directory %s: %s is %s (uid %u, mode %04o); "
                       "another user could replace the socket",
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

/* A decimal number in [min, max] from the whole of v, or -1. */
static long number(const char *v, long min, long max)
{
    char *end;
    errno = 0;
    long n = v && *v >= '0' && *v <= '9' ? strtol(v, &end, 10) : -1;
    if (n < 0 || errno || *end || n < min || n > max) return -1;
    return n;
}

/* systemd socket activation: the listening socket systemd passed as fd 3 (made
 * non-blocking and close-on-exec), -1 when none was passed to this process, -2 when fd 3
 * is not a SOCK_SEQPACKET socket. */
static int activated_fd(void)
{
    const char *pid = secure_getenv("LISTEN_PID"), *n = secure_getenv("LISTEN_FDS");
    if (!pid || !n || number(pid, 1, INT_MAX) != (long)getpid() || number(n, 1, INT_MAX) < 1)
        return -1;
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
    int syslog; /* --syslog */
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    ferry__broker_cfg cfg; /* idle_ms, exit_idle_s, verbose, policy_path */
} daemon_opts;

#define GO (-1) /* the steps below: carry on (anything else: exit with it) */

/* A usage error: the message on stderr, then the usage; the exit status 2. */
static int bad_usage(const char *fmt, const char *what)
{
    fputs("ferryd: ", stderr);
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

/* Parse argv into *o, with the socket path resolved. GO, or the exit code: 0 after --help
 * or --version, 2 on bad usage (an unknown option, a missing or bad value, an argument
 * that is not an option) or a socket path too long. */
static int parse_args(int argc, char **argv, daemon_opts *o)
{
    enum { OPT_SYSLOG = 256 };
    static const struct option opts[] = {
        {"foreground", no_argument, 0, 'f'},      {"socket", required_argument, 0, 's'},
        {"policy", required_argument, 0, 'p'},    {"idle-ms", required_argument, 0, 'i'},
        {"exit-idle", required_argument, 0, 'x'}, {"syslog", no_argument, 0, OPT_SYSLOG},
        {"verbose", no_argument, 0, 'v'},         {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},         {0, 0, 0, 0}};
    const char *policy = secure_getenv("FERRY_POLICY");
    int c;
    long n;
    memset(o, 0, sizeof *o);
    o->cfg.idle_ms = 5000;
    opterr = 0; /* the messages below say what was wrong */
    while ((c = getopt_long(argc, argv, ":fs:p:i:x:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->foreground = 1;
            break;
        case 's':
            if (!*optarg || strlen(optarg) >= sizeof o->sock)
                return bad_usage("--socket: %s", *optarg ? "the path is too long" : "empty");
            snprintf(o->sock, sizeof o->sock, "%s", optarg);
            break;
        case 'p':
            policy = optarg;
            break;
        case 'i':
            if ((n = number(optarg, 1, INT_MAX)) < 0)
                return bad_usage("--idle-ms: not a number of milliseconds >= 1: '%s'", optarg);
            o->cfg.idle_ms = (int)n;
            break;
        case 'x':
            if ((n = number(optarg, 0, INT_MAX)) < 0)
                return bad_usage("--exit-idle: not a number of seconds: '%s'", optarg);
            o->cfg.exit_idle_s = (int)n;
            break;
        case OPT_SYSLOG:
            o->syslog = 1;
            break;
        case 'v':
            o->cfg.verbose = 1;
            break;
        case 'h':
            help();
            return 0;
        case 'V':
            printf("ferryd %s\n", FERRY_VERSION_STRING);
            return 0;
        case ':':
            return bad_usage("option %s needs a value", argv[optind - 1]);
        default: { /* '?': optopt is the option's value when it is known */
            const char *arg = argv[optind - 1];
            if (strncmp(arg, "--", 2) != 0) {
                char opt[3] = {'-', (char)optopt, 0};
                return bad_usage("unknown option %s", opt);
            }
            if (optopt) return bad_usage("option %s takes no value", arg);
            return bad_usage("unknown option %s", arg);
        }
        }
    }
    if (optind < argc) return bad_usage("unexpected argument '%s'", argv[optind]);
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
 * 0 once it serves) or its exit. The child (which returns GO) starts a session, puts its
 * stdio on /dev/null (stderr on $FERRY_LOG if set, and *logfile = 1 then) and keeps
 * ready[1] to send the word. GO, or the starter's exit code. */
static int detach(int ready[2], int *logfile)
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
    const char *log = secure_getenv("FERRY_LOG");
    int err = log && *log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    *logfile = err >= 0;
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
        ferry__log(LOG_ERR, "%s: %s", lockpath, strerror(errno));
        return 1;
    }
    if (flock(*lock, LOCK_EX | LOCK_NB) < 0) {
        ferry__log(LOG_NOTICE, "already running on %s", sock);
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
        ferry__log(LOG_ERR, "listen on %s: %s", sock, strerror(-rc));
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

/* What on_state needs: the starter's pipe (until told), the socket served, whether the
 * service manager refused a notification already (said once). */
typedef struct daemon_state {
    int ready;
    const char *sock;
    int notify_failed;
} daemon_state;

/* The loop's state changes (server.h): to the service manager, and at the first READY=1
 * to the starting process and the log. */
static void on_state(void *arg, const char *st)
{
    daemon_state *d = arg;
    char msg[256];
    int first = d->sock && strcmp(st, "READY=1") == 0;
    if (first) { /* the first READY=1 also says what is served (on one line: a control
                    byte in the path must not start an assignment of its own) */
        int n = snprintf(msg, sizeof msg, "READY=1\nSTATUS=serving %s", d->sock);
        size_t end = n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
        for (size_t i = strlen("READY=1\n"); i < end; i++)
            if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) msg[i] = '?';
        st = msg;
    } else if (strcmp(st, "RELOADING=1") == 0) { /* with the time, as sd_notify(3) asks */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)ts.tv_sec * 1000000ull +
                     (unsigned long long)ts.tv_nsec / 1000);
        st = msg;
    }
    int rc = ferry__notify(st);
    if (rc < 0 && !d->notify_failed) {
        d->notify_failed = 1;
        ferry__log(LOG_WARNING, "cannot notify the service manager ($NOTIFY_SOCKET): %s",
                   strerror(-rc));
    }
    if (first) {
        ferry__log(LOG_INFO, "ferryd %s serving %s (pid %d)", FERRY_VERSION_STRING, d->sock,
                   (int)getpid());
        d->sock = NULL;
        tell_starter(&d->ready, 0); /* serving: the starter may go */
    }
}

/* The address the activated socket lfd was bound to (systemd's; for the log), into buf;
 * "?" when it has none. (ferryd's own socket is bound under a temporary name and renamed
 * into place: its path is --socket's, not this.) */
static const char *sock_name(int lfd, char *buf, size_t cap)
{
    struct sockaddr_un sa;
    socklen_t l = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(lfd, (struct sockaddr *)&sa, &l) < 0 ||
        l <= offsetof(struct sockaddr_un, sun_path)) {
        snprintf(buf, cap, "?");
    } else if (sa.sun_path[0] == '\0') { /* abstract: '@' and the name's printable bytes */
        size_t n = l - offsetof(struct sockaddr_un, sun_path) - 1;
        snprintf(buf, cap, "@%.*s", (int)n, sa.sun_path + 1);
    } else {
        snprintf(buf, cap, "%.*s", (int)sizeof sa.sun_path, sa.sun_path);
    }
    return buf;
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
    ferry__log_open(ferry__log_pick(o.syslog));

    int lfd = activated_fd();
    if (lfd == -2) {
        ferry__log(LOG_ERR, "the socket systemd passed is not SOCK_SEQPACKET");
        return 1;
    }
    int activated = lfd >= 0;

    /* Detach first, so that the lock is held by the process that serves. Its stderr is
     * then $FERRY_LOG (which wins over --syslog: it is asked for by name) or nothing: the
     * log goes there, or to syslog. */
    int ready[2] = {-1, -1}, logfile = 0;
    if (!o.foreground) {
        if ((rc = detach(ready, &logfile)) != GO) return rc;
        ferry__log_open(logfile ? FERRY__LOG_STDERR : FERRY__LOG_SYSLOG);
    }
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
    char name[sizeof o.sock + 1];
    daemon_state ds = {.ready = ready[1],
                       .sock = activated ? sock_name(lfd, name, sizeof name) : o.sock};
    o.cfg.on_state = on_state;
    o.cfg.state_arg = &ds;
    rc = ferry__broker_run(&o.cfg); /* says READY=1 once serving (on_state) */
    tell_starter(&ds.ready, 1);     /* it stopped before serving (the policy) */
    if (!activated && o.sock[0] != '@') unlink(o.sock);
    close(lfd);
    close(o.cfg.signal_fd);
    if (lock >= 0) close(lock);
    if (rc < 0) ferry__log(LOG_ERR, "stopped: %s", strerror(-rc));
    return rc < 0 ? 1 : 0;
}
