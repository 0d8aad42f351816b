/*
 * bench.c — `ferry bench`: the driver. Parses the options, lists the measurements (rows)
 * to make, runs them one after another with a progress line on stderr, then prints the
 * results on stdout as CSV (--csv) or as an aligned table followed by the target ratios.
 *
 * Rules: stdout carries only the results (CSV stays pure: the header and one line per
 * row); progress and failures go to stderr. A row that fails prints no figures; the run
 * then exits 1. Bad usage exits 2. Every row is measured in this run, on this machine,
 * with this process pinned to one CPU and each peer to another where allowed.
 */
#define _POSIX_C_SOURCE 200809L /* strtok_r, isatty */
#include "bench.h"
#include "commands.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MS ((int64_t)1000 * 1000)

static const bench_budget BUDGET_FULL = {100000, 200 * MS, 1000000, 2000 * MS};
static const bench_budget BUDGET_QUICK = {20000, 30 * MS, 200000, 300 * MS};
static const bench_budget BUDGET_SMOKE = {10, 1 * MS, 200, 20 * MS};

static const size_t PINGPONG_SIZES[] = {64, 4096, 65536, 1048576};
static const size_t STREAM_SIZES[] = {64, 1048576};

/* Which rows a mechanism has. */
enum shape {
    SHAPE_LINE, /* pingpong at 64 B only: one cache line */
    SHAPE_ALL,  /* pingpong at every size, stream at both sizes */
    SHAPE_COPY, /* stream at 1 MiB only */
};

static const struct mech {
    const char *name;
    bench_fn fn;
    enum shape shape;
} MECHS[] = {
    {"spin-baseline", bench_spin, SHAPE_LINE},
    {"futex-baseline", bench_futex, SHAPE_LINE},
    {"pipe", bench_pipe, SHAPE_ALL},
    {"memcpy-baseline", bench_memcpy, SHAPE_COPY},
    {"ferry-shm", bench_ferry_shm, SHAPE_ALL},
    {"ferry-shm-blocking", bench_ferry_blocking, SHAPE_ALL},
    {"ferry-shm-zerocopy", bench_ferry_zerocopy, SHAPE_ALL},
};
#define NMECHS   (sizeof MECHS / sizeof MECHS[0])
#define MAX_ROWS 64

typedef struct row {
    bench_job job;
    bench_fn fn;
    bench_result res;
    int ok;
} row;

static const char *const HEADER[] = {"mechanism",  "pattern",     "size",       "rtt_p50_ns",
                                     "rtt_p99_ns", "rtt_p999_ns", "msgs_per_s", "bytes_per_s"};
#define NCOLS 8

static void usage(FILE *f)
{
    fputs("usage: ferry bench [--csv] [--quick | --smoke] [--only MECH[,MECH...]]\n"
          "\n"
          "Measures ferry against baselines, all in this run on this machine, with two\n"
          "processes pinned to different CPUs where allowed. Progress goes to stderr.\n"
          "\n"
          "  --csv     print CSV, one line per row (default: an aligned table, then the\n"
          "            target ratios)\n"
          "  --quick   a short run, under 30 s (default: the full run, about a minute)\n"
          "  --smoke   a tiny run that only checks that every row works (for tests)\n"
          "  --only L  only these mechanisms (comma-separated):\n"
          "            ",
          f);
    for (size_t i = 0; i < NMECHS; i++)
        fprintf(f, "%s%s", MECHS[i].name, i + 1 < NMECHS ? "," : "\n");
    fputs("\nPatterns: pingpong (round trip; p50/p99/p99.9 in ns, msgs_per_s = round trips/s)\n"
          "at 64, 4096, 65536, 1048576 bytes; stream (one-way throughput) at 64 and 1048576.\n",
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
        while (i < NMECHS && strcmp(MECHS[i].name, t) != 0) i++;
        if (i == NMECHS) {
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

static void add_row(row *rows, size_t *n, const struct mech *m, bench_pattern pat, size_t size)
{
    row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    r->job.mechanism = m->name;
    r->job.pattern = pat;
    r->job.size = size;
    r->fn = m->fn;
}

static size_t plan(row *rows, const int *selected)
{
    size_t n = 0;
    for (size_t i = 0; i < NMECHS; i++) {
        const struct mech *m = &MECHS[i];
        if (!selected[i]) continue;
        if (m->shape == SHAPE_LINE) add_row(rows, &n, m, BENCH_PINGPONG, 64);
        if (m->shape == SHAPE_COPY) add_row(rows, &n, m, BENCH_STREAM, 1048576);
        if (m->shape != SHAPE_ALL) continue;
        for (size_t k = 0; k < sizeof PINGPONG_SIZES / sizeof *PINGPONG_SIZES; k++)
            add_row(rows, &n, m, BENCH_PINGPONG, PINGPONG_SIZES[k]);
        for (size_t k = 0; k < sizeof STREAM_SIZES / sizeof *STREAM_SIZES; k++)
            add_row(rows, &n, m, BENCH_STREAM, STREAM_SIZES[k]);
    }
    return n;
}

static const char *pattern_name(bench_pattern p)
{
    return p == BENCH_PINGPONG ? "pingpong" : "stream";
}

/* ------------------------------------------------------------------ output */

/* The 8 cells of a row; a figure that does not apply is "". */
static void cells(const row *r, char out[NCOLS][32])
{
    const double v[5] = {r->res.rtt_p50_ns, r->res.rtt_p99_ns, r->res.rtt_p999_ns,
                         r->res.msgs_per_s, r->res.bytes_per_s};
    snprintf(out[0], 32, "%s", r->job.mechanism);
    snprintf(out[1], 32, "%s", pattern_name(r->job.pattern));
    snprintf(out[2], 32, "%zu", r->job.size);
    for (int i = 0; i < 5; i++) {
        if (v[i] < 0)
            out[3 + i][0] = '\0';
        else
            snprintf(out[3 + i], 32, "%.0f", v[i]);
    }
}

static void print_csv(const row *rows, size_t n)
{
    char c[NCOLS][32];
    for (int i = 0; i < NCOLS; i++) printf("%s%s", HEADER[i], i + 1 < NCOLS ? "," : "\n");
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], c);
        for (int i = 0; i < NCOLS; i++) printf("%s%s", c[i], i + 1 < NCOLS ? "," : "\n");
    }
}

static void print_table(const row *rows, size_t n)
{
    char c[NCOLS][32];
    int w[NCOLS];
    for (int i = 0; i < NCOLS; i++) w[i] = (int)strlen(HEADER[i]);
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], c);
        for (int i = 0; i < NCOLS; i++)
            if ((int)strlen(c[i]) > w[i]) w[i] = (int)strlen(c[i]);
    }
    /* Names are left-aligned, numbers right-aligned; "-" where a figure does not apply. */
    for (int i = 0; i < NCOLS; i++)
        printf(i < 2 ? "%-*s  " : i + 1 < NCOLS ? "%*s  " : "%*s\n", w[i], HEADER[i]);
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], c);
        for (int i = 0; i < NCOLS; i++)
            printf(i < 2           ? "%-*s  "
                   : i + 1 < NCOLS ? "%*s  "
                                   : "%*s\n",
                   w[i], c[i][0] ? c[i] : "-");
    }
}

/* ------------------------------------------------------------------ target ratios */

enum field { F_P50, F_MSGS, F_BYTES };

static const struct target {
    const char *label;
    const char *num, *den; /* mechanisms */
    bench_pattern num_pat, den_pat;
    size_t num_size, den_size;
    enum field field;
    int at_most; /* 1: ratio <= limit; 0: ratio >= limit */
    double limit;
} TARGETS[] = {
    {"ferry-shm pingpong 64 p50 / spin-baseline p50", "ferry-shm", "spin-baseline", BENCH_PINGPONG,
     BENCH_PINGPONG, 64, 64, F_P50, 1, 1.5},
    {"ferry-shm-blocking pingpong 64 p50 / futex-baseline p50", "ferry-shm-blocking",
     "futex-baseline", BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, 1, 1.2},
    {"ferry-shm stream 64 msgs/s / pipe stream 64 msgs/s", "ferry-shm", "pipe", BENCH_STREAM,
     BENCH_STREAM, 64, 64, F_MSGS, 0, 10},
    {"ferry-shm-zerocopy pingpong 1 MiB p50 / its 64 B p50", "ferry-shm-zerocopy",
     "ferry-shm-zerocopy", BENCH_PINGPONG, BENCH_PINGPONG, 1048576, 64, F_P50, 1, 2},
    {"ferry-shm stream 1 MiB bytes/s / memcpy-baseline bytes/s", "ferry-shm", "memcpy-baseline",
     BENCH_STREAM, BENCH_STREAM, 1048576, 1048576, F_BYTES, 0, 0.5},
};

/* A measured figure, or -1 when that row was not measured (or failed). */
static double figure(const row *rows, size_t n, const char *mech, bench_pattern pat, size_t size,
                     enum field f)
{
    for (size_t k = 0; k < n; k++) {
        const row *r = &rows[k];
        if (!r->ok || r->job.pattern != pat || r->job.size != size ||
            strcmp(r->job.mechanism, mech) != 0)
            continue;
        return f == F_P50    ? r->res.rtt_p50_ns
               : f == F_MSGS ? r->res.msgs_per_s
                             : r->res.bytes_per_s;
    }
    return -1;
}

static void print_targets(const row *rows, size_t n)
{
    int header = 0;
    for (size_t i = 0; i < sizeof TARGETS / sizeof *TARGETS; i++) {
        const struct target *t = &TARGETS[i];
        double a = figure(rows, n, t->num, t->num_pat, t->num_size, t->field);
        double b = figure(rows, n, t->den, t->den_pat, t->den_size, t->field);
        if (a < 0 || b <= 0) continue;
        if (!header) printf("\ntargets (ratios within this run):\n");
        header = 1;
        double ratio = a / b;
        int pass = t->at_most ? ratio <= t->limit : ratio >= t->limit;
        printf("  %-58s %9.2f   %s %-4g  %s\n", t->label, ratio, t->at_most ? "<=" : ">=", t->limit,
               pass ? "PASS" : "MISS");
    }
}

/* ------------------------------------------------------------------ the run */

static void progress(int tty, size_t i, size_t n, const row *r)
{
    fprintf(stderr, "%s[%2zu/%zu] %s %s %zu%s", tty ? "\r\033[K" : "", i + 1, n, r->job.mechanism,
            pattern_name(r->job.pattern), r->job.size, tty ? "" : "\n");
}

int bench_main(int argc, char **argv)
{
    const bench_budget *budget = &BUDGET_FULL;
    int csv = 0, selected[NMECHS];
    const char *only = NULL;

    for (size_t i = 0; i < NMECHS; i++) selected[i] = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--csv") == 0)
            csv = 1;
        else if (strcmp(a, "--quick") == 0)
            budget = &BUDGET_QUICK;
        else if (strcmp(a, "--smoke") == 0)
            budget = &BUDGET_SMOKE;
        else if (strcmp(a, "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strncmp(a, "--only=", 7) == 0)
            only = a + 7;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ferry bench: bad argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (only) {
        memset(selected, 0, sizeof selected);
        if (select_only(only, selected) != 0) {
            usage(stderr);
            return 2;
        }
    }

    static row rows[MAX_ROWS];
    size_t n = plan(rows, selected);
    int self_cpu = -1, peer_cpu = bench_pin_setup(&self_cpu);
    int tty = isatty(STDERR_FILENO), failed = 0;

    signal(SIGPIPE, SIG_IGN); /* a closed pipe or socket is an error code, not a death */
    if (peer_cpu >= 0)
        fprintf(stderr, "ferry bench: %zu measurements, pinned to cpu %d and cpu %d\n", n, self_cpu,
                peer_cpu);
    else
        fprintf(stderr, "ferry bench: %zu measurements, not pinned (fewer than 2 cpus)\n", n);

    for (size_t k = 0; k < n; k++) {
        row *r = &rows[k];
        r->job.budget = budget;
        r->job.peer_cpu = peer_cpu;
        r->res = (bench_result){-1, -1, -1, -1, -1, ""};
        progress(tty, k, n, r);
        r->ok = r->fn(&r->job, &r->res) == 0;
        if (!r->ok) {
            failed = 1;
            fprintf(stderr, "%s%s %s %zu: FAILED: %s\n", tty ? "\r\033[K" : "", r->job.mechanism,
                    pattern_name(r->job.pattern), r->job.size,
                    r->res.err[0] ? r->res.err : "no reason given");
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");

    if (csv) {
        print_csv(rows, n);
    } else {
        print_table(rows, n);
        print_targets(rows, n);
    }
    fflush(stdout);
    return failed ? 1 : 0;
}
