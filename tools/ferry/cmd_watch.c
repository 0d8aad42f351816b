// SPDX-License-Identifier: MIT
/*
 * cmd_watch.c — `ferry watch [PATTERN]`: ferryd's name events as they happen (OWNED,
 * CHANGED, RELEASED, DIED) with the time, the name's kind, and the owner's uid and pid;
 * --json prints one object per line. The `dbus-monitor` of names.
 *
 * Rules: "watching PATTERN" goes to stderr once ferryd accepted the watch (so a script
 * knows nothing after that is missed); --count ends after N events, --timeout when no
 * event came for that long (3), SIGINT/SIGTERM at once (0); ferryd going away is 6.
 */
#define _GNU_SOURCE
#include "commands.h"
#include "io.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void watch_usage(FILE *f)
{
    fputs("usage: ferry watch [PATTERN] [--json] [--count N] [--timeout T]\n"
          "  Print name events from ferryd: OWNED, CHANGED (taken over), RELEASED, DIED\n"
          "  (the owner died), with time (UTC), kind, name, uid, gid and pid.\n"
          "  PATTERN: a name, or a prefix ending in '*' (org.example.*); default '*'.\n"
          "  --json        one JSON object per line\n"
          "  --count N     stop after N events\n"
          "  --timeout T   stop (exit 3) when no event came for T (default forever)\n"
          "  Exit: 0, 2 usage, 3 timeout, 4 no ferryd, 6 ferryd went away, 1 other.\n",
          f);
}

static const char *event_name(int k)
{
    switch (k) {
    case FERRY_EV_OWNED:
        return "OWNED";
    case FERRY_EV_CHANGED:
        return "CHANGED";
    case FERRY_EV_RELEASED:
        return "RELEASED";
    case FERRY_EV_DIED:
        return "DIED";
    default:
        return "?";
    }
}

int watch_main(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse("watch", argc, argv, CLI_O_JSON | CLI_O_COUNT | CLI_O_TIMEOUT, 0, 1,
                       watch_usage, &o);
    if (rc >= 0) return rc;
    const char *pattern = o.npos ? o.pos[0] : "*";
    cli_signals();
    ferry_watch *w;
    if ((rc = ferry_watch_open(pattern, &w, o.timeout_ns)) < 0)
        return cli_fail("watch", pattern, rc);
    fprintf(stderr, "ferry watch: watching %s\n", pattern);
    long got = 0;
    int ex = 0;
    while (o.count < 0 || got < o.count) {
        cli_deadline d;
        cli_deadline_set(&d, o.timeout_ns);
        ferry_watch_event ev;
        for (;;) {
            int64_t s = cli_slice(&d);
            if (s == -EINTR || s == -ETIMEDOUT) {
                rc = (int)s;
                break;
            }
            rc = ferry_watch_next(w, &ev, s);
            if (rc != -ETIMEDOUT && rc != -EAGAIN) break;
        }
        if (rc == -EINTR) break;
        if (rc < 0) {
            ex = cli_fail("watch", pattern, rc);
            break;
        }
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        char t[64];
        cli_time_str((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec, t, sizeof t);
        const ferry_name_info *in = &ev.info;
        if (o.json) {
            printf("{\"time\": \"%s\", \"event\": \"%s\", \"name\": ", t, event_name(ev.kind));
            cli_json_str(stdout, in->name, strlen(in->name));
            printf(", \"kind\": \"%s\", \"uid\": %u, \"gid\": %u, \"pid\": %d, \"mode\": "
                   "\"%04o\"}\n",
                   cli_kind_name(in->kind), (unsigned)in->uid, (unsigned)in->gid, (int)in->pid,
                   in->mode);
        } else {
            printf("%s %-8s %-9s %s uid %u gid %u pid %d\n", t, event_name(ev.kind),
                   cli_kind_name(in->kind), in->name, (unsigned)in->uid, (unsigned)in->gid,
                   (int)in->pid);
        }
        fflush(stdout);
        got++;
    }
    ferry_watch_close(w);
    return ex;
}
