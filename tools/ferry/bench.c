/*
 * bench.c — `ferry bench`: the driver. Parses the options, lists the measurements (rows)
 * to make, runs the whole list N times (--repeat) with a progress line on stderr, then
 * prints per row the median of each figure over the N repetitions on stdout, as CSV
 * (--csv) or as an aligned table followed by the target ratios.
 *
 * Why repetitions: the host's noise comes in phases (for 100 ms to seconds every figure,
 * the floors included, gets several times slower), so two figures measured at different
 * moments do not compare. Each repetition runs every row once, round-robin, with 1/N of
 * the row's budget; within a repetition the two rows of each target ratio are measured
 * back to back (the denominator first), so each ratio is taken per repetition from two
 * figures measured in the same conditions, and the reported ratio is the median of those
 * (with their min..max). Rows are still printed in the usual grouped order.
 *
 * Rules: stdout carries only the results (CSV stays pure: the header and one line per
 * row, same columns whatever N); progress and failures go to stderr. A row that fails in
 * any repetition is not run again and prints no figures; the run then exits 1. Bad usage
 * exits 2. Every row is measured in this run, on this machine, with this process pinned
 * to one CPU and each peer to another where allowed.
 */
#define _POSIX_C_SOURCE 200809L /* strtok_r, isatty */
#include "bench.h"
#include "commands.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MS ((int64_t)1000 * 1000)

/* The budget of one row over the whole run; each repetition gets 1/N of it. */
static const bench_budget BUDGET_FULL = {100000, 200 * MS, 1000000, 2000 * MS};
static const bench_budget BUDGET_QUICK = {20000, 30 * MS, 200000, 300 * MS};
static const bench_budget BUDGET_SMOKE = {10, 1 * MS, 200, 20 * MS};

#define REPEAT_FULL  5
#define REPEAT_QUICK 3
#define REPEAT_SMOKE 1
#define MAX_REPEAT   100

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
    bench_result res;  /* per figure, the median over the repetitions */
    bench_result *rep; /* what each repetition measured: N of them */
    int ok;            /* every repetition succeeded */
} row;

static const char *const HEADER[] = {"mechanism",  "pattern",     "size",       "rtt_p50_ns",
                                     "rtt_p99_ns", "rtt_p999_ns", "msgs_per_s", "bytes_per_s",
                                     "spread" /* table only, when N > 1 */};
#define NCOLS     8 /* the CSV columns, fixed by the spec */
#define MAX_NCOLS 9
#define CELL      48

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry bench [--csv] [--quick | --smoke] [--repeat N]\n"
            "                   [--only MECH[,MECH...]]\n"
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
            "  --quick     a short run, under 30 s (default: the full run, about a minute)\n"
            "  --smoke     a tiny run that only checks that every row works (for tests)\n"
            "  --repeat N  run the plan N times, 1..%d (default %d; --quick %d; --smoke %d)\n"
            "  --only L    only these mechanisms (comma-separated):\n"
            "              ",
            MAX_REPEAT, REPEAT_FULL, REPEAT_QUICK, REPEAT_SMOKE);
    for (size_t i = 0; i < NMECHS; i++)
        fprintf(f, "%s%s", MECHS[i].name, i + 1 < NMECHS ? "," : "\n");
    fputs("\nPatterns: pingpong (round trip; p50/p99/p99.9 in ns, msgs_per_s = round trips/s)\n"
          "at 64, 4096, 65536, 1048576 bytes; stream (one-way throughput) at 64 and 1048576.\n"
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

/* --repeat's value: 1..MAX_REPEAT, or -1. */
static int parse_repeat(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > MAX_REPEAT) {
        fprintf(stderr, "ferry bench: --repeat wants a whole number from 1 to %d, not '%s'\n",
                MAX_REPEAT, s);
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

static void add_row(row *rows, size_t *n, const struct mech *m, bench_pattern pat, size_t size)
{
    row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    r->job.mechanism = m->name;
    r->job.pattern = pat;
    r->job.size = size;
    r->fn = m->fn;
}

/* The rows, in the order they are printed: grouped by mechanism. */
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
#define NTARGETS (sizeof TARGETS / sizeof *TARGETS)

/* The index of a planned row, or -1 when it is not in the plan. */
static long find_row(const row *rows, size_t n, const char *mech, bench_pattern pat, size_t size)
{
    for (size_t k = 0; k < n; k++)
        if (rows[k].job.pattern == pat && rows[k].job.size == size &&
            strcmp(rows[k].job.mechanism, mech) == 0)
            return (long)k;
    return -1;
}

static double field_of(const bench_result *res, enum field f)
{
    return f == F_P50 ? res->rtt_p50_ns : f == F_MSGS ? res->msgs_per_s : res->bytes_per_s;
}

/* The order in which one repetition measures the rows (indices into rows): first the two
 * rows of each target, denominator then numerator, back to back; then every other row in
 * the printed order. Fills order[n]. */
static void measure_order(const row *rows, size_t n, size_t *order)
{
    int taken[MAX_ROWS] = {0};
    size_t m = 0;
    for (size_t i = 0; i < NTARGETS; i++) {
        const struct target *t = &TARGETS[i];
        long pair[2] = {find_row(rows, n, t->den, t->den_pat, t->den_size),
                        find_row(rows, n, t->num, t->num_pat, t->num_size)};
        for (int j = 0; j < 2; j++)
            if (pair[j] >= 0 && !taken[pair[j]]) {
                taken[pair[j]] = 1;
                order[m++] = (size_t)pair[j];
            }
    }
    for (size_t k = 0; k < n; k++)
        if (!taken[k]) order[m++] = k;
}

/* ------------------------------------------------------------------ medians */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, min and max of v[0..n) (n >= 1; sorts v). With an even n the median is the mean
 * of the two middle values. */
static double median(double *v, int n, double *lo, double *hi)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (lo) *lo = v[0];
    if (hi) *hi = v[n - 1];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Fill r->res with the median of each figure over the repetitions; a figure that does not
 * apply (negative) stays -1. */
static void summarize(row *r, int repeat)
{
    double v[MAX_REPEAT];
    double *out[5] = {&r->res.rtt_p50_ns, &r->res.rtt_p99_ns, &r->res.rtt_p999_ns,
                      &r->res.msgs_per_s, &r->res.bytes_per_s};
    for (int f = 0; f < 5; f++) {
        for (int i = 0; i < repeat; i++) {
            const bench_result *x = &r->rep[i];
            const double in[5] = {x->rtt_p50_ns, x->rtt_p99_ns, x->rtt_p999_ns, x->msgs_per_s,
                                  x->bytes_per_s};
            v[i] = in[f];
        }
        *out[f] = v[0] < 0 ? -1 : median(v, repeat, NULL, NULL);
    }
}

/* The spread cell: min..max over the repetitions of p50 (pingpong), msgs/s (stream), or
 * bytes/s when that is the only figure. */
static void spread(const row *r, int repeat, char *out, size_t len)
{
    enum field f = r->job.pattern == BENCH_PINGPONG ? F_P50
                   : r->res.msgs_per_s >= 0         ? F_MSGS
                                                    : F_BYTES;
    double v[MAX_REPEAT], lo, hi;
    for (int i = 0; i < repeat; i++) v[i] = field_of(&r->rep[i], f);
    median(v, repeat, &lo, &hi);
    snprintf(out, len, "%.0f..%.0f", lo, hi);
}

/* ------------------------------------------------------------------ output */

/* The cells of a row (8, plus the spread when repeat > 1); a figure that does not apply
 * is "". */
static void cells(const row *r, int repeat, char out[MAX_NCOLS][CELL])
{
    const double v[5] = {r->res.rtt_p50_ns, r->res.rtt_p99_ns, r->res.rtt_p999_ns,
                         r->res.msgs_per_s, r->res.bytes_per_s};
    snprintf(out[0], CELL, "%s", r->job.mechanism);
    snprintf(out[1], CELL, "%s", pattern_name(r->job.pattern));
    snprintf(out[2], CELL, "%zu", r->job.size);
    for (int i = 0; i < 5; i++) {
        if (v[i] < 0)
            out[3 + i][0] = '\0';
        else
            snprintf(out[3 + i], CELL, "%.0f", v[i]);
    }
    out[8][0] = '\0';
    if (repeat > 1) spread(r, repeat, out[8], CELL);
}

static void print_csv(const row *rows, size_t n)
{
    char c[MAX_NCOLS][CELL];
    for (int i = 0; i < NCOLS; i++) printf("%s%s", HEADER[i], i + 1 < NCOLS ? "," : "\n");
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], 1, c);
        for (int i = 0; i < NCOLS; i++) printf("%s%s", c[i], i + 1 < NCOLS ? "," : "\n");
    }
}

static void print_table(const row *rows, size_t n, int repeat)
{
    const int ncols = repeat > 1 ? NCOLS + 1 : NCOLS;
    char c[MAX_NCOLS][CELL];
    int w[MAX_NCOLS];
    for (int i = 0; i < ncols; i++) w[i] = (int)strlen(HEADER[i]);
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], repeat, c);
        for (int i = 0; i < ncols; i++)
            if ((int)strlen(c[i]) > w[i]) w[i] = (int)strlen(c[i]);
    }
    /* Names are left-aligned, numbers right-aligned; "-" where a figure does not apply. */
    for (int i = 0; i < ncols; i++)
        printf(i < 2 ? "%-*s  " : i + 1 < ncols ? "%*s  " : "%*s\n", w[i], HEADER[i]);
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], repeat, c);
        for (int i = 0; i < ncols; i++)
            printf(i < 2           ? "%-*s  "
                   : i + 1 < ncols ? "%*s  "
                                   : "%*s\n",
                   w[i], c[i][0] ? c[i] : "-");
    }
    if (repeat > 1)
        printf("(each figure: the median of %d repetitions; spread: min..max of rtt_p50_ns,\n"
               " or for a stream row of msgs_per_s, or bytes_per_s when that is all it has)\n",
               repeat);
}

static void print_targets(const row *rows, size_t n, int repeat)
{
    int header = 0;
    for (size_t i = 0; i < NTARGETS; i++) {
        const struct target *t = &TARGETS[i];
        long a = find_row(rows, n, t->num, t->num_pat, t->num_size);
        long b = find_row(rows, n, t->den, t->den_pat, t->den_size);
        if (a < 0 || b < 0 || !rows[a].ok || !rows[b].ok) continue;
        /* The ratio within each repetition: both figures measured back to back. */
        double ratio[MAX_REPEAT], lo, hi;
        int m = 0;
        for (int k = 0; k < repeat; k++) {
            double x = field_of(&rows[a].rep[k], t->field), y = field_of(&rows[b].rep[k], t->field);
            if (x >= 0 && y > 0) ratio[m++] = x / y;
        }
        if (m == 0) continue;
        if (!header) {
            if (repeat > 1)
                printf("\ntargets (ratio per repetition, both rows measured back to back; the "
                       "median of %d, min..max):\n",
                       repeat);
            else
                printf("\ntargets (ratios within this run, each pair measured back to back):\n");
        }
        header = 1;
        double med = median(ratio, m, &lo, &hi);
        char range[64] = "";
        if (repeat > 1) snprintf(range, sizeof range, "%.2f..%.2f", lo, hi);
        int pass = t->at_most ? med <= t->limit : med >= t->limit;
        printf("  %-58s %9.2f  %-13s %s %-4g  %s\n", t->label, med, range,
               t->at_most ? "<=" : ">=", t->limit, pass ? "PASS" : "MISS");
    }
}

/* ------------------------------------------------------------------ the run */

static void progress(int tty, size_t i, size_t total, int rep, int repeat, const row *r)
{
    char pass[32] = "";
    if (repeat > 1) snprintf(pass, sizeof pass, "(%d/%d) ", rep + 1, repeat);
    fprintf(stderr, "%s[%3zu/%zu] %s%s %s %zu%s", tty ? "\r\033[K" : "", i + 1, total, pass,
            r->job.mechanism, pattern_name(r->job.pattern), r->job.size, tty ? "" : "\n");
}

int bench_main(int argc, char **argv)
{
    const bench_budget *budget = &BUDGET_FULL;
    int csv = 0, selected[NMECHS], repeat = 0, mode_repeat = REPEAT_FULL;
    const char *only = NULL;

    for (size_t i = 0; i < NMECHS; i++) selected[i] = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *rep_arg = NULL;
        if (strcmp(a, "--csv") == 0)
            csv = 1;
        else if (strcmp(a, "--quick") == 0) {
            budget = &BUDGET_QUICK;
            mode_repeat = REPEAT_QUICK;
        } else if (strcmp(a, "--smoke") == 0) {
            budget = &BUDGET_SMOKE;
            mode_repeat = REPEAT_SMOKE;
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strncmp(a, "--only=", 7) == 0)
            only = a + 7;
        else if (strcmp(a, "--repeat") == 0 && i + 1 < argc)
            rep_arg = argv[++i];
        else if (strncmp(a, "--repeat=", 9) == 0)
            rep_arg = a + 9;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ferry bench: bad argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        if (rep_arg && (repeat = parse_repeat(rep_arg)) < 0) {
            usage(stderr);
            return 2;
        }
    }
    if (repeat == 0) repeat = mode_repeat;
    if (only) {
        memset(selected, 0, sizeof selected);
        if (select_only(only, selected) != 0) {
            usage(stderr);
            return 2;
        }
    }

    static row rows[MAX_ROWS];
    size_t n = plan(rows, selected), order[MAX_ROWS];
    measure_order(rows, n, order);
    bench_result *reps = calloc(n * (size_t)repeat, sizeof *reps);
    if (!reps) {
        fprintf(stderr, "ferry bench: out of memory\n");
        return 1;
    }
    const bench_budget share = split_budget(budget, repeat);
    int self_cpu = -1, peer_cpu = bench_pin_setup(&self_cpu);
    int tty = isatty(STDERR_FILENO), failed = 0;

    signal(SIGPIPE, SIG_IGN); /* a closed pipe or socket is an error code, not a death */
    fprintf(stderr, "ferry bench: %zu measurements x %d repetition%s, ", n, repeat,
            repeat > 1 ? "s" : "");
    if (peer_cpu >= 0)
        fprintf(stderr, "pinned to cpu %d and cpu %d\n", self_cpu, peer_cpu);
    else
        fprintf(stderr, "not pinned (fewer than 2 cpus)\n");

    for (size_t k = 0; k < n; k++) {
        rows[k].job.budget = &share;
        rows[k].job.peer_cpu = peer_cpu;
        rows[k].rep = &reps[k * (size_t)repeat];
        rows[k].ok = 1;
    }
    /* Round-robin: every row once per repetition, in the order of measure_order(). */
    for (int rep = 0; rep < repeat; rep++) {
        for (size_t j = 0; j < n; j++) {
            row *r = &rows[order[j]];
            bench_result *res = &r->rep[rep];
            if (!r->ok) continue; /* it failed in an earlier repetition */
            *res = (bench_result){-1, -1, -1, -1, -1, ""};
            progress(tty, (size_t)rep * n + j, n * (size_t)repeat, rep, repeat, r);
            if (r->fn(&r->job, res) != 0) {
                r->ok = 0;
                failed = 1;
                fprintf(stderr, "%s%s %s %zu: FAILED: %s\n", tty ? "\r\033[K" : "",
                        r->job.mechanism, pattern_name(r->job.pattern), r->job.size,
                        res->err[0] ? res->err : "no reason given");
            }
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    for (size_t k = 0; k < n; k++)
        if (rows[k].ok) summarize(&rows[k], repeat);

    if (csv) {
        print_csv(rows, n);
    } else {
        print_table(rows, n, repeat);
        print_targets(rows, n, repeat);
    }
    fflush(stdout);
    free(reps);
    return failed ? 1 : 0;
}
