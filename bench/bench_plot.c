// SPDX-License-Identifier: MIT
/*
 * bench_plot.c — `ferry bench --plot FILE.svg`: the pingpong rows as a chart, written as
 * SVG directly (no plotting program needed).
 *
 * The chart: p50 round trip (y) by message size (x), both on log scales with labelled
 * ticks (x: powers of two, 64 B .. 1 MiB; y: decades, with faint 2x and 5x lines), one
 * line per mechanism through its sizes (a mechanism with one size is a marker). Groups are
 * told apart by colour family, line and marker: ferry rows in warm colours, thick, round
 * markers; raw kernel mechanisms in blues and greens, squares; peer libraries (ZeroMQ,
 * NNG, iceoryx) in purples and browns, dashed, triangles; the floors (-baseline) grey,
 * dotted, diamonds. The legend, grouped the same way, gives each mechanism's 64 B p50.
 * Below it, the stream rows as two bar charts, sorted, each bar labelled with its figure:
 * one-way throughput with 1 MiB messages (GB/s) and with 64 B messages (messages/s).
 * The title names the machine (CPU model, CPU count, kernel) and the date; the rows left
 * out are listed at the bottom. Every marker and bar has a tooltip (<title>).
 */
#define _POSIX_C_SOURCE 200809L /* localtime_r */
#include "bench_plan.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Geometry, in px. */
#define W        1040
#define PLOT_X0  90  /* left edge of the plot area */
#define PLOT_X1  720 /* right edge */
#define PLOT_Y0  80  /* top */
#define PLOT_Y1  560 /* bottom */
#define LEGEND_X 748
#define BAR_H    13 /* a bar, and the step from one to the next */
#define BAR_STEP 18

#define MAX_SERIES 64
#define MAX_POINTS 8

typedef enum { G_FERRY, G_KERNEL, G_PEER, G_FLOOR, NGROUPS } group;

static const char *const GROUP_TITLE[NGROUPS] = {"ferry", "kernel, raw", "peer libraries",
                                                 "floors"};
/* Colour families, by group; a group's series take its colours in turn. */
static const char *const PALETTE[NGROUPS][8] = {
    {"#d62728", "#ff7f0e", "#e377c2", "#8c1b13", "#f2a93b", "#c2185b", "#ff5722", "#a0522d"},
    {"#1f77b4", "#2ca02c", "#17becf", "#393b79", "#98b83b", "#00796b", "#7fb3d5", "#5b7f95"},
    {"#9467bd", "#8c564b", "#6a3d9a", "#b5838d", "#5e3c99", "#a6761d", "#7b4173", "#9e9ac8"},
    {"#7f7f7f", "#4d4d4d", "#a6a6a6", "#333333", "#bdbdbd", "#666666", "#999999", "#262626"},
};

/* A mechanism on the chart: its group, colour, and pingpong points. */
typedef struct series {
    const char *name;
    group g;
    const char *colour;
    int n; /* pingpong points */
    size_t size[MAX_POINTS];
    double p50[MAX_POINTS], p99[MAX_POINTS];
} series;

static group group_of(const char *name)
{
    size_t len = strlen(name);
    if (strncmp(name, "ferry-", 6) == 0) return G_FERRY;
    if (len > 9 && strcmp(name + len - 9, "-baseline") == 0) return G_FLOOR;
    if (strncmp(name, "zeromq", 6) == 0 || strncmp(name, "nng", 3) == 0 ||
        strcmp(name, "iceoryx") == 0)
        return G_PEER;
    return G_KERNEL;
}

/* Write s with XML's special characters escaped. */
static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* A duration in ns as a short label: "140 ns", "2.4 µs", "75 µs", "3.1 ms". */
static void fmt_ns(char *out, size_t len, double ns)
{
    const char *unit = "ns";
    double v = ns;
    if (ns >= 1e6) {
        v = ns / 1e6;
        unit = "ms";
    } else if (ns >= 1e3) {
        v = ns / 1e3;
        unit = "\xc2\xb5s"; /* µs */
    }
    snprintf(out, len, v < 10 ? "%.1f %s" : "%.0f %s", v, unit);
    /* "1.0 µs" reads better as "1 µs" */
    char *dot = strstr(out, ".0 ");
    if (dot) memmove(dot, dot + 2, strlen(dot + 2) + 1);
}

static void fmt_size(char *out, size_t len, size_t size)
{
    if (size >= 1048576 && size % 1048576 == 0)
        snprintf(out, len, "%zu MiB", size / 1048576);
    else if (size >= 1024 && size % 1024 == 0)
        snprintf(out, len, "%zu KiB", size / 1024);
    else
        snprintf(out, len, "%zu B", size);
}

/* The CPU model from /proc/cpuinfo ("model name"), or "unknown CPU". */
static void cpu_model(char *out, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[512];
    snprintf(out, len, "unknown CPU");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(out, len, "%s", v);
        break;
    }
    if (f) fclose(f);
}

/* The axes' ranges. */
typedef struct scale {
    double lx0, lx1; /* log2 of the size range */
    double ly0, ly1; /* log10 of the ns range */
} scale;

static double px(const scale *s, double size)
{
    return PLOT_X0 + (log2(size) - s->lx0) / (s->lx1 - s->lx0) * (PLOT_X1 - PLOT_X0);
}

static double py(const scale *s, double ns)
{
    return PLOT_Y1 - (log10(ns) - s->ly0) / (s->ly1 - s->ly0) * (PLOT_Y1 - PLOT_Y0);
}

/* The series: every mechanism with a measured row, in table order, coloured in turn
 * within its group; its pingpong rows are its points. */
static int collect(const bench_row *rows, size_t n, series *out)
{
    int ns = 0, used[NGROUPS] = {0};
    for (size_t k = 0; k < n; k++) {
        const bench_row *r = &rows[k];
        if (!r->ok) continue;
        series *s = NULL;
        for (int i = 0; i < ns; i++)
            if (strcmp(out[i].name, r->job.mechanism) == 0) s = &out[i];
        if (!s) {
            if (ns == MAX_SERIES) continue;
            s = &out[ns++];
            memset(s, 0, sizeof *s);
            s->name = r->job.mechanism;
            s->g = group_of(s->name);
            s->colour = PALETTE[s->g][used[s->g]++ % 8];
        }
        if (r->job.pattern != BENCH_PINGPONG || r->res.rtt_p50_ns <= 0 || s->n == MAX_POINTS)
            continue;
        s->size[s->n] = r->job.size;
        s->p50[s->n] = r->res.rtt_p50_ns;
        s->p99[s->n] = r->res.rtt_p99_ns;
        s->n++;
    }
    return ns;
}

static const series *series_of(const series *s, int ns, const char *name)
{
    for (int i = 0; i < ns; i++)
        if (strcmp(s[i].name, name) == 0) return &s[i];
    return NULL;
}

static scale fit(const series *s, int ns)
{
    double xmin = 64, xmax = 1048576, ymin = 1e300, ymax = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            if (s[i].size[j] < xmin) xmin = (double)s[i].size[j];
            if (s[i].size[j] > xmax) xmax = (double)s[i].size[j];
            if (s[i].p50[j] < ymin) ymin = s[i].p50[j];
            if (s[i].p50[j] > ymax) ymax = s[i].p50[j];
        }
    if (ymax <= 0) ymin = 100, ymax = 1e6;
    /* A margin around the points, reaching to a labelled decade when one is near, and at
     * least two decades. */
    scale sc = {log2(xmin) - 0.5, log2(xmax) + 0.5, log10(ymin) - 0.15, log10(ymax) + 0.15};
    if (sc.ly0 - floor(sc.ly0) < 0.4) sc.ly0 = floor(sc.ly0) - 0.05;
    if (ceil(sc.ly1) - sc.ly1 < 0.4) sc.ly1 = ceil(sc.ly1) + 0.05;
    if (sc.ly1 - sc.ly0 < 2) sc.ly1 = sc.ly0 + 2;
    return sc;
}

static void axes(FILE *f, const scale *sc)
{
    char label[32];
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='#fbfbfb' stroke='#cccccc'/>\n",
            PLOT_X0, PLOT_Y0, PLOT_X1 - PLOT_X0, PLOT_Y1 - PLOT_Y0);
    /* y: decades, labelled; 2x and 5x faint */
    for (int d = (int)floor(sc->ly0); d <= (int)ceil(sc->ly1); d++) {
        double ns = pow(10, d), y = py(sc, ns);
        for (int m = 2; m <= 5; m += 3) {
            if (log10(ns * m) <= sc->ly0 || log10(ns * m) >= sc->ly1) continue;
            double ym = py(sc, ns * m);
            fprintf(f,
                    "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#e4e4e4' "
                    "stroke-dasharray='2 3'/>\n",
                    PLOT_X0, ym, PLOT_X1, ym);
            fmt_ns(label, sizeof label, ns * m);
            fprintf(f, "<text x='%d' y='%.1f' text-anchor='end' class='minor'>%s</text>\n",
                    PLOT_X0 - 8, ym + 3.5, label);
        }
        if (d < sc->ly0 || d > sc->ly1) continue;
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#d0d0d0'/>\n", PLOT_X0, y,
                PLOT_X1, y);
        fmt_ns(label, sizeof label, ns);
        fprintf(f, "<text x='%d' y='%.1f' text-anchor='end' class='tick'>%s</text>\n", PLOT_X0 - 8,
                y + 4, label);
    }
    /* x: powers of two from the first even one, every two octaves labelled */
    for (int e = (int)ceil(sc->lx0); e <= (int)floor(sc->lx1); e++) {
        double x = px(sc, pow(2, e));
        int major = e % 2 == 0;
        fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='%s'/>\n", x, PLOT_Y0, x,
                PLOT_Y1, major ? "#d0d0d0" : "#ececec");
        if (!major) continue;
        fmt_size(label, sizeof label, (size_t)1 << e);
        fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle' class='tick'>%s</text>\n", x,
                PLOT_Y1 + 18, label);
    }
    fprintf(f,
            "<text x='%d' y='%d' text-anchor='middle' class='axis'>message size (bytes, log "
            "scale)</text>\n",
            (PLOT_X0 + PLOT_X1) / 2, PLOT_Y1 + 42);
    fprintf(f,
            "<text transform='translate(%d %d) rotate(-90)' text-anchor='middle' "
            "class='axis'>p50 round trip (log scale) \xe2\x80\x94 lower is better</text>\n",
            22, (PLOT_Y0 + PLOT_Y1) / 2);
}

/* A marker of the group's shape at (x, y). */
static void marker(FILE *f, group g, double x, double y, const char *colour)
{
    switch (g) {
    case G_FERRY:
        fprintf(f, "<circle cx='%.1f' cy='%.1f' r='5' fill='%s' stroke='white'/>", x, y, colour);
        break;
    case G_KERNEL:
        fprintf(f, "<rect x='%.1f' y='%.1f' width='7' height='7' fill='%s'/>", x - 3.5, y - 3.5,
                colour);
        break;
    case G_PEER:
        fprintf(f, "<path d='M%.1f %.1f l4.5 7.5 h-9 z' fill='%s'/>", x, y - 4.5, colour);
        break;
    default:
        fprintf(f, "<path d='M%.1f %.1f l4.5 4.5 l-4.5 4.5 l-4.5 -4.5 z' fill='%s'/>", x, y - 4.5,
                colour);
    }
}

static const char *dash_of(group g)
{
    return g == G_PEER ? " stroke-dasharray='7 4'" : g == G_FLOOR ? " stroke-dasharray='2 3'" : "";
}

static void draw_series(FILE *f, const scale *sc, const series *s)
{
    const double width = s->g == G_FERRY ? 3.5 : 1.6;
    if (s->n == 0) return;
    fputs("<g><title>", f);
    xml_text(f, s->name);
    fputs("</title>\n", f);
    if (s->n > 1) {
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='%.1f'%s points='", s->colour,
                width, dash_of(s->g));
        for (int j = 0; j < s->n; j++)
            fprintf(f, "%s%.1f,%.1f", j ? " " : "", px(sc, (double)s->size[j]), py(sc, s->p50[j]));
        fputs("'/>\n", f);
    }
    for (int j = 0; j < s->n; j++) {
        char size[32], p50[32], p99[32];
        fmt_size(size, sizeof size, s->size[j]);
        fmt_ns(p50, sizeof p50, s->p50[j]);
        fmt_ns(p99, sizeof p99, s->p99[j]);
        fputs("<g>", f);
        marker(f, s->g, px(sc, (double)s->size[j]), py(sc, s->p50[j]), s->colour);
        fputs("<title>", f);
        xml_text(f, s->name);
        fprintf(f, ", %s: p50 %s, p99 %s</title></g>\n", size, p50, p99);
    }
    fputs("</g>\n", f);
}

/* The legend of the line chart, by group (ferry first); each entry with its p50 at its
 * smallest size (64 B for every mechanism here). Returns its bottom edge; f NULL: only
 * that. */
static int legend(FILE *f, const series *s, int ns)
{
    int y = PLOT_Y0 + 4;
    if (f)
        fprintf(f, "<text x='%d' y='%d' text-anchor='end' class='lv'>p50 at 64 B</text>\n", W - 12,
                y + 4);
    for (int g = 0; g < NGROUPS; g++) {
        int any = 0;
        for (int i = 0; i < ns; i++) {
            if (s[i].g != (group)g || s[i].n == 0) continue;
            if (!any) {
                if (f)
                    fprintf(f, "<text x='%d' y='%d' class='group'>%s</text>\n", LEGEND_X, y + 4,
                            GROUP_TITLE[g]);
                y += 20;
            }
            any = 1;
            if (f) {
                char p50[32], size[32], value[72];
                fmt_ns(p50, sizeof p50, s[i].p50[0]);
                fmt_size(size, sizeof size, s[i].size[0]);
                if (s[i].size[0] == 64)
                    snprintf(value, sizeof value, "%s", p50);
                else
                    snprintf(value, sizeof value, "%s at %s", p50, size);
                fprintf(f,
                        "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' "
                        "stroke-width='%.1f'%s/>",
                        LEGEND_X, y, LEGEND_X + 30, y, s[i].colour, s[i].g == G_FERRY ? 3.5 : 1.6,
                        dash_of(s[i].g));
                marker(f, s[i].g, LEGEND_X + 15, y, s[i].colour);
                fprintf(f, "\n<text x='%d' y='%d' class='%s'>", LEGEND_X + 38, y + 4,
                        s[i].g == G_FERRY ? "lf" : "l");
                xml_text(f, s[i].name);
                fprintf(f, "</text><text x='%d' y='%d' text-anchor='end' class='lv'>%s</text>\n",
                        W - 12, y + 4, value);
            }
            y += 18;
        }
        if (any) y += 8;
    }
    return y;
}

/* ------------------------------------------------------------------ stream bars */

typedef struct bar {
    const series *s;
    double v;
} bar;

static int cmp_bar(const void *a, const void *b)
{
    double x = ((const bar *)a)->v, y = ((const bar *)b)->v;
    return (x < y) - (x > y); /* descending */
}

/* Is this a zero-copy row (it hands messages over without touching their bytes)? */
static int zerocopy(const char *name)
{
    size_t len = strlen(name);
    return len > 9 && strcmp(name + len - 9, "-zerocopy") == 0;
}

/* The stream rows of one size, largest figure first: bytes/s for 1 MiB, msgs/s for 64 B.
 * Bytes/s leaves out zero-copy rows (its bytes are never copied, so the figure is not
 * comparable and would flatten every other bar); *left names the first one left out. */
static int stream_bars(const bench_row *rows, size_t n, const series *s, int ns, size_t size,
                       bar *out, const bench_row **left)
{
    int m = 0;
    for (size_t k = 0; k < n && m < MAX_SERIES; k++) {
        const bench_row *r = &rows[k];
        if (!r->ok || r->job.pattern != BENCH_STREAM || r->job.size != size) continue;
        double v = size >= 4096 ? r->res.bytes_per_s : r->res.msgs_per_s;
        const series *se = series_of(s, ns, r->job.mechanism);
        if (v <= 0 || !se) continue;
        if (size >= 4096 && zerocopy(se->name)) {
            if (left && !*left) *left = r;
            continue;
        }
        out[m++] = (bar){se, v};
    }
    qsort(out, (size_t)m, sizeof *out, cmp_bar);
    return m;
}

static void fmt_rate(char *out, size_t len, double v, int bytes)
{
    if (bytes)
        snprintf(out, len, v >= 1e10 ? "%.0f GB/s" : v >= 1e9 ? "%.1f GB/s" : "%.2f GB/s", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, len, v >= 1e7 ? "%.0f M/s" : "%.1f M/s", v / 1e6);
    else
        snprintf(out, len, "%.0f k/s", v / 1e3);
}

/* One bar panel with its title, at x0..x1 from y0. Returns its bottom edge. */
static int bar_panel(FILE *f, const bar *b, int m, int x0, int x1, int y0, const char *title,
                     int bytes)
{
    const int label_w = 140, value_w = 62;
    const int bx0 = x0 + label_w, bx1 = x1 - value_w;
    int y = y0;
    fprintf(f, "<text x='%d' y='%d' class='axis'>%s</text>\n", x0, y, title);
    y += 12;
    for (int i = 0; i < m; i++, y += BAR_STEP) {
        char v[32];
        double w = b[0].v > 0 ? b[i].v / b[0].v * (bx1 - bx0) : 0;
        fmt_rate(v, sizeof v, b[i].v, bytes);
        fprintf(f, "<g><title>");
        xml_text(f, b[i].s->name);
        fprintf(f, ": %s</title>", v);
        fprintf(f, "<text x='%d' y='%d' text-anchor='end' class='%s'>", bx0 - 6, y + BAR_H - 2,
                b[i].s->g == G_FERRY ? "lf" : "l");
        xml_text(f, b[i].s->name);
        fprintf(f, "</text><rect x='%d' y='%d' width='%.1f' height='%d' fill='%s'%s/>", bx0, y,
                w < 1 ? 1 : w, BAR_H, b[i].s->colour,
                b[i].s->g == G_FERRY ? " stroke='#222' stroke-width='1'" : " fill-opacity='0.8'");
        fprintf(f, "<text x='%.1f' y='%d' class='lv'>%s</text></g>\n", bx0 + (w < 1 ? 1 : w) + 5,
                y + BAR_H - 2, v);
    }
    return y;
}

/* ------------------------------------------------------------------ the file */

int bench_plot_svg(const char *path, const bench_row *rows, size_t n, int repeat,
                   const bench_notes *notes)
{
    static series s[MAX_SERIES];
    static bar big[MAX_SERIES], small[MAX_SERIES];
    int ns = collect(rows, n, s);
    const bench_row *zc = NULL;
    int nbig = stream_bars(rows, n, s, ns, 1048576, big, &zc);
    int nsmall = stream_bars(rows, n, s, ns, 64, small, NULL);
    scale sc = fit(s, ns);
    char model[256], date[64];
    struct utsname u;
    time_t now = time(NULL);
    struct tm tm;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    cpu_model(model, sizeof model);
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", &tm);
    if (uname(&u) != 0) snprintf(u.release, sizeof u.release, "?");

    /* Tall enough for the line chart and the legend, the bars, then the notes. */
    const int bars_y = PLOT_Y1 + 92;
    int nb = nbig > nsmall ? nbig : nsmall;
    int bottom = nb ? bars_y + 12 + nb * BAR_STEP + 10 : PLOT_Y1 + 56;
    if (nb && zc) bottom += 16;
    int lb = legend(NULL, s, ns);
    if (!nb && lb > bottom) bottom = lb;
    const int H = bottom + 16 * notes->n + 14;

    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "ferry bench: --plot %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' "
            "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'>\n"
            "<style>.title{font-size:19px;font-weight:bold;fill:#222}"
            ".sub{font-size:12.5px;fill:#555}.tick{font-size:12px;fill:#444}"
            ".minor{font-size:10px;fill:#999}"
            ".axis{font-size:13px;fill:#333}.group{font-size:11.5px;font-weight:bold;fill:#555;"
            "letter-spacing:1px}.l{font-size:12.5px;fill:#333}"
            ".lf{font-size:12.5px;font-weight:bold;fill:#111}.lv{font-size:11.5px;fill:#555}"
            ".note{font-size:11.5px;fill:#666}</style>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n",
            W, H, W, H);
    fputs("<text x='20' y='32' class='title'>ferry bench \xe2\x80\x94 round trip (p50) by "
          "message size</text>\n",
          f);
    fputs("<text x='20' y='54' class='sub'>", f);
    xml_text(f, model);
    fprintf(f,
            ", %ld CPUs, Linux %s \xc2\xb7 %s \xc2\xb7 two processes pinned to two CPUs \xc2\xb7 "
            "median of %d repetition%s</text>\n",
            ncpu, u.release, date, repeat, repeat > 1 ? "s" : "");

    axes(f, &sc);
    /* Others first, ferry last: ferry's lines are drawn on top. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ns; i++)
            if ((s[i].g == G_FERRY) == (pass == 1)) draw_series(f, &sc, &s[i]);
    legend(f, s, ns);

    if (nb) {
        fprintf(f,
                "<text x='20' y='%d' class='title' style='font-size:16px'>one-way stream "
                "throughput \xe2\x80\x94 higher is better</text>\n",
                bars_y - 22);
        int yb =
            bar_panel(f, big, nbig, 20, W / 2 - 10, bars_y, "1 MiB messages: bytes per second", 1);
        if (zc) {
            char v[32];
            fmt_rate(v, sizeof v, zc->res.bytes_per_s, 1);
            fprintf(f, "<text x='20' y='%d' class='note'>", yb + 8);
            xml_text(f, zc->job.mechanism);
            fprintf(f, " (%s) is left out: it hands 1 MiB over without copying it</text>\n", v);
        }
        bar_panel(f, small, nsmall, W / 2 + 10, W - 20, bars_y,
                  "64 B messages: messages per second", 0);
    }

    int y = bottom + 14;
    for (int i = 0; i < notes->n; i++, y += 16) {
        fprintf(f, "<text x='20' y='%d' class='note'>", y);
        xml_text(f, notes->note[i].names);
        fputs(": ", f);
        xml_text(f, notes->note[i].text);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    if (ferror(f) | (fclose(f) != 0)) {
        fprintf(stderr, "ferry bench: --plot %s: write failed\n", path);
        return -1;
    }
    return 0;
}
