// SPDX-License-Identifier: MIT
/*
 * bench_plan.c — which rows a run measures, and in which order one repetition measures
 * them.
 *
 * The plan: for each selected mechanism, in table order, its rows (bench_shape) — except
 * those it cannot have here: a mechanism not built in (a peer library missing at build
 * time), one that cannot run on this machine (a program missing), or a size above what
 * the mechanism allows (a kernel limit such as msgsize_max). Each such omission becomes a
 * note, printed on stderr before the run and under the table after it.
 *
 * The order of measurement: first the two rows of each target, denominator then
 * numerator, back to back (so each ratio is taken from two figures measured in the same
 * conditions); then every other row in the printed order.
 */
#define _POSIX_C_SOURCE 200809L /* snprintf into notes */
#include "bench_plan.h"

#include <stdarg.h>

static const size_t PINGPONG_SIZES[] = {64, 4096, 65536, 1048576};
static const size_t STREAM_SIZES[] = {64, 1048576};

const char *bench_pattern_name(bench_pattern p)
{
    static const char *const NAMES[] = {"pingpong", "stream", "uncontended", "handoff", "pairs"};
    return NAMES[p];
}

const char *bench_job_pattern(const bench_job *job, char *buf, size_t len)
{
    if (job->pattern != BENCH_PAIRS) return bench_pattern_name(job->pattern);
    snprintf(buf, len, "pairs-%d", job->pairs);
    return buf;
}

double bench_field_of(const bench_result *res, bench_field f)
{
    if (f == F_SLEEPS) return res->has_sleeps ? res->sleeps_per_msg : -1;
    return f == F_P50 ? res->rtt_p50_ns : f == F_MSGS ? res->msgs_per_s : res->bytes_per_s;
}

long bench_find_row(const bench_row *rows, size_t n, const char *mech, bench_pattern pat,
                    size_t size)
{
    for (size_t k = 0; k < n; k++)
        if (rows[k].job.pattern == pat &&
            (pat == BENCH_PAIRS ? (size_t)rows[k].job.pairs : rows[k].job.size) == size &&
            strcmp(rows[k].job.mechanism, mech) == 0)
            return (long)k;
    return -1;
}

/* Say that `name` is (partly) left out: text is printf-style. Joins a note with the same
 * text. */
static void note(bench_notes *notes, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(bench_notes *notes, const char *name, const char *fmt, ...)
{
    char text[sizeof notes->note[0].text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (int i = 0; i < notes->n; i++) {
        size_t len = strlen(notes->note[i].names);
        if (strcmp(notes->note[i].text, text) == 0) {
            snprintf(notes->note[i].names + len, sizeof notes->note[i].names - len, ", %s", name);
            return;
        }
    }
    if (notes->n == BENCH_MAX_NOTES) return;
    snprintf(notes->note[notes->n].names, sizeof notes->note[0].names, "%s", name);
    snprintf(notes->note[notes->n].text, sizeof notes->note[0].text, "%s", text);
    notes->n++;
}

static void add_row(bench_row *rows, size_t *n, const bench_mech *m, bench_pattern pat, size_t size)
{
    if (*n == BENCH_MAX_ROWS) return;
    bench_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    r->job.mechanism = m->name;
    r->job.pattern = pat;
    r->job.size = size;
    r->job.arg = m->arg;
    r->mech = m;
}

size_t bench_plan_mech(bench_row *rows, size_t n, const bench_mech *m, bench_notes *notes)
{
    const char *why;
    if (!m->fn) {
        note(notes, m->name, "left out: %s", m->missing);
        return n;
    }
    if (m->unavailable && (why = m->unavailable()) != NULL) {
        note(notes, m->name, "left out: %s", why);
        return n;
    }
    if (m->shape == SHAPE_LINE) add_row(rows, &n, m, BENCH_PINGPONG, 64);
    if (m->shape == SHAPE_COPY) add_row(rows, &n, m, BENCH_STREAM, 1048576);
    if (m->shape == SHAPE_UNCONTENDED) add_row(rows, &n, m, BENCH_UNCONTENDED, 0);
    if (m->shape == SHAPE_HANDOFF) add_row(rows, &n, m, BENCH_HANDOFF, 0);
    if (m->shape == SHAPE_SELF) add_row(rows, &n, m, BENCH_UNCONTENDED, 64);
    if (m->shape != SHAPE_ALL) return n;
    const char *limit_name = NULL;
    size_t limit = m->limit ? m->limit(&limit_name) : SIZE_MAX, over = 0;
    for (size_t k = 0; k < sizeof PINGPONG_SIZES / sizeof *PINGPONG_SIZES; k++)
        if (PINGPONG_SIZES[k] <= limit)
            add_row(rows, &n, m, BENCH_PINGPONG, PINGPONG_SIZES[k]);
        else
            over++;
    for (size_t k = 0; k < sizeof STREAM_SIZES / sizeof *STREAM_SIZES; k++)
        if (STREAM_SIZES[k] <= limit)
            add_row(rows, &n, m, BENCH_STREAM, STREAM_SIZES[k]);
        else
            over++;
    if (over)
        note(notes, m->name, "sizes above %zu bytes not possible (%s)", limit,
             limit_name ? limit_name : "a limit of the mechanism");
    return n;
}

int bench_mech_pairs_ok(const bench_mech *m)
{
    /* Every SHAPE_ALL runner times its pingpong with bench_loop_pingpong in the process
     * that forks its peer, which is what a pair needs. */
    return m->fn && m->shape == SHAPE_ALL && (!m->limit || m->limit(&(const char *){NULL}) >= 64);
}

size_t bench_plan_pairs(bench_row *rows, const int *selected, const int *pairs, int npairs,
                        bench_notes *notes)
{
    size_t n = 0;
    const char *why;
    for (size_t i = 0; i < BENCH_NMECHS; i++) {
        const bench_mech *m = &BENCH_MECHS[i];
        if (!selected[i]) continue;
        if (!m->fn) {
            note(notes, m->name, "left out: %s", m->missing);
            continue;
        }
        if (m->unavailable && (why = m->unavailable()) != NULL) {
            note(notes, m->name, "left out: %s", why);
            continue;
        }
        if (!bench_mech_pairs_ok(m)) {
            note(notes, m->name, "left out: no pairs rows (not a message pingpong)");
            continue;
        }
        for (int k = 0; k < npairs; k++) {
            size_t before = n;
            add_row(rows, &n, m, BENCH_PAIRS, 64);
            if (n == before) break;
            rows[n - 1].job.pairs = pairs[k];
            rows[n - 1].job.pair_fn = m->fn;
        }
    }
    return n;
}

size_t bench_plan(bench_row *rows, const int *selected, bench_notes *notes)
{
    size_t n = 0;
    for (size_t i = 0; i < BENCH_NMECHS; i++)
        if (selected[i] == 2)
            note(notes, BENCH_MECHS[i].name, "left out: only with --only (it needs root: %s)",
                 "two network namespaces, nats-servers, ferry-bridges");
        else if (selected[i])
            n = bench_plan_mech(rows, n, &BENCH_MECHS[i], notes);
    return n;
}

int bench_target_sizes(const bench_target *t, size_t sizes[4][2])
{
    if (t->num_size != BENCH_EACH_SIZE || t->den_size != BENCH_EACH_SIZE) {
        sizes[0][0] = t->num_size;
        sizes[0][1] = t->den_size;
        return 1;
    }
    for (int k = 0; k < 4; k++) sizes[k][0] = sizes[k][1] = PINGPONG_SIZES[k];
    return 4;
}

const bench_target *bench_targets(const bench_row *rows, size_t n, size_t *count)
{
    static bench_target all[BENCH_MAX_TARGETS + BENCH_MAX_ROWS];
    static char labels[BENCH_MAX_ROWS][96];
    size_t m = 0;
    for (size_t i = 0; i < BENCH_NTARGETS && i < BENCH_MAX_TARGETS; i++)
        all[m++] = BENCH_TARGETS[i];
    for (size_t k = 0; k < n; k++) {
        const bench_job *j = &rows[k].job;
        int named = 0;
        if (j->pattern != BENCH_PAIRS || strcmp(j->mechanism, "ferry-shm") != 0) continue;
        for (size_t i = 0; i < m; i++)
            named |= all[i].num_pat == BENCH_PAIRS && all[i].num_size == (size_t)j->pairs;
        if (named) continue;
        snprintf(labels[k], sizeof labels[k],
                 "ferry-shm --pairs %d round trips/s / pipe --pairs %d", j->pairs, j->pairs);
        const size_t np = (size_t)j->pairs;
        all[m++] = (bench_target){labels[k], "ferry-shm", "pipe", BENCH_PAIRS, BENCH_PAIRS,
                                  np,        np,          F_MSGS, BENCH_INFO,  0};
    }
    *count = m;
    return all;
}

void bench_measure_order(const bench_row *rows, size_t n, size_t *order)
{
    int taken[BENCH_MAX_ROWS] = {0};
    size_t m = 0, nt;
    const bench_target *targets = bench_targets(rows, n, &nt);
    for (size_t i = 0; i < nt; i++) {
        const bench_target *t = &targets[i];
        size_t sizes[4][2];
        if (!t->den) continue; /* a figure of one row: no pair to keep together */
        for (int k = bench_target_sizes(t, sizes) - 1; k >= 0; k--) {
            long pair[2] = {bench_find_row(rows, n, t->den, t->den_pat, sizes[k][1]),
                            bench_find_row(rows, n, t->num, t->num_pat, sizes[k][0])};
            if (pair[0] < 0 || pair[1] < 0) continue; /* a ratio needs both rows */
            for (int j = 0; j < 2; j++)
                if (!taken[pair[j]]) {
                    taken[pair[j]] = 1;
                    order[m++] = (size_t)pair[j];
                }
        }
    }
    for (size_t k = 0; k < n; k++)
        if (!taken[k]) order[m++] = k;
}
