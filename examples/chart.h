/* chart.h - the examples' line charts, as SVG files.  The charts are not the lesson: this file only draws.

   A chart is one or more panels side by side, under an optional title.  A panel is a box with two axes
   (linear, or logarithmic with labels at powers of 10), lines through points (a dot on each point; a
   dashed line is a reference, without dots), and a legend under the box.  Plain SVG 1.1, written with
   fprintf: any browser shows it.  C99, libc and libm only; everything is static.

       double epoch[3] = {1, 2, 3}, loss[3] = {0.9, 0.5, 0.4};
       chart_line line = {"train loss", "#1f77b4", epoch, loss, 3, 0};
       chart_panel panel = {"Loss", "epoch", "loss", 0, 0, NULL, &line, 1};
       make_folder("build");
       chart_save("my_program", "build", "loss.svg", NULL, &panel, 1);   (0, or -1 and a line on stderr)

   Text is escaped for SVG, so names may contain '<' and '&'. */

#ifndef EXAMPLES_CHART_H
#define EXAMPLES_CHART_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h> /* strerror */
#ifdef _WIN32
#include <direct.h> /* _mkdir */
#else
#include <sys/stat.h> /* mkdir */
#endif

typedef struct chart_line {
    const char *name;    /* its legend entry */
    const char *color;   /* an SVG colour, e.g. "#1f77b4" */
    const double *x, *y; /* the points (x[i], y[i]), i = 0 .. n-1, joined in this order */
    int n;
    int dashed; /* 1: a dashed line without dots, for a reference such as a target */
} chart_line;

typedef struct chart_panel {
    const char *title, *x_title, *y_title;
    int log_x, log_y;            /* 1: that axis is logarithmic */
    const char *const *x_labels; /* NULL, or names for x = 1, 2, 3, ... written under the axis instead of
                                    numbers (each x must then be one of these whole numbers) */
    const chart_line *lines;
    int count;
} chart_panel;

/* Creates the folder dir if it does not exist yet (one level, like mkdir).  A failure is not reported
   here: writing the first file into the folder fails, and that says which file and why. */
static void make_folder(const char *dir)
{
#ifdef _WIN32
    (void)_mkdir(dir);
#else
    (void)mkdir(dir, 0777);
#endif
}

/* ---- the layout, in pixels: each panel is a block PANEL_LEFT + plot width + PANEL_RIGHT wide ---- */

enum { PANEL_LEFT = 80, PANEL_RIGHT = 40, PLOT_HEIGHT = 300, LEGEND_ROW = 18 };

/* One axis: data values lo .. hi (on a log axis, their log10: decades) at pixels from .. to. */
typedef struct chart_axis {
    int log, is_y;
    double lo, hi, step; /* the ticks are at the multiples of step from lo to hi */
    double from, to;
} chart_axis;

static int chart_drawable(double v, int log_axis)
{
    return v > (log_axis ? 0 : -HUGE_VAL) && v < HUGE_VAL; /* (no NaN, no infinity, nothing <= 0 on a log axis) */
}

static double chart_pixel(const chart_axis *a, double v)
{
    if (a->log) v = log10(v);
    return a->from + (v - a->lo) / (a->hi - a->lo) * (a->to - a->from);
}

/* The axis' range, around every line's drawable x (use_x) or y values, widened to whole steps so that
   both ends are ticks.  Linear: steps of 1, 2 or 5 times a power of 10, at most about 8 of them, and no
   fractions between whole numbers (epochs, layers), or one per name with x_labels.  Log: whole decades,
   one step per decade, or more if there are over 8. */
static void chart_fit_axis(chart_axis *a, const chart_panel *p, int use_x)
{
    double lo = HUGE_VAL, hi = -HUGE_VAL, power = 1, want;
    int k, i, whole = 1;
    for (k = 0; k < p->count; k++)
        for (i = 0; i < p->lines[k].n; i++) {
            double v = use_x ? p->lines[k].x[i] : p->lines[k].y[i];
            if (!chart_drawable(v, a->log)) continue;
            if (a->log) v = log10(v);
            if (v != floor(v)) whole = 0;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    if (lo > hi) lo = 0, hi = 1; /* nothing to draw */
    if (use_x && p->x_labels) {  /* a name at each whole number, half a step of room on either side */
        a->lo = lo - 0.5, a->hi = hi + 0.5, a->step = 1;
        return;
    }
    if (hi - lo < 1e-9 * (fabs(lo) + 1)) lo -= 0.5, hi += 0.5; /* a single value: room around it */
    if (a->log) {
        a->step = ceil((ceil(hi) - floor(lo)) / 8);
    } else {
        want = (hi - lo) / 8;
        while (power * 10 <= want) power *= 10;
        while (power > want) power /= 10;
        a->step = want <= power ? power : want <= 2 * power ? 2 * power : want <= 5 * power ? 5 * power : 10 * power;
        if (whole && a->step < 1) a->step = 1;
    }
    a->lo = a->step * floor(lo / a->step);
    a->hi = a->step * ceil(hi / a->step);
}

/* Text at (x, y), escaped for SVG; anchor is "start", "middle" or "end"; rotated -90 degrees if vertical. */
static void chart_text(FILE *f, double x, double y, const char *anchor, int size, int vertical, const char *text)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\"", x, y, anchor, size);
    if (vertical) fprintf(f, " transform=\"rotate(-90 %.1f %.1f)\"", x, y);
    fputc('>', f);
    for (; *text; text++) {
        if (*text == '<')
            fputs("&lt;", f);
        else if (*text == '&')
            fputs("&amp;", f);
        else
            fputc(*text, f);
    }
    fputs("</text>\n", f);
}

/* A thin line across axis a at its pixel at, from pixel u1 to u2 along the other axis: grid lines, ticks. */
static void chart_across(FILE *f, const chart_axis *a, double at, double u1, double u2, const char *color)
{
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", a->is_y ? u1 : at,
            a->is_y ? at : u1, a->is_y ? u2 : at, a->is_y ? at : u2, color);
}

/* The ticks of axis a: at each multiple of the step, a grid line across the plot (to the far side of the
   other axis), a tick mark and a label outside.  names: the x axis' names, or NULL for numbers. */
static void chart_ticks(FILE *f, const chart_axis *a, const chart_axis *other, const char *const *names)
{
    double t, edge = other->from, out = a->is_y ? -1 : 1; /* (out: the direction away from the plot) */
    char text[32];
    int i;
    for (i = (int)ceil(a->lo / a->step - 1e-9); (t = i * a->step) <= a->hi + 1e-9 * a->step; i++) {
        double at = chart_pixel(a, a->log ? pow(10, t) : t);
        double label_x = a->is_y ? edge - 8 : at, label_y = a->is_y ? at + 4 : edge + 19;
        const char *anchor = a->is_y ? "end" : "middle";
        chart_across(f, a, at, edge, other->to, "#dddddd");
        chart_across(f, a, at, edge, edge + 5 * out, "black");
        if (names)
            chart_text(f, label_x, label_y, anchor, 12, 0, names[i - 1]);
        else if (a->log && (a->lo < -3 || a->hi > 5)) /* 10 with a raised exponent, unless all are short */
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"12\">10<tspan dy=\"-6\" "
                       "font-size=\"9\">%d</tspan></text>\n", label_x, label_y, anchor, (int)t);
        else {
            sprintf(text, "%g", a->log ? pow(10, t) : t);
            chart_text(f, label_x, label_y, anchor, 12, 0, text);
        }
    }
}

/* One panel, its plot box at (left, top), plot_width wide: title, axes, lines, legend. */
static void chart_draw_panel(FILE *f, const chart_panel *p, double left, double top, double plot_width)
{
    chart_axis x, y;
    int k, i, pen_down;
    x.log = p->log_x, x.is_y = 0, x.from = left, x.to = left + plot_width;
    y.log = p->log_y, y.is_y = 1, y.from = top + PLOT_HEIGHT, y.to = top; /* pixels grow downwards */
    chart_fit_axis(&x, p, 1);
    chart_fit_axis(&y, p, 0);
    fprintf(f, "<g font-weight=\"bold\">\n");
    chart_text(f, left + plot_width / 2, top - 12, "middle", 15, 0, p->title);
    fprintf(f, "</g>\n");
    chart_ticks(f, &x, &y, p->x_labels);
    chart_ticks(f, &y, &x, NULL);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", left,
            top, plot_width, PLOT_HEIGHT);
    chart_text(f, left + plot_width / 2, top + PLOT_HEIGHT + 40, "middle", 13, 0, p->x_title);
    chart_text(f, left - 55, top + PLOT_HEIGHT / 2, "middle", 13, 1, p->y_title);

    for (k = 0; k < p->count; k++) {
        const chart_line *line = &p->lines[k];
        const char *dashes = line->dashed ? " stroke-dasharray=\"6 4\"" : "";
        double legend_y = top + PLOT_HEIGHT + 64 + LEGEND_ROW * k;
        /* the line through its drawable points (the pen lifts over the others), then a dot on each */
        fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s d=\"", line->color, dashes);
        for (i = 0, pen_down = 0; i < line->n; i++) {
            if (!chart_drawable(line->x[i], x.log) || !chart_drawable(line->y[i], y.log)) {
                pen_down = 0;
                continue;
            }
            fprintf(f, "%s%.1f %.1f ", pen_down ? "L" : "M", chart_pixel(&x, line->x[i]), chart_pixel(&y, line->y[i]));
            pen_down = 1;
        }
        fprintf(f, "\"/>\n");
        for (i = 0; i < line->n && !line->dashed; i++)
            if (chart_drawable(line->x[i], x.log) && chart_drawable(line->y[i], y.log))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", chart_pixel(&x, line->x[i]),
                        chart_pixel(&y, line->y[i]), line->color);
        /* its legend entry, under the plot: a piece of the line, and the name */
        fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s d=\"M%.1f %.1f h28\"/>\n", line->color,
                dashes, left, legend_y);
        chart_text(f, left + 36, legend_y + 4, "start", 12, 0, line->name);
    }
}

/* Writes the panels side by side, under title (NULL: none), as the SVG file dir/file, and says so on
   stdout: "chart: dir/file".  If it cannot: one line on stderr, "program: cannot write dir/file: why",
   and -1. */
static int chart_save(const char *program, const char *dir, const char *file, const char *title,
                      const chart_panel *panels, int count)
{
    double plot_width = count == 1 ? 600 : 440, panel_width = PANEL_LEFT + plot_width + PANEL_RIGHT;
    double top = title ? 80 : 50, width = count * panel_width, height;
    char path[1024];
    int k, rows = 0, failed = 1;
    FILE *f = NULL;
    for (k = 0; k < count; k++)
        if (panels[k].count > rows) rows = panels[k].count;
    height = top + PLOT_HEIGHT + 64 + LEGEND_ROW * rows;
    errno = 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        errno = ENAMETOOLONG;
    else
        f = fopen(path, "w");
    if (f) {
        fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
                   "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\">\n"
                   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", width, height, width, height);
        if (title) chart_text(f, width / 2, 30, "middle", 16, 0, title);
        for (k = 0; k < count; k++) chart_draw_panel(f, &panels[k], k * panel_width + PANEL_LEFT, top, plot_width);
        fprintf(f, "</svg>\n");
        failed = ferror(f); /* a full disk shows up as a write error, possibly only when fclose flushes */
        if (fclose(f) != 0) failed = 1;
    }
    if (failed) {
        fprintf(stderr, "%s: cannot write %s: %s\n", program, path, errno ? strerror(errno) : "write error");
        return -1;
    }
    printf("chart: %s\n", path);
    return 0;
}

#endif
