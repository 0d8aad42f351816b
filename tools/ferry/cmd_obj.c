// SPDX-License-Identifier: MIT
/*
 * cmd_obj.c — the shell commands for named objects in ferryd:
 *   ferry mailbox send|recv|create NAME   (send/recv: cmd_msg.c's engine, mailboxes only)
 *   ferry sub NAME                        subscribe to a broadcast, print with lost counts
 *   ferry pub NAME                        make and publish a broadcast, publish the input
 *   ferry event post|next|create NAME     64-bit events
 *   ferry sem post|wait|value|create NAME counting semaphores
 *   ferry stat NAME                       what the name is and what its object holds now
 *   ferry kill NAME SIGNAL                ferry_kill: ferryd's checked path
 * `create` (and pub) makes the object, publishes it under NAME with --mode, and holds it
 * until SIGINT/SIGTERM (or --timeout): the name goes when this process does.
 *
 * Rules: every object is opened with the library's checks (ferry_X_open validates what
 * ferryd hands over); option structs are filled by their _init functions; the counters
 * are read in stat only (one place per kind).
 */
#define _GNU_SOURCE
#include "commands.h"
#include "io.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC_NS 1000000000LL

/* Publish fd under name as kind and hold it until stopped (or o->timeout_ns). */
static int hold(const char *cmd, const cli_opts *o, const char *name, int fd, int kind)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = o->mode;
    ferry_pub *pub;
    int rc = ferry_publish(name, fd, kind, &pol, &pub, FERRY_FOREVER);
    if (rc < 0) return cli_fail(cmd, name, rc);
    fprintf(stderr, "ferry %s: published %s\n", cmd, name);
    if (o->timeout_ns >= 0)
        cli_sleep_ns(o->timeout_ns);
    else
        while (!cli_stop) cli_sleep_ns(SEC_NS);
    ferry_pub_close(pub);
    return 0;
}

/* ------------------------------------------------------------------ mailbox */

static void mailbox_usage(FILE *f)
{
    fputs("usage: ferry mailbox send NAME [--data S | --file P | --lines] [--type N] ...\n"
          "       ferry mailbox recv NAME [--type-filter N] [--count N] [--format F] ...\n"
          "       ferry mailbox create NAME [--capacity N] [--max-msg N] [--mode OCTAL]\n"
          "  send/recv: as `ferry send` / `ferry recv`, to a published mailbox only.\n"
          "  create: make a mailbox, publish it as NAME and hold it until SIGINT/SIGTERM\n"
          "  (or --timeout); its messages stay while someone holds it.\n"
          "  Exit: 0, 2 usage, 3 timeout, 4 no such name, 5 permission denied,\n"
          "  7 NAME is not a mailbox, 1 other.\n",
          f);
}

int mailbox_main(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : "";
    cli_opts o;
    int rc;
    if (strcmp(verb, "send") == 0) {
        rc = cli_parse("mailbox send", argc - 1, argv + 1,
                       CLI_O_IN | CLI_O_FORMAT | CLI_O_COUNT | CLI_O_TIMEOUT, 1, 1, mailbox_usage,
                       &o);
        if (rc >= 0) return rc;
        if (o.fd_path) {
            fputs("ferry mailbox send: mailboxes carry no descriptors (--fd)\n", stderr);
            return CLI_EX_USAGE;
        }
        return msg_send("mailbox send", &o, o.pos[0], NULL, FERRY_OBJ_MAILBOX);
    }
    if (strcmp(verb, "recv") == 0) {
        rc = cli_parse("mailbox recv", argc - 1, argv + 1,
                       CLI_O_OUT | CLI_O_FORMAT | CLI_O_COUNT | CLI_O_TIMEOUT, 1, 1, mailbox_usage,
                       &o);
        if (rc >= 0) return rc;
        return msg_recv("mailbox recv", &o, o.pos[0], FERRY_OBJ_MAILBOX);
    }
    if (strcmp(verb, "create") == 0) {
        rc = cli_parse("mailbox create", argc - 1, argv + 1, CLI_O_OBJ | CLI_O_MODE | CLI_O_TIMEOUT,
                       1, 1, mailbox_usage, &o);
        if (rc >= 0) return rc;
        cli_signals();
        ferry_mailbox_opts mo;
        ferry_mailbox_opts_init(&mo);
        if (o.has_capacity) mo.capacity = o.capacity;
        if (o.max_msg) mo.max_msg = o.max_msg;
        ferry_mailbox *mb;
        if ((rc = ferry_mailbox_create(&mo, &mb)) < 0)
            return cli_fail("mailbox create", "mailbox", rc);
        rc = hold("mailbox create", &o, o.pos[0], ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX);
        ferry_mailbox_close(mb);
        return rc;
    }
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        mailbox_usage(stdout);
        return 0;
    }
    fprintf(stderr, "ferry mailbox: %s '%s' (see 'ferry help mailbox')\n",
            *verb ? "unknown verb" : "missing verb", verb);
    return CLI_EX_USAGE;
}

/* ------------------------------------------------------------------ broadcast */

static void sub_usage(FILE *f)
{
    fputs("usage: ferry sub NAME [--count N] [--format F] [-q] [--drop-oldest] [--timeout T]\n"
          "  Subscribe to the broadcast published as NAME and print each message with its\n"
          "  type, size and the messages this subscription lost so far (--drop-oldest:\n"
          "  the publisher drops our oldest instead of waiting for us).\n"
          "  Ends when the stream ends (0), after --count messages, or at --timeout (3).\n",
          f);
}

int sub_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("sub", argc, argv,
                       CLI_O_OUT | CLI_O_FORMAT | CLI_O_COUNT | CLI_O_TIMEOUT | CLI_O_OBJ, 1, 1,
                       sub_usage, &o);
    if (rc >= 0) return rc;
    return msg_recv("sub", &o, o.pos[0], FERRY_OBJ_BCAST);
}

static void pub_usage(FILE *f)
{
    fputs("usage: ferry pub NAME [--data S | --file P | --lines] [--type N] [--count N]\n"
          "                [--interval T] [--capacity SLOTS] [--max-msg N] [--mode OCTAL]\n"
          "  Make a broadcast object, publish it as NAME, and publish each input message\n"
          "  to its subscribers (`ferry sub NAME`); then end the stream and go.\n"
          "  --capacity SLOTS  ring slots, a power of two (default 64)\n",
          f);
}

int pub_main(int argc, char **argv)
{
    cli_opts o;
    int rc =
        cli_parse("pub", argc, argv,
                  CLI_O_IN | CLI_O_FORMAT | CLI_O_COUNT | CLI_O_TIMEOUT | CLI_O_OBJ | CLI_O_MODE, 1,
                  1, pub_usage, &o);
    if (rc >= 0) return rc;
    cli_signals();
    cli_input in;
    if ((rc = cli_input_open(&in, &o, NULL)) < 0) {
        cli_input_close(&in);
        return cli_fail("pub", "input does not decode as --format says", rc);
    }
    ferry_bcast_opts bo;
    ferry_bcast_opts_init(&bo);
    if (o.has_capacity) bo.slots = o.capacity;
    if (o.max_msg) bo.max_msg = o.max_msg;
    ferry_bcast *bc;
    ferry_pub *pub = NULL;
    int ex = 0;
    if ((rc = ferry_bcast_create(&bo, &bc)) < 0) {
        cli_input_close(&in);
        return cli_fail("pub", "broadcast", rc);
    }
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = o.mode;
    rc = ferry_publish(o.pos[0], ferry_bcast_fd(bc), FERRY_OBJ_BCAST, &pol, &pub, FERRY_FOREVER);
    if (rc < 0) {
        ex = cli_fail("pub", o.pos[0], rc);
    } else {
        fprintf(stderr, "ferry pub: published %s\n", o.pos[0]);
        const void *data;
        size_t len;
        long n = 0;
        while ((rc = cli_input_next(&in, &data, &len)) == 1 && !cli_stop) {
            if (n++ > 0 && o.interval_ns > 0) cli_sleep_ns(o.interval_ns);
            cli_deadline d;
            cli_deadline_set(&d, o.timeout_ns);
            for (;;) {
                int64_t s = cli_slice(&d);
                if (s == -EINTR || s == -ETIMEDOUT) {
                    rc = (int)s;
                    break;
                }
                rc = ferry_bcast_publish(bc, in.type, data, len, s);
                if (rc != -ETIMEDOUT && rc != -EAGAIN) break;
            }
            if (rc < 0) break;
        }
        if (rc < 0 && rc != -EINTR) ex = cli_fail("pub", o.pos[0], rc);
    }
    ferry_pub_close(pub);
    ferry_bcast_close(bc); /* ends the stream: subscribers get what was published, then 0 */
    cli_input_close(&in);
    return ex;
}

/* ------------------------------------------------------------------ events */

static void event_usage(FILE *f)
{
    fputs("usage: ferry event post NAME [PAYLOAD] [--coalesce] [--timeout T]\n"
          "       ferry event next NAME [--count N] [--json] [--timeout T]\n"
          "       ferry event create NAME [--capacity N] [--mode OCTAL]\n"
          "  PAYLOAD: an unsigned 64-bit integer (decimal or 0x hex; default 1). NAME may\n"
          "  be a pattern (org.x.*) for post: every queue published under it.\n"
          "  Exit: 0, 2 usage, 3 timeout (next: none came), 4 no such name, 5 permission\n"
          "  denied, 7 NAME is not an event queue, 1 other.\n",
          f);
}

int event_main(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : "";
    cli_opts o;
    int rc;
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        event_usage(stdout);
        return 0;
    }
    int post = strcmp(verb, "post") == 0, next = strcmp(verb, "next") == 0;
    int create = strcmp(verb, "create") == 0;
    if (!post && !next && !create) {
        fprintf(stderr, "ferry event: %s '%s' (see 'ferry help event')\n",
                *verb ? "unknown verb" : "missing verb", verb);
        return CLI_EX_USAGE;
    }
    unsigned allowed = post   ? CLI_O_OBJ | CLI_O_TIMEOUT
                       : next ? CLI_O_COUNT | CLI_O_TIMEOUT | CLI_O_JSON
                              : CLI_O_OBJ | CLI_O_MODE | CLI_O_TIMEOUT;
    rc = cli_parse(post   ? "event post"
                   : next ? "event next"
                          : "event create",
                   argc - 1, argv + 1, allowed, 1, post ? 2 : 1, event_usage, &o);
    if (rc >= 0) return rc;
    cli_signals();
    const char *cmd = post ? "event post" : next ? "event next" : "event create";
    ferry_event *e;
    if (create) {
        if ((rc = ferry_event_create(o.has_capacity ? o.capacity : 0, &e)) < 0)
            return cli_fail(cmd, "event queue", rc);
        rc = hold(cmd, &o, o.pos[0], ferry_event_fd(e), FERRY_OBJ_EVENT);
        ferry_event_close(e);
        return rc;
    }
    int64_t payload = 1;
    if (post && o.npos == 2) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(o.pos[1], &end, 0);
        if (errno || *end || !*o.pos[1] || o.pos[1][0] == '-') {
            fprintf(stderr, "ferry event post: bad payload '%s' (an unsigned 64-bit integer)\n",
                    o.pos[1]);
            return CLI_EX_USAGE;
        }
        payload = (int64_t)v;
    }
    int64_t to = o.timeout_ns;
    if ((rc = ferry_event_open(o.pos[0], &e, to < 0 ? FERRY_FOREVER : to)) < 0)
        return cli_fail(cmd, o.pos[0], rc);
    int ex = 0;
    if (post) {
        rc = ferry_event_post(e, (uint64_t)payload, o.coalesce ? FERRY_EVENT_COALESCE : 0, to);
        if (rc < 0) ex = cli_fail(cmd, o.pos[0], rc);
    } else {
        for (long got = 0; o.count < 0 ? got < 1 : got < o.count; got++) {
            cli_deadline d;
            cli_deadline_set(&d, to);
            uint64_t v = 0;
            for (;;) {
                int64_t s = cli_slice(&d);
                if (s == -EINTR || s == -ETIMEDOUT) {
                    rc = (int)s;
                    break;
                }
                rc = ferry_event_next(e, &v, s);
                if (rc != -ETIMEDOUT && rc != -EAGAIN) break;
            }
            if (rc == -EINTR) break;
            if (rc < 0) {
                ex = cli_fail(cmd, o.pos[0], rc);
                break;
            }
            if (o.json)
                printf("{\"payload\": %llu}\n", (unsigned long long)v);
            else
                printf("%llu\n", (unsigned long long)v);
            fflush(stdout);
        }
    }
    ferry_event_close(e);
    return ex;
}

/* ------------------------------------------------------------------ semaphores */

static void sem_usage(FILE *f)
{
    fputs("usage: ferry sem post|wait|value NAME [--timeout T]\n"
          "       ferry sem create NAME [--value N] [--mode OCTAL]\n"
          "  post: give one unit; wait: take one (waiting up to --timeout); value: print\n"
          "  the value. create: make a semaphore with --value units (default 0; no undo:\n"
          "  a unit `sem wait` took stays taken), publish it as NAME and hold it until\n"
          "  SIGINT/SIGTERM.\n"
          "  Exit: 0, 2 usage, 3 timeout, 4 no such name, 5 permission denied,\n"
          "  7 NAME is not a semaphore, 1 other.\n",
          f);
}

int sem_main(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : "";
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        sem_usage(stdout);
        return 0;
    }
    static const char *const verbs[] = {"post", "wait", "value", "create"};
    int v = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(verb, verbs[i]) == 0) v = i;
    if (v < 0) {
        fprintf(stderr, "ferry sem: %s '%s' (see 'ferry help sem')\n",
                *verb ? "unknown verb" : "missing verb", verb);
        return CLI_EX_USAGE;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "sem %s", verb);
    cli_opts o;
    unsigned allowed = v == 3 ? CLI_O_OBJ | CLI_O_MODE | CLI_O_TIMEOUT : CLI_O_TIMEOUT;
    int rc = cli_parse(cmd, argc - 1, argv + 1, allowed, 1, 1, sem_usage, &o);
    if (rc >= 0) return rc;
    cli_signals();
    ferry_sem *s;
    if (v == 3) {
        if ((rc = ferry_sem_create(o.value < 0 ? 0 : (uint32_t)o.value, 0, &s)) < 0)
            return cli_fail(cmd, "semaphore", rc);
        rc = hold(cmd, &o, o.pos[0], ferry_sem_fd(s), FERRY_OBJ_SEM);
        ferry_sem_close(s);
        return rc;
    }
    if ((rc = ferry_sem_open(o.pos[0], &s, o.timeout_ns)) < 0) return cli_fail(cmd, o.pos[0], rc);
    int ex = 0;
    if (v == 0) {
        rc = ferry_sem_post(s);
    } else if (v == 1) {
        cli_deadline d;
        cli_deadline_set(&d, o.timeout_ns);
        for (;;) {
            int64_t sl = cli_slice(&d);
            if (sl == -EINTR || sl == -ETIMEDOUT) {
                rc = (int)sl;
                break;
            }
            rc = ferry_sem_wait(s, sl);
            if (rc != -ETIMEDOUT && rc != -EAGAIN) break;
        }
    } else {
        rc = ferry_sem_value(s);
        if (rc >= 0) printf("%d\n", rc);
    }
    if (rc < 0 && rc != -EINTR) ex = cli_fail(cmd, o.pos[0], rc);
    if (rc == -EINTR) ex = CLI_EX_TIMEOUT;
    ferry_sem_close(s);
    return ex;
}

/* ------------------------------------------------------------------ stat */

static void stat_usage(FILE *f)
{
    fputs("usage: ferry stat NAME [--json] [--timeout T]\n"
          "  What NAME is and what it holds now: its kind, owner (uid, gid, pid, alive),\n"
          "  mode, introductions and how long it has been owned; and, where you may open\n"
          "  the object: a mailbox's depth, capacity, max message, counters and waiting\n"
          "  receivers; a broadcast's subscribers, messages published and each\n"
          "  subscriber's lag (pid, lag, drop-oldest, holding, dead); a semaphore's value\n"
          "  and waiters; an event queue's counters.\n"
          "  Exit: 0, 2 usage, 3 timeout, 4 no such name, 1 other.\n",
          f);
}

static void kv(int json, int *first, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void kv(int json, int *first, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (json) {
        printf("%s\"%s\": ", *first ? "" : ", ", key);
    } else {
        char k[32];
        snprintf(k, sizeof k, "%s:", key);
        printf("%-14s ", k);
    }
    vprintf(fmt, ap);
    if (!json) putchar('\n');
    *first = 0;
    va_end(ap);
}

/* A broadcast's counters and its subscribers (one line each; --json: an array "subs"). */
static int bcast_stat(ferry_bcast *bc, int j, int *first)
{
    ferry_bcast_counters st;
    ferry_bcast_counters_init(&st);
    int rc = ferry_bcast_stats(bc, &st);
    if (rc < 0) return rc;
    kv(j, first, "subscribers", "%u", st.subscribers);
    kv(j, first, "published", "%llu", (unsigned long long)st.published);
    kv(j, first, "max_lag", "%llu", (unsigned long long)st.max_lag);
    kv(j, first, "slots", "%u", st.slots);
    kv(j, first, "max_subs", "%u", st.max_subs);
    kv(j, first, "max_msg", "%zu", st.max_msg);
    kv(j, first, "ended", "%s", st.ended ? "true" : "false");
    /* max_subs <= FERRY_BCAST_MAX_SUBS: the library checked it when it mapped the object */
    ferry_bcast_sub_info *subs = calloc(st.max_subs ? st.max_subs : 1, sizeof *subs);
    if (!subs) return -ENOMEM;
    ssize_t n = ferry_bcast_list(bc, subs, st.max_subs);
    if (j) printf(", \"subs\": [");
    for (ssize_t i = 0; i < n; i++) {
        const ferry_bcast_sub_info *r = &subs[i];
        int drop = (r->flags & FERRY_SUB_DROP_OLDEST) != 0;
        if (j)
            printf("%s{\"pid\": %d, \"lag\": %llu, \"drop_oldest\": %s, \"holding\": %s, "
                   "\"alive\": %s}",
                   i ? ", " : "", (int)r->pid, (unsigned long long)r->lag, drop ? "true" : "false",
                   r->holding ? "true" : "false", r->alive ? "true" : "false");
        else
            printf("%-14s pid %d lag %llu%s%s%s\n", "sub:", (int)r->pid, (unsigned long long)r->lag,
                   drop ? " drop-oldest" : "", r->holding ? " holding" : "",
                   r->alive ? "" : " dead");
    }
    if (j) putchar(']');
    free(subs);
    return n < 0 ? (int)n : 0;
}

int stat_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("stat", argc, argv, CLI_O_JSON | CLI_O_TIMEOUT, 1, 1, stat_usage, &o);
    if (rc >= 0) return rc;
    const char *name = o.pos[0];
    int64_t to = o.has_timeout ? o.timeout_ns : 10 * SEC_NS;
    ferry_name_info in;
    if ((rc = ferry_lookup(name, &in, to)) < 0) return cli_fail("stat", name, rc);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    char since[64];
    cli_time_str(in.since_ns, since, sizeof since);
    double up = now_ns > in.since_ns ? (double)(now_ns - in.since_ns) / 1e9 : 0;
    int alive = in.pid > 0 && (kill(in.pid, 0) == 0 || errno == EPERM);
    int j = o.json, first = 1;
    if (j) {
        fputs("{\"name\": ", stdout);
        cli_json_str(stdout, in.name, strlen(in.name));
        first = 0;
    } else {
        kv(0, &first, "name", "%s", in.name);
    }
    kv(j, &first, "kind", j ? "\"%s\"" : "%s", cli_kind_name(in.kind));
    kv(j, &first, "uid", "%u", (unsigned)in.uid);
    kv(j, &first, "gid", "%u", (unsigned)in.gid);
    kv(j, &first, "pid", "%d", (int)in.pid);
    kv(j, &first, "owner_alive", "%s", alive ? "true" : "false");
    kv(j, &first, "mode", j ? "\"%04o\"" : "%04o", in.mode);
    kv(j, &first, in.kind ? "opens" : "introductions", "%llu", (unsigned long long)in.connects);
    kv(j, &first, "since", j ? "\"%s\"" : "%s", since);
    kv(j, &first, "uptime_s", "%.3f", up);
    const char *err = NULL;
    if (in.kind == FERRY_OBJ_MAILBOX) {
        ferry_mailbox *mb;
        ferry_mailbox_counters st;
        ferry_mailbox_counters_init(&st);
        if ((rc = ferry_mailbox_open(name, &mb, to)) == 0) {
            rc = ferry_mailbox_stats(mb, &st);
            ferry_mailbox_close(mb);
        }
        if (rc == 0) {
            kv(j, &first, "depth", "%u", st.queued);
            if (st.capacity == FERRY_UNBOUNDED)
                kv(j, &first, "capacity", j ? "\"%s\"" : "%s", "unbounded");
            else
                kv(j, &first, "capacity", "%u", st.capacity);
            kv(j, &first, "max_msg", "%zu", st.max_msg);
            kv(j, &first, "sent", "%llu", (unsigned long long)st.sent);
            kv(j, &first, "received", "%llu", (unsigned long long)st.received);
            kv(j, &first, "lost", "%llu", (unsigned long long)st.lost);
            kv(j, &first, "returned", "%llu", (unsigned long long)st.returned);
            kv(j, &first, "withdrawn", "%llu", (unsigned long long)st.withdrawn);
            kv(j, &first, "torn", "%llu", (unsigned long long)st.torn);
            kv(j, &first, "recovered", "%llu", (unsigned long long)st.recovered);
            kv(j, &first, "waiting", "%llu", (unsigned long long)st.waiting);
        }
    } else if (in.kind == FERRY_OBJ_BCAST) {
        ferry_bcast *bc;
        if ((rc = ferry_bcast_open(name, &bc, to)) == 0) {
            rc = bcast_stat(bc, j, &first);
            ferry_bcast_close(bc);
        }
    } else if (in.kind == FERRY_OBJ_SEM) {
        ferry_sem *s;
        if ((rc = ferry_sem_open(name, &s, to)) == 0) {
            int v = ferry_sem_value(s);
            int w = ferry_sem_waiters(s);
            ferry_sem_close(s);
            if (v >= 0) kv(j, &first, "value", "%d", v);
            if (w >= 0) kv(j, &first, "waiters", "%d", w);
            rc = v < 0 ? v : w < 0 ? w : 0;
        }
    } else if (in.kind == FERRY_OBJ_EVENT) {
        ferry_event *e;
        if ((rc = ferry_event_open(name, &e, to)) == 0) {
            ferry_event_counters st;
            ferry_event_counters_init(&st);
            rc = ferry_event_stats(e, &st);
            ferry_event_close(e);
            if (rc == 0) {
                kv(j, &first, "posted", "%llu", (unsigned long long)st.posted);
                kv(j, &first, "merged", "%llu", (unsigned long long)st.merged);
            }
        }
    } else if (in.kind == FERRY_OBJ_REGION) {
        kv(j, &first, "size", "%llu", (unsigned long long)in.size);
        ferry_region *r;
        if ((rc = ferry_region_open(name, FERRY_REGION_READ, &r, to)) == 0) {
            kv(j, &first, "version", "%llu", (unsigned long long)ferry_region_version(r));
            ferry_region_close(r);
        }
    } else if (in.kind == FERRY_OBJ_STATE) {
        ferry_state *st;
        if ((rc = ferry_state_open(name, &st, to)) == 0) {
            kv(j, &first, "max_len", "%zu", ferry_state_max_len(st));
            kv(j, &first, "version", "%llu", (unsigned long long)ferry_state_version(st));
            ferry_state_close(st);
        }
    } else {
        rc = 0; /* a server, mutex or barrier: ferryd's view is all there is */
    }
    if (rc < 0) err = ferry_strerror(rc);
    if (err) {
        if (j) {
            fputs(", \"object_error\": ", stdout);
            cli_json_str(stdout, err, strlen(err));
        } else {
            printf("%-14s %s\n", "object:", err);
        }
    }
    if (j) puts("}");
    return 0;
}

/* ------------------------------------------------------------------ kill */

static void kill_usage(FILE *f)
{
    fputs("usage: ferry kill NAME SIGNAL [--timeout T]\n"
          "  Ask ferryd to send SIGNAL (TERM, SIGTERM, 15, ...) to the process that owns\n"
          "  NAME. ferryd signals when the name's policy grants you a signal right, or\n"
          "  when your own kill(2) could signal the owner (ferry_kill).\n"
          "  Exit: 0, 2 usage, 3 timeout, 4 no such name, 5 permission denied, 6 the owner\n"
          "  is exiting, 1 other.\n",
          f);
}

static int parse_signal(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
                {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
                {"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
                {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
                {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
                {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
                {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
                {"PWR", SIGPWR},       {"SYS", SIGSYS}};
    int64_t n;
    if (cli_parse_int(s, 1, 64, &n) == 0) return (int)n;
    if (strncasecmp(s, "SIG", 3) == 0) s += 3;
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (strcasecmp(s, sigs[i].name) == 0) return sigs[i].sig;
    if (strncasecmp(s, "RTMIN+", 6) == 0 && cli_parse_int(s + 6, 0, 64, &n) == 0 &&
        SIGRTMIN + n <= 64)
        return SIGRTMIN + (int)n;
    return -1;
}

int kill_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("kill", argc, argv, CLI_O_TIMEOUT, 2, 2, kill_usage, &o);
    if (rc >= 0) return rc;
    int sig = parse_signal(o.pos[1]);
    if (sig < 0) {
        fprintf(stderr,
                "ferry kill: bad signal '%s' (a name like TERM or a number 1..64; see 'ferry help "
                "kill')\n",
                o.pos[1]);
        return CLI_EX_USAGE;
    }
    rc = ferry_kill(o.pos[0], sig, o.has_timeout ? o.timeout_ns : 10 * SEC_NS);
    return rc < 0 ? cli_fail("kill", o.pos[0], rc) : 0;
}
