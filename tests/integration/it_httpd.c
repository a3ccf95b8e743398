/* SPDX-License-Identifier: Apache-2.0
 *
 * it_httpd.c - the probe and metrics server on 127.0.0.1: every endpoint
 * and status, health flips seen by the next request, scrapes while the
 * registry is being written, and promtool's verdict on the output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../support/support.h"
#include "mlsync/httpd.h"
#include "mlsync/metrics.h"
#include "mlsync/util.h"

#define STALL_MS 60000

static struct mls_metrics *m;
static struct mls_health health;
static struct mls_httpd *d;
static char base[64];

static int server_setup(void **state)
{
        char errstr[256];

        m = mls_metrics_new();
        if (!m)
                return -1;
        mls_health_init(&health);
        d = mls_httpd_start("127.0.0.1:0", m, &health, STALL_MS, errstr,
                            sizeof(errstr));
        if (!d) {
                fprintf(stderr, "start: %s\n", errstr);
                return -1;
        }
        snprintf(base, sizeof(base), "http://127.0.0.1:%d",
                 mls_httpd_port(d));
        return 0;
}

static int server_teardown(void **state)
{
        mls_httpd_stop(d);
        mls_metrics_destroy(m);
        return 0;
}

/* Each test starts from a healthy, ready worker. */
static int health_reset(void **state)
{
        atomic_store(&health.heartbeat_ms, mls_now_ms());
        atomic_store(&health.ready, 1);
        atomic_store(&health.draining, 0);
        atomic_store(&health.not_ready_reason, NULL);
        return 0;
}

/* GET base+path; returns the status and sets *bodyp (caller frees). */
static long get(const char *path, char **bodyp)
{
        char url[256];

        snprintf(url, sizeof(url), "%s%s", base, path);
        return mls_http_req("GET", url, NULL, NULL, bodyp);
}

static void assert_get(const char *path, long status, const char *body)
{
        char *resp = NULL;
        long got = get(path, &resp);

        assert_non_null(resp);
        if (got != status || strcmp(resp, body) != 0)
                fail_msg("GET %s: %ld \"%s\", wanted %ld \"%s\"", path, got,
                         resp, status, body);
        free(resp);
}

struct head_info {
        char ctype[128];
        char allow[64];
};

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
        struct head_info *hi = arg;
        size_t len = size * n;
        char line[256];

        if (len >= sizeof(line))
                return len;
        memcpy(line, buf, len);
        line[len] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (strncasecmp(line, "Allow: ", 7) == 0 &&
            strlen(line + 7) < sizeof(hi->allow))
                memcpy(hi->allow, line + 7, strlen(line + 7) + 1);
        return len;
}

static size_t discard(char *buf, size_t size, size_t n, void *arg)
{
        return size * n;
}

/* A request read with libcurl directly, for headers and HEAD. */
static long request_headers(const char *method, const char *path,
                            struct head_info *hi)
{
        CURL *eh = curl_easy_init();
        char url[256];
        char *ct = NULL;
        long status = -1;

        assert_non_null(eh);
        memset(hi, 0, sizeof(*hi));
        snprintf(url, sizeof(url), "%s%s", base, path);
        curl_easy_setopt(eh, CURLOPT_URL, url);
        curl_easy_setopt(eh, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(eh, CURLOPT_NOSIGNAL, 1L);
        if (strcmp(method, "HEAD") == 0)
                curl_easy_setopt(eh, CURLOPT_NOBODY, 1L);
        else
                curl_easy_setopt(eh, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(eh, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(eh, CURLOPT_HEADERDATA, hi);
        curl_easy_setopt(eh, CURLOPT_WRITEFUNCTION, discard);
        if (curl_easy_perform(eh) == CURLE_OK) {
                curl_easy_getinfo(eh, CURLINFO_RESPONSE_CODE, &status);
                curl_easy_getinfo(eh, CURLINFO_CONTENT_TYPE, &ct);
                if (ct)
                        snprintf(hi->ctype, sizeof(hi->ctype), "%s", ct);
        }
        curl_easy_cleanup(eh);
        return status;
}

static void livez__fresh_heartbeat_ok(void **state)
{
        assert_get("/livez", 200, "ok\n");
        assert_get("/livez?verbose", 200,
                   "[+]poll-loop ok\nlivez check passed\n");
}

static void livez__stale_heartbeat_503_then_recovers(void **state)
{
        char *resp = NULL;

        atomic_store(&health.heartbeat_ms, mls_now_ms() - 10 * STALL_MS);
        assert_int_equal(get("/livez", &resp), 503);
        assert_non_null(strstr(resp, "poll loop stalled"));
        assert_non_null(strstr(resp, "(limit 60000 ms)"));
        free(resp);
        assert_int_equal(get("/livez?verbose", &resp), 503);
        assert_non_null(strstr(resp, "[-]poll-loop failed: poll loop"));
        assert_non_null(strstr(resp, "livez check failed\n"));
        free(resp);

        /* Liveness ignores readiness: a draining pod is still alive. */
        atomic_store(&health.draining, 1);
        atomic_store(&health.heartbeat_ms, mls_now_ms());
        assert_get("/livez", 200, "ok\n");
}

static void readyz__ready_ok(void **state)
{
        assert_get("/readyz", 200, "ok\n");
        assert_get("/readyz?verbose", 200,
                   "[+]not-draining ok\n[+]ready ok\nreadyz check passed\n");
}

static void readyz__not_ready_503_with_reason(void **state)
{
        atomic_store(&health.ready, 0);
        assert_get("/readyz", 503, "not ready: starting\n");
        atomic_store(&health.not_ready_reason,
                     "waiting for partition assignment");
        assert_get("/readyz", 503,
                   "not ready: waiting for partition assignment\n");
        assert_get("/readyz?verbose", 503,
                   "[+]not-draining ok\n"
                   "[-]ready failed: not ready: waiting for partition "
                   "assignment\n"
                   "readyz check failed\n");
        atomic_store(&health.ready, 1);
        assert_get("/readyz", 200, "ok\n");
}

static void readyz__draining_503(void **state)
{
        atomic_store(&health.draining, 1);
        assert_get("/readyz", 503, "draining\n");
        assert_get("/readyz?verbose", 503,
                   "[-]not-draining failed: draining\n[+]ready ok\n"
                   "readyz check failed\n");
}

static void metrics__text_format_and_content_type(void **state)
{
        struct mls_metric *c = mls_metric_get(m, MLS_COUNTER,
                                              "mlsync_it_requests_total",
                                              "Requests seen by the test.",
                                              "endpoint=list_add");
        struct head_info hi;
        char *resp = NULL;

        mls_metric_add(c, 3);
        assert_int_equal(get("/metrics", &resp), 200);
        assert_non_null(strstr(resp, "# TYPE mlsync_it_requests_total "
                                     "counter\n"));
        assert_non_null(strstr(resp, "mlsync_it_requests_total{endpoint="
                                     "\"list_add\"} 3\n"));
        free(resp);
        assert_int_equal(request_headers("GET", "/metrics", &hi), 200);
        assert_string_equal(hi.ctype,
                            "text/plain; version=0.0.4; charset=utf-8");
        assert_int_equal(request_headers("GET", "/livez", &hi), 200);
        assert_string_equal(hi.ctype, "text/plain; charset=utf-8");
}

static void routes__unknown_404_method_405_head_ok(void **state)
{
        struct head_info hi;
        char url[128];
        char *resp = NULL;

        assert_get("/", 404, "not found\n");
        assert_get("/healthz", 404, "not found\n");
        assert_get("/metrics/x", 404, "not found\n");
        snprintf(url, sizeof(url), "%s/metrics", base);
        assert_int_equal(mls_http_req("POST", url, "text/plain", "x", &resp),
                         405);
        free(resp);
        assert_int_equal(request_headers("DELETE", "/readyz", &hi), 405);
        assert_string_equal(hi.allow, "GET, HEAD");
        assert_int_equal(request_headers("HEAD", "/livez", &hi), 200);
        atomic_store(&health.draining, 1);
        assert_int_equal(request_headers("HEAD", "/readyz", &hi), 503);
}

struct scribbler {
        atomic_bool stop;
        long adds;
};

static void *scribble(void *arg)
{
        struct scribbler *s = arg;
        struct mls_metric *c = mls_metric_get(m, MLS_COUNTER,
                                              "mlsync_it_scribbles_total",
                                              "Adds by the test thread.",
                                              NULL);

        while (!atomic_load(&s->stop)) {
                mls_metric_add(c, 1);
                s->adds++;
        }
        return NULL;
}

static void metrics__scrapes_while_writing(void **state)
{
        struct scribbler s = { .adds = 0 };
        pthread_t t;
        char *resp = NULL, *p;
        double last = 0, now;

        atomic_init(&s.stop, false);
        mls_metric_get(m, MLS_COUNTER, "mlsync_it_scribbles_total",
                       "Adds by the test thread.", NULL);
        assert_int_equal(pthread_create(&t, NULL, scribble, &s), 0);
        for (int i = 0; i < 20; i++) {
                assert_int_equal(get("/metrics", &resp), 200);
                p = strstr(resp, "\nmlsync_it_scribbles_total ");
                assert_non_null(p);
                now = strtod(p + strlen("\nmlsync_it_scribbles_total "),
                             NULL);
                assert_true(now >= last);
                last = now;
                free(resp);
        }
        atomic_store(&s.stop, true);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(get("/metrics", &resp), 200);
        p = strstr(resp, "\nmlsync_it_scribbles_total ");
        assert_non_null(p);
        assert_true(strtod(p + strlen("\nmlsync_it_scribbles_total "), NULL)
                    == (double)s.adds);
        free(resp);
}

/* promtool (Debian package prometheus) judges a realistic scrape. */
static void metrics__promtool_accepts_output(void **state)
{
        static const double sizes[] = MLS_METRIC_BUCKETS_RECORDS;
        char path[] = "/tmp/mls_it_httpd_XXXXXX";
        char cmd[256];
        char *resp = NULL;
        FILE *f;
        int fd, rc;

        if (system("command -v promtool >/dev/null 2>&1") != 0)
                skip();
        mls_metrics_enable_process(m);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_build_info",
                                      "Build metadata; always 1.",
                                      "version=1.0,revision=abc,"
                                      "librdkafka=2.0.2"), 1);
        mls_metric_observe(mls_metric_get(m, MLS_HISTOGRAM,
                                          "mlsync_api_request_duration_seconds",
                                          "Marketo call duration.",
                                          "instance=a,endpoint=list_add"),
                           0.3);
        mls_metric_observe(mls_metric_get_histogram(
                                   m, "mlsync_batch_size_records",
                                   "Leads per Marketo call.", "action=add",
                                   sizes, MLS_ARRAY_LEN(sizes)),
                           42);
        mls_metric_set(mls_metric_get(m, MLS_GAUGE, "mlsync_odd_labels",
                                      "Escaping \\ and \"quotes\".",
                                      "v=a\"b\\c\nd"), 1);
        assert_int_equal(get("/metrics", &resp), 200);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        fputs(resp, f);
        fclose(f);
        free(resp);
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
        rc = system(cmd);
        unlink(path);
        assert_int_equal(rc, 0);
}

static void start__bad_address_and_busy_port_fail(void **state)
{
        char errstr[256] = "";
        char addr[64];
        struct mls_httpd *d2;

        d2 = mls_httpd_start("nonsense", m, &health, STALL_MS, errstr,
                             sizeof(errstr));
        assert_null(d2);
        assert_non_null(strstr(errstr, "nonsense"));
        d2 = mls_httpd_start("127.0.0.1:99999", m, &health, STALL_MS, errstr,
                             sizeof(errstr));
        assert_null(d2);
        d2 = mls_httpd_start("127.0.0.1:", m, &health, STALL_MS, errstr,
                             sizeof(errstr));
        assert_null(d2);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", mls_httpd_port(d));
        errstr[0] = '\0';
        d2 = mls_httpd_start(addr, m, &health, STALL_MS, errstr,
                             sizeof(errstr));
        assert_null(d2);
        assert_non_null(strstr(errstr, "in use"));
        /* A second server on its own free port works side by side. */
        d2 = mls_httpd_start("localhost:0", NULL, &health, 0, errstr,
                             sizeof(errstr));
        assert_non_null(d2);
        assert_int_not_equal(mls_httpd_port(d2), mls_httpd_port(d));
        mls_httpd_stop(d2);
        mls_httpd_stop(NULL);
}

static void nometrics__stall_off_livez_ok_metrics_404(void **state)
{
        char errstr[256];
        char saved[64];
        struct mls_httpd *d2 = mls_httpd_start("127.0.0.1:0", NULL, &health,
                                               0, errstr, sizeof(errstr));

        assert_non_null(d2);
        memcpy(saved, base, sizeof(saved));
        snprintf(base, sizeof(base), "http://127.0.0.1:%d",
                 mls_httpd_port(d2));
        atomic_store(&health.heartbeat_ms, 1); /* ancient */
        assert_get("/livez", 200, "ok\n");
        assert_get("/metrics", 404, "not found\n");
        memcpy(base, saved, sizeof(base));
        mls_httpd_stop(d2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup(f, health_reset)
                T(livez__fresh_heartbeat_ok),
                T(livez__stale_heartbeat_503_then_recovers),
                T(readyz__ready_ok),
                T(readyz__not_ready_503_with_reason),
                T(readyz__draining_503),
                T(metrics__text_format_and_content_type),
                T(routes__unknown_404_method_405_head_ok),
                T(metrics__scrapes_while_writing),
                T(metrics__promtool_accepts_output),
                T(start__bad_address_and_busy_port_fail),
                T(nometrics__stall_off_livez_ok_metrics_404),
#undef T
        };

        curl_global_init(CURL_GLOBAL_DEFAULT);
        return cmocka_run_group_tests_name("httpd", tests, server_setup,
                                           server_teardown);
}
