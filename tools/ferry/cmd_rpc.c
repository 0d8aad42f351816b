// SPDX-License-Identifier: MIT
/*
 * cmd_rpc.c — `ferry call NAME [PAYLOAD]` (one RPC call per --count, the reply printed)
 * and `ferry serve NAME --exec CMD | --echo` (a service: each request is answered by CMD,
 * run by /bin/sh -c with the request on stdin and its stdout as the reply, or echoed).
 *
 * Rules: serve's channels have max_msg SERVE_MAX_MSG, and a reply is cut there (said on
 * stderr); CMD's exit status is reported on stderr, its output is the reply either way.
 * CMD runs with the caller's environment plus FERRY_NAME (the served name) and
 * FERRY_REQUEST_SIZE. A handler thread forks and execs (only dup2/exec in the child), so
 * CMD never inherits the service's descriptors (all FD_CLOEXEC; the request is a memfd).
 * serve ends on SIGINT/SIGTERM/SIGHUP (0) or after --count requests.
 */
#define _GNU_SOURCE
#include "commands.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SERVE_MAX_MSG ((size_t)(512 << 10) - 128) /* ring 1 MiB per direction */

/* ------------------------------------------------------------------ call */

static void call_usage(FILE *f)
{
    fputs("usage: ferry call NAME [PAYLOAD] [options]\n"
          "  One call to the RPC service NAME (ferry serve, ferry_serve): sends PAYLOAD\n"
          "  (or --data, --file, stdin) and prints the reply.\n"
          "  --format raw|text|hex|json|base64   input decoding and reply printing (text)\n"
          "  --count N         make N calls (--lines: one per line)\n"
          "  --interval T      pause between calls\n"
          "  --fd PATH         send PATH, opened read-only, with the request\n"
          "  --unix            a unix channel instead of shared memory\n"
          "  --timeout T       the whole call (default 30s; forever, now)\n"
          "  Exit: 0, 2 usage, 3 timeout, 4 no such name, 5 permission denied, 6 the\n"
          "  service died or left, 7 NAME is not a server, 1 other.\n",
          f);
}

int call_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("call", argc, argv,
                       CLI_O_IN | CLI_O_FORMAT | CLI_O_COUNT | CLI_O_TIMEOUT | CLI_O_UNIX, 1, 2,
                       call_usage, &o);
    if (rc >= 0) return rc;
    if (!o.has_timeout) o.timeout_ns = 30 * 1000000000LL;
    if (o.npos == 2 && (o.data || o.file || o.lines)) {
        fputs("ferry call: a PAYLOAD argument and --data/--file/--lines exclude each other\n",
              stderr);
        return CLI_EX_USAGE;
    }
    const char *name = o.pos[0];
    int fd = -1;
    if (o.fd_path && (fd = open(o.fd_path, O_RDONLY | O_CLOEXEC)) < 0)
        return cli_fail("call", o.fd_path, -errno);
    cli_input in;
    if ((rc = cli_input_open(&in, &o, o.npos == 2 ? o.pos[1] : NULL)) < 0) {
        cli_input_close(&in);
        if (fd >= 0) close(fd);
        return cli_fail("call", "input does not decode as --format says", rc);
    }
    ferry_chan *ch = NULL;
    ferry_rpc_client *c = NULL;
    int ex = 0;
    rc = ferry_connect(name, o.unix_kind ? FERRY_KIND_UNIX : FERRY_KIND_SHM, NULL, &ch,
                       o.timeout_ns);
    if (rc == 0 && (rc = ferry_rpc_client_create(ch, &c)) < 0) ferry_chan_close(ch);
    if (rc < 0) {
        ex = cli_fail("call", name, rc);
    } else {
        size_t cap = ferry_chan_max_msg(ch);
        char *buf = malloc(cap ? cap : 1);
        const void *data;
        size_t len;
        long n = 0;
        if (!buf) rc = -ENOMEM;
        while (buf && (rc = cli_input_next(&in, &data, &len)) == 1) {
            if (n++ > 0 && o.interval_ns > 0) cli_sleep_ns(o.interval_ns);
            ferry_msg req, resp;
            memset(&req, 0, sizeof req);
            memset(&resp, 0, sizeof resp);
            req.data = (void *)data;
            req.len = len;
            if (fd >= 0) {
                req.nfds = 1;
                req.fds[0] = fd;
            }
            resp.data = buf;
            resp.cap = cap;
            ssize_t r = ferry_call(c, &req, &resp, o.timeout_ns);
            if (r < 0) {
                rc = (int)r;
                break;
            }
            cli_meta meta;
            memset(&meta, 0, sizeof meta);
            meta.nfds = (int)resp.nfds;
            meta.fds = resp.fds;
            o.quiet = 1; /* a reply has no type; its size is its length */
            cli_print_msg(stdout, &o, buf, (size_t)r, resp.nfds ? &meta : NULL);
            for (uint32_t i = 0; i < resp.nfds; i++) close(resp.fds[i]);
        }
        if (rc < 0) ex = cli_fail("call", rc == -EINVAL ? "input or request" : name, rc);
        free(buf);
        ferry_rpc_client_close(c);
    }
    cli_input_close(&in);
    if (fd >= 0) close(fd);
    return ex;
}

/* ------------------------------------------------------------------ serve */

typedef struct serve_ctx {
    const char *name;
    const char *exec;
    atomic_long handled;
} serve_ctx;

/* Run ctx->exec with the request on stdin; its stdout (up to cap bytes) into out.
 * Returns the length, or -errno. */
static ssize_t run_cmd(const serve_ctx *ctx, const void *req, size_t len, char *out, size_t cap)
{
    int in = memfd_create("ferry-request", MFD_CLOEXEC);
    if (in < 0) return -errno;
    const char *p = req;
    size_t left = len;
    while (left) {
        ssize_t w = write(in, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(in);
            return -EIO;
        }
        p += w;
        left -= (size_t)w;
    }
    lseek(in, 0, SEEK_SET);
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        close(in);
        return -errno;
    }
    /* The child's environment, made here: after fork only async-signal-safe calls (the
     * parent has threads). Nothing in this program changes environ while it serves. */
    char e_name[300], e_size[48];
    snprintf(e_name, sizeof e_name, "FERRY_NAME=%s", ctx->name);
    snprintf(e_size, sizeof e_size, "FERRY_REQUEST_SIZE=%zu", len);
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **envp = malloc((ne + 3) * sizeof *envp);
    if (!envp) {
        close(in);
        close(pipefd[0]);
        close(pipefd[1]);
        return -ENOMEM;
    }
    size_t k = 0;
    envp[k++] = e_name;
    envp[k++] = e_size;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "FERRY_NAME=", 11) != 0 &&
            strncmp(environ[i], "FERRY_REQUEST_SIZE=", 19) != 0)
            envp[k++] = environ[i];
    envp[k] = NULL;
    char *args[] = {"sh", "-c", (char *)ctx->exec, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(in, 0) < 0 || dup2(pipefd[1], 1) < 0) _exit(127);
        execve("/bin/sh", args, envp);
        _exit(127);
    }
    int err = pid < 0 ? -errno : 0;
    free(envp);
    close(in);
    close(pipefd[1]);
    size_t n = 0, dropped = 0;
    while (pid > 0) {
        char sink[4096];
        char *dst = n < cap ? out + n : sink;
        size_t room = n < cap ? cap - n : sizeof sink;
        ssize_t r = read(pipefd[0], dst, room);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (dst == sink)
            dropped += (size_t)r;
        else
            n += (size_t)r;
    }
    close(pipefd[0]);
    if (pid > 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "ferry serve: %s: '%s' %s %d\n", ctx->name, ctx->exec,
                    WIFEXITED(st) ? "exited" : "was killed by signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    if (dropped)
        fprintf(stderr, "ferry serve: %s: reply cut at %zu bytes (%zu more dropped)\n", ctx->name,
                cap, dropped);
    return err < 0 ? err : (ssize_t)n;
}

static void handler(ferry_rpc_server *conn, ferry_rpc_request *rq, void *vctx)
{
    serve_ctx *ctx = vctx;
    for (uint32_t i = 0; i < rq->msg.nfds; i++) close(rq->msg.fds[i]);
    if (rq->oneway) return;
    ferry_msg resp;
    memset(&resp, 0, sizeof resp);
    char *out = NULL;
    if (ctx->exec) {
        out = malloc(SERVE_MAX_MSG);
        ssize_t n = out ? run_cmd(ctx, rq->msg.data, rq->msg.len, out, SERVE_MAX_MSG) : -ENOMEM;
        if (n < 0) {
            fprintf(stderr, "ferry serve: %s: cannot run '%s': %s\n", ctx->name, ctx->exec,
                    ferry_strerror((int)n));
            n = 0;
        }
        resp.data = out;
        resp.len = (size_t)n;
    } else {
        resp.data = rq->msg.data;
        resp.len = rq->msg.len;
    }
    int rc = ferry_reply(conn, rq->id, &resp, 5 * 1000000000LL);
    if (rc < 0 && rc != -ECANCELED)
        fprintf(stderr, "ferry serve: %s: reply: %s\n", ctx->name, ferry_strerror(rc));
    free(out);
    /* Counted once the reply is out: --count N ends after N answered requests. */
    atomic_fetch_add_explicit(&ctx->handled, 1, memory_order_release);
}

static void serve_usage(FILE *f)
{
    fputs("usage: ferry serve NAME (--exec CMD | --echo) [options]\n"
          "  Own NAME in ferryd and answer each call: --exec runs /bin/sh -c CMD with the\n"
          "  request on stdin (FERRY_NAME, FERRY_REQUEST_SIZE set) and replies with its\n"
          "  stdout (at most 512 KiB); --echo replies with the request.\n"
          "  --mode OCTAL      the name's policy mode (default 0600: your uid only;\n"
          "                    0644 others see it, 0666 others may call)\n"
          "  --threads N       requests handled at once (default 2)\n"
          "  --count N         stop after answering N requests\n"
          "  --timeout T       registering with ferryd (default forever)\n"
          "  Runs until SIGINT or SIGTERM (exit 0). Exit: 2 usage, 4 no ferryd,\n"
          "  5 the system policy refuses you NAME, 1 other (e.g. NAME owned already).\n",
          f);
}

int serve_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("serve", argc, argv, CLI_O_SERVE | CLI_O_MODE | CLI_O_COUNT | CLI_O_TIMEOUT,
                       1, 1, serve_usage, &o);
    if (rc >= 0) return rc;
    if (!o.exec == !o.echo) {
        fputs("ferry serve: give exactly one of --exec CMD and --echo\n", stderr);
        return CLI_EX_USAGE;
    }
    cli_signals();
    /* The pool threads inherit this mask: stop signals reach the main thread's sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    serve_ctx ctx = {.name = o.pos[0], .exec = o.exec};
    atomic_init(&ctx.handled, 0);
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = o.mode;
    ferry_chan_opts co;
    ferry_chan_opts_init(&co);
    co.ring_bytes = 1 << 20;
    co.max_msg = SERVE_MAX_MSG;
    ferry_rpc_service *svc;
    rc = ferry_serve(ctx.name, handler, &ctx, o.threads, &pol, &co, &svc, o.timeout_ns);
    if (rc < 0) return cli_fail("serve", ctx.name, rc);
    fprintf(stderr, "ferry serve: serving %s\n", ctx.name);
    for (;;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
        if (sigtimedwait(&set, NULL, &ts) > 0) break;
        if (o.count >= 0 && atomic_load_explicit(&ctx.handled, memory_order_acquire) >= o.count)
            break;
    }
    ferry_rpc_service_close(svc);
    return 0;
}
