// SPDX-License-Identifier: MIT
/*
 * bench.c — `ferry-bench` (also run as `ferry bench`, which execs it): main and the
 * driver. Parses the options, plans the measurements (rows;
 * see bench_plan.c), runs the whole list N times (--repeat) with a progress line on
 * stderr, then prints per row the median of each figure over the N repetitions on stdout,
 * as CSV (--csv) or as an aligned table followed by the notes on rows left out and the
 * target ratios (bench_report.c).
 *
 * Why repetitions: the host's noise comes in phases (for 100 ms to seconds every figure,
 * the floors included, gets several times slower), so two figures measured at different
 * moments do not compare. Each repetition runs every row once, round-robin, with 1/N of
 * the row's budget; within a repetition the two rows of each target ratio are measured
 * back to back (the denominator first), so each ratio is taken per repetition from two
 * figures measured in the same conditions, and the reported ratio is the median of those
 * (with their min..max). Rows are still printed in the usual grouped order.
 *
 * Interrupted (SIGINT, SIGTERM, SIGHUP), the run stops after the measurement under way
 * (its processes got the signal too, when it came from the terminal), releases what the
 * mechanisms kept (e.g. stops iceoryx's RouDi and removes its files), prints nothing and
 * dies of the same signal.
 *
 * Rules: stdout carries only the results (CSV stays pure: the header and one line per
 * row, same columns whatever N); progress, notes and failures go to stderr. A row that
 * fails in any repetition is not run again and prints no figures; the run then exits 1.
 * Bad usage exits 2. Every row is measured in this run, on this machine, with this process
 * pinned to one CPU and each peer to another where allowed.
 */
#define _POSIX_C_SOURCE 200809L /* strtok_r, isatty, strdup, sigaction, strsignal */
#include "bench_broker.h"
#include "bench_ferry.h"
#include "bench_pairs.h"
#include "bench_plan.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef FERRY_BENCH_VERSION
#define FERRY_BENCH_VERSION "unknown"
#endif

#define MS ((int64_t)1000 * 1000)

/* The budget of one row over the whole run; each repetition gets 1/N of it. */
static const bench_budget BUDGET_FULL = {100000, 200 * MS, 1000000, 2000 * MS};
static const bench_budget BUDGET_QUICK = {20000, 30 * MS, 200000, 300 * MS};
static const bench_budget BUDGET_SMOKE = {10, 1 * MS, 200, 20 * MS};

#define REPEAT_FULL  5
#define REPEAT_QUICK 3
#define REPEAT_SMOKE 1
#define MAX_URLS     4

/* The rows added by --url: a mechanism each, made here. */
static struct {
    bench_mech mech;
    bench_ferry_spec spec;
    char name[40];
} urls[MAX_URLS];
static int nurls;

/* Make a mechanism for --url. 0, or -1 (bad URL or too many). */
static int add_url(const char *url)
{
    size_t n = strcspn(url, ":");
    if (nurls == MAX_URLS) {
        fprintf(stderr, "ferry bench: at most %d --url\n", MAX_URLS);
        return -1;
    }
    if (n == 0 || n > 15 || strncmp(url + n, "://", 3) != 0 ||
        strspn(url, "abcdefghijklmnopqrstuvwxyz0123456789+-.") != n) {
        fprintf(stderr, "ferry bench: --url wants scheme://..., not '%s'\n", url);
        return -1;
    }
    urls[nurls].spec = (bench_ferry_spec){.url = url};
    snprintf(urls[nurls].name, sizeof urls[nurls].name, "ferry-%.*s-url", (int)n, url);
    urls[nurls].mech = (bench_mech){
        .name = urls[nurls].name, .fn = bench_ferry, .shape = SHAPE_ALL, .arg = &urls[nurls].spec};
    nurls++;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry bench [--csv] [--quick | --smoke] [--repeat N]\n"
            "                   [--only MECH[,MECH...]] [--url URL]... [--plot FILE.svg]\n"
            "       ferry bench --pairs N[,N...] [--csv] [--quick | --smoke] [--repeat N]\n"
            "                   [--only MECH[,MECH...]]\n"
            "       ferry bench --scale [--csv] [--smoke]\n"
            "       ferry bench --version\n"
            "(`ferry bench` runs the program ferry-bench, which takes the same options.)\n"
            "\n"
            "Measures ferry against baselines, all in this run on this machine, with two\n"
            "processes pinned to different CPUs where allowed. Progress goes to stderr.\n"
            "\n"
            "The whole plan (every row) runs N times, round-robin, each time with 1/N of the\n"
            "row's budget, and every figure printed is the median of its N measurements\n"
            "(per column). A target ratio is taken within each repetition, from its two rows\n"
            "measured back to back, and reported as the median of the N ratios (min..max).\n"
            "\n"
            "  --csv       print CSV, one line per row, the same columns whatever N (default:\n"
            "              an aligned table with a spread column, then the target ratios)\n"
            "  --quick     a short run, under 90 s with every row (default: the full run, a\n"
            "              few minutes)\n"
            "  --smoke     a tiny run that only checks that every row works (for tests)\n"
            "  --repeat N  run the plan N times, 1..%d (default %d; --quick %d; --smoke %d)\n"
            "  --plot F    also write a chart to F (SVG): p50 round trip by size, log-log,\n"
            "              one line per mechanism, ferry highlighted; stream throughput bars\n"
            "  --url URL   also measure ferry over URL, as a row ferry-<scheme>-url, with\n"
            "              ferry_listen + ferry_chan_open; {dir}, {port}, {name}, {key} in it\n"
            "              become a private directory, a free TCP port, a unique name and a\n"
            "              unique number. Alone (without --only) it measures only that row.\n"
            "              E.g. --url 'shm://{dir}/bench.sock' (up to %d)\n"
            "  --pairs L   instead of the rows: for each N in the comma-separated list (1..%d),\n"
            "              N pairs of processes ping 64 B messages at once, unpinned (more\n"
            "              processes than CPUs), and the row's figures are the aggregate round\n"
            "              trips/s over one common window and the p50/p99/p99.9 of every\n"
            "              pair's round trips. Rows: pipe and ferry-shm, or --only's (any\n"
            "              mechanism with every size, e.g. ferry-unix,unix,ferry-shm-blocking);\n"
            "              --pairs 2,8,64 prints the three ferry-shm / pipe targets\n"
            "  --scale     instead of the rows: start a private ferryd, register 10,000 names\n"
            "              (10 server processes) and open 1,000 clients (watches), then report\n"
            "              ferryd's VmRSS (target: < 16 MiB); with --smoke, 100 names and 20\n"
            "              clients\n"
            "  --only L    only these mechanisms (comma-separated):\n",
            BENCH_MAX_REPEAT, REPEAT_FULL, REPEAT_QUICK, REPEAT_SMOKE, MAX_URLS, BENCH_MAX_PAIRS);
    for (size_t i = 0; i < BENCH_NMECHS; i++) {
        const bench_mech *m = &BENCH_MECHS[i];
        if (m->fn)
            fprintf(f, "                %s\n", m->name);
        else
            fprintf(f, "                %s  (not built: %s)\n", m->name, m->missing);
    }
    fputs("\nPatterns: pingpong (round trip; p50/p99/p99.9 in ns, msgs_per_s = round trips/s)\n"
          "at 64, 4096, 65536, 1048576 bytes; stream (one-way throughput) at 64 and 1048576.\n"
          "Synchronization, size 0: uncontended (one process; the time of one wait+post pair\n"
          "of a semaphore, from batches of 100; msgs_per_s = pairs/s) and handoff (two\n"
          "processes take turns through one mutex; the time of one round of the turn).\n"
          "ferry-shm-self, uncontended at 64: one thread sends and receives 64-byte messages\n"
          "on one channel (both ends), batches of 100; the time of one send+recv pair.\n"
          "Shared-memory state, uncontended at 64: one process reads a 64-byte value\n"
          "(memcpy-value, ferry-state, pthread-rwlock, posix-shm+mutex), batches of 100; the\n"
          "time of one read, msgs_per_s = reads/s; the +writer rows read while the peer\n"
          "writes the value without pause. ferry-region-notify: pingpong 64 through two\n"
          "regions (ferry_region_notify / ferry_region_wait), beside eventfd.\n"
          "The 1 MiB ferry stream also reports its sleeps (both sides) per message, as a\n"
          "target.\n"
          "Request/reply peers, pingpong at 64 only: zeromq-reqrep (REQ/REP over ipc://) and\n"
          "dbus-call (an sd-bus method call through a dbus-daemon each measurement starts\n"
          "on a private address and stops).\n"
          "Between two network namespaces, only when --only names them (root, `ip`,\n"
          "nats-server and the ferry-bridge program), pingpong at 64: ferry-nats-rpc (a\n"
          "ferry_call through two ferry-bridges and two clustered nats-servers), nats-reqrep\n"
          "(cnats request/reply along the same path), zeromq-reqrep-netns (REQ/REP over\n"
          "tcp between the namespaces); every size, the peer on the other side of the veth\n"
          "pair: ferry-tls-netns, tls-netns, ferry-tcp-netns, tcp-netns (docs/cluster.md).\n"
          "The table's spread column is min..max over the repetitions of rtt_p50_ns, or for\n"
          "a stream row of msgs_per_s (bytes_per_s for memcpy-baseline).\n",
          f);
}

/* Mark the mechanisms named in a comma-separated list. 0, or -1 on an unknown name. */
static int select_only(const char *list, int *selected)
{
    char *copy = strdup(list), *save = NULL;
    int rc = 0, any = 0;
    if (!copy) return -1;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < BENCH_NMECHS && strcmp(BENCH_MECHS[i].name, t) != 0) i++;
        if (i == BENCH_NMECHS) {
            fprintf(stderr, "ferry bench: unknown mechanism '%s'\n", t);
            rc = -1;
            break;
        }
        selected[i] = 1;
        any = 1;
    }
    free(copy);
    return rc == 0 && any ? 0 : -1;
}

/* --repeat's value: 1..BENCH_MAX_REPEAT, or -1. */
static int parse_repeat(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > BENCH_MAX_REPEAT) {
        fprintf(stderr, "ferry bench: --repeat wants a whole number from 1 to %d, not '%s'\n",
                BENCH_MAX_REPEAT, s);
        return -1;
    }
    return (int)v;
}

/* One repetition's share of a row's budget: 1/n of each bound, keeping at least one
 * warm-up message (a stream's clock starts at its first message) and one measured one. */
static bench_budget split_budget(const bench_budget *b, int n)
{
    bench_budget s = {b->warm_iters / (uint64_t)n, b->warm_ns / n, b->max_iters / (uint64_t)n,
                      b->run_ns / n};
    if (s.warm_iters < 1) s.warm_iters = 1;
    if (s.max_iters < 1) s.max_iters = 1;
    if (s.run_ns < 1) s.run_ns = 1;
    return s;
}

static void progress(int tty, size_t i, size_t total, int rep, int repeat, const bench_row *r)
{
    char pass[32] = "", pat[32];
    if (repeat > 1) snprintf(pass, sizeof pass, "(%d/%d) ", rep + 1, repeat);
    fprintf(stderr, "%s[%3zu/%zu] %s%s %s %zu%s", tty ? "\r\033[K" : "", i + 1, total, pass,
            r->job.mechanism, bench_job_pattern(&r->job, pat, sizeof pat), r->job.size,
            tty ? "" : "\n");
}

static volatile sig_atomic_t stop_signal; /* the signal that interrupted the run, or 0 */

static void on_stop(int sig)
{
    stop_signal = sig;
}

static const int STOP_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP};

/* Catch the stop signals (children reset them: bench_peer.c). SA_RESTART: a measurement
 * under way is not disturbed; the run stops between two measurements. */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof STOP_SIGNALS / sizeof *STOP_SIGNALS; i++)
        sigaction(STOP_SIGNALS[i], &sa, NULL);
}

/* Run the hooks that release what mechanisms kept for the run (each once). */
static void release_mechs(const bench_row *rows, size_t n)
{
    for (size_t i = 0; i < BENCH_NMECHS; i++) {
        if (!BENCH_MECHS[i].done) continue;
        for (size_t k = 0; k < n; k++)
            if (rows[k].mech == &BENCH_MECHS[i]) {
                BENCH_MECHS[i].done();
                break;
            }
    }
}

/* The command line, parsed. */
typedef struct bench_opts {
    const bench_budget *budget;
    int csv, scale;
    int repeat;      /* --repeat, or 0: the mode's default (mode_repeat) */
    int mode_repeat; /* the default of the mode (full, --quick, --smoke) */
    const char *only, *plot;
    int pairs[BENCH_MAX_ROWS]; /* --pairs: the counts, npairs of them (0: not asked) */
    int npairs;
} bench_opts;

/* --pairs' list: 1..BENCH_MAX_PAIRS each, comma-separated. 0, or -1 (said why). */
static int parse_pairs(const char *s, bench_opts *o)
{
    const char *p = s;
    o->npairs = 0;
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > BENCH_MAX_PAIRS || (*end != ',' && *end != '\0') ||
            o->npairs == 16) {
            fprintf(stderr,
                    "ferry bench: --pairs wants up to 16 whole numbers from 1 to %d, "
                    "comma-separated, not '%s'\n",
                    BENCH_MAX_PAIRS, s);
            return -1;
        }
        o->pairs[o->npairs++] = (int)v;
        if (*end == '\0') return 0;
        p = end + 1;
    }
}

#define GO (-1) /* parse_args: carry on (anything else: exit with it) */

/* Parse argv into *o (--url rows are added as they come). GO, or the exit code: 0 after
 * --help, 2 on bad usage (with the usage on stderr). */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.budget = &BUDGET_FULL, .mode_repeat = REPEAT_FULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *rep_arg = NULL;
        if (strcmp(a, "--csv") == 0)
            o->csv = 1;
        else if (strcmp(a, "--scale") == 0)
            o->scale = 1;
        else if (strcmp(a, "--quick") == 0) {
            o->budget = &BUDGET_QUICK;
            o->mode_repeat = REPEAT_QUICK;
        } else if (strcmp(a, "--smoke") == 0) {
            o->budget = &BUDGET_SMOKE;
            o->mode_repeat = REPEAT_SMOKE;
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc)
            o->only = argv[++i];
        else if (strncmp(a, "--only=", 7) == 0)
            o->only = a + 7;
        else if ((strcmp(a, "--url") == 0 && i + 1 < argc) || strncmp(a, "--url=", 6) == 0) {
            if (add_url(a[5] == '=' ? a + 6 : argv[++i]) != 0) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(a, "--plot") == 0 && i + 1 < argc)
            o->plot = argv[++i];
        else if (strncmp(a, "--plot=", 7) == 0)
            o->plot = a + 7;
        else if ((strcmp(a, "--pairs") == 0 && i + 1 < argc) || strncmp(a, "--pairs=", 8) == 0) {
            if (parse_pairs(a[7] == '=' ? a + 8 : argv[++i], o) != 0) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(a, "--repeat") == 0 && i + 1 < argc)
            rep_arg = argv[++i];
        else if (strncmp(a, "--repeat=", 9) == 0)
            rep_arg = a + 9;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("ferry-bench %s\n", FERRY_BENCH_VERSION);
            return 0;
        } else {
            fprintf(stderr, "ferry bench: bad argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        if (rep_arg && (o->repeat = parse_repeat(rep_arg)) < 0) {
            usage(stderr);
            return 2;
        }
    }
    return GO;
}

/* --scale instead of the rows: it takes only --csv and --smoke. Its exit code. */
static int run_scale(const bench_opts *o)
{
    if (o->only || nurls || o->plot || o->repeat || o->npairs) {
        fprintf(stderr, "ferry bench: --scale takes only --csv and --smoke\n\n");
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    return bench_scale_main(o->budget == &BUDGET_SMOKE, o->csv);
}

/* Which mechanisms run: all, or only --only's and --url's. 0, or -1 (usage printed). */
static int select_mechs(const bench_opts *o, int selected[BENCH_NMECHS])
{
    for (size_t i = 0; i < BENCH_NMECHS; i++) {
        selected[i] = !o->npairs || strcmp(BENCH_MECHS[i].name, "pipe") == 0 ||
                      strcmp(BENCH_MECHS[i].name, "ferry-shm") == 0; /* --pairs: these two */
        if (BENCH_MECHS[i].opt_in) selected[i] = o->npairs ? 0 : 2;  /* a note only */
    }
    if (!o->only && !nurls) return 0;
    memset(selected, 0, BENCH_NMECHS * sizeof *selected);
    if (o->only && select_only(o->only, selected) != 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Say on stderr what is left out, how much will run, and where. */
static void announce(const bench_notes *notes, size_t n, int repeat, int self_cpu, int peer_cpu,
                     int rows_are_pairs)
{
    for (int i = 0; i < notes->n; i++)
        fprintf(stderr, "ferry bench: %s: %s\n", notes->note[i].names, notes->note[i].text);
    fprintf(stderr, "ferry bench: %zu measurement%s x %d repetition%s, ", n, n == 1 ? "" : "s",
            repeat, repeat > 1 ? "s" : "");
    if (n > 0 && rows_are_pairs)
        fprintf(stderr, "the pairs unpinned\n");
    else if (peer_cpu >= 0)
        fprintf(stderr, "pinned to cpu %d and cpu %d\n", self_cpu, peer_cpu);
    else
        fprintf(stderr, "not pinned (fewer than 2 cpus)\n");
}

/* Run every row once per repetition, round-robin in the given order, until done or a stop
 * signal. Each row's results go to its rep[] (reps: n * repeat). 1 if a row failed. */
static int run_rows(bench_row *rows, size_t n, const size_t *order, int repeat,
                    const bench_budget *share, int peer_cpu, bench_result *reps)
{
    int tty = isatty(STDERR_FILENO), failed = 0;
    for (size_t k = 0; k < n; k++) {
        rows[k].job.budget = share;
        rows[k].job.peer_cpu = peer_cpu;
        rows[k].rep = &reps[k * (size_t)repeat];
        rows[k].ok = 1;
    }
    for (int rep = 0; rep < repeat && !stop_signal; rep++) {
        for (size_t j = 0; j < n && !stop_signal; j++) {
            bench_row *r = &rows[order[j]];
            bench_result *res = &r->rep[rep];
            if (!r->ok) continue; /* it failed in an earlier repetition */
            *res = (bench_result){-1, -1, -1, -1, -1, "", 0, 0};
            progress(tty, (size_t)rep * n + j, n * (size_t)repeat, rep, repeat, r);
            bench_fn fn = r->job.pattern == BENCH_PAIRS ? bench_pairs : r->mech->fn;
            if (fn(&r->job, res) != 0) {
                char pat[32];
                r->ok = 0;
                failed = 1;
                fprintf(stderr, "%s%s %s %zu: FAILED: %s\n", tty ? "\r\033[K" : "",
                        r->job.mechanism, bench_job_pattern(&r->job, pat, sizeof pat), r->job.size,
                        res->err[0] ? res->err : "no reason given");
            }
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    return failed;
}

/* Interrupted: say so and die of the same signal (returns 1 only if that did not kill). */
static int die_of_stop_signal(void)
{
    const int sig = stop_signal;
    fprintf(stderr, "ferry bench: interrupted (%s)\n", strsignal(sig));
    signal(sig, SIG_DFL);
    raise(sig);
    return 1;
}

/* The medians on stdout (CSV, or the table, notes and target ratios), then the chart if
 * asked. 0, or -1 if the chart could not be written. */
static int report(const bench_opts *o, bench_row *rows, size_t n, int repeat,
                  const bench_notes *notes)
{
    for (size_t k = 0; k < n; k++)
        if (rows[k].ok) bench_summarize(&rows[k], repeat);
    if (o->csv) {
        bench_print_csv(stdout, rows, n);
    } else {
        bench_print_table(stdout, rows, n, repeat);
        if (notes->n) {
            printf("\n");
            bench_print_notes(stdout, notes);
        }
        bench_print_targets(stdout, rows, n, repeat);
    }
    fflush(stdout);
    return o->plot && bench_plot_svg(o->plot, rows, n, repeat, notes) != 0 ? -1 : 0;
}

/* ferry-bench [options]; `ferry bench [options]` execs it (tools/ferry/main.c). */
int main(int argc, char **argv)
{
    bench_opts o;
    int selected[BENCH_NMECHS];
    int rc = parse_args(argc, argv, &o);
    if (rc != GO) return rc;
    if (o.scale) return run_scale(&o);
    const int repeat = o.repeat ? o.repeat : o.mode_repeat;
    if (select_mechs(&o, selected) != 0) return 2;

    static bench_row rows[BENCH_MAX_ROWS];
    static bench_notes notes;
    if (o.npairs && (nurls || o.plot)) {
        fprintf(stderr, "ferry bench: --pairs takes neither --url nor --plot\n\n");
        usage(stderr);
        return 2;
    }
    size_t n = o.npairs ? bench_plan_pairs(rows, selected, o.pairs, o.npairs, &notes)
                        : bench_plan(rows, selected, &notes),
           order[BENCH_MAX_ROWS];
    if (!o.npairs)
        for (int i = 0; i < nurls; i++) n = bench_plan_mech(rows, n, &urls[i].mech, &notes);
    bench_measure_order(rows, n, order);
    bench_result *reps = calloc(n * (size_t)repeat + 1, sizeof *reps);
    if (!reps) {
        fprintf(stderr, "ferry bench: out of memory\n");
        return 1;
    }
    const bench_budget share = split_budget(o.budget, repeat);
    int self_cpu = -1, peer_cpu = bench_pin_setup(&self_cpu);

    signal(SIGPIPE, SIG_IGN); /* a closed pipe or socket is an error code, not a death */
    catch_stop_signals();
    announce(&notes, n, repeat, self_cpu, peer_cpu, o.npairs > 0);
    int failed = run_rows(rows, n, order, repeat, &share, peer_cpu, reps);
    release_mechs(rows, n);
    if (stop_signal) {
        free(reps);
        return die_of_stop_signal();
    }
    if (report(&o, rows, n, repeat, &notes) != 0) failed = 1;
    free(reps);
    return failed ? 1 : 0;
}
