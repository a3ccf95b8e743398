/* SPDX-License-Identifier: Apache-2.0
 *
 * it_emulator.c - the Marketo emulator's plumbing and admin endpoints as
 * a client sees them over loopback: path-scoped faults, the query-token
 * switch, repeat_606 accounting, atomic /_admin/faults updates, routing
 * edge cases and seeding. (emulator_curl.sh covers the API tour.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/support.h"
#include "mlsync/util.h"

#define M "222-BBB-222"

static struct mls_proc emu;
static char base[128];
static char token[128];

static int start(const char *const extra[])
{
        const char *argv[24];
        size_t n = 0;

        argv[n++] = "--instance";
        argv[n++] = M ":cid:csecret:Audiences";
        for (size_t i = 0; extra && extra[i] && n < 23; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        return mls_emulator_start(&emu, base, sizeof(base), argv);
}

static int stop(void **state)
{
        mls_proc_stop(&emu);
        return 0;
}

/* One call; *jp gets the parsed reply (NULL when not JSON). */
static long call(const char *method, const char *path, const char *ctype,
                 const char *body, json_object **jp)
{
        char url[2048];
        char *resp = NULL;
        long status;

        snprintf(url, sizeof(url), "%s%s", base, path);
        status = mls_http_req(method, url, ctype, body, &resp);
        *jp = resp ? json_tokener_parse(resp) : NULL;
        free(resp);
        return status;
}

static const char *get_str(json_object *o, const char *key)
{
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return json_object_get_string(v);
}

/* errors[0].code of an envelope, or "" on success. */
static const char *err_code(json_object *o)
{
        json_object *errs, *first;

        if (!o || !json_object_object_get_ex(o, "errors", &errs) ||
            !json_object_array_length(errs))
                return "";
        first = json_object_array_get_idx(errs, 0);
        return get_str(first, "code");
}

static void get_token(void)
{
        json_object *j = NULL;

        assert_int_equal(call("GET",
                              "/" M "/identity/oauth/token?grant_type=client_credentials&client_id=cid&client_secret=csecret",
                              NULL, NULL, &j),
                         200);
        assert_non_null(get_str(j, "access_token"));
        snprintf(token, sizeof(token), "%s", get_str(j, "access_token"));
        json_object_put(j);
}

/* GET path?...&access_token=T (the header-less form the helper allows). */
static long api(const char *path_query, json_object **jp)
{
        char p[1024];

        snprintf(p, sizeof(p), "/" M "%s%saccess_token=%s", path_query,
                 strchr(path_query, '?') ? "&" : "?", token);
        return call("GET", p, NULL, NULL, jp);
}

static int64_t counter(const char *field)
{
        json_object *j = NULL, *insts, *in, *v;
        int64_t n = -1;

        if (call("GET", "/_admin/counters", NULL, NULL, &j) == 200 &&
            json_object_object_get_ex(j, "instances", &insts) &&
            json_object_object_get_ex(insts, M, &in) &&
            json_object_object_get_ex(in, field, &v))
                n = json_object_get_int64(v);
        json_object_put(j);
        return n;
}

/* calls[route] from /_admin/counters; 0 when absent. */
static int64_t route_count(const char *route)
{
        json_object *j = NULL, *insts, *in, *calls, *v;
        int64_t n = 0;

        if (call("GET", "/_admin/counters", NULL, NULL, &j) == 200 &&
            json_object_object_get_ex(j, "instances", &insts) &&
            json_object_object_get_ex(insts, M, &in) &&
            json_object_object_get_ex(in, "calls", &calls) &&
            json_object_object_get_ex(calls, route, &v))
                n = json_object_get_int64(v);
        json_object_put(j);
        return n;
}

static void faults__path_rule_hits_only_matching_paths(void **state)
{
        static const char *const args[] = { "--fault",
                                            "http502=1@/leads.json", NULL };
        json_object *j = NULL;

        assert_int_equal(start(args), 0);
        get_token();
        assert_int_equal(api("/rest/v1/lists.json", &j), 200);
        assert_string_equal(err_code(j), "");
        json_object_put(j);
        assert_int_equal(api("/rest/v1/leads.json?filterType=email&filterValues=a@example.com",
                             &j),
                         502);
        assert_null(j); /* an HTML body, not JSON */
}

static void auth__query_token_accepted_until_switched_off(void **state)
{
        json_object *j = NULL;

        assert_int_equal(start(NULL), 0);
        get_token();
        assert_int_equal(api("/rest/v1/lists.json", &j), 200);
        assert_string_equal(err_code(j), "");
        json_object_put(j);
        assert_int_equal(call("POST", "/_admin/faults", NULL,
                              "{\"reject_query_token\":true}", &j),
                         200);
        json_object_put(j);
        assert_int_equal(api("/rest/v1/lists.json", &j), 200);
        assert_string_equal(err_code(j), "601");
        json_object_put(j);
}

static void limits__repeat_606_counts_only_calls_after_a_606(void **state)
{
        static const char *const args[] = { "--calls-per-20s", "2", NULL };
        json_object *j = NULL;

        assert_int_equal(start(args), 0);
        get_token();
        for (int i = 0; i < 2; i++) {
                assert_int_equal(api("/rest/v1/lists.json", &j), 200);
                assert_string_equal(err_code(j), "");
                json_object_put(j);
        }
        assert_int_equal(api("/rest/v1/lists.json", &j), 200);
        assert_string_equal(err_code(j), "606");
        json_object_put(j);
        assert_int_equal(counter("repeat_606"), 0);
        /* Past the 250 ms grace for calls already on their way. */
        mls_sleep_ms(400);
        assert_int_equal(api("/rest/v1/lists.json", &j), 200);
        assert_string_equal(err_code(j), "606");
        json_object_put(j);
        assert_int_equal(counter("repeat_606"), 1);
        assert_int_equal(counter("max_calls_in_20s"), 4);
}

static void admin__bad_faults_body_changes_nothing(void **state)
{
        json_object *j = NULL, *v;

        assert_int_equal(start(NULL), 0);
        assert_int_equal(call("POST", "/_admin/faults", NULL,
                              "{\"calls_per_20s\":5,\"faults\":{\"bogus\":1}}",
                              &j),
                         400);
        json_object_put(j);
        assert_int_equal(call("POST", "/_admin/faults", NULL, "not json",
                              &j),
                         400);
        json_object_put(j);
        assert_int_equal(call("GET", "/_admin/faults", NULL, NULL, &j), 200);
        assert_true(json_object_object_get_ex(j, "calls_per_20s", &v));
        assert_int_equal(json_object_get_int64(v), 100);
        assert_true(json_object_object_get_ex(j, "faults", &v));
        assert_int_equal(json_object_object_length(v), 0);
        json_object_put(j);
        assert_int_equal(call("POST", "/_admin/faults", NULL,
                              "{\"latency_ms\":\"1-2\",\"faults\":{\"drop@/bulk/\":0.5}}",
                              &j),
                         200);
        assert_string_equal(get_str(j, "latency_ms"), "1-2");
        assert_true(json_object_object_get_ex(j, "faults", &v));
        assert_true(json_object_object_get_ex(v, "drop@/bulk/", NULL));
        json_object_put(j);
        assert_int_equal(call("GET", "/_admin/nothing", NULL, NULL, &j), 404);
        json_object_put(j);
        assert_int_equal(call("GET", "/_admin/reset", NULL, NULL, &j), 405);
        json_object_put(j);
}

static size_t discard(char *p, size_t sz, size_t n, void *opaque)
{
        return sz * n;
}

/* libcurl removes dot segments unless told not to. */
static long raw_path_get(const char *path)
{
        CURL *eh = curl_easy_init();
        char url[1024];
        long status = -1;

        snprintf(url, sizeof(url), "%s%s", base, path);
        curl_easy_setopt(eh, CURLOPT_URL, url);
        curl_easy_setopt(eh, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(eh, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(eh, CURLOPT_TIMEOUT_MS, 30000L);
        if (curl_easy_perform(eh) == CURLE_OK)
                curl_easy_getinfo(eh, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(eh);
        return status;
}

static void routing__unknown_paths_verbs_and_instances(void **state)
{
        json_object *j = NULL;
        char p[512];

        assert_int_equal(start(NULL), 0);
        get_token();
        assert_int_equal(api("/rest/v1/nothing.json", &j), 200);
        assert_string_equal(err_code(j), "610");
        json_object_put(j);
        assert_int_equal(api("//rest/v1/lists.json", &j), 200);
        assert_string_equal(err_code(j), "610");
        json_object_put(j);
        snprintf(p, sizeof(p), "/" M "/rest/v1/lists.json?access_token=%s",
                 token);
        assert_int_equal(call("PUT", p, NULL, NULL, &j), 200);
        assert_string_equal(err_code(j), "605");
        json_object_put(j);
        assert_int_equal(call("GET", "/999-ZZZ-999/rest/v1/lists.json", NULL,
                              NULL, &j),
                         404);
        json_object_put(j);
        /* node-marketo-rest style: <endpoint>/../bulk/v1/... resolves. */
        snprintf(p, sizeof(p),
                 "/" M "/rest/../bulk/v1/leads/batch/4001.json?access_token=%s",
                 token);
        assert_int_equal(raw_path_get(p), 200);
        assert_int_equal(route_count("bulk.status"), 1);
}

static void admin__seed_allows_what_the_api_refuses(void **state)
{
        json_object *j = NULL, *insts, *in, *lists, *res;

        assert_int_equal(start(NULL), 0);
        assert_int_equal(call("POST", "/_admin/seed", NULL,
                              "{\"instance\":\"" M "\","
                              "\"folders\":[{\"name\":\"Other\",\"kind\":\"list\"}],"
                              "\"lists\":[{\"name\":\"Twin\",\"folder\":\"Audiences\",\"members\":[\"b@example.com\",\"A@example.com\"]},"
                              "{\"name\":\"Twin\",\"folder\":\"Other\"}]}",
                              &j),
                         200);
        assert_true(json_object_object_get_ex(j, "lists", &res));
        assert_int_equal(json_object_array_length(res), 2);
        json_object_put(j);
        assert_int_equal(call("POST", "/_admin/seed", NULL,
                              "{\"instance\":\"" M "\",\"lists\":[{\"name\":\"X\",\"folder\":\"Default\",\"members\":[\"not an email\"]}]}",
                              &j),
                         400);
        json_object_put(j);

        assert_int_equal(call("GET", "/_admin/state?instance=" M, NULL, NULL,
                              &j),
                         200);
        assert_true(json_object_object_get_ex(j, "instances", &insts));
        assert_true(json_object_object_get_ex(insts, M, &in));
        assert_true(json_object_object_get_ex(in, "lists", &lists));
        assert_int_equal(json_object_array_length(lists), 2);
        assert_string_equal(
                json_object_to_json_string_ext(
                        json_object_object_get(
                                json_object_array_get_idx(lists, 0),
                                "members"),
                        JSON_C_TO_STRING_PLAIN),
                "[\"A@example.com\",\"b@example.com\"]");
        assert_string_equal(get_str(json_object_array_get_idx(lists, 1),
                                    "folder"),
                            "Other");
        json_object_put(j);

        assert_int_equal(call("POST", "/_admin/reset", NULL, "{}", &j), 200);
        json_object_put(j);
        assert_int_equal(call("GET", "/_admin/state", NULL, NULL, &j), 200);
        assert_true(json_object_object_get_ex(j, "instances", &insts));
        assert_true(json_object_object_get_ex(insts, M, &in));
        assert_true(json_object_object_get_ex(in, "lists", &lists));
        assert_int_equal(json_object_array_length(lists), 0);
        json_object_put(j);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(faults__path_rule_hits_only_matching_paths, stop),
                cmocka_unit_test_teardown(auth__query_token_accepted_until_switched_off, stop),
                cmocka_unit_test_teardown(limits__repeat_606_counts_only_calls_after_a_606, stop),
                cmocka_unit_test_teardown(admin__bad_faults_body_changes_nothing, stop),
                cmocka_unit_test_teardown(routing__unknown_paths_verbs_and_instances, stop),
                cmocka_unit_test_teardown(admin__seed_allows_what_the_api_refuses, stop),
        };

        setvbuf(stdout, NULL, _IOLBF, 0);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return cmocka_run_group_tests_name("emulator", tests, NULL, NULL);
}
