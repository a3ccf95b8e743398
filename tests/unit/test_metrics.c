/* SPDX-License-Identifier: Apache-2.0
 *
 * test_metrics.c - the Prometheus registry: series identity, value rules,
 * exact text output, and rendering while another thread updates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlsync/metrics.h"

static char *render(struct mls_metrics *m)
{
        size_t len = 0;
        char *text = mls_metrics_render(m, &len);

        assert_non_null(text);
        assert_int_equal(strlen(text), len);
        return text;
}

static void assert_render(struct mls_metrics *m, const char *want)
{
        char *text = render(m);

        if (strcmp(text, want) != 0)
                fail_msg("rendered:\n%s\nwanted:\n%s", text, want);
        free(text);
}

/* The value of the first line that starts with prefix followed by ' '. */
static double sample(const char *text, const char *prefix)
{
        size_t n = strlen(prefix);

        for (const char *p = text; p && *p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
        }
        fail_msg("no sample %s in:\n%s", prefix, text);
        return NAN;
}

static void render__empty_registry_is_empty_text(void **state)
{
        struct mls_metrics *m = mls_metrics_new();

        (void)state;
        assert_non_null(m);
        assert_render(m, "");
        mls_metrics_destroy(m);
        mls_metrics_destroy(NULL);
}

static void get__same_series_same_pointer(void **state)
{
        struct mls_metrics *m = mls_metrics_new();
        struct mls_metric *a, *b, *c, *d;

        (void)state;
        a = mls_metric_get(m, MLS_COUNTER, "mlsync_x_total", "X.",
                           "topic=t,result=ok");
        b = mls_metric_get(m, MLS_COUNTER, "mlsync_x_total", "ignored",
                           "result=ok,topic=t");
        c = mls_metric_get(m, MLS_COUNTER, "mlsync_x_total", "X.",
                           "result=error,topic=t");
        d = mls_metric_get(m, MLS_COUNTER, "mlsync_x_total", "X.", NULL);
        assert_non_null(a);
        assert_ptr_equal(a, b);
        assert_non_null(c);
        assert_ptr_not_equal(a, c);
        assert_non_null(d);
        assert_ptr_equal(d, mls_metric_get(m, MLS_COUNTER, "mlsync_x_total",
                                           "X.", ""));
        mls_metrics_destroy(m);
}

static void get__invalid_input_returns_null(void **state)
{
        struct mls_metrics *m = mls_metrics_new();

        (void)state;
        assert_non_null(mls_metric_get(m, MLS_GAUGE, "mlsync_g", "G.", NULL));
        /* Same family, other type. */
        assert_null(mls_metric_get(m, MLS_COUNTER, "mlsync_g", "G.", "a=1"));
        assert_null(mls_metric_get(m, MLS_GAUGE, "9bad", "B.", NULL));
        assert_null(mls_metric_get(m, MLS_GAUGE, "bad-name", "B.", NULL));
        assert_null(mls_metric_get(m, MLS_GAUGE, "", "B.", NULL));
        assert_null(mls_metric_get(m, MLS_GAUGE, "mlsync_l", "L.", "novalue"));
        assert_null(mls_metric_get(m, MLS_GAUGE, "mlsync_l", "L.", "a-b=1"));
        assert_null(mls_metric_get(m, MLS_GAUGE, "mlsync_l", "L.", "=1"));
        assert_null(mls_metric_get(m, MLS_GAUGE, "mlsync_l", "L.",
                                   "__name__=x"));
        assert_null(mls_metric_get(m, MLS_GAUGE, "mlsync_l", "L.", "a=1,a=2"));
        assert_null(mls_metric_get(m, MLS_HISTOGRAM, "mlsync_h_seconds", "H.",
                                   "le=1"));
        /* Personal data guard. */
        assert_null(mls_metric_get(m, MLS_GAUGE, "mlsync_l", "L.",
                                   "who=someone@example.com"));
        /* Updates through NULL are harmless. */
        mls_metric_add(NULL, 1);
        mls_metric_set(NULL, 1);
        mls_metric_observe(NULL, 1);
        /* Nothing half-made was left behind. */
        assert_render(m, "# HELP mlsync_g G.\n# TYPE mlsync_g gauge\n"
                         "mlsync_g 0\n");
        mls_metrics_destroy(m);
}

static void gauge__set_and_add(void **state)
{
        struct mls_metrics *m = mls_metrics_new();
        struct mls_metric *g = mls_metric_get(m, MLS_GAUGE, "mlsync_g", "G.",
                                              NULL);

        (void)state;
        mls_metric_set(g, 10);
        mls_metric_add(g, 2.5);
        mls_metric_add(g, -4);
        assert_true(mls_metric_value(g) == 8.5);
        mls_metric_set(g, -1);
        assert_true(mls_metric_value(g) == -1);
        mls_metric_add(g, NAN);
        assert_true(mls_metric_value(g) == -1);
        mls_metrics_destroy(m);
}

static void counter__never_goes_down(void **state)
{
        struct mls_metrics *m = mls_metrics_new();
        struct mls_metric *c = mls_metric_get(m, MLS_COUNTER, "mlsync_c_total",
                                              "C.", NULL);

        (void)state;
        mls_metric_add(c, 3);
        mls_metric_add(c, -2);
        mls_metric_add(c, NAN);
        assert_true(mls_metric_value(c) == 3);
        mls_metric_set(c, 1);  /* lower: ignored */
        assert_true(mls_metric_value(c) == 3);
        mls_metric_set(c, 40); /* mirrors an external total */
        assert_true(mls_metric_value(c) == 40);
        mls_metric_observe(c, 1); /* not a histogram: ignored */
        assert_true(mls_metric_value(c) == 40);
        mls_metrics_destroy(m);
}

static void render__families_and_series_sorted_help_once(void **state)
{
        struct mls_metrics *m = mls_metrics_new();

        (void)state;
        mls_metric_add(mls_metric_get(m, MLS_COUNTER, "mlsync_zeta_total",
                                      "Zeta.", "code=606"), 2);
        mls_metric_add(mls_metric_get(m, MLS_COUNTER, "mlsync_zeta_total",
                                      "Zeta.", "code=601"), 1);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_alpha", "Alpha.",
                                      "partition=1,topic=t"), 7);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_alpha", "Alpha.",
                                      "topic=t,partition=0"), 0.25);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_mid", "Mid.",
                                      NULL), 1e21);
        assert_render(m,
                "# HELP mlsync_alpha Alpha.\n"
                "# TYPE mlsync_alpha gauge\n"
                "mlsync_alpha{partition=\"0\",topic=\"t\"} 0.25\n"
                "mlsync_alpha{partition=\"1\",topic=\"t\"} 7\n"
                "# HELP mlsync_mid Mid.\n"
                "# TYPE mlsync_mid gauge\n"
                "mlsync_mid 1e+21\n"
                "# HELP mlsync_zeta_total Zeta.\n"
                "# TYPE mlsync_zeta_total counter\n"
                "mlsync_zeta_total{code=\"601\"} 1\n"
                "mlsync_zeta_total{code=\"606\"} 2\n");
        mls_metrics_destroy(m);
}

static void render__escapes_label_values_and_help(void **state)
{
        struct mls_metrics *m = mls_metrics_new();

        (void)state;
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_e",
                                      "Back\\slash and\nnewline \"kept\".",
                                      "v=a\"b\\c\nd"), 1);
        assert_render(m,
                "# HELP mlsync_e Back\\\\slash and\\nnewline \"kept\".\n"
                "# TYPE mlsync_e gauge\n"
                "mlsync_e{v=\"a\\\"b\\\\c\\nd\"} 1\n");
        mls_metrics_destroy(m);
}

static void render__special_values(void **state)
{
        struct mls_metrics *m = mls_metrics_new();

        (void)state;
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_v", "V.", "k=a"),
                       0.1);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_v", "V.", "k=b"),
                       INFINITY);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_v", "V.", "k=c"),
                       -INFINITY);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_v", "V.", "k=d"),
                       1700000000.123);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_v", "V.", "k=e"),
                       9007199254740993.0); /* 2^53 + 1 rounds to 2^53 */
        assert_render(m, "# HELP mlsync_v V.\n# TYPE mlsync_v gauge\n"
                         "mlsync_v{k=\"a\"} 0.1\n"
                         "mlsync_v{k=\"b\"} +Inf\n"
                         "mlsync_v{k=\"c\"} -Inf\n"
                         "mlsync_v{k=\"d\"} 1700000000.123\n"
                         "mlsync_v{k=\"e\"} 9007199254740992\n");
        mls_metrics_destroy(m);
}

static void histogram__cumulative_buckets_inf_sum_count(void **state)
{
        static const double bounds[] = { 0.125, 1, 10 };
        struct mls_metrics *m = mls_metrics_new();
        struct mls_metric *h = mls_metric_get_histogram(
                m, "mlsync_d_seconds", "D.", "endpoint=list_add", bounds, 3);

        (void)state;
        assert_non_null(h);
        mls_metric_observe(h, 0.0625);
        mls_metric_observe(h, 0.125); /* le is inclusive */
        mls_metric_observe(h, 5);
        mls_metric_observe(h, 50);
        mls_metric_observe(h, NAN);
        mls_metric_add(h, 3); /* not a counter: ignored */
        assert_true(mls_metric_value(h) == 4);
        assert_render(m,
                "# HELP mlsync_d_seconds D.\n"
                "# TYPE mlsync_d_seconds histogram\n"
                "mlsync_d_seconds_bucket{endpoint=\"list_add\",le=\"0.125\"}"
                " 2\n"
                "mlsync_d_seconds_bucket{endpoint=\"list_add\",le=\"1\"} 2\n"
                "mlsync_d_seconds_bucket{endpoint=\"list_add\",le=\"10\"} 3\n"
                "mlsync_d_seconds_bucket{endpoint=\"list_add\",le=\"+Inf\"} 4\n"
                "mlsync_d_seconds_sum{endpoint=\"list_add\"} 55.1875\n"
                "mlsync_d_seconds_count{endpoint=\"list_add\"} 4\n");
        mls_metrics_destroy(m);
}

static void histogram__default_buckets_and_bad_bounds(void **state)
{
        static const double unsorted[] = { 1, 1 };
        static const double inf[] = { 1, INFINITY };
        static const double secs[] = MLS_METRIC_BUCKETS_SECONDS;
        struct mls_metrics *m = mls_metrics_new();
        struct mls_metric *h = mls_metric_get(m, MLS_HISTOGRAM,
                                              "mlsync_c_seconds", "C.", NULL);
        char *text;
        size_t lines = 0;

        (void)state;
        assert_non_null(h);
        assert_null(mls_metric_get_histogram(m, "mlsync_u", "U.", NULL,
                                             unsorted, 2));
        assert_null(mls_metric_get_histogram(m, "mlsync_u", "U.", NULL, inf,
                                             2));
        assert_null(mls_metric_get_histogram(m, "mlsync_u", "U.", NULL, secs,
                                             0));
        mls_metric_observe(h, 0.2);
        text = render(m);
        for (const char *p = text; (p = strstr(p, "_bucket{")) != NULL; p++)
                lines++;
        assert_int_equal(lines, sizeof(secs) / sizeof(secs[0]) + 1);
        assert_true(sample(text, "mlsync_c_seconds_bucket{le=\"0.1\"}") == 0);
        assert_true(sample(text, "mlsync_c_seconds_bucket{le=\"0.25\"}") == 1);
        assert_true(sample(text, "mlsync_c_seconds_bucket{le=\"+Inf\"}") == 1);
        assert_true(sample(text, "mlsync_c_seconds_count") == 1);
        free(text);
        mls_metrics_destroy(m);
}

static void process__families_present(void **state)
{
        struct mls_metrics *m = mls_metrics_new();
        char *text;

        (void)state;
        assert_int_equal(mls_metrics_enable_process(m), 0);
        text = render(m);
        assert_true(sample(text, "process_start_time_seconds") > 1e9);
        assert_true(sample(text, "process_resident_memory_bytes") > 0);
        assert_true(sample(text, "process_open_fds") >= 3);
        assert_true(sample(text, "process_cpu_seconds_total") >= 0);
        assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total "
                                     "counter\n"));
        free(text);
        mls_metrics_destroy(m);
}

/* ---- a writer thread and a rendering thread ------------------------- */

#define WRITES 200000
#define NEW_SERIES 200

struct race {
        struct mls_metrics *m;
        atomic_bool done;
};

static void *writer(void *arg)
{
        struct race *r = arg;
        struct mls_metric *c = mls_metric_get(r->m, MLS_COUNTER,
                                              "mlsync_w_total", "W.", NULL);
        struct mls_metric *h = mls_metric_get(r->m, MLS_HISTOGRAM,
                                              "mlsync_w_seconds", "W.", NULL);
        char labels[32];

        for (int i = 0; i < WRITES; i++) {
                mls_metric_add(c, 1);
                mls_metric_observe(h, (i % 100) / 10.0);
                /* New series while the other thread walks the lists. */
                if (i % (WRITES / NEW_SERIES) == 0) {
                        snprintf(labels, sizeof(labels), "n=%d", i);
                        mls_metric_add(mls_metric_get(r->m, MLS_COUNTER,
                                                      "mlsync_n_total", "N.",
                                                      labels), 1);
                }
        }
        atomic_store(&r->done, true);
        return NULL;
}

static void render__concurrent_with_writer_consistent(void **state)
{
        struct race r = { .m = mls_metrics_new() };
        pthread_t t;
        double last = 0, now;
        int renders = 0;
        char *text;

        (void)state;
        atomic_init(&r.done, false);
        /* Created first, so every render has the families. */
        mls_metric_get(r.m, MLS_COUNTER, "mlsync_w_total", "W.", NULL);
        mls_metric_get(r.m, MLS_HISTOGRAM, "mlsync_w_seconds", "W.", NULL);
        assert_int_equal(pthread_create(&t, NULL, writer, &r), 0);
        do {
                text = render(r.m);
                now = sample(text, "mlsync_w_total");
                assert_true(now >= last);
                /* Buckets cumulative: +Inf equals _count in one render. */
                assert_true(sample(text, "mlsync_w_seconds_bucket{le=\"+Inf\"}")
                            == sample(text, "mlsync_w_seconds_count"));
                last = now;
                renders++;
                free(text);
        } while (!atomic_load(&r.done));
        assert_int_equal(pthread_join(t, NULL), 0);

        text = render(r.m);
        assert_true(sample(text, "mlsync_w_total") == WRITES);
        assert_true(sample(text, "mlsync_w_seconds_count") == WRITES);
        /* 0.0 .. 9.9 in steps of 0.1, 2000 times each: sum 2000 * 495. */
        assert_true(fabs(sample(text, "mlsync_w_seconds_sum") - 990000) <
                    1e-3);
        assert_true(sample(text, "mlsync_n_total{n=\"0\"}") == 1);
        assert_true(sample(text, "mlsync_n_total{n=\"199000\"}") == 1);
        assert_true(renders >= 1);
        free(text);
        mls_metrics_destroy(r.m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(render__empty_registry_is_empty_text),
                cmocka_unit_test(get__same_series_same_pointer),
                cmocka_unit_test(get__invalid_input_returns_null),
                cmocka_unit_test(gauge__set_and_add),
                cmocka_unit_test(counter__never_goes_down),
                cmocka_unit_test(render__families_and_series_sorted_help_once),
                cmocka_unit_test(render__escapes_label_values_and_help),
                cmocka_unit_test(render__special_values),
                cmocka_unit_test(histogram__cumulative_buckets_inf_sum_count),
                cmocka_unit_test(histogram__default_buckets_and_bad_bounds),
                cmocka_unit_test(process__families_present),
                cmocka_unit_test(render__concurrent_with_writer_consistent),
        };

        return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
