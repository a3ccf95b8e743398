/* SPDX-License-Identifier: Apache-2.0
 *
 * test_config.c - loading the YAML config: the full example, defaults,
 * ${VAR} and *_file expansion, every error class at its exact
 * file:line:column, and redaction in the printed config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mlsync/config.h"
#include "../support/support.h"

#define INLINE_SECRET "inline-Secret-6f1d"
#define FILE_SECRET "file-Secret-93ab"
#define KAFKA_PASSWORD "kafka-Password-27c4"

/* Lines of tests/fixtures/config/minimal.yaml; text appended by
 * load_minimal_plus() starts on the next line. */
#define MINIMAL_LINES 14

/* Writes content to dir/name; returns the path (static buffer). */
static const char *write_file(const char *dir, const char *name,
                              const char *content)
{
        static char path[1400];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(content, fp);
        fclose(fp);
        return path;
}

/* Sets the variables full.yaml uses; the secret file gets one extra
 * trailing newline after the one that is trimmed. */
static void full_env(void)
{
        const char *dir = mls_tmpdir("config");

        write_file(dir, "client_secret", FILE_SECRET "\n");
        setenv("MLS_T_SECRET_DIR", dir, 1);
        setenv("MLS_T_CLIENT_ID", "client-one", 1);
        setenv("MLS_T_CLIENT_SECRET", INLINE_SECRET, 1);
        setenv("MLS_T_KAFKA_PASSWORD", KAFKA_PASSWORD, 1);
        unsetenv("MLS_T_BROKERS");
        unsetenv("MLS_T_UNSET_VARIABLE");
}

static struct mls_cfg *load_fixture_ok(const char *rel)
{
        struct mls_cfg *cfg = NULL;
        char *errs = NULL;
        enum mls_err err;

        err = mls_cfg_load(mls_fixture_path(rel), &cfg, &errs);
        if (errs)
                fprintf(stderr, "%s", errs);
        assert_int_equal(err, MLS_OK);
        assert_null(errs);
        assert_non_null(cfg);
        return cfg;
}

/* Loads a fixture that must fail; returns the messages (caller frees). */
static char *load_fixture_errs(const char *rel)
{
        struct mls_cfg *cfg = NULL;
        char *errs = NULL;

        assert_int_equal(mls_cfg_load(mls_fixture_path(rel), &cfg, &errs),
                         MLS_ERR_CONFIG);
        assert_null(cfg);
        assert_non_null(errs);
        return errs;
}

/* Loads text named "t.yaml"; returns the messages or NULL when it loaded. */
static char *load_text(const char *text)
{
        struct mls_cfg *cfg = NULL;
        char *errs = NULL;
        enum mls_err err;

        err = mls_cfg_load_buf("t.yaml", text, strlen(text), &cfg, &errs);
        if (err == MLS_OK) {
                assert_null(errs);
                mls_cfg_destroy(cfg);
                return NULL;
        }
        assert_int_equal(err, MLS_ERR_CONFIG);
        assert_null(cfg);
        assert_non_null(errs);
        return errs;
}

/* minimal.yaml with extra lines appended, loaded as "t.yaml". */
static enum mls_err load_minimal_plus(const char *extra,
                                      struct mls_cfg **cfgp, char **errsp)
{
        size_t len, extra_len = strlen(extra);
        char *base = mls_fixture_load("config/minimal.yaml", &len);
        char *text;
        enum mls_err err;

        assert_non_null(base);
        text = malloc(len + extra_len + 1);
        assert_non_null(text);
        memcpy(text, base, len);
        memcpy(text + len, extra, extra_len + 1);
        *cfgp = NULL;
        *errsp = NULL;
        err = mls_cfg_load_buf("t.yaml", text, len + extra_len, cfgp, errsp);
        free(text);
        free(base);
        return err;
}

/* The messages for minimal.yaml plus extra; NULL when it loaded. */
static char *minimal_plus_errs(const char *extra)
{
        struct mls_cfg *cfg;
        char *errs;

        if (load_minimal_plus(extra, &cfg, &errs) == MLS_OK) {
                mls_cfg_destroy(cfg);
                return NULL;
        }
        assert_non_null(errs);
        return errs;
}

static size_t count_lines(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* True when a line of errs ends with want (paths vary with MLS_TOP). */
static bool has_line(const char *errs, const char *want)
{
        size_t wl = strlen(want);
        const char *line = errs;

        while (line && *line) {
                const char *nl = strchr(line, '\n');
                size_t ll = nl ? (size_t)(nl - line) : strlen(line);

                if (ll >= wl && !memcmp(line + ll - wl, want, wl) &&
                    (ll == wl || line[ll - wl - 1] == '/'))
                        return true;
                line = nl ? nl + 1 : NULL;
        }
        return false;
}

#define assert_line(errs, want)                                        \
        do {                                                           \
                if (!has_line((errs), (want)))                         \
                        fail_msg("missing line \"%s\" in:\n%s", (want), \
                                 (errs));                              \
        } while (0)

static char *print_to_string(const struct mls_cfg *cfg)
{
        char *out = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&out, &len);

        assert_non_null(fp);
        mls_cfg_print(cfg, fp);
        fclose(fp);
        assert_non_null(out);
        return out;
}

/* ---- the full example ---- */

static void load__full_example_resolves_every_key(void **state)
{
        struct mls_cfg *cfg;
        const struct mls_cfg_instance *a, *b;

        full_env();
        cfg = load_fixture_ok("config/full.yaml");

        assert_string_equal(cfg->kafka.brokers, "127.0.0.1:9092");
        assert_string_equal(cfg->kafka.group, "mlsync-test");
        assert_int_equal(cfg->kafka.topic_cnt, 2);
        assert_string_equal(cfg->kafka.topics[0], "audience-membership");
        assert_string_equal(cfg->kafka.topics[1], "audience-membership-eu");
        assert_string_equal(cfg->kafka.dead_letter_topic,
                            "audience-membership.dlq");
        assert_string_equal(cfg->kafka.control_topic, "mlsync.control");

        assert_int_equal(cfg->marketo.instance_cnt, 2);
        a = &cfg->marketo.instances[0];
        b = &cfg->marketo.instances[1];
        assert_string_equal(a->munchkin_id, "123-ABC-456");
        assert_string_equal(a->endpoint,
                            "https://123-ABC-456.mktorest.com/rest");
        assert_string_equal(a->client_id, "client-one");
        assert_string_equal(a->client_secret, INLINE_SECRET);
        assert_null(a->client_secret_file);
        assert_string_equal(a->folder, "Audiences");
        assert_string_equal(b->munchkin_id, "789-XYZ-012");
        assert_string_equal(b->client_id, "client-two");
        assert_string_equal(b->folder, "Personas");

        assert_int_equal(cfg->batch.max_wait_ms, 500);
        assert_int_equal(cfg->batch.max_emails, 250);
        assert_int_equal(cfg->batch.max_pending, 5000);
        assert_int_equal(cfg->worker.shutdown_timeout_ms, 15000);
        assert_int_equal(cfg->worker.commit_interval_ms, 2000);
        assert_string_equal(cfg->worker.http_addr, "127.0.0.1:8080");
        assert_string_equal(cfg->log.level, "debug");
        assert_string_equal(cfg->log.format, "text");
        mls_cfg_destroy(cfg);
}

static void props__scalars_are_stringified_in_order(void **state)
{
        static const char *const want[][2] = {
                { "security.protocol", "sasl_ssl" },
                { "sasl.mechanism", "SCRAM-SHA-512" },
                { "sasl.username", "mlsync" },
                { "sasl.password", KAFKA_PASSWORD },
                { "fetch.max.bytes", "1048576" },
                { "check.crcs", "true" },
        };
        struct mls_cfg *cfg;

        full_env();
        cfg = load_fixture_ok("config/full.yaml");
        assert_int_equal(cfg->kafka.prop_cnt, 6);
        for (size_t i = 0; i < 6; i++) {
                assert_string_equal(cfg->kafka.props[i].key, want[i][0]);
                assert_string_equal(cfg->kafka.props[i].value, want[i][1]);
        }
        mls_cfg_destroy(cfg);
}

static void budget__override_inherits_single_keys(void **state)
{
        struct mls_cfg *cfg;
        const struct mls_cfg_instance *a, *b;

        full_env();
        cfg = load_fixture_ok("config/full.yaml");
        a = &cfg->marketo.instances[0];
        b = &cfg->marketo.instances[1];

        assert_int_equal(cfg->marketo.budget.calls_per_20s, 60);
        assert_int_equal(cfg->marketo.budget.concurrent_calls, 6);
        assert_int_equal(cfg->marketo.budget.daily_calls, 30000);
        assert_int_equal(a->budget.calls_per_20s, 60);
        assert_int_equal(a->budget.concurrent_calls, 6);
        assert_int_equal(a->budget.daily_calls, 30000);
        /* budget: {calls_per_20s: 40} overrides that key only */
        assert_int_equal(b->budget.calls_per_20s, 40);
        assert_int_equal(b->budget.concurrent_calls, 6);
        assert_int_equal(b->budget.daily_calls, 30000);
        mls_cfg_destroy(cfg);
}

static void budget__override_of_builtin_defaults(void **state)
{
        struct mls_cfg *cfg;
        char *errs;

        assert_int_equal(load_minimal_plus("      budget:\n"
                                           "        daily_calls: 5\n",
                                           &cfg, &errs),
                         MLS_OK);
        assert_int_equal(cfg->marketo.instances[0].budget.calls_per_20s, 80);
        assert_int_equal(cfg->marketo.instances[0].budget.concurrent_calls,
                         8);
        assert_int_equal(cfg->marketo.instances[0].budget.daily_calls, 5);
        mls_cfg_destroy(cfg);
}

static void load__minimal_takes_every_default(void **state)
{
        struct mls_cfg *cfg = load_fixture_ok("config/minimal.yaml");
        const struct mls_cfg_instance *in = &cfg->marketo.instances[0];

        assert_int_equal(cfg->kafka.prop_cnt, 0);
        assert_int_equal(cfg->marketo.budget.calls_per_20s, 80);
        assert_int_equal(cfg->marketo.budget.concurrent_calls, 8);
        assert_int_equal(cfg->marketo.budget.daily_calls, 40000);
        assert_int_equal(in->budget.calls_per_20s, 80);
        assert_int_equal(in->budget.concurrent_calls, 8);
        assert_int_equal(in->budget.daily_calls, 40000);
        assert_string_equal(in->folder, "Audiences");
        assert_int_equal(cfg->batch.max_wait_ms, 1000);
        assert_int_equal(cfg->batch.max_emails, 300);
        assert_int_equal(cfg->batch.max_pending, 20000);
        assert_int_equal(cfg->worker.shutdown_timeout_ms, 20000);
        assert_int_equal(cfg->worker.commit_interval_ms, 1000);
        assert_null(cfg->worker.http_addr);
        assert_string_equal(cfg->log.level, "info");
        assert_string_equal(cfg->log.format, "json");
        assert_non_null(strstr(cfg->path, "minimal.yaml"));
        mls_cfg_destroy(cfg);
}

static void find__matches_munchkin_ignoring_case(void **state)
{
        struct mls_cfg *cfg;

        full_env();
        cfg = load_fixture_ok("config/full.yaml");
        assert_ptr_equal(mls_cfg_instance_find(cfg, "789-xyz-012"),
                         &cfg->marketo.instances[1]);
        assert_ptr_equal(mls_cfg_instance_find(cfg, "123-ABC-456"),
                         &cfg->marketo.instances[0]);
        assert_null(mls_cfg_instance_find(cfg, "000-AAA-000"));
        assert_null(mls_cfg_instance_find(cfg, NULL));
        mls_cfg_destroy(cfg);
}

/* ---- errors ---- */

static void errors__every_class_at_its_position(void **state)
{
        char *errs;

        unsetenv("MLS_T_UNSET_VARIABLE");
        errs = load_fixture_errs("config/errors.yaml");
        assert_line(errs, "errors.yaml:4:10: kafka.group: expected a string, got a list");
        assert_line(errs, "errors.yaml:5:11: kafka.topics: must name at least one topic");
        assert_line(errs, "errors.yaml:8:3: kafka: unknown key 'bogus' (expected one of: brokers, group, topics, dead_letter_topic, control_topic, properties)");
        assert_line(errs, "errors.yaml:10:5: kafka.properties.enable.auto.commit: may not be set here: mlsync commits only what Marketo accepted");
        assert_line(errs, "errors.yaml:11:16: kafka.properties.linger.ms: expected a string, number or boolean, got a mapping");
        assert_line(errs, "errors.yaml:14:20: marketo.budget.calls_per_20s: must be between 1 and 100 (got 500)");
        assert_line(errs, "errors.yaml:15:23: marketo.budget.concurrent_calls: expected an integer, got 'many'");
        assert_line(errs, "errors.yaml:17:7: marketo.instances[0]: no folder: set marketo.folder or this instance's folder");
        assert_line(errs, "errors.yaml:17:20: marketo.instances[0].munchkin_id: '12-ABC-456' is not a munchkin id (NNN-AAA-NNN, e.g. 123-ABC-456)");
        assert_line(errs, "errors.yaml:18:17: marketo.instances[0].endpoint: endpoint must use https:// (http:// is allowed only for loopback hosts)");
        assert_line(errs, "errors.yaml:21:27: marketo.instances[0]: set client_secret or client_secret_file, not both");
        assert_line(errs, "errors.yaml:22:7: marketo.instances[1]: missing required key 'client_id'");
        assert_line(errs, "errors.yaml:22:7: marketo.instances[1]: no folder: set marketo.folder or this instance's folder");
        assert_line(errs, "errors.yaml:24:22: marketo.instances[1].client_secret: environment variable MLS_T_UNSET_VARIABLE is not set (use ${MLS_T_UNSET_VARIABLE:-default} for a default)");
        assert_line(errs, "errors.yaml:25:7: marketo.instances[2]: duplicate munchkin_id '123-abc-456' (first at line 22)");
        assert_line(errs, "errors.yaml:31:15: batch.max_emails: must be between 1 and 300 (got 301)");
        assert_line(errs, "errors.yaml:32:3: batch: duplicate key 'max_emails' (first set at line 31)");
        assert_line(errs, "errors.yaml:34:10: log.level: expected error, warn, info or debug, got 'verbose'");
        assert_int_equal(count_lines(errs), 18);
        free(errs);
}

static void errors__sorted_by_position(void **state)
{
        char *errs = load_fixture_errs("config/errors.yaml");
        size_t last_line = 0, last_col = 0;

        for (const char *p = errs; p && *p;) {
                const char *c = strstr(p, ".yaml:");
                size_t line, col;

                assert_non_null(c);
                assert_int_equal(sscanf(c, ".yaml:%zu:%zu:", &line, &col), 2);
                assert_true(line > last_line ||
                            (line == last_line && col >= last_col));
                last_line = line;
                last_col = col;
                p = strchr(p, '\n');
                p = p ? p + 1 : NULL;
        }
        free(errs);
}

static void errors__missing_required_keys(void **state)
{
        char *errs = load_fixture_errs("config/missing.yaml");

        assert_line(errs, "missing.yaml:2:3: kafka: missing required key 'brokers'");
        assert_line(errs, "missing.yaml:2:3: kafka: missing required key 'topics'");
        assert_line(errs, "missing.yaml:2:3: kafka: missing required key 'dead_letter_topic'");
        assert_line(errs, "missing.yaml:2:3: kafka: missing required key 'control_topic'");
        assert_line(errs, "missing.yaml:5:7: marketo.instances[0]: missing required key 'munchkin_id'");
        assert_line(errs, "missing.yaml:5:7: marketo.instances[0]: missing required key 'client_id'");
        assert_line(errs, "missing.yaml:5:7: marketo.instances[0]: missing required key 'client_secret' or 'client_secret_file'");
        assert_line(errs, "missing.yaml:5:7: marketo.instances[0]: no folder: set marketo.folder or this instance's folder");
        assert_int_equal(count_lines(errs), 8);
        free(errs);
}

static void errors__missing_sections_and_instances(void **state)
{
        char *errs = load_text("log:\n  level: info\n");

        assert_line(errs, "t.yaml:1:1: config: missing required section 'kafka'");
        assert_line(errs, "t.yaml:1:1: config: missing required section 'marketo'");
        assert_int_equal(count_lines(errs), 2);
        free(errs);

        errs = load_text("kafka:\nmarketo:\n  folder: F\n  instances: []\n");
        assert_line(errs, "t.yaml:1:7: kafka: missing required key 'brokers'");
        assert_line(errs, "t.yaml:4:14: marketo.instances: must list at least one instance");
        free(errs);

        errs = load_text("kafka: {brokers: b, group: g, topics: t, dead_letter_topic: d, control_topic: c}\nmarketo: {folder: F}\n");
        assert_line(errs, "t.yaml:1:39: kafka.topics: expected a list of topic names, got a scalar");
        assert_line(errs, "t.yaml:2:10: marketo: missing required key 'instances'");
        free(errs);
}

static void errors__empty_required_values(void **state)
{
        char *errs = load_text("kafka:\n  brokers:\n  group: \"\"\n  topics: [\"\"]\n");

        assert_line(errs, "t.yaml:2:11: kafka.brokers: must not be empty");
        assert_line(errs, "t.yaml:3:10: kafka.group: must not be empty");
        assert_line(errs, "t.yaml:4:12: kafka.topics[0]: must not be empty");
        free(errs);
}

static void errors__yaml_syntax_at_position(void **state)
{
        char *errs = load_fixture_errs("config/syntax.yaml");

        assert_line(errs, "syntax.yaml:5:1: YAML syntax: found unexpected end of stream (while scanning a quoted scalar at line 3)");
        assert_int_equal(count_lines(errs), 1);
        free(errs);

        errs = load_text("kafka:\n  brokers: a\n bad: b\n");
        assert_non_null(strstr(errs, "t.yaml:3:2: YAML syntax: "));
        free(errs);
}

static void errors__empty_file_and_two_documents(void **state)
{
        char *errs = load_text("");

        assert_line(errs, "t.yaml:1:1: config is empty");
        free(errs);

        errs = load_text("# only a comment\n");
        assert_line(errs, "t.yaml:1:1: config is empty");
        free(errs);

        errs = load_text("kafka: {}\n---\nmarketo: {}\n");
        assert_line(errs, "t.yaml:2:1: only one YAML document is allowed");
        free(errs);

        errs = load_text("- a\n- b\n");
        assert_line(errs, "t.yaml:1:1: config: expected a mapping, got a list");
        free(errs);
}

static void errors__unreadable_file_names_it(void **state)
{
        struct mls_cfg *cfg = NULL;
        char *errs = NULL;

        assert_int_equal(mls_cfg_load("/nonexistent/mlsync.yaml", &cfg,
                                      &errs),
                         MLS_ERR_CONFIG);
        assert_null(cfg);
        assert_string_equal(errs, "/nonexistent/mlsync.yaml: cannot read config: No such file or directory\n");
        free(errs);
}

static void errors__duplicate_instance(void **state)
{
        char *errs = load_fixture_errs("config/dup_instance.yaml");

        assert_line(errs, "dup_instance.yaml:14:7: marketo.instances[1]: duplicate munchkin_id '123-ABC-456' (first at line 10)");
        assert_int_equal(count_lines(errs), 1);
        free(errs);
}

static void errors__munchkin_id_format(void **state)
{
        static const char *const bad[] = { "123-AB-456", "1234-ABC-456",
                                           "123_ABC_456", "ABC-123-456",
                                           "123-A1C-456", "123-ABC-45x" };
        char *errs;
        char text[512];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(text, sizeof(text),
                         "      budget: {}\n"
                         "    - munchkin_id: %s\n"
                         "      endpoint: https://x.mktorest.com\n"
                         "      client_id: i\n"
                         "      client_secret: s\n",
                         bad[i]);
                errs = minimal_plus_errs(text);
                assert_non_null(errs);
                assert_non_null(strstr(errs, "t.yaml:16:20: marketo.instances[1].munchkin_id: '"));
                assert_int_equal(count_lines(errs), 1);
                free(errs);
        }

        /* lower-case letters are accepted: keys are matched ignoring case */
        errs = minimal_plus_errs("    - munchkin_id: 999-xyz-000\n"
                                 "      endpoint: https://x.mktorest.com\n"
                                 "      client_id: i\n"
                                 "      client_secret: s\n");
        assert_null(errs);
}

static void errors__integer_ranges(void **state)
{
        static const struct {
                const char *extra;
                const char *want; /* NULL: loads */
        } cases[] = {
                { "      budget: {calls_per_20s: 100}\n", NULL },
                { "      budget: {calls_per_20s: 101}\n",
                  "t.yaml:15:31: marketo.instances[0].budget.calls_per_20s: must be between 1 and 100 (got 101)" },
                { "      budget: {calls_per_20s: 0}\n",
                  "t.yaml:15:31: marketo.instances[0].budget.calls_per_20s: must be between 1 and 100 (got 0)" },
                { "      budget: {concurrent_calls: 10}\n", NULL },
                { "      budget: {concurrent_calls: 11}\n",
                  "t.yaml:15:34: marketo.instances[0].budget.concurrent_calls: must be between 1 and 10 (got 11)" },
                { "      budget: {daily_calls: 1}\n", NULL },
                { "      budget: {daily_calls: 0}\n",
                  "t.yaml:15:29: marketo.instances[0].budget.daily_calls: must be between 1 and 1000000000 (got 0)" },
                { "      budget: {daily_calls: 1.5}\n",
                  "t.yaml:15:29: marketo.instances[0].budget.daily_calls: expected an integer, got '1.5'" },
                { "      budget: 7\n",
                  "t.yaml:15:15: marketo.instances[0].budget: expected a mapping, got a scalar" },
                { "batch:\n  max_emails: 0\n",
                  "t.yaml:16:15: batch.max_emails: must be between 1 and 300 (got 0)" },
                { "batch:\n  max_emails: \"300\"\n", NULL },
                { "batch:\n  max_pending: 100\n",
                  "t.yaml:16:16: batch.max_pending: must be at least batch.max_emails (300)" },
                { "batch:\n  max_wait_ms: -1\n",
                  "t.yaml:16:16: batch.max_wait_ms: must be between 0 and 3600000 (got -1)" },
                { "worker:\n  commit_interval_ms: 99999999999999999999\n",
                  "t.yaml:16:23: worker.commit_interval_ms: expected an integer, got '99999999999999999999'" },
                { "worker:\n  shutdown_timeout_ms: [1]\n",
                  "t.yaml:16:24: worker.shutdown_timeout_ms: expected a string, got a list" },
                { "worker:\n  http_addr: 8080\n",
                  "t.yaml:16:14: worker.http_addr: expected host:port, [ipv6]:port or :port, got '8080'" },
                { "worker:\n  http_addr: \":8080\"\n", NULL },
                { "worker:\n  http_addr: \"[::1]:0\"\n", NULL },
                { "log:\n  format: xml\n",
                  "t.yaml:16:11: log.format: expected json or text, got 'xml'" },
                { "extra: 1\n",
                  "t.yaml:15:1: config: unknown key 'extra' (expected one of: kafka, marketo, batch, worker, log)" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *errs = minimal_plus_errs(cases[i].extra);

                if (!cases[i].want) {
                        if (errs)
                                fail_msg("case %zu: %s", i, errs);
                        continue;
                }
                if (!errs)
                        fail_msg("case %zu loaded; wanted %s", i,
                                 cases[i].want);
                assert_line(errs, cases[i].want);
                assert_int_equal(count_lines(errs), 1);
                free(errs);
        }
}

static void props__reserved_keys_refused(void **state)
{
        static const char *const keys[] = { "enable.auto.commit",
                                            "enable.auto.offset.store",
                                            "group.id", "bootstrap.servers" };

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                char text[256], want[256];
                char *errs;

                snprintf(text, sizeof(text),
                         "kafka:\n  properties:\n    %s: x\n", keys[i]);
                errs = load_text(text);
                snprintf(want, sizeof(want),
                         "t.yaml:3:5: kafka.properties.%s: may not be set here: ",
                         keys[i]);
                assert_non_null(strstr(errs, want));
                free(errs);
        }
}

static void props__duplicate_and_null_values(void **state)
{
        char *errs = load_text("kafka:\n  properties:\n    a.b: 1\n    a.b: 2\n    c.d:\n");

        assert_line(errs, "t.yaml:4:5: kafka.properties: duplicate key 'a.b'");
        assert_line(errs, "t.yaml:5:9: kafka.properties.c.d: expected a string, number or boolean, got nothing");
        free(errs);
}

/* ---- ${VAR} ---- */

static void expand__default_used_only_when_unset_or_empty(void **state)
{
        struct mls_cfg *cfg;
        char *errs;
        const char *extra = "worker:\n  http_addr: ${MLS_T_ADDR:-127.0.0.1:9}\n"
                            "log:\n  level: ${MLS_T_LEVEL:-warn}\n";

        unsetenv("MLS_T_ADDR");
        setenv("MLS_T_LEVEL", "debug", 1);
        assert_int_equal(load_minimal_plus(extra, &cfg, &errs), MLS_OK);
        assert_string_equal(cfg->worker.http_addr, "127.0.0.1:9");
        assert_string_equal(cfg->log.level, "debug");
        mls_cfg_destroy(cfg);

        setenv("MLS_T_LEVEL", "", 1);
        assert_int_equal(load_minimal_plus(extra, &cfg, &errs), MLS_OK);
        assert_string_equal(cfg->log.level, "warn");
        mls_cfg_destroy(cfg);
        unsetenv("MLS_T_LEVEL");
}

static void expand__inside_text_and_escaped(void **state)
{
        struct mls_cfg *cfg;
        char *errs;

        setenv("MLS_T_A", "one", 1);
        assert_int_equal(load_minimal_plus("      folder: a-${MLS_T_A}${MLS_T_A}-$${NOT}-$x\n",
                                           &cfg, &errs),
                         MLS_OK);
        assert_string_equal(cfg->marketo.instances[0].folder,
                            "a-oneone-${NOT}-$x");
        mls_cfg_destroy(cfg);
        unsetenv("MLS_T_A");
}

static void expand__unset_or_malformed_is_error_at_value(void **state)
{
        char *errs;

        unsetenv("MLS_T_NOPE");
        errs = minimal_plus_errs("worker:\n  http_addr: \"x${MLS_T_NOPE}\"\n");
        assert_line(errs, "t.yaml:16:14: worker.http_addr: environment variable MLS_T_NOPE is not set (use ${MLS_T_NOPE:-default} for a default)");
        assert_int_equal(count_lines(errs), 1);
        free(errs);

        errs = minimal_plus_errs("worker:\n  http_addr: ${MLS_T_NOPE\n");
        assert_line(errs, "t.yaml:16:14: worker.http_addr: '${' without a closing '}'");
        free(errs);

        errs = minimal_plus_errs("worker:\n  http_addr: ${1BAD}\n");
        assert_line(errs, "t.yaml:16:14: worker.http_addr: bad variable reference: write ${NAME} or ${NAME:-default}");
        free(errs);

        errs = minimal_plus_errs("batch:\n  max_emails: ${MLS_T_NOPE}\n");
        assert_line(errs, "t.yaml:16:15: batch.max_emails: environment variable MLS_T_NOPE is not set (use ${MLS_T_NOPE:-default} for a default)");
        free(errs);
}

static void expand__integers_from_variables(void **state)
{
        struct mls_cfg *cfg;
        char *errs;

        setenv("MLS_T_EMAILS", "120", 1);
        assert_int_equal(load_minimal_plus("batch:\n  max_emails: ${MLS_T_EMAILS}\n  max_wait_ms: ${MLS_T_NOPE:-250}\n",
                                           &cfg, &errs),
                         MLS_OK);
        assert_int_equal(cfg->batch.max_emails, 120);
        assert_int_equal(cfg->batch.max_wait_ms, 250);
        mls_cfg_destroy(cfg);
        unsetenv("MLS_T_EMAILS");
}

/* ---- *_file ---- */

static char *secret_file_case(const char *content, struct mls_cfg **cfgp)
{
        const char *dir = mls_tmpdir("config");
        char extra[1600];
        char *errs = NULL;

        if (content)
                write_file(dir, "secret", content);
        snprintf(extra, sizeof(extra),
                 "    - munchkin_id: 999-FIL-000\n"
                 "      endpoint: http://127.0.0.1:1/rest\n"
                 "      client_id: i\n"
                 "      client_secret_file: %s/secret\n",
                 dir);
        *cfgp = NULL;
        load_minimal_plus(extra, cfgp, &errs);
        return errs;
}

static void secret_file__one_trailing_newline_trimmed(void **state)
{
        struct mls_cfg *cfg;
        const struct mls_cfg_instance *in;

        assert_null(secret_file_case("abc\n\n", &cfg));
        in = &cfg->marketo.instances[1];
        assert_string_equal(in->client_secret, "abc\n");
        assert_non_null(in->client_secret_file);
        assert_non_null(strstr(in->client_secret_file, "/secret"));
        mls_cfg_destroy(cfg);

        assert_null(secret_file_case("crlf\r\n", &cfg));
        assert_string_equal(cfg->marketo.instances[1].client_secret, "crlf");
        mls_cfg_destroy(cfg);

        assert_null(secret_file_case("no-newline", &cfg));
        assert_string_equal(cfg->marketo.instances[1].client_secret,
                            "no-newline");
        mls_cfg_destroy(cfg);

        full_env();
        cfg = load_fixture_ok("config/full.yaml");
        assert_string_equal(cfg->marketo.instances[1].client_secret,
                            FILE_SECRET);
        mls_cfg_destroy(cfg);
}

static void secret_file__missing_or_empty_is_error(void **state)
{
        struct mls_cfg *cfg;
        char *errs;

        errs = secret_file_case(NULL, &cfg);
        assert_null(cfg);
        assert_non_null(errs);
        assert_non_null(strstr(errs, "t.yaml:18:27: marketo.instances[1].client_secret_file: cannot read "));
        assert_non_null(strstr(errs, "/secret: No such file or directory\n"));
        assert_int_equal(count_lines(errs), 1);
        free(errs);

        errs = secret_file_case("\n", &cfg);
        assert_null(cfg);
        assert_non_null(errs);
        assert_non_null(strstr(errs, "/secret is empty\n"));
        free(errs);
}

static void secret_file__content_never_in_errors(void **state)
{
        struct mls_cfg *cfg;
        char *errs;

        /* An otherwise broken config with a readable secret file. */
        errs = secret_file_case("Do-Not-Print-me", &cfg);
        assert_null(errs);
        mls_cfg_destroy(cfg);

        setenv("MLS_T_CLIENT_SECRET", INLINE_SECRET, 1);
        errs = minimal_plus_errs("      budget: {calls_per_20s: 0}\n"
                                 "    - munchkin_id: 999-FIL-000\n"
                                 "      endpoint: http://example.com/\n"
                                 "      client_id: i\n"
                                 "      client_secret: ${MLS_T_CLIENT_SECRET}\n"
                                 "      client_secret_file: /dev/null\n");
        assert_non_null(errs);
        assert_null(strstr(errs, INLINE_SECRET));
        assert_null(strstr(errs, "not-a-real-secret"));
        assert_int_equal(count_lines(errs), 3);
        free(errs);
}

/* ---- printing ---- */

static void print__redacts_secrets_and_shows_the_rest(void **state)
{
        struct mls_cfg *cfg;
        char *out, *errs;

        full_env();
        cfg = load_fixture_ok("config/full.yaml");
        out = print_to_string(cfg);

        assert_null(strstr(out, INLINE_SECRET));
        assert_null(strstr(out, FILE_SECRET));
        assert_null(strstr(out, KAFKA_PASSWORD));
        assert_non_null(strstr(out, "client_secret: \"<redacted>\""));
        assert_non_null(strstr(out, "\"sasl.password\": \"<redacted>\""));
        assert_non_null(strstr(out, "client_id: \"client-one\""));
        assert_non_null(strstr(out, "\"sasl.username\": \"mlsync\""));
        assert_non_null(strstr(out, "client_secret_file: \""));
        assert_non_null(strstr(out, "calls_per_20s: 40"));
        mls_cfg_destroy(cfg);

        /* The printed form is a valid config that loads the same values. */
        assert_int_equal(mls_cfg_load_buf("printed", out, strlen(out), &cfg,
                                          &errs),
                         MLS_OK);
        assert_string_equal(cfg->marketo.instances[0].client_secret,
                            "<redacted>");
        assert_string_equal(cfg->marketo.instances[1].client_secret,
                            FILE_SECRET);
        assert_int_equal(cfg->marketo.instances[1].budget.calls_per_20s, 40);
        assert_string_equal(cfg->kafka.props[4].value, "1048576");
        mls_cfg_destroy(cfg);
        free(out);
}

static void print__redacts_secret_like_properties(void **state)
{
        static const char *const secret_keys[] = {
                "sasl.jaas.config", "ssl.key.password",
                "sasl.oauthbearer.client.secret", "sasl.oauthbearer.token",
                "SSL.Keystore.PASSWORD",
        };
        struct mls_cfg *cfg;
        char *out, *errs, extra[640];

        for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]);
             i++) {
                snprintf(extra, sizeof(extra),
                         "kafka:\n  brokers: b\n  group: g\n  topics: [t]\n"
                         "  dead_letter_topic: d\n  control_topic: c\n"
                         "  properties:\n    %s: Hidden-Value-%zu\n"
                         "    client.rack: rack-a\n"
                         "marketo:\n  folder: F\n  instances:\n"
                         "    - {munchkin_id: 123-ABC-456, endpoint: \"https://h\", client_id: i, client_secret: s}\n",
                         secret_keys[i], i);
                assert_int_equal(mls_cfg_load_buf("t.yaml", extra,
                                                  strlen(extra), &cfg, &errs),
                                 MLS_OK);
                out = print_to_string(cfg);
                assert_null(strstr(out, "Hidden-Value"));
                assert_non_null(strstr(out, "\"client.rack\": \"rack-a\""));
                free(out);
                mls_cfg_destroy(cfg);
        }
}

static void print__quotes_and_escapes_values(void **state)
{
        struct mls_cfg *cfg, *again;
        char *out, *errs;

        assert_int_equal(load_minimal_plus("      folder: 'a \"b\" $${c} \\\\ # d'\n",
                                           &cfg, &errs),
                         MLS_OK);
        assert_string_equal(cfg->marketo.instances[0].folder,
                            "a \"b\" ${c} \\\\ # d");
        out = print_to_string(cfg);
        assert_int_equal(mls_cfg_load_buf("p", out, strlen(out), &again,
                                          &errs),
                         MLS_OK);
        assert_string_equal(again->marketo.instances[0].folder,
                            cfg->marketo.instances[0].folder);
        mls_cfg_destroy(again);
        mls_cfg_destroy(cfg);
        free(out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(load__full_example_resolves_every_key),
                cmocka_unit_test(props__scalars_are_stringified_in_order),
                cmocka_unit_test(budget__override_inherits_single_keys),
                cmocka_unit_test(budget__override_of_builtin_defaults),
                cmocka_unit_test(load__minimal_takes_every_default),
                cmocka_unit_test(find__matches_munchkin_ignoring_case),
                cmocka_unit_test(errors__every_class_at_its_position),
                cmocka_unit_test(errors__sorted_by_position),
                cmocka_unit_test(errors__missing_required_keys),
                cmocka_unit_test(errors__missing_sections_and_instances),
                cmocka_unit_test(errors__empty_required_values),
                cmocka_unit_test(errors__yaml_syntax_at_position),
                cmocka_unit_test(errors__empty_file_and_two_documents),
                cmocka_unit_test(errors__unreadable_file_names_it),
                cmocka_unit_test(errors__duplicate_instance),
                cmocka_unit_test(errors__munchkin_id_format),
                cmocka_unit_test(errors__integer_ranges),
                cmocka_unit_test(props__reserved_keys_refused),
                cmocka_unit_test(props__duplicate_and_null_values),
                cmocka_unit_test(expand__default_used_only_when_unset_or_empty),
                cmocka_unit_test(expand__inside_text_and_escaped),
                cmocka_unit_test(expand__unset_or_malformed_is_error_at_value),
                cmocka_unit_test(expand__integers_from_variables),
                cmocka_unit_test(secret_file__one_trailing_newline_trimmed),
                cmocka_unit_test(secret_file__missing_or_empty_is_error),
                cmocka_unit_test(secret_file__content_never_in_errors),
                cmocka_unit_test(print__redacts_secrets_and_shows_the_rest),
                cmocka_unit_test(print__redacts_secret_like_properties),
                cmocka_unit_test(print__quotes_and_escapes_values),
        };

        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
