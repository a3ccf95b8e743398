/* SPDX-License-Identifier: Apache-2.0
 *
 * test_marketo_util.c - the pure half of the Marketo client: buffers,
 * request bodies, reply parsing and classification, folder and list
 * picking, scrubbing and the Central-time daily reset, fed with replies
 * shaped as docs/marketo-api.md records them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "../../src/marketo_int.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Parse a reply given as a C string. */
static void env_of(struct mkto_env *env, const char *body)
{
        mkto_env_parse(env, body, body ? strlen(body) : 0);
}

/* ---- buffer ---- */

static void buf__appends_grow_and_take_resets(void **state)
{
        struct mkto_buf b;
        char *s;

        (void)state;
        mkto_buf_init(&b);
        mkto_buf_adds(&b, "ab");
        mkto_buf_add(&b, "cdef", 2);
        mkto_buf_addf(&b, "-%d-%s", 42, "x");
        assert_string_equal(b.data, "abcd-42-x");
        assert_int_equal(b.len, 9);
        for (int i = 0; i < 200; i++)
                mkto_buf_adds(&b, "0123456789");
        assert_int_equal(b.len, 2009);
        assert_int_equal(strlen(b.data), 2009);
        assert_false(b.oom);
        s = mkto_buf_take(&b);
        assert_non_null(s);
        assert_int_equal(strlen(s), 2009);
        assert_memory_equal(s, "abcd-42-x0123", 13);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        free(s);
        mkto_buf_fini(&b);
}

static void buf__empty_take_is_empty_string(void **state)
{
        struct mkto_buf b;
        char *s;

        (void)state;
        mkto_buf_init(&b);
        s = mkto_buf_take(&b);
        assert_non_null(s);
        assert_string_equal(s, "");
        free(s);
}

static void buf__oom_sticks_and_take_fails(void **state)
{
        struct mkto_buf b;

        (void)state;
        mkto_buf_init(&b);
        mkto_buf_adds(&b, "secret");
        b.oom = true;
        mkto_buf_adds(&b, "more");
        assert_int_equal(b.len, 6);
        assert_null(mkto_buf_take(&b));
        assert_null(b.data);
        assert_false(b.oom);
        mkto_buf_fini(&b);
}

static void buf__urlenc_keeps_only_unreserved(void **state)
{
        struct mkto_buf b;
        char *s;

        (void)state;
        mkto_buf_init(&b);
        mkto_buf_urlenc(&b, "aZ09-._~ +@,/&=%\"\xc3\xa9");
        s = mkto_buf_take(&b);
        assert_string_equal(s, "aZ09-._~%20%2B%40%2C%2F%26%3D%25%22%C3%A9");
        free(s);
}

/* ---- request builders ---- */

static void body_sync__exact_shape(void **state)
{
        const char *emails[] = { "ana@example.com", "bo@example.com" };
        char *s = mkto_body_sync(emails, 2);

        (void)state;
        assert_non_null(s);
        assert_string_equal(
                s, "{\"action\":\"createOrUpdate\",\"lookupField\":\"email\","
                   "\"input\":[{\"email\":\"ana@example.com\"},"
                   "{\"email\":\"bo@example.com\"}]}");
        free(s);
}

static void body_sync__escapes_and_round_trips(void **state)
{
        const char *emails[] = { "q\"uo\\te@x.com", "tab\t/sl@x.com",
                                 "\xc3\xa9@x.com" };
        char *s = mkto_body_sync(emails, 3);
        json_object *root;
        json_object *input = NULL;
        json_object *v = NULL;

        (void)state;
        assert_non_null(s);
        assert_non_null(strstr(s, "q\\\"uo\\\\te@x.com"));
        assert_non_null(strstr(s, "tab\\t/sl@x.com"));
        root = json_tokener_parse(s);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "input", &input));
        assert_int_equal(json_object_array_length(input), 3);
        for (size_t i = 0; i < 3; i++) {
                json_object *it = json_object_array_get_idx(input, i);

                assert_true(json_object_object_get_ex(it, "email", &v));
                assert_string_equal(json_object_get_string(v), emails[i]);
        }
        json_object_put(root);
        free(s);
}

static void body_sync__empty_input(void **state)
{
        char *s = mkto_body_sync(NULL, 0);

        (void)state;
        assert_string_equal(s, "{\"action\":\"createOrUpdate\","
                               "\"lookupField\":\"email\",\"input\":[]}");
        free(s);
}

static void body_ids__exact_shape(void **state)
{
        const int64_t ids[] = { 7001, 7002, 9007199254740993LL };
        char *s = mkto_body_ids(ids, 3);

        (void)state;
        assert_string_equal(s, "{\"input\":[{\"id\":7001},{\"id\":7002},"
                               "{\"id\":9007199254740993}]}");
        free(s);
}

static void form_lookup__encodes_values_keeps_separators(void **state)
{
        const char *emails[] = { "a@x.com", "b+tag@y.com", "odd,one@z.com" };
        char *s = mkto_form_lookup(emails, 3, NULL);

        (void)state;
        assert_string_equal(s, "_method=GET&filterType=email&filterValues="
                               "a%40x.com,b%2Btag%40y.com,odd%2Cone%40z.com"
                               "&fields=id,email");
        free(s);
}

static void form_lookup__page_token_appended_encoded(void **state)
{
        const char *emails[] = { "a@x.com" };
        char *s = mkto_form_lookup(emails, 1, "GIYDAOBN+/=");

        (void)state;
        assert_string_equal(s, "_method=GET&filterType=email&filterValues="
                               "a%40x.com&fields=id,email"
                               "&nextPageToken=GIYDAOBN%2B%2F%3D");
        free(s);
        s = mkto_form_lookup(emails, 1, "");
        assert_null(strstr(s, "nextPageToken"));
        free(s);
}

static void form_token__client_credentials_encoded(void **state)
{
        char *s = mkto_form_token("3f1a-77b2", "s3cr&t=+%x");

        (void)state;
        assert_string_equal(s, "grant_type=client_credentials"
                               "&client_id=3f1a-77b2"
                               "&client_secret=s3cr%26t%3D%2B%25x");
        free(s);
}

static void form_create_list__name_and_folder_json(void **state)
{
        char *s = mkto_form_create_list("(test) High Value", 12, "Folder");

        (void)state;
        assert_string_equal(s, "name=%28test%29%20High%20Value&folder="
                               "%7B%22id%22%3A12%2C%22type%22%3A%22Folder%22"
                               "%7D");
        free(s);
        s = mkto_form_create_list("Aud", 1034, "Pro\"gram");
        assert_string_equal(s, "name=Aud&folder=%7B%22id%22%3A1034%2C%22type"
                               "%22%3A%22Pro%5C%22gram%22%7D");
        free(s);
}

/* ---- envelope ---- */

static void env__lead_db_success_without_errors(void **state)
{
        struct mkto_env env;

        (void)state;
        env_of(&env, "{\"requestId\": \"9d2e#18c2b7da4f3\", \"result\": "
                     "[{\"id\": 7001, \"status\": \"added\"}], "
                     "\"success\": true}");
        assert_true(env.json_ok);
        assert_true(env.success);
        assert_string_equal(env.code, "");
        assert_string_equal(env.message, "");
        assert_non_null(env.result);
        assert_int_equal(json_object_array_length(env.result), 1);
        mkto_env_fini(&env);
        assert_null(env.root);
}

static void env__asset_nothing_found_has_no_result(void **state)
{
        struct mkto_env env;

        (void)state;
        env_of(&env, "{\"success\": true, \"errors\": [], \"requestId\": "
                     "\"b22#18c2b7dc001\", \"warnings\": "
                     "[\"No assets found for the given search criteria.\"]}");
        assert_true(env.json_ok);
        assert_true(env.success);
        assert_null(env.result);
        assert_string_equal(env.code, "");
        mkto_env_fini(&env);
}

static void env__error_code_and_message(void **state)
{
        struct mkto_env env;

        (void)state;
        env_of(&env, "{\"requestId\": \"c0de#18c2b7dd2aa\", \"success\": "
                     "false, \"errors\": [{\"code\": \"606\", \"message\": "
                     "\"Max rate limit '100' exceeded with in '20' "
                     "secs\"}]}");
        assert_true(env.json_ok);
        assert_false(env.success);
        assert_string_equal(env.code, "606");
        assert_string_equal(env.message,
                            "Max rate limit '100' exceeded with in '20' secs");
        assert_null(env.result);
        mkto_env_fini(&env);
}

static void env__numeric_code_and_scrubbed_message(void **state)
{
        struct mkto_env env;

        (void)state;
        env_of(&env, "{\"success\":false,\"errors\":[{\"code\":1003,"
                     "\"message\":\"Invalid value for field 'email' and "
                     "value 'ana@example.com'\"}]}");
        assert_true(env.json_ok);
        assert_string_equal(env.code, "1003");
        assert_string_equal(env.message, "Invalid value for field 'email' "
                                         "and value '<email>'");
        assert_null(strstr(env.message, "example"));
        mkto_env_fini(&env);
}

static void env__unusable_bodies(void **state)
{
        static const char *const bodies[] = {
                "<html><body>502 Bad Gateway</body></html>",
                "{\"success\": true, \"result\": [",
                "{\"requestId\": \"x\"}",
                "{\"success\": \"true\"}",
                "[{\"success\": true}]",
                "{\"success\": true} trailing",
                "",
        };
        struct mkto_env env;

        (void)state;
        for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
                env_of(&env, bodies[i]);
                assert_false(env.json_ok);
                assert_null(env.result);
                assert_string_equal(env.code, "");
                mkto_env_fini(&env);
        }
        mkto_env_parse(&env, NULL, 0);
        assert_false(env.json_ok);
        mkto_env_fini(&env);
}

static void env__length_bounds_body_and_whitespace_ok(void **state)
{
        static const char body[] = "{\"success\":true,\"result\":[]}\r\n"
                                   "GARBAGE";
        struct mkto_env env;

        (void)state;
        /* Only the bytes up to the CRLF count: no NUL needed. */
        mkto_env_parse(&env, body, strlen(body) - 7);
        assert_true(env.json_ok);
        assert_non_null(env.result);
        assert_int_equal(json_object_array_length(env.result), 0);
        mkto_env_fini(&env);
        mkto_env_parse(&env, body, strlen(body));
        assert_false(env.json_ok);
        mkto_env_fini(&env);
}

/* ---- classification ---- */

struct cls_case {
        long status;
        int transport;
        const char *body;
        enum mkto_class want;
        const char *want_code;
};

static const struct cls_case cls_cases[] = {
        { 200, 0, "{\"requestId\":\"a\",\"result\":[],\"success\":true}",
          MKTO_C_OK, "" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"600\","
                  "\"message\":\"Access token empty\"}]}",
          MKTO_C_REAUTH, "600" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"601\","
                  "\"message\":\"Access token invalid\"}]}",
          MKTO_C_REAUTH, "601" },
        { 200, 0, "{\"requestId\":\"3f1a#18c2b7d9e01\",\"success\":false,"
                  "\"errors\":[{\"code\":\"602\",\"message\":"
                  "\"Access token expired\"}]}",
          MKTO_C_REAUTH, "602" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"603\","
                  "\"message\":\"Access denied\"}]}",
          MKTO_C_FATAL, "603" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"604\","
                  "\"message\":\"Request timed out\"}]}",
          MKTO_C_RETRY, "604" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"605\","
                  "\"message\":\"HTTP Method not supported\"}]}",
          MKTO_C_FATAL, "605" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"606\","
                  "\"message\":\"Max rate limit '100' exceeded with in "
                  "'20' secs\"}]}",
          MKTO_C_RATE, "606" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"607\","
                  "\"message\":\"Daily quota reached\"}]}",
          MKTO_C_QUOTA, "607" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"608\","
                  "\"message\":\"API Temporarily Unavailable\"}]}",
          MKTO_C_RETRY, "608" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"609\","
                  "\"message\":\"Invalid JSON\"}]}",
          MKTO_C_FATAL, "609" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"610\","
                  "\"message\":\"Requested resource not found\"}]}",
          MKTO_C_FATAL, "610" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"611\","
                  "\"message\":\"System error\"}]}",
          MKTO_C_RETRY, "611" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"612\","
                  "\"message\":\"Invalid Content Type\"}]}",
          MKTO_C_FATAL, "612" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"614\","
                  "\"message\":\"Invalid Subscription\"}]}",
          MKTO_C_RETRY, "614" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"615\","
                  "\"message\":\"Concurrent access limit '10' reached\"}]}",
          MKTO_C_CONC, "615" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"709\","
                  "\"message\":\"Static List with the same name already "
                  "exists\"}],\"warnings\":[]}",
          MKTO_C_FATAL, "709" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"710\","
                  "\"message\":\"Parent folder not found\"}]}",
          MKTO_C_FATAL, "710" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"713\","
                  "\"message\":\"Transient error\"}]}",
          MKTO_C_RETRY, "713" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1003\","
                  "\"message\":\"Too many results match the filter\"}]}",
          MKTO_C_FATAL, "1003" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1013\","
                  "\"message\":\"Static list not found\"}]}",
          MKTO_C_FATAL, "1013" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1014\","
                  "\"message\":\"Failed to create object\"}]}",
          MKTO_C_RETRY, "1014" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1016\","
                  "\"message\":\"Too many imports\"}]}",
          MKTO_C_RETRY, "1016" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1019\","
                  "\"message\":\"Import in progress\"}]}",
          MKTO_C_RETRY, "1019" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1029\","
                  "\"message\":\"Too many jobs in queue\"}]}",
          MKTO_C_RETRY, "1029" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1029\","
                  "\"message\":\"Export daily quota exceeded\"}]}",
          MKTO_C_QUOTA, "1029" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":\"1029\","
                  "\"message\":\"Job already queued\"}]}",
          MKTO_C_RETRY, "1029" },
        { 200, 0, "{\"success\":false,\"errors\":[{\"code\":606,"
                  "\"message\":\"rate\"}]}",
          MKTO_C_RATE, "606" },
        { 200, 0, "{\"success\":false}", MKTO_C_RETRY, "bad_reply" },
        { 200, 0, "<html>oops</html>", MKTO_C_RETRY, "bad_reply" },
        { 502, 0, "<html><body>502 Bad Gateway</body></html>", MKTO_C_RETRY,
          "http_502" },
        { 500, 0, "", MKTO_C_RETRY, "http_500" },
        { 503, 0, "{\"success\":true}", MKTO_C_RETRY, "http_503" },
        { 413, 0, "", MKTO_C_FATAL, "http_413" },
        { 414, 0, "", MKTO_C_FATAL, "http_414" },
        { 404, 0, "", MKTO_C_FATAL, "http_404" },
        { 403, 0, "", MKTO_C_FATAL, "http_403" },
        { 401, 0, "", MKTO_C_REAUTH, "http_401" },
        { 429, 0, "", MKTO_C_RATE, "http_429" },
        { 0, CURLE_OPERATION_TIMEDOUT, NULL, MKTO_C_RETRY, "curl_28" },
        { 0, CURLE_COULDNT_CONNECT, NULL, MKTO_C_RETRY, "curl_7" },
        { 200, CURLE_PARTIAL_FILE, "{\"success\":true}", MKTO_C_RETRY,
          "curl_18" },
        { 0, CURLE_URL_MALFORMAT, NULL, MKTO_C_FATAL, "curl_3" },
        { 0, CURLE_UNSUPPORTED_PROTOCOL, NULL, MKTO_C_FATAL, "curl_1" },
        { 0, 0, NULL, MKTO_C_RETRY, "no_reply" },
};

static void classify__code_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_LEN(cls_cases); i++) {
                const struct cls_case *c = &cls_cases[i];
                struct mkto_env env;
                char code[16] = "junk";
                enum mkto_class got;

                env_of(&env, c->body);
                got = mkto_classify(c->status, c->transport, &env, code,
                                    sizeof(code));
                if (got != c->want || strcmp(code, c->want_code)) {
                        print_error("case %zu: got %s/%s want %s/%s\n", i,
                                    mkto_class_name(got), code,
                                    mkto_class_name(c->want), c->want_code);
                }
                assert_int_equal(got, c->want);
                assert_string_equal(code, c->want_code);
                mkto_env_fini(&env);
        }
}

static void classify__null_env_and_short_code_buffer(void **state)
{
        char code[4];

        (void)state;
        assert_int_equal(mkto_classify(200, 0, NULL, code, sizeof(code)),
                         MKTO_C_RETRY);
        assert_string_equal(code, "bad");
        assert_int_equal(mkto_classify(502, 0, NULL, NULL, 0), MKTO_C_RETRY);
}

static void class_name__all_distinct(void **state)
{
        (void)state;
        assert_string_equal(mkto_class_name(MKTO_C_OK), "ok");
        assert_string_equal(mkto_class_name(MKTO_C_REAUTH), "reauth");
        assert_string_equal(mkto_class_name(MKTO_C_RETRY), "retry");
        assert_string_equal(mkto_class_name(MKTO_C_RATE), "rate");
        assert_string_equal(mkto_class_name(MKTO_C_CONC), "concurrency");
        assert_string_equal(mkto_class_name(MKTO_C_QUOTA), "quota");
        assert_string_equal(mkto_class_name(MKTO_C_FATAL), "fatal");
        assert_string_equal(mkto_class_name((enum mkto_class)99), "unknown");
}

/* ---- identity ---- */

static enum mkto_class ident(long status, int transport, const char *body,
                             char *token, size_t token_size, int64_t *exp,
                             char *code)
{
        return mkto_classify_identity(status, transport, body,
                                      body ? strlen(body) : 0, token,
                                      token_size, exp, code, 16);
}

static void identity__token_and_lifetime(void **state)
{
        char token[128] = "old";
        char code[16];
        int64_t exp = -1;

        (void)state;
        assert_int_equal(
                ident(200, 0,
                      "{\"access_token\": "
                      "\"5f0c2a9e-7d41-4b8e-9a3c-1e2f3a4b5c6d:sj\", "
                      "\"token_type\": \"bearer\", \"expires_in\": 3599, "
                      "\"scope\": \"sync-api@example.com\"}",
                      token, sizeof(token), &exp, code),
                MKTO_C_OK);
        assert_string_equal(token, "5f0c2a9e-7d41-4b8e-9a3c-1e2f3a4b5c6d:sj");
        assert_int_equal(exp, 3599);
        assert_int_equal(ident(200, 0,
                               "{\"access_token\":\"t:ab\","
                               "\"expires_in\":\"12\"}",
                               token, sizeof(token), &exp, code),
                         MKTO_C_OK);
        assert_string_equal(token, "t:ab");
        assert_int_equal(exp, 12);
}

static void identity__dying_token_is_retried(void **state)
{
        char token[128];
        char code[16];
        int64_t exp = -1;

        (void)state;
        assert_int_equal(ident(200, 0,
                               "{\"access_token\":\"t:int\","
                               "\"token_type\":\"bearer\",\"expires_in\":0}",
                               token, sizeof(token), &exp, code),
                         MKTO_C_RETRY);
        assert_string_equal(code, "token_expiring");
        assert_string_equal(token, "");
}

static void identity__failures(void **state)
{
        static const struct cls_case cases[] = {
                { 401, 0, "{\"error\":\"invalid_client\","
                          "\"error_description\":\"Bad client credentials\"}",
                  MKTO_C_FATAL, "http_401" },
                { 400, 0, "{\"error\":\"invalid_request\"}", MKTO_C_FATAL,
                  "http_400" },
                { 404, 0, "not found", MKTO_C_FATAL, "http_404" },
                { 200, 0, "{\"error\":\"unauthorized\"}", MKTO_C_FATAL,
                  "auth_error" },
                { 502, 0, "<html>Bad Gateway</html>", MKTO_C_RETRY,
                  "http_502" },
                { 200, 0, "<html>", MKTO_C_RETRY, "bad_reply" },
                { 200, 0, "{\"access_token\":\"\",\"expires_in\":5}",
                  MKTO_C_RETRY, "bad_reply" },
                { 200, 0, "{\"access_token\":\"t\"}", MKTO_C_RETRY,
                  "bad_reply" },
                { 200, 0, "{\"access_token\":\"t\",\"expires_in\":-4}",
                  MKTO_C_RETRY, "bad_reply" },
                { 200, 0, "{\"access_token\":7,\"expires_in\":5}",
                  MKTO_C_RETRY, "bad_reply" },
                { 0, CURLE_COULDNT_CONNECT, NULL, MKTO_C_RETRY, "curl_7" },
                { 0, CURLE_OPERATION_TIMEDOUT, NULL, MKTO_C_RETRY,
                  "curl_28" },
                { 0, 0, NULL, MKTO_C_RETRY, "no_reply" },
        };

        (void)state;
        for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
                char token[64] = "stale";
                char code[16] = "";
                int64_t exp = 99;

                assert_int_equal(ident(cases[i].status, cases[i].transport,
                                       cases[i].body, token, sizeof(token),
                                       &exp, code),
                                 cases[i].want);
                assert_string_equal(code, cases[i].want_code);
                assert_string_equal(token, "");
                assert_int_equal(exp, 0);
        }
}

static void identity__token_longer_than_buffer_is_fatal(void **state)
{
        char token[8];
        char code[16];
        int64_t exp;

        (void)state;
        assert_int_equal(ident(200, 0,
                               "{\"access_token\":\"12345678\","
                               "\"expires_in\":3600}",
                               token, sizeof(token), &exp, code),
                         MKTO_C_FATAL);
        assert_string_equal(code, "token_too_long");
        assert_string_equal(token, "");
        assert_int_equal(ident(200, 0,
                               "{\"access_token\":\"1234567\","
                               "\"expires_in\":3600}",
                               token, sizeof(token), &exp, code),
                         MKTO_C_OK);
        assert_string_equal(token, "1234567");
}

/* ---- records ---- */

static void record__classification_table(void **state)
{
        static const struct {
                enum mkto_rec_op op;
                const char *status;
                const char *code;
                enum mkto_rec want;
        } cases[] = {
                { MKTO_OP_SYNC, "created", "", MKTO_REC_DONE },
                { MKTO_OP_SYNC, "updated", "", MKTO_REC_DONE },
                { MKTO_OP_SYNC, "skipped", "1007", MKTO_REC_DUP },
                { MKTO_OP_SYNC, "skipped", "1003", MKTO_REC_REJECT },
                { MKTO_OP_SYNC, "skipped", "1004", MKTO_REC_REJECT },
                { MKTO_OP_SYNC, "skipped", "1006", MKTO_REC_REJECT },
                { MKTO_OP_SYNC, "skipped", "", MKTO_REC_REJECT },
                { MKTO_OP_ADD, "added", "", MKTO_REC_DONE },
                { MKTO_OP_ADD, "skipped", "1004", MKTO_REC_VANISHED },
                { MKTO_OP_ADD, "skipped", "1003", MKTO_REC_REJECT },
                { MKTO_OP_ADD, "skipped", "1015", MKTO_REC_REJECT },
                { MKTO_OP_REMOVE, "removed", "", MKTO_REC_DONE },
                { MKTO_OP_REMOVE, "skipped", "1015", MKTO_REC_DONE },
                { MKTO_OP_REMOVE, "skipped", "1004", MKTO_REC_DONE },
                { MKTO_OP_REMOVE, "skipped", "1003", MKTO_REC_REJECT },
                { MKTO_OP_REMOVE, "", "", MKTO_REC_REJECT },
                { MKTO_OP_ADD, "mystery", "", MKTO_REC_REJECT },
                { MKTO_OP_ADD, NULL, NULL, MKTO_REC_REJECT },
        };

        (void)state;
        for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
                enum mkto_rec got = mkto_classify_record(
                        cases[i].op, cases[i].status, cases[i].code);

                if (got != cases[i].want)
                        print_error("case %zu\n", i);
                assert_int_equal(got, cases[i].want);
        }
}

static void rec_get__sync_reply_in_input_order(void **state)
{
        struct mkto_env env;
        struct mkto_rec_item it;

        (void)state;
        env_of(&env, "{\"requestId\": \"48d0#18c2b7e0333\", \"result\": ["
                     "{\"id\": 7001, \"status\": \"created\"}, "
                     "{\"status\": \"skipped\", \"reasons\": [{\"code\": "
                     "\"1007\", \"message\": \"Multiple lead match lookup "
                     "criteria\"}]}], \"success\": true}");
        assert_non_null(env.result);
        assert_int_equal(mkto_rec_get(env.result, 0, &it), 0);
        assert_int_equal(it.id, 7001);
        assert_string_equal(it.status, "created");
        assert_string_equal(it.code, "");
        assert_string_equal(it.message, "");
        assert_int_equal(mkto_rec_get(env.result, 1, &it), 0);
        assert_int_equal(it.id, 0);
        assert_string_equal(it.status, "skipped");
        assert_string_equal(it.code, "1007");
        assert_string_equal(it.message, "Multiple lead match lookup criteria");
        assert_int_equal(mkto_classify_record(MKTO_OP_SYNC, it.status,
                                              it.code),
                         MKTO_REC_DUP);
        assert_int_equal(mkto_rec_get(env.result, 2, &it), -1);
        mkto_env_fini(&env);
}

static void rec_get__removal_reply_and_numeric_code(void **state)
{
        struct mkto_env env;
        struct mkto_rec_item it;

        (void)state;
        env_of(&env, "{\"requestId\": \"1162#18c2b7e1444\", \"result\": ["
                     "{\"id\": 7001, \"status\": \"removed\"}, "
                     "{\"id\": 7002, \"status\": \"skipped\", \"reasons\": "
                     "[{\"code\": \"1015\", \"message\": \"Lead not in "
                     "list\"}]}, {\"id\": 7003, \"status\": \"skipped\", "
                     "\"reasons\": [{\"code\": 1004, \"message\": \"Lead not "
                     "found\"}]}, 17, {\"id\":7005,\"status\":\"skipped\","
                     "\"reasons\":[]}], \"success\": true}");
        assert_int_equal(mkto_rec_get(env.result, 1, &it), 0);
        assert_int_equal(it.id, 7002);
        assert_string_equal(it.code, "1015");
        assert_int_equal(mkto_classify_record(MKTO_OP_REMOVE, it.status,
                                              it.code),
                         MKTO_REC_DONE);
        assert_int_equal(mkto_rec_get(env.result, 2, &it), 0);
        assert_int_equal(it.id, 7003);
        assert_string_equal(it.code, "1004");
        assert_ptr_equal(it.code, it.code_buf);
        assert_string_equal(it.message, "Lead not found");
        assert_int_equal(mkto_rec_get(env.result, 3, &it), -1);
        assert_int_equal(mkto_rec_get(env.result, 4, &it), 0);
        assert_string_equal(it.code, "");
        assert_int_equal(mkto_rec_get(NULL, 0, &it), -1);
        mkto_env_fini(&env);
}

/* ---- folders ---- */

static int pick(const char *body, int64_t *id, char *type, size_t *cnt)
{
        struct mkto_env env;
        int rc;

        env_of(&env, body);
        rc = mkto_pick_folder(env.result, id, type, 16, cnt);
        mkto_env_fini(&env);
        return rc;
}

static void pick_folder__doc_example(void **state)
{
        int64_t id = 0;
        char type[16] = "";
        size_t cnt = 0;

        (void)state;
        assert_int_equal(
                pick("{\"success\": true, \"errors\": [], \"requestId\": "
                     "\"70cd#18c2b7de111\", \"warnings\": [], \"result\": [{"
                     "\"name\": \"Audience Lists\", \"description\": null, "
                     "\"createdAt\": \"2020-08-14T20:43:13Z+0000\", "
                     "\"updatedAt\": \"2020-08-14T20:43:13Z+0000\", \"url\": "
                     "null, \"folderId\": {\"id\": 12, \"type\": "
                     "\"Folder\"}, \"folderType\": \"List\", \"parent\": "
                     "{\"id\": 5, \"type\": \"Folder\"}, \"path\": \"/Lead "
                     "Database/Default/Audience Lists\", \"isArchive\": "
                     "false, \"isSystem\": true, \"accessZoneId\": 1, "
                     "\"workspace\": \"Default\", \"id\": 12}]}",
                     &id, type, &cnt),
                0);
        assert_int_equal(id, 12);
        assert_string_equal(type, "Folder");
        assert_int_equal(cnt, 1);
}

static void pick_folder__list_folders_beat_programs(void **state)
{
        int64_t id = 0;
        char type[16] = "";
        size_t cnt = 0;

        (void)state;
        /* A program with a lower id, a Lead Database folder found by path
         * (type in upper case, as in the doc examples) and one by
         * folderType; the lowest list folder wins. */
        assert_int_equal(
                pick("{\"success\":true,\"errors\":[],\"warnings\":[],"
                     "\"result\":[{\"id\":3,\"folderId\":{\"id\":3,\"type\":"
                     "\"Program\"},\"folderType\":\"Program\",\"path\":"
                     "\"/Marketing Activities/Default/Aud\"},"
                     "{\"id\":40,\"folderId\":{\"id\":40,\"type\":\"FOLDER\"},"
                     "\"folderType\":\"Folder\",\"path\":\"/Lead Database/"
                     "Default/Aud\"},{\"id\":41,\"folderId\":{\"id\":41,"
                     "\"type\":\"Folder\"},\"folderType\":\"List\",\"path\":"
                     "\"/Somewhere/Aud\"},{\"id\":2,\"folderId\":{\"id\":2,"
                     "\"type\":\"Folder\"},\"folderType\":\"Marketing "
                     "Folder\",\"path\":\"/Lead Databases/Aud\"}]}",
                     &id, type, &cnt),
                0);
        assert_int_equal(id, 40);
        assert_string_equal(type, "Folder");
        assert_int_equal(cnt, 2);
}

static void pick_folder__falls_back_to_lowest_other(void **state)
{
        int64_t id = 0;
        char type[16] = "";
        size_t cnt = 0;

        (void)state;
        assert_int_equal(
                pick("{\"success\":true,\"result\":[{\"id\":1034,"
                     "\"folderId\":{\"id\":1034,\"type\":\"program\"},"
                     "\"path\":\"/Marketing Activities/Default/Aud\"},"
                     "{\"id\":1040,\"folderId\":{\"id\":1040,\"type\":"
                     "\"Folder\"},\"folderType\":\"Marketing Folder\","
                     "\"path\":\"/Marketing Activities/Default/X\"},"
                     "{\"id\":5,\"folderId\":{\"id\":5,\"type\":\"Folder\"},"
                     "\"folderType\":\"List\",\"isArchive\":true,\"path\":"
                     "\"/Lead Database/Default/Old\"},{\"id\":1,\"name\":"
                     "\"no folderId\"},{\"id\":2,\"folderId\":{\"id\":2,"
                     "\"type\":\"Email\"}}]}",
                     &id, type, &cnt),
                0);
        assert_int_equal(id, 1034);
        assert_string_equal(type, "Program");
        assert_int_equal(cnt, 2);
}

static void pick_folder__archived_only_as_last_resort(void **state)
{
        int64_t id = 0;
        char type[16] = "";
        size_t cnt = 0;

        (void)state;
        assert_int_equal(
                pick("{\"success\":true,\"result\":[{\"id\":5,\"folderId\":"
                     "{\"id\":5,\"type\":\"Folder\"},\"folderType\":\"List\","
                     "\"isArchive\":true}]}",
                     &id, type, &cnt),
                0);
        assert_int_equal(id, 5);
        assert_int_equal(cnt, 1);
}

static void pick_folder__nothing_usable(void **state)
{
        int64_t id = 77;
        char type[16] = "keep";
        size_t cnt = 9;

        (void)state;
        assert_int_equal(
                pick("{\"success\": true, \"errors\": [], \"requestId\": "
                     "\"b22#18c2b7dc001\", \"warnings\": [\"No assets found "
                     "for the given search criteria.\"]}",
                     &id, type, &cnt),
                -1);
        assert_int_equal(pick("{\"success\":true,\"result\":[]}", &id, type,
                              &cnt),
                         -1);
        assert_int_equal(pick("{\"success\":true,\"result\":[{\"id\":1,"
                              "\"folderId\":{\"id\":0,\"type\":\"Folder\"}}]}",
                              &id, type, &cnt),
                         -1);
        assert_int_equal(id, 77);
        assert_string_equal(type, "keep");
        assert_int_equal(cnt, 9);
}

/* ---- lists ---- */

static void parse_list__create_reply(void **state)
{
        struct mkto_env env;
        int64_t id = 0;
        int64_t fid = 0;
        char ftype[16] = "";

        (void)state;
        env_of(&env, "{\"success\": true, \"errors\": [], \"requestId\": "
                     "\"eb08#18c2b7df222\", \"warnings\": [], \"result\": [{"
                     "\"id\": 1201, \"name\": \"Aud - Churn Risk\", "
                     "\"createdAt\": \"2024-03-02T10:15:00Z+0000\", "
                     "\"updatedAt\": \"2024-03-02T10:15:00Z+0000\", "
                     "\"folder\": {\"id\": 12, \"type\": \"Folder\"}, "
                     "\"computedUrl\": "
                     "\"https://app-ab12.marketo.com/#ST1201A1\", "
                     "\"workspace\": \"Default\"}]}");
        assert_int_equal(mkto_parse_list(env.result, &id, &fid, ftype,
                                         sizeof(ftype)),
                         0);
        assert_int_equal(id, 1201);
        assert_int_equal(fid, 12);
        assert_string_equal(ftype, "Folder");
        mkto_env_fini(&env);
}

static void parse_list__program_and_missing_folder(void **state)
{
        struct mkto_env env;
        int64_t id = 0;
        int64_t fid = 5;
        char ftype[16] = "x";

        (void)state;
        env_of(&env, "{\"success\":true,\"result\":[{\"id\":1300,\"folder\":"
                     "{\"id\":1034,\"type\":\"PROGRAM\"}}]}");
        assert_int_equal(mkto_parse_list(env.result, &id, &fid, ftype,
                                         sizeof(ftype)),
                         0);
        assert_int_equal(id, 1300);
        assert_int_equal(fid, 1034);
        assert_string_equal(ftype, "Program");
        mkto_env_fini(&env);

        env_of(&env, "{\"success\":true,\"result\":[{\"name\":\"no id\"},"
                     "{\"id\":1301,\"name\":\"Aud\"}]}");
        assert_int_equal(mkto_parse_list(env.result, &id, &fid, ftype,
                                         sizeof(ftype)),
                         0);
        assert_int_equal(id, 1301);
        assert_int_equal(fid, 0);
        assert_string_equal(ftype, "");
        mkto_env_fini(&env);
}

static void parse_list__not_found(void **state)
{
        struct mkto_env env;
        int64_t id = 9;
        int64_t fid = 9;
        char ftype[16] = "keep";

        (void)state;
        env_of(&env, "{\"success\": true, \"errors\": [], \"requestId\": "
                     "\"b22#18c2b7dc001\", \"warnings\": [\"No assets found "
                     "for the given search criteria.\"]}");
        assert_int_equal(mkto_parse_list(env.result, &id, &fid, ftype,
                                         sizeof(ftype)),
                         -1);
        mkto_env_fini(&env);
        env_of(&env, "{\"success\":true,\"result\":[]}");
        assert_int_equal(mkto_parse_list(env.result, &id, &fid, ftype,
                                         sizeof(ftype)),
                         -1);
        mkto_env_fini(&env);
        assert_int_equal(id, 9);
        assert_string_equal(ftype, "keep");
}

/* ---- scrub ---- */

static void scrub__hides_addresses_keeps_the_rest(void **state)
{
        static const struct {
                const char *in;
                const char *want;
        } cases[] = {
                { "Invalid value for field 'email' and value "
                  "'ana@example.com'",
                  "Invalid value for field 'email' and value '<email>'" },
                { "Lead not found", "Lead not found" },
                { "values ana@x.com,bo@y.com failed",
                  "values <email>,<email> failed" },
                { "\"q@x.org\" (bo@y.org)", "\"<email>\" (<email>)" },
                { "lead ana%40example.com gone", "lead <email> gone" },
                { "tab\tana@x.com\nnext", "tab\t<email>\nnext" },
                { "@", "<email>" },
                { "", "" },
        };
        char out[192];

        (void)state;
        for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
                mkto_scrub(cases[i].in, out, sizeof(out));
                assert_string_equal(out, cases[i].want);
        }
        mkto_scrub(NULL, out, sizeof(out));
        assert_string_equal(out, "");
}

static void scrub__truncates_without_leaking(void **state)
{
        char out[12];
        char one[1] = { 'x' };

        (void)state;
        mkto_scrub("value 'ana@example.com' rest", out, sizeof(out));
        assert_string_equal(out, "value '<ema");
        assert_null(strstr(out, "ana"));
        mkto_scrub("abc", one, sizeof(one));
        assert_int_equal(one[0], '\0');
        mkto_scrub("abc", NULL, 0);
}

/* ---- daily reset ---- */

static int64_t utc_ms(int y, int mo, int d, int h, int mi)
{
        struct tm tm;

        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        return (int64_t)timegm(&tm) * 1000;
}

static void reset__fixed_dates_around_dst(void **state)
{
        static const struct {
                int at[5];   /* UTC y m d h min */
                int want[5]; /* UTC */
        } cases[] = {
                /* Winter: midnight CST is 06:00 UTC. */
                { { 2024, 1, 15, 3, 0 }, { 2024, 1, 15, 6, 0 } },
                { { 2024, 1, 15, 6, 0 }, { 2024, 1, 16, 6, 0 } },
                { { 2024, 1, 15, 5, 59 }, { 2024, 1, 15, 6, 0 } },
                { { 2023, 12, 31, 22, 0 }, { 2024, 1, 1, 6, 0 } },
                /* Summer: midnight CDT is 05:00 UTC. */
                { { 2024, 7, 1, 5, 0 }, { 2024, 7, 2, 5, 0 } },
                { { 2024, 7, 1, 4, 59 }, { 2024, 7, 1, 5, 0 } },
                /* Spring forward, Sunday 10 March 2024 at 02:00 CST. */
                { { 2024, 3, 9, 18, 0 }, { 2024, 3, 10, 6, 0 } },
                { { 2024, 3, 10, 6, 0 }, { 2024, 3, 11, 5, 0 } },
                { { 2024, 3, 10, 7, 59 }, { 2024, 3, 11, 5, 0 } },
                { { 2024, 3, 10, 8, 0 }, { 2024, 3, 11, 5, 0 } },
                { { 2024, 3, 11, 4, 59 }, { 2024, 3, 11, 5, 0 } },
                { { 2024, 3, 11, 5, 0 }, { 2024, 3, 12, 5, 0 } },
                /* Fall back, Sunday 3 November 2024 at 02:00 CDT. */
                { { 2024, 11, 2, 17, 0 }, { 2024, 11, 3, 5, 0 } },
                { { 2024, 11, 3, 5, 0 }, { 2024, 11, 4, 6, 0 } },
                { { 2024, 11, 3, 6, 30 }, { 2024, 11, 4, 6, 0 } },
                { { 2024, 11, 3, 7, 30 }, { 2024, 11, 4, 6, 0 } },
                { { 2024, 11, 4, 5, 30 }, { 2024, 11, 4, 6, 0 } },
                /* 2007, the first year of the rule: 11 March, 4 Nov. */
                { { 2007, 3, 11, 7, 0 }, { 2007, 3, 12, 5, 0 } },
                { { 2007, 11, 4, 4, 0 }, { 2007, 11, 4, 5, 0 } },
                { { 2007, 11, 4, 5, 0 }, { 2007, 11, 5, 6, 0 } },
        };

        (void)state;
        for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
                const int *a = cases[i].at;
                const int *w = cases[i].want;
                int64_t got = mkto_next_reset_wall_ms(
                        utc_ms(a[0], a[1], a[2], a[3], a[4]));

                if (got != utc_ms(w[0], w[1], w[2], w[3], w[4]))
                        print_error("case %zu\n", i);
                assert_int_equal(got, utc_ms(w[0], w[1], w[2], w[3], w[4]));
        }
        /* One millisecond before a midnight, and the midnight itself. */
        assert_int_equal(mkto_next_reset_wall_ms(utc_ms(2024, 7, 1, 5, 0) -
                                                 1),
                         utc_ms(2024, 7, 1, 5, 0));
}

/* Next Chicago midnight strictly after t_s by the system's tz database.
 * TZ must be America/Chicago. */
static int64_t oracle_next(time_t t_s)
{
        struct tm tm;

        localtime_r(&t_s, &tm);
        tm.tm_mday++;
        tm.tm_hour = 0;
        tm.tm_min = 0;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        return (int64_t)mktime(&tm) * 1000;
}

static void reset__matches_tz_database_2007_to_2036(void **state)
{
        const char *zone = "/usr/share/zoneinfo/America/Chicago";
        int64_t t = utc_ms(2007, 1, 1, 0, 0);
        int64_t stop = utc_ms(2036, 12, 31, 0, 0);
        char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
        size_t n = 0;
        FILE *f = fopen(zone, "rb");

        (void)state;
        if (!f) {
                free(old);
                skip();
        }
        fclose(f);
        setenv("TZ", ":America/Chicago", 1);
        tzset();
        /* A step of 5 h 17 min 13 s walks every hour of the day. */
        for (; t < stop; t += ((5 * 60 + 17) * 60 + 13) * 1000LL, n++) {
                int64_t want = oracle_next((time_t)(t / 1000));
                int64_t got = mkto_next_reset_wall_ms(t);

                if (got != want) {
                        print_error("at %lld: got %lld want %lld\n",
                                    (long long)t, (long long)got,
                                    (long long)want);
                }
                assert_int_equal(got, want);
        }
        assert_true(n > 40000);
        if (old)
                setenv("TZ", old, 1);
        else
                unsetenv("TZ");
        tzset();
        free(old);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(buf__appends_grow_and_take_resets),
                cmocka_unit_test(buf__empty_take_is_empty_string),
                cmocka_unit_test(buf__oom_sticks_and_take_fails),
                cmocka_unit_test(buf__urlenc_keeps_only_unreserved),
                cmocka_unit_test(body_sync__exact_shape),
                cmocka_unit_test(body_sync__escapes_and_round_trips),
                cmocka_unit_test(body_sync__empty_input),
                cmocka_unit_test(body_ids__exact_shape),
                cmocka_unit_test(
                        form_lookup__encodes_values_keeps_separators),
                cmocka_unit_test(form_lookup__page_token_appended_encoded),
                cmocka_unit_test(form_token__client_credentials_encoded),
                cmocka_unit_test(form_create_list__name_and_folder_json),
                cmocka_unit_test(env__lead_db_success_without_errors),
                cmocka_unit_test(env__asset_nothing_found_has_no_result),
                cmocka_unit_test(env__error_code_and_message),
                cmocka_unit_test(env__numeric_code_and_scrubbed_message),
                cmocka_unit_test(env__unusable_bodies),
                cmocka_unit_test(env__length_bounds_body_and_whitespace_ok),
                cmocka_unit_test(classify__code_table),
                cmocka_unit_test(classify__null_env_and_short_code_buffer),
                cmocka_unit_test(class_name__all_distinct),
                cmocka_unit_test(identity__token_and_lifetime),
                cmocka_unit_test(identity__dying_token_is_retried),
                cmocka_unit_test(identity__failures),
                cmocka_unit_test(identity__token_longer_than_buffer_is_fatal),
                cmocka_unit_test(record__classification_table),
                cmocka_unit_test(rec_get__sync_reply_in_input_order),
                cmocka_unit_test(rec_get__removal_reply_and_numeric_code),
                cmocka_unit_test(pick_folder__doc_example),
                cmocka_unit_test(pick_folder__list_folders_beat_programs),
                cmocka_unit_test(pick_folder__falls_back_to_lowest_other),
                cmocka_unit_test(pick_folder__archived_only_as_last_resort),
                cmocka_unit_test(pick_folder__nothing_usable),
                cmocka_unit_test(parse_list__create_reply),
                cmocka_unit_test(parse_list__program_and_missing_folder),
                cmocka_unit_test(parse_list__not_found),
                cmocka_unit_test(scrub__hides_addresses_keeps_the_rest),
                cmocka_unit_test(scrub__truncates_without_leaking),
                cmocka_unit_test(reset__fixed_dates_around_dst),
                cmocka_unit_test(reset__matches_tz_database_2007_to_2036),
        };

        return cmocka_run_group_tests_name("marketo_util", tests, NULL, NULL);
}
