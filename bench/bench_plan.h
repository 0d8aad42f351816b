// SPDX-License-Identifier: MIT
/*
 * bench_plan.h — the driver side of `ferry bench`, shared by its files:
 *   bench.c         options, the run loop (repetitions, progress), exit status
 *   bench_mechs.c   the table of mechanisms (one entry per row family) and of targets
 *   bench_plan.c    the list of rows a run measures, the notes on rows left out, and the
 *                   order in which one repetition measures them
 *   bench_report.c  medians over the repetitions, CSV, the table, notes, target ratios
 *   bench_plot.c    the SVG chart (--plot)
 *
 * A mechanism is one table entry: its name, its runner (bench_fn), the rows it has
 * (shape), an argument handed to the runner (job->arg: e.g. the URL of a ferry
 * transport), and optional hooks: how large a payload it allows on this machine, whether
 * it can run here at all, and what to release at the end of the run.
 */
#ifndef FERRY_TOOL_BENCH_PLAN_H
#define FERRY_TOOL_BENCH_PLAN_H

#include "bench.h"

#include <stdio.h>

/* Which rows a mechanism has. */
typedef enum bench_shape {
    SHAPE_LINE,        /* pingpong at 64 B only: one cache line, or a counter with no payload */
    SHAPE_ALL,         /* pingpong at every size, stream at both sizes */
    SHAPE_COPY,        /* stream at 1 MiB only */
    SHAPE_UNCONTENDED, /* uncontended at size 0 only: a synchronization object, one process */
    SHAPE_HANDOFF,     /* handoff at size 0 only: a mutex taken in turns by two processes */
    SHAPE_SELF,        /* uncontended at 64 B only: one thread, both ends of a channel */
} bench_shape;

typedef struct bench_mech {
    const char *name;
    bench_fn fn;       /* NULL: not built in; `missing` says why */
    bench_shape shape; /* the rows it has */
    const void *arg;   /* handed to fn as job->arg */
    const char *missing;
    /* The largest payload this mechanism can carry on this machine, and the limit that
     * decides it (e.g. "msgsize_max"); NULL: no limit. Rows above it are left out. */
    size_t (*limit)(const char **limit_name);
    /* NULL when it can run here; otherwise why not (e.g. a program is missing). */
    const char *(*unavailable)(void);
    /* Called once at the end of a run that measured it (e.g. stop a daemon). */
    void (*done)(void);
    /* 1: measured only when --only names it (a run that builds a world of its own: the
     * rows between network namespaces); the default run leaves it out with a note. */
    int opt_in;
} bench_mech;

extern const bench_mech BENCH_MECHS[];
extern const size_t BENCH_NMECHS;

/* A figure a target compares. */
/* F_SLEEPS: sleeps per message (bench_result.sleeps_per_msg), for a target of one row. */
typedef enum bench_field { F_P50, F_MSGS, F_BYTES, F_SLEEPS } bench_field;

/* A target: the ratio num/den of one figure of two rows, measured in the same run. With
 * at_most = BENCH_INFO there is no limit: the ratio is printed, marked INFO. den NULL:
 * the figure of num itself (F_SLEEPS). */
typedef struct bench_target {
    const char *label;
    const char *num, *den; /* mechanisms */
    bench_pattern num_pat, den_pat;
    size_t num_size, den_size; /* both BENCH_EACH_SIZE: one ratio per pingpong size */
    bench_field field;
    int at_most; /* 1: ratio <= limit; 0: ratio >= limit; BENCH_INFO: no limit */
    double limit;
} bench_target;
/* A BENCH_PAIRS target's num_size and den_size are the rows' numbers of pairs (their
 * payload is always 64 B), as bench_find_row's size is for that pattern. */

#define BENCH_INFO (-1)

#define BENCH_EACH_SIZE SIZE_MAX
/* The (num, den) sizes a target compares: one pair, or one per pingpong size when both
 * are BENCH_EACH_SIZE. Returns how many (at most 4). */
int bench_target_sizes(const bench_target *t, size_t sizes[4][2]);

extern const bench_target BENCH_TARGETS[];
extern const size_t BENCH_NTARGETS;

#define BENCH_MAX_ROWS    160
#define BENCH_MAX_TARGETS 96 /* BENCH_TARGETS has at most this many */
#define BENCH_MAX_REPEAT  100
#define BENCH_MAX_NOTES   32

typedef struct bench_row {
    bench_job job;
    const bench_mech *mech;
    bench_result res;  /* per figure, the median over the repetitions */
    bench_result *rep; /* what each repetition measured: N of them */
    int ok;            /* every repetition succeeded */
} bench_row;

/* What is said about the plan: rows left out and why. Mechanisms left out for the same
 * reason share one note ("zeromq-ipc, zeromq-tcp: ..."). */
typedef struct bench_notes {
    struct {
        char names[160];
        char text[160];
    } note[BENCH_MAX_NOTES];
    int n;
} bench_notes;

/* ---- bench_plan.c */
/* The targets of a plan: BENCH_TARGETS, then, for a --pairs N that no target names, the
 * same ferry-shm / pipe ratio as INFO. Static storage, valid until the next call. */
const bench_target *bench_targets(const bench_row *rows, size_t n, size_t *count);

/* The rows of the selected mechanisms (selected[i] for BENCH_MECHS[i]), grouped by
 * mechanism, in the printed order; rows a mechanism cannot have here are left out, with a
 * note (selected[i] == 2: an opt-in mechanism the default run only notes). Returns the number of
 * rows (at most BENCH_MAX_ROWS). */
size_t bench_plan(bench_row *rows, const int *selected, bench_notes *notes);
/* Add the rows of one more mechanism (not in the table, e.g. --url) to a plan of n rows.
 * Returns the new number of rows. */
size_t bench_plan_mech(bench_row *rows, size_t n, const bench_mech *m, bench_notes *notes);
/* The order in which one repetition measures the rows: see bench_plan.c. */
void bench_measure_order(const bench_row *rows, size_t n, size_t *order);
/* The index of a planned row, or -1. For BENCH_PAIRS, size is the number of pairs. */
long bench_find_row(const bench_row *rows, size_t n, const char *mech, bench_pattern pat,
                    size_t size);
const char *bench_pattern_name(bench_pattern p);
/* The pattern column of a job: its pattern's name, or "pairs-N" for a BENCH_PAIRS row. */
const char *bench_job_pattern(const bench_job *job, char *buf, size_t len);
/* Can a mechanism run as N pairs (its pingpong 64 runs bench_loop_pingpong)? */
int bench_mech_pairs_ok(const bench_mech *m);
/* --pairs: for each selected mechanism that can, a BENCH_PAIRS row per count in
 * pairs[0..npairs), grouped by mechanism. Returns the number of rows. */
size_t bench_plan_pairs(bench_row *rows, const int *selected, const int *pairs, int npairs,
                        bench_notes *notes);
double bench_field_of(const bench_result *res, bench_field f);

/* ---- bench_report.c */

/* Fill r->res with the median of each figure over the repetitions. */
void bench_summarize(bench_row *r, int repeat);
void bench_print_csv(FILE *f, const bench_row *rows, size_t n);
void bench_print_table(FILE *f, const bench_row *rows, size_t n, int repeat);
void bench_print_notes(FILE *f, const bench_notes *notes);
void bench_print_targets(FILE *f, const bench_row *rows, size_t n, int repeat);
/* Median, min and max of v[0..n) (sorts v). */
double bench_median(double *v, int n, double *lo, double *hi);

/* ---- bench_plot.c */

/* Write the SVG chart of the pingpong p50s to path. 0, or -1 with a message on stderr. */
int bench_plot_svg(const char *path, const bench_row *rows, size_t n, int repeat,
                   const bench_notes *notes);

#endif /* FERRY_TOOL_BENCH_PLAN_H */
