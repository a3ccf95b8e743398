/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.c - the Prometheus registry: families and series in sorted lists
 * under a mutex, values in atomics, text format 0.0.4 on demand.
 */
#include "mlsync/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlsync/util.h"

#define MAX_LABELS 16

struct family;

struct mls_metric {
        struct family *fam;
        char *labels;            /* rendered: k="v",k2="v2"; "" for none */
        _Atomic uint64_t value;  /* double bits; a histogram's sum */
        _Atomic uint64_t *hits;  /* histogram: bound_cnt + 1 counts */
        struct mls_metric *next; /* sorted by labels */
};

struct family {
        char *name;
        char *help;
        enum mls_metric_type type;
        double *bounds;
        size_t bound_cnt;
        struct mls_metric *series;
        struct family *next;     /* sorted by name */
};

enum { PROC_START, PROC_RSS, PROC_CPU, PROC_FDS, PROC_CNT };

struct mls_metrics {
        pthread_mutex_t lock;
        struct family *fams;
        struct mls_metric *proc[PROC_CNT]; /* NULL until enabled */
};

/* A growing output buffer; after one failed allocation it stays failed. */
struct sbuf {
        char *p;
        size_t len;
        size_t cap;
        bool oom;
};

static const double seconds_bounds[] = MLS_METRIC_BUCKETS_SECONDS;

static double bits_to_dbl(uint64_t u)
{
        double d;

        memcpy(&d, &u, sizeof(d));
        return d;
}

static uint64_t dbl_to_bits(double d)
{
        uint64_t u;

        memcpy(&u, &d, sizeof(u));
        return u;
}

static double load_dbl(const _Atomic uint64_t *p)
{
        return bits_to_dbl(atomic_load_explicit(p, memory_order_relaxed));
}

/* A compare-and-swap loop, so a second writer would not lose updates. */
static void add_dbl(_Atomic uint64_t *p, double v)
{
        uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

        while (!atomic_compare_exchange_weak_explicit(
                p, &old, dbl_to_bits(bits_to_dbl(old) + v),
                memory_order_relaxed, memory_order_relaxed))
                ;
}

static void raise_dbl(_Atomic uint64_t *p, double v)
{
        uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

        while (v > bits_to_dbl(old) &&
               !atomic_compare_exchange_weak_explicit(
                       p, &old, dbl_to_bits(v), memory_order_relaxed,
                       memory_order_relaxed))
                ;
}

static bool valid_name(const char *s, bool colon_ok)
{
        if (!s || !*s || (*s >= '0' && *s <= '9'))
                return false;
        for (; *s; s++) {
                bool ok = (*s >= 'a' && *s <= 'z') ||
                          (*s >= 'A' && *s <= 'Z') ||
                          (*s >= '0' && *s <= '9') || *s == '_' ||
                          (colon_ok && *s == ':');

                if (!ok)
                        return false;
        }
        return true;
}

static void sb_put(struct sbuf *sb, const char *s, size_t n)
{
        char *p;
        size_t cap;

        if (sb->oom)
                return;
        if (sb->len + n + 1 > sb->cap) {
                cap = sb->cap ? sb->cap : 1024;
                while (sb->len + n + 1 > cap)
                        cap *= 2;
                p = realloc(sb->p, cap);
                if (!p) {
                        sb->oom = true;
                        return;
                }
                sb->p = p;
                sb->cap = cap;
        }
        memcpy(sb->p + sb->len, s, n);
        sb->len += n;
        sb->p[sb->len] = '\0';
}

static void sb_puts(struct sbuf *sb, const char *s)
{
        sb_put(sb, s, strlen(s));
}

/* Escape backslash and newline (HELP), plus '"' when quote is set. */
static void sb_escaped(struct sbuf *sb, const char *s, size_t n, bool quote)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\\')
                        sb_puts(sb, "\\\\");
                else if (s[i] == '\n')
                        sb_puts(sb, "\\n");
                else if (quote && s[i] == '"')
                        sb_puts(sb, "\\\"");
                else
                        sb_put(sb, &s[i], 1);
        }
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static const char *fmt_value(double v, char *buf, size_t size)
{
        if (isnan(v))
                return "NaN";
        if (isinf(v))
                return v > 0 ? "+Inf" : "-Inf";
        snprintf(buf, size, "%.15g", v);
        if (strtod(buf, NULL) != v)
                snprintf(buf, size, "%.17g", v);
        return buf;
}

struct label {
        const char *key;
        size_t key_len;
        const char *val;
        size_t val_len;
};

static int label_cmp(const void *a, const void *b)
{
        const struct label *x = a, *y = b;
        size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
        int c = memcmp(x->key, y->key, n);

        if (c)
                return c;
        return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static bool valid_label(const struct label *l, enum mls_metric_type type)
{
        char key[128];

        if (l->key_len == 0 || l->key_len >= sizeof(key))
                return false;
        memcpy(key, l->key, l->key_len);
        key[l->key_len] = '\0';
        if (!valid_name(key, false) || strncmp(key, "__", 2) == 0)
                return false;
        if (type == MLS_HISTOGRAM && strcmp(key, "le") == 0)
                return false;
        /* Personal data guard: emails never become label values. */
        return memchr(l->val, '@', l->val_len) == NULL;
}

/* Split "k=v,k2=v2" into labels; returns the count or -1 if malformed. */
static int split_labels(const char *spec, struct label *ls,
                        enum mls_metric_type type)
{
        int n = 0;
        const char *p = spec;

        while (p && *p) {
                const char *end = strchr(p, ',');
                const char *eq;

                if (!end)
                        end = p + strlen(p);
                while (*p == ' ')
                        p++;
                eq = memchr(p, '=', (size_t)(end - p));
                if (!eq || n == MAX_LABELS)
                        return -1;
                ls[n] = (struct label){ p, (size_t)(eq - p), eq + 1,
                                        (size_t)(end - eq - 1) };
                if (!valid_label(&ls[n], type))
                        return -1;
                n++;
                p = *end ? end + 1 : end;
        }
        return n;
}

/* The rendered, sorted label string of a spec; NULL if invalid or OOM. */
static char *canon_labels(const char *spec, enum mls_metric_type type)
{
        struct label ls[MAX_LABELS];
        struct sbuf sb = { 0 };
        int n = split_labels(spec, ls, type);

        if (n < 0)
                return NULL;
        qsort(ls, (size_t)n, sizeof(ls[0]), label_cmp);
        sb_put(&sb, "", 0);
        for (int i = 0; i < n; i++) {
                if (i > 0 && label_cmp(&ls[i - 1], &ls[i]) == 0)
                        goto bad;
                if (i > 0)
                        sb_puts(&sb, ",");
                sb_put(&sb, ls[i].key, ls[i].key_len);
                sb_puts(&sb, "=\"");
                sb_escaped(&sb, ls[i].val, ls[i].val_len, true);
                sb_puts(&sb, "\"");
        }
        if (sb.oom)
                goto bad;
        return sb.p;
bad:
        free(sb.p);
        return NULL;
}

struct mls_metrics *mls_metrics_new(void)
{
        struct mls_metrics *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        if (pthread_mutex_init(&m->lock, NULL) != 0) {
                free(m);
                return NULL;
        }
        return m;
}

static void series_free(struct mls_metric *s)
{
        free(s->labels);
        free(s->hits);
        free(s);
}

static void family_free(struct family *f)
{
        struct mls_metric *s, *next;

        for (s = f->series; s; s = next) {
                next = s->next;
                series_free(s);
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
}

void mls_metrics_destroy(struct mls_metrics *m)
{
        struct family *f, *next;

        if (!m)
                return;
        for (f = m->fams; f; f = next) {
                next = f->next;
                family_free(f);
        }
        pthread_mutex_destroy(&m->lock);
        free(m);
}

static bool valid_bounds(const double *bounds, size_t cnt)
{
        if (!bounds || cnt == 0 || cnt > MLS_METRIC_MAX_BUCKETS)
                return false;
        for (size_t i = 0; i < cnt; i++) {
                if (!isfinite(bounds[i]))
                        return false;
                if (i > 0 && !(bounds[i] > bounds[i - 1]))
                        return false;
        }
        return true;
}

static struct family *family_new(enum mls_metric_type type, const char *name,
                                 const char *help, const double *bounds,
                                 size_t bound_cnt)
{
        struct family *f = calloc(1, sizeof(*f));

        if (!f)
                return NULL;
        f->type = type;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        if (type == MLS_HISTOGRAM) {
                f->bounds = malloc(bound_cnt * sizeof(*f->bounds));
                if (f->bounds)
                        memcpy(f->bounds, bounds,
                               bound_cnt * sizeof(*f->bounds));
                f->bound_cnt = bound_cnt;
        }
        if (!f->name || !f->help || (type == MLS_HISTOGRAM && !f->bounds)) {
                family_free(f);
                return NULL;
        }
        return f;
}

/* Find the family, or create it at its sorted place. @locked */
static struct family *family_get_locked(struct mls_metrics *m,
                                        enum mls_metric_type type,
                                        const char *name, const char *help,
                                        const double *bounds,
                                        size_t bound_cnt)
{
        struct family **pp = &m->fams;
        struct family *f;
        int c = 1;

        while (*pp) {
                c = strcmp((*pp)->name, name);
                if (c >= 0)
                        break;
                pp = &(*pp)->next;
        }
        if (*pp && c == 0)
                return (*pp)->type == type ? *pp : NULL;
        f = family_new(type, name, help, bounds, bound_cnt);
        if (!f)
                return NULL;
        f->next = *pp;
        *pp = f;
        return f;
}

/* Find the series, or create it at its sorted place. @locked */
static struct mls_metric *series_get_locked(struct family *f, char *labels)
{
        struct mls_metric **pp = &f->series;
        struct mls_metric *s;
        int c = 1;

        while (*pp) {
                c = strcmp((*pp)->labels, labels);
                if (c >= 0)
                        break;
                pp = &(*pp)->next;
        }
        if (*pp && c == 0) {
                free(labels);
                return *pp;
        }
        s = calloc(1, sizeof(*s));
        if (s && f->type == MLS_HISTOGRAM)
                s->hits = calloc(f->bound_cnt + 1, sizeof(*s->hits));
        if (!s || (f->type == MLS_HISTOGRAM && !s->hits)) {
                free(s);
                free(labels);
                return NULL;
        }
        s->fam = f;
        s->labels = labels;
        atomic_init(&s->value, dbl_to_bits(0.0));
        for (size_t i = 0; s->hits && i <= f->bound_cnt; i++)
                atomic_init(&s->hits[i], 0);
        s->next = *pp;
        *pp = s;
        return s;
}

static struct mls_metric *metric_get(struct mls_metrics *m,
                                     enum mls_metric_type type,
                                     const char *name, const char *help,
                                     const char *labels, const double *bounds,
                                     size_t bound_cnt)
{
        struct family *f;
        struct mls_metric *s = NULL;
        char *canon;

        if (!m || !valid_name(name, true))
                return NULL;
        if (type == MLS_HISTOGRAM && !valid_bounds(bounds, bound_cnt))
                return NULL;
        canon = canon_labels(labels, type);
        if (!canon)
                return NULL;

        pthread_mutex_lock(&m->lock);
        f = family_get_locked(m, type, name, help, bounds, bound_cnt);
        if (f)
                s = series_get_locked(f, canon);
        else
                free(canon);
        pthread_mutex_unlock(&m->lock);
        return s;
}

struct mls_metric *mls_metric_get(struct mls_metrics *m,
                                  enum mls_metric_type type, const char *name,
                                  const char *help, const char *labels)
{
        if (type != MLS_COUNTER && type != MLS_GAUGE && type != MLS_HISTOGRAM)
                return NULL;
        return metric_get(m, type, name, help, labels, seconds_bounds,
                          MLS_ARRAY_LEN(seconds_bounds));
}

struct mls_metric *mls_metric_get_histogram(struct mls_metrics *m,
                                            const char *name,
                                            const char *help,
                                            const char *labels,
                                            const double *bounds,
                                            size_t bound_cnt)
{
        return metric_get(m, MLS_HISTOGRAM, name, help, labels, bounds,
                          bound_cnt);
}

void mls_metric_add(struct mls_metric *s, double v)
{
        if (!s || isnan(v))
                return;
        if (s->fam->type == MLS_GAUGE)
                add_dbl(&s->value, v);
        else if (s->fam->type == MLS_COUNTER && v > 0)
                add_dbl(&s->value, v);
}

void mls_metric_set(struct mls_metric *s, double v)
{
        if (!s || isnan(v))
                return;
        if (s->fam->type == MLS_GAUGE)
                atomic_store_explicit(&s->value, dbl_to_bits(v),
                                      memory_order_relaxed);
        else if (s->fam->type == MLS_COUNTER)
                raise_dbl(&s->value, v);
}

void mls_metric_observe(struct mls_metric *s, double v)
{
        const struct family *f;
        size_t i = 0;

        if (!s || s->fam->type != MLS_HISTOGRAM || isnan(v))
                return;
        f = s->fam;
        while (i < f->bound_cnt && v > f->bounds[i])
                i++;
        /* The sum first: a render that sees the new count also sees it. */
        add_dbl(&s->value, v);
        atomic_fetch_add_explicit(&s->hits[i], 1, memory_order_release);
}

static uint64_t hist_count(const struct mls_metric *s)
{
        uint64_t n = 0;

        for (size_t i = 0; i <= s->fam->bound_cnt; i++)
                n += atomic_load_explicit(&s->hits[i], memory_order_acquire);
        return n;
}

double mls_metric_value(const struct mls_metric *s)
{
        if (!s)
                return 0;
        if (s->fam->type == MLS_HISTOGRAM)
                return (double)hist_count(s);
        return load_dbl(&s->value);
}

/* ---- process_* families ------------------------------------------------ */

/* Fields 14 (utime), 15 (stime) and 22 (starttime) of /proc/self/stat,
 * in clock ticks. The command name may hold spaces: skip past its ')'. */
static int read_proc_stat(unsigned long long *cpu_ticks,
                          unsigned long long *start_ticks)
{
        char *buf = NULL, *p;
        size_t len;
        unsigned long long ut, st, start;
        int rc = -1;

        if (mls_read_file("/proc/self/stat", &buf, &len) != 0)
                return -1;
        p = strrchr(buf, ')');
        /* After ')': state ppid pgrp session tty tpgid flags minflt
         * cminflt majflt cmajflt utime stime cutime cstime priority nice
         * threads itrealvalue starttime. */
        if (p && sscanf(p + 1,
                        " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
                        " %*d %*d %*d %*d %*d %*d %llu",
                        &ut, &st, &start) == 3) {
                *cpu_ticks = ut + st;
                *start_ticks = start;
                rc = 0;
        }
        free(buf);
        return rc;
}

static double boot_time_s(void)
{
        char *buf = NULL, *p;
        size_t len;
        double t = 0;

        if (mls_read_file("/proc/stat", &buf, &len) != 0)
                return 0;
        p = strstr(buf, "\nbtime ");
        if (p)
                t = strtod(p + 7, NULL);
        free(buf);
        return t;
}

static double resident_bytes(void)
{
        char *buf = NULL;
        size_t len;
        unsigned long long size, rss;
        double v = 0;

        if (mls_read_file("/proc/self/statm", &buf, &len) != 0)
                return 0;
        if (sscanf(buf, "%llu %llu", &size, &rss) == 2)
                v = (double)rss * (double)sysconf(_SC_PAGESIZE);
        free(buf);
        return v;
}

static double open_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        double n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d)) != NULL) {
                if (de->d_name[0] != '.')
                        n++;
        }
        closedir(d);
        return n > 0 ? n - 1 : 0; /* not the directory stream's own fd */
}

/* @thread any; only process series are written, and only from render. */
static void refresh_process(struct mls_metrics *m)
{
        unsigned long long cpu, start;
        double hz = (double)sysconf(_SC_CLK_TCK);

        if (!m->proc[PROC_CPU])
                return;
        if (hz > 0 && read_proc_stat(&cpu, &start) == 0)
                mls_metric_set(m->proc[PROC_CPU], (double)cpu / hz);
        mls_metric_set(m->proc[PROC_RSS], resident_bytes());
        mls_metric_set(m->proc[PROC_FDS], open_fds());
}

int mls_metrics_enable_process(struct mls_metrics *m)
{
        unsigned long long cpu, start;
        double hz = (double)sysconf(_SC_CLK_TCK);
        struct mls_metric *p[PROC_CNT];

        p[PROC_START] = mls_metric_get(m, MLS_GAUGE,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                NULL);
        p[PROC_RSS] = mls_metric_get(m, MLS_GAUGE,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.", NULL);
        p[PROC_CPU] = mls_metric_get(m, MLS_COUNTER,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.", NULL);
        p[PROC_FDS] = mls_metric_get(m, MLS_GAUGE, "process_open_fds",
                "Number of open file descriptors.", NULL);
        for (int i = 0; i < PROC_CNT; i++) {
                if (!p[i])
                        return -1;
        }
        if (hz > 0 && read_proc_stat(&cpu, &start) == 0)
                mls_metric_set(p[PROC_START],
                               boot_time_s() + (double)start / hz);
        pthread_mutex_lock(&m->lock);
        memcpy(m->proc, p, sizeof(p));
        pthread_mutex_unlock(&m->lock);
        return 0;
}

/* ---- rendering ---------------------------------------------------------- */

static void render_sample(struct sbuf *sb, const char *name,
                          const char *suffix, const char *labels,
                          const char *extra, double v)
{
        char num[40];

        sb_puts(sb, name);
        sb_puts(sb, suffix);
        if (*labels || extra) {
                sb_puts(sb, "{");
                sb_puts(sb, labels);
                if (*labels && extra)
                        sb_puts(sb, ",");
                if (extra)
                        sb_puts(sb, extra);
                sb_puts(sb, "}");
        }
        sb_puts(sb, " ");
        sb_puts(sb, fmt_value(v, num, sizeof(num)));
        sb_puts(sb, "\n");
}

static void render_histogram(struct sbuf *sb, const struct family *f,
                             const struct mls_metric *s)
{
        uint64_t cum = 0;
        char le[64], num[40];

        for (size_t i = 0; i <= f->bound_cnt; i++) {
                cum += atomic_load_explicit(&s->hits[i], memory_order_acquire);
                snprintf(le, sizeof(le), "le=\"%s\"",
                         i < f->bound_cnt ? fmt_value(f->bounds[i], num,
                                                      sizeof(num))
                                          : "+Inf");
                render_sample(sb, f->name, "_bucket", s->labels, le,
                              (double)cum);
        }
        render_sample(sb, f->name, "_sum", s->labels, NULL,
                      load_dbl(&s->value));
        /* _count equals the +Inf bucket by construction. */
        render_sample(sb, f->name, "_count", s->labels, NULL, (double)cum);
}

static void render_family(struct sbuf *sb, const struct family *f)
{
        static const char *const types[] = { "counter", "gauge",
                                             "histogram" };
        const struct mls_metric *s;

        if (!f->series)
                return;
        sb_puts(sb, "# HELP ");
        sb_puts(sb, f->name);
        sb_puts(sb, " ");
        sb_escaped(sb, f->help, strlen(f->help), false);
        sb_puts(sb, "\n# TYPE ");
        sb_puts(sb, f->name);
        sb_puts(sb, " ");
        sb_puts(sb, types[f->type]);
        sb_puts(sb, "\n");
        for (s = f->series; s; s = s->next) {
                if (f->type == MLS_HISTOGRAM)
                        render_histogram(sb, f, s);
                else
                        render_sample(sb, f->name, "", s->labels, NULL,
                                      load_dbl(&s->value));
        }
}

char *mls_metrics_render(struct mls_metrics *m, size_t *lenp)
{
        struct sbuf sb = { 0 };
        const struct family *f;

        sb_put(&sb, "", 0);
        pthread_mutex_lock(&m->lock);
        refresh_process(m);
        for (f = m->fams; f; f = f->next)
                render_family(&sb, f);
        pthread_mutex_unlock(&m->lock);
        if (sb.oom) {
                free(sb.p);
                return NULL;
        }
        if (lenp)
                *lenp = sb.len;
        return sb.p;
}
