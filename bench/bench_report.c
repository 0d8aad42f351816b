// SPDX-License-Identifier: MIT
/*
 * bench_report.c — the output of `ferry bench`: per row, the median of each figure over
 * the repetitions; then CSV (the header and one line per row, nothing else), or an aligned
 * table with a spread column, the notes on rows left out, and the target ratios.
 *
 * A figure that does not apply is negative in a bench_result; it is an empty CSV cell and
 * "-" in the table. A row that failed prints nothing. A target ratio is taken within each
 * repetition (its two rows were measured back to back) and reported as the median of
 * those ratios, with their min..max.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_plan.h"

#include <stdlib.h>

static const char *const HEADER[] = {"mechanism",  "pattern",     "size",       "rtt_p50_ns",
                                     "rtt_p99_ns", "rtt_p999_ns", "msgs_per_s", "bytes_per_s",
                                     "spread" /* table only, when N > 1 */};
#define NCOLS     8 /* the CSV columns, fixed by the spec */
#define MAX_NCOLS 9
#define CELL      48

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n, double *lo, double *hi)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (lo) *lo = v[0];
    if (hi) *hi = v[n - 1];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_summarize(bench_row *r, int repeat)
{
    double v[BENCH_MAX_REPEAT];
    double *out[5] = {&r->res.rtt_p50_ns, &r->res.rtt_p99_ns, &r->res.rtt_p999_ns,
                      &r->res.msgs_per_s, &r->res.bytes_per_s};
    for (int f = 0; f < 5; f++) {
        for (int i = 0; i < repeat; i++) {
            const bench_result *x = &r->rep[i];
            const double in[5] = {x->rtt_p50_ns, x->rtt_p99_ns, x->rtt_p999_ns, x->msgs_per_s,
                                  x->bytes_per_s};
            v[i] = in[f];
        }
        *out[f] = v[0] < 0 ? -1 : bench_median(v, repeat, NULL, NULL);
    }
}

/* The spread cell: min..max over the repetitions of p50 (every pattern but stream),
 * msgs/s (stream), or bytes/s when that is the only figure. */
static void spread(const bench_row *r, int repeat, char *out, size_t len)
{
    bench_field f = r->job.pattern != BENCH_STREAM ? F_P50
                    : r->res.msgs_per_s >= 0       ? F_MSGS
                                                   : F_BYTES;
    double v[BENCH_MAX_REPEAT], lo, hi;
    for (int i = 0; i < repeat; i++) v[i] = bench_field_of(&r->rep[i], f);
    bench_median(v, repeat, &lo, &hi);
    snprintf(out, len, "%.0f..%.0f", lo, hi);
}

/* The cells of a row (8, plus the spread when repeat > 1); a figure that does not apply
 * is "". */
static void cells(const bench_row *r, int repeat, char out[MAX_NCOLS][CELL])
{
    const double v[5] = {r->res.rtt_p50_ns, r->res.rtt_p99_ns, r->res.rtt_p999_ns,
                         r->res.msgs_per_s, r->res.bytes_per_s};
    snprintf(out[0], CELL, "%s", r->job.mechanism);
    char pat[32];
    snprintf(out[1], CELL, "%s", bench_job_pattern(&r->job, pat, sizeof pat));
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

void bench_print_csv(FILE *f, const bench_row *rows, size_t n)
{
    char c[MAX_NCOLS][CELL];
    for (int i = 0; i < NCOLS; i++) fprintf(f, "%s%s", HEADER[i], i + 1 < NCOLS ? "," : "\n");
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], 1, c);
        for (int i = 0; i < NCOLS; i++) fprintf(f, "%s%s", c[i], i + 1 < NCOLS ? "," : "\n");
    }
}

void bench_print_table(FILE *f, const bench_row *rows, size_t n, int repeat)
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
        fprintf(f, i < 2 ? "%-*s  " : i + 1 < ncols ? "%*s  " : "%*s\n", w[i], HEADER[i]);
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].ok) continue;
        cells(&rows[k], repeat, c);
        for (int i = 0; i < ncols; i++)
            fprintf(f,
                    i < 2           ? "%-*s  "
                    : i + 1 < ncols ? "%*s  "
                                    : "%*s\n",
                    w[i], c[i][0] ? c[i] : "-");
    }
    if (repeat > 1)
        fprintf(f,
                "(each figure: the median of %d repetitions; spread: min..max of rtt_p50_ns,\n"
                " or for a stream row of msgs_per_s, or bytes_per_s when that is all it has)\n",
                repeat);
}

void bench_print_notes(FILE *f, const bench_notes *notes)
{
    for (int i = 0; i < notes->n; i++)
        fprintf(f, "%s: %s\n", notes->note[i].names, notes->note[i].text);
}

/* One target line, for the sizes a and b are measured at; prints the header first if
 * *header is 0. */
static void print_target(FILE *f, const bench_target *t, const char *label, const bench_row *na,
                         const bench_row *nb, int repeat, int *header)
{
    double ratio[BENCH_MAX_REPEAT], lo, hi;
    int m = 0;
    /* The ratio within each repetition: both figures measured back to back. */
    for (int k = 0; k < repeat; k++) {
        double x = bench_field_of(&na->rep[k], t->field);
        double y = t->den ? bench_field_of(&nb->rep[k], t->field) : 1;
        if (x >= 0 && y > 0) ratio[m++] = x / y;
    }
    if (m == 0) return;
    if (!*header) {
        if (repeat > 1)
            fprintf(f,
                    "\ntargets (ratio per repetition, both rows measured back to back; the "
                    "median of %d, min..max):\n",
                    repeat);
        else
            fprintf(f, "\ntargets (ratios within this run, each pair measured back to back):\n");
    }
    *header = 1;
    double med = bench_median(ratio, m, &lo, &hi);
    char range[64] = "";
    if (repeat > 1) snprintf(range, sizeof range, "%.3g..%.3g", lo, hi);
    if (t->at_most == BENCH_INFO) {
        fprintf(f, "  %-60s %9.3g  %-17s %-7s  INFO\n", label, med, range, "");
        return;
    }
    int pass = t->at_most ? med <= t->limit : med >= t->limit;
    fprintf(f, "  %-60s %9.3g  %-17s %s %-4g  %s\n", label, med, range,
            t->at_most ? "<=" : ">=", t->limit, pass ? "PASS" : "MISS");
}

void bench_print_targets(FILE *f, const bench_row *rows, size_t n, int repeat)
{
    int header = 0;
    size_t nt;
    const bench_target *targets = bench_targets(rows, n, &nt);
    for (size_t i = 0; i < nt; i++) {
        const bench_target *t = &targets[i];
        size_t sizes[4][2];
        int each = bench_target_sizes(t, sizes) > 1;
        for (int k = 0; k < bench_target_sizes(t, sizes); k++) {
            long a = bench_find_row(rows, n, t->num, t->num_pat, sizes[k][0]);
            long b = t->den ? bench_find_row(rows, n, t->den, t->den_pat, sizes[k][1]) : a;
            if (a < 0 || b < 0 || !rows[a].ok || !rows[b].ok) continue;
            char label[96];
            if (each)
                snprintf(label, sizeof label, "%s, %zu B", t->label, sizes[k][0]);
            else
                snprintf(label, sizeof label, "%s", t->label);
            print_target(f, t, label, &rows[a], &rows[b], repeat, &header);
        }
    }
}
