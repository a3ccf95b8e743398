/* SPDX-License-Identifier: Apache-2.0
 *
 * it_kinspect.c - kinspect and audience-gen against kafka-mock: the
 * generator's stream read back whole (counts, formats, oddities, final
 * membership all as its --expect file says), its determinism and usage
 * errors, and group lag from committed offsets and watermarks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/support.h"
#include "mlsync/event.h"
#include "mlsync/kinspect.h"
#include "mlsync/util.h"

#define TOPIC "audience-membership"
#define INSTANCES "100-AAA-001,200-BBB-002,300-CCC-003"
#define UNKNOWN "999-ZZZ-999"

static struct mls_proc kafka;
static char bootstrap[512];
static char dir[1200];

static const char *const mixed_args[] = {
        "--audiences", "5", "--users", "700", "--events", "3000",
        "--seed", "11", "--segment-share", "0.35",
        "--multi-email-share", "0.3", "--no-email-share", "0.05",
        "--invalid-email-share", "0.03", "--duplicate-share", "0.05",
        "--malformed", "30", "--unknown", "9", "--unknown-instance",
        UNKNOWN, NULL
};

static int mock_setup(void **state)
{
        const char *argv[] = { mls_bin("kafka-mock"), "--brokers", "3",
                               "--topic", TOPIC ":6",
                               "--topic", TOPIC ".dlq:2",
                               "--topic", "lagtest:6",
                               "--topic", "hdrs:3",
                               "--topic", "empty:2", NULL };
        char log[1300];

        snprintf(dir, sizeof(dir), "%s", mls_tmpdir("kinspect"));
        snprintf(log, sizeof(log), "%s/kafka-mock.log", dir);
        if (mls_proc_spawn(&kafka, argv, log) < 0)
                return -1;
        if (mls_proc_read_line(&kafka, bootstrap, sizeof(bootstrap),
                               15000) < 0) {
                fprintf(stderr, "kafka-mock printed no bootstrap\n");
                mls_proc_stop(&kafka);
                return -1;
        }
        return 0;
}

static int mock_teardown(void **state)
{
        mls_proc_stop(&kafka);
        return 0;
}

static const char *path_in(const char *name)
{
        static char path[4][1400];
        static int next;
        char *out = path[next++ % 4];

        snprintf(out, sizeof(path[0]), "%s/%s", dir, name);
        return out;
}

/**
 * Run audience-gen with common args then extra (NULL-ended), stdout to
 * out_path (NULL: /dev/null), stderr to gen.log. @returns its exit code.
 */
static int run_gen(const char *const *common, const char *const *extra,
                   const char *out_path)
{
        const char *argv[96];
        size_t n = 0;
        pid_t pid;
        int status;

        argv[n++] = mls_bin("audience-gen");
        for (size_t i = 0; common && common[i] && n < 94; i++)
                argv[n++] = common[i];
        for (size_t i = 0; extra && extra[i] && n < 94; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int out = open(out_path ? out_path : "/dev/null",
                               O_WRONLY | O_CREAT | O_TRUNC, 0644);
                int err = open(path_in("gen.log"),
                               O_WRONLY | O_CREAT | O_APPEND, 0644);

                if (out < 0 || err < 0)
                        _exit(127);
                dup2(out, 1);
                dup2(err, 2);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static json_object *load_json(const char *path)
{
        char *buf = NULL;
        json_object *root;

        if (mls_read_file(path, &buf, NULL) < 0)
                return NULL;
        root = json_tokener_parse(buf);
        free(buf);
        return root;
}

static int64_t jget(json_object *root, const char *a, const char *b)
{
        json_object *x = NULL, *y = NULL;

        if (!json_object_object_get_ex(root, a, &x))
                return -1;
        if (!b)
                return json_object_get_int64(x);
        if (!json_object_object_get_ex(x, b, &y))
                return -1;
        return json_object_get_int64(y);
}

/* The emulator's rule (marketo-api.md section 10), written out again. */
static bool email_valid(const char *e)
{
        size_t len = strlen(e);
        const char *at = strchr(e, '@');

        if (len == 0 || len > 255 || !at || at == e || !at[1] ||
            strchr(at + 1, '@'))
                return false;
        for (const char *p = e; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                        return false;
        return true;
}

static bool known_instance(const char *id)
{
        return !strcasecmp(id, "100-AAA-001") ||
               !strcasecmp(id, "200-BBB-002") ||
               !strcasecmp(id, "300-CCC-003");
}

/* What reading the generated topic found. */
struct tally {
        size_t msgs, malformed, unknown, rejected, no_email, member;
        size_t native, identify, track, multi_email, removes;
        size_t with_body_munchkin, upper_case_emails, named_segment;
        json_object *by_key;    /* key -> count */
        json_object *key_part;  /* key -> partition */
        json_object *bad_seen;  /* invalid email -> count */
        json_object *state;     /* "inst\x1flist\x1femail" -> add */
        json_object *payloads;  /* key + payload -> count (member only) */
        size_t split_keys;
        bool bad_in_remove;
};

static void count_key(json_object *map, const char *k)
{
        json_object *v = NULL;
        int64_t n = 0;

        if (json_object_object_get_ex(map, k, &v))
                n = json_object_get_int64(v);
        json_object_object_add(map, k, json_object_new_int64(n + 1));
}

static void tally_raw(struct tally *t, const struct mls_kinspect_msg *m,
                      const char *key)
{
        json_object *v = NULL;

        count_key(t->by_key, key);
        if (!json_object_object_get_ex(t->key_part, key, &v))
                json_object_object_add(t->key_part, key,
                                       json_object_new_int(m->partition));
        else if (json_object_get_int(v) != m->partition)
                t->split_keys++;
}

static void tally_member(struct tally *t, const struct mls_event *ev,
                         const char *key, const char *value)
{
        char k[1024];
        char *lc = mls_strdup_lower(ev->munchkin_id);

        t->member++;
        t->native += ev->format == MLS_EVENT_NATIVE;
        t->identify += strstr(value, "\"type\":\"identify\"") != NULL;
        t->track += strstr(value, "\"type\":\"track\"") != NULL;
        t->named_segment += strstr(value, "\"audience_name\"") != NULL;
        t->with_body_munchkin += strstr(value, "munchkin_id") != NULL;
        t->multi_email += ev->email_cnt >= 2;
        t->removes += ev->action == MLS_EVENT_REMOVE;
        t->no_email += ev->email_cnt == 0;
        if (strstr(value, "@EXAMPLE") || strstr(value, "@Example") ||
            strstr(value, ".EXAMPLE"))
                t->upper_case_emails++;
        snprintf(k, sizeof(k), "%s\t%s", key, value);
        count_key(t->payloads, k);
        for (size_t i = 0; i < ev->email_cnt; i++) {
                bool ok = email_valid(ev->emails[i]);

                if (!ok) {
                        count_key(t->bad_seen, ev->emails[i]);
                        if (ev->action == MLS_EVENT_REMOVE)
                                t->bad_in_remove = true;
                        continue;
                }
                snprintf(k, sizeof(k), "%s\x1f%s\x1f%s", lc, ev->list_name,
                         ev->emails[i]);
                json_object_object_add(t->state, k,
                                       json_object_new_boolean(
                                               ev->action == MLS_EVENT_ADD));
        }
        free(lc);
}

static int on_gen_msg(const struct mls_kinspect_msg *m, void *opaque)
{
        struct tally *t = opaque;
        struct mls_event ev;
        char errstr[256];
        char key[128], *value;
        bool bad = false;

        t->msgs++;
        snprintf(key, sizeof(key), "%.*s", (int)m->key_len,
                 m->key ? (const char *)m->key : "");
        tally_raw(t, m, key);
        if (mls_event_decode(m->key, m->key_len, m->value, m->value_len, &ev,
                             errstr, sizeof(errstr)) != MLS_OK) {
                t->malformed++;
                return 0;
        }
        if (!known_instance(ev.munchkin_id)) {
                t->unknown++;
                mls_event_fini(&ev);
                return 0;
        }
        for (size_t i = 0; i < ev.email_cnt; i++)
                bad |= !email_valid(ev.emails[i]);
        t->rejected += bad;
        value = strndup(m->value, m->value_len);
        if (value)
                tally_member(t, &ev, key, value);
        free(value);
        mls_event_fini(&ev);
        return 0;
}

static void tally_init(struct tally *t)
{
        memset(t, 0, sizeof(*t));
        t->by_key = json_object_new_object();
        t->key_part = json_object_new_object();
        t->bad_seen = json_object_new_object();
        t->state = json_object_new_object();
        t->payloads = json_object_new_object();
}

static void tally_fini(struct tally *t)
{
        json_object_put(t->by_key);
        json_object_put(t->key_part);
        json_object_put(t->bad_seen);
        json_object_put(t->state);
        json_object_put(t->payloads);
}

/* Every (instance, list, email) in expect's "final" is a member after the
 * replay, and the replay has no member "final" lacks. */
static void check_final(json_object *exp, json_object *state)
{
        json_object *final = NULL;
        size_t listed = 0, members = 0;
        char k[1024];

        assert_true(json_object_object_get_ex(exp, "final", &final));
        json_object_object_foreach(final, inst, lists)
        {
                char *lc = mls_strdup_lower(inst);

                json_object_object_foreach(lists, list, emails)
                {
                        for (size_t i = 0;
                             i < json_object_array_length(emails); i++) {
                                json_object *v = NULL;

                                snprintf(k, sizeof(k), "%s\x1f%s\x1f%s", lc,
                                         list,
                                         json_object_get_string(
                                                 json_object_array_get_idx(
                                                         emails, i)));
                                if (!json_object_object_get_ex(state, k, &v) ||
                                    !json_object_get_boolean(v))
                                        fail_msg("final lists %s, replay disagrees",
                                                 list);
                                listed++;
                        }
                }
                free(lc);
        }
        json_object_object_foreach(state, key, add)
        {
                (void)key;
                members += json_object_get_boolean(add);
        }
        assert_true(listed > 0);
        assert_int_equal(listed, members);
}

static void check_invalid_once(const struct tally *t, int64_t rejected)
{
        size_t n = 0;

        json_object_object_foreach(t->bad_seen, email, cnt)
        {
                (void)email;
                assert_int_equal(json_object_get_int64(cnt), 1);
                n++;
        }
        assert_int_equal(n, rejected);
        assert_false(t->bad_in_remove);
}

/* Identical key+payload pairs among the member messages. */
static size_t count_repeats(const struct tally *t)
{
        size_t dups = 0;

        json_object_object_foreach(t->payloads, k, cnt)
        {
                (void)k;
                dups += (size_t)json_object_get_int64(cnt) - 1;
        }
        return dups;
}

static void gen__stream_read_back_matches_expect(void **state)
{
        const char *common[] = { "--brokers", bootstrap, "--topic", TOPIC,
                                 "--instances", INSTANCES, "--expect",
                                 path_in("expect.json"), NULL };
        struct mls_kinspect_conn c = { .brokers = bootstrap,
                                       .timeout_ms = 30000 };
        struct tally t;
        json_object *exp;
        char errstr[256] = "";
        size_t read_cnt = 0;
        enum mls_err err;

        assert_int_equal(run_gen(common, mixed_args, NULL), 0);
        exp = load_json(path_in("expect.json"));
        assert_non_null(exp);

        tally_init(&t);
        err = mls_kinspect_topic_read(&c, TOPIC, on_gen_msg, &t, &read_cnt,
                                      errstr, sizeof(errstr));
        if (err)
                fail_msg("topic read: %s", errstr);
        printf("read %zu: malformed %zu unknown %zu rejected %zu no_email %zu "
               "native %zu identify %zu track %zu multi %zu removes %zu\n",
               read_cnt, t.malformed, t.unknown, t.rejected, t.no_email,
               t.native, t.identify, t.track, t.multi_email, t.removes);

        assert_int_equal(read_cnt, jget(exp, "events", NULL));
        assert_int_equal(t.msgs, read_cnt);
        assert_int_equal(t.malformed, 30);
        assert_int_equal(t.malformed, jget(exp, "dead_letter", "malformed"));
        assert_int_equal(t.unknown, 9);
        assert_int_equal(t.unknown,
                         jget(exp, "dead_letter", "unknown_instance"));
        assert_int_equal(t.rejected, 21); /* 3% of 700 users */
        assert_int_equal(t.rejected,
                         jget(exp, "dead_letter", "rejected_email_messages"));
        assert_int_equal(t.no_email, jget(exp, "no_email", NULL));
        assert_int_equal(count_repeats(&t), jget(exp, "duplicates", NULL));
        assert_true(jget(exp, "duplicates", NULL) >= 140);
        assert_int_equal(jget(exp, "seed", NULL), 11);
        json_object_object_foreach(t.by_key, key, cnt)
        {
                assert_int_equal(json_object_get_int64(cnt),
                                 jget(exp, "by_instance", key));
        }
        assert_int_equal(json_object_object_length(t.by_key), 4);
        assert_int_equal(t.split_keys, 0);

        /* Realism: both formats and both Segment forms, with and without
         * audience names; multi-email, mixed case, body munchkin ids. */
        assert_true(t.native > 1000 && t.identify > 300 && t.track > 300);
        assert_true(t.named_segment > 0 &&
                    t.named_segment < t.identify + t.track);
        assert_true(t.multi_email > 300 && t.removes > 300);
        assert_true(t.upper_case_emails > 100);
        assert_true(t.with_body_munchkin > 0 &&
                    t.with_body_munchkin < t.member);

        check_invalid_once(&t, jget(exp, "dead_letter",
                                    "rejected_email_messages"));
        check_final(exp, t.state);
        tally_fini(&t);
        json_object_put(exp);
}

static bool files_equal(const char *a, const char *b)
{
        char *x = NULL, *y = NULL;
        size_t xl = 0, yl = 0;
        bool eq;

        if (mls_read_file(a, &x, &xl) < 0 || mls_read_file(b, &y, &yl) < 0) {
                free(x);
                return false;
        }
        eq = xl == yl && xl > 0 && !memcmp(x, y, xl);
        free(x);
        free(y);
        return eq;
}

static void gen__same_seed_same_bytes(void **state)
{
        const char *common[] = { "--print", "--instances", INSTANCES, NULL };
        const char *seed5[] = { "--seed", "5", "--events", "500",
                                "--malformed", "25", "--unknown", "3", NULL };
        const char *seed6[] = { "--seed", "6", "--events", "500",
                                "--malformed", "25", "--unknown", "3", NULL };

        assert_int_equal(run_gen(common, seed5, path_in("a.tsv")), 0);
        assert_int_equal(run_gen(common, seed5, path_in("b.tsv")), 0);
        assert_int_equal(run_gen(common, seed6, path_in("c.tsv")), 0);
        assert_true(files_equal(path_in("a.tsv"), path_in("b.tsv")));
        assert_false(files_equal(path_in("a.tsv"), path_in("c.tsv")));
}

static void gen__usage_errors_exit_64(void **state)
{
        static const char *const bad[][5] = {
                { "--print", "--events", "many", NULL },
                { "--print", "--segment-share", "1.5", NULL },
                { "--print", "--no-such-option", NULL },
                { "--print", "--instances", "100-AAA-001,100-aaa-001", NULL },
                { "--print", "--unknown-instance", "100-AAA-001",
                  "--instances", "100-AAA-001" },
                { "--events", "10", NULL }, /* no --brokers, no --print */
                { "--print", "stray", NULL },
        };
        const char *help[] = { "--help", NULL };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *args[6] = { 0 };

                memcpy(args, bad[i], sizeof(bad[i]));
                if (run_gen(args, NULL, NULL) != 64)
                        fail_msg("case %zu (%s %s) did not exit 64", i,
                                 bad[i][0], bad[i][1]);
        }
        assert_int_equal(run_gen(help, NULL, NULL), 0);
}

static void gen__missing_topic_fails(void **state)
{
        const char *args[] = { "--brokers", bootstrap, "--topic",
                               "no-such-topic", "--events", "10", NULL };

        assert_int_equal(run_gen(args, NULL, NULL), 1);
}

static void kinspect__part_lag_arithmetic(void **state)
{
        assert_int_equal(mls_kinspect_part_lag(MLS_KINSPECT_NO_OFFSET, 0, 10),
                         10);
        assert_int_equal(mls_kinspect_part_lag(MLS_KINSPECT_NO_OFFSET, 4, 10),
                         6);
        assert_int_equal(mls_kinspect_part_lag(2, 4, 10), 6);
        assert_int_equal(mls_kinspect_part_lag(7, 4, 10), 3);
        assert_int_equal(mls_kinspect_part_lag(10, 4, 10), 0);
        assert_int_equal(mls_kinspect_part_lag(12, 4, 10), 0);
        assert_int_equal(mls_kinspect_part_lag(0, 0, 0), 0);
}

/* Commit offsets for group with a consumer that never joins it. */
static void commit_offsets(const char *group, const int64_t *offs, int n)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *list;
        char err[256];
        rd_kafka_t *rk;

        assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                           bootstrap, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, err,
                                           sizeof(err)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit",
                                           "false", err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        assert_non_null(rk);
        list = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
                if (offs[p] >= 0)
                        rd_kafka_topic_partition_list_add(list, "lagtest", p)
                                ->offset = offs[p];
        assert_int_equal(rd_kafka_commit(rk, list, 0), 0);
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

static void lag_get_ok(const char *group, struct mls_kinspect_lag *lag)
{
        struct mls_kinspect_conn c = { .brokers = bootstrap,
                                       .timeout_ms = 20000 };
        const char *topics[] = { "lagtest" };
        char errstr[256] = "";

        if (mls_kinspect_lag_get(&c, group, topics, 1, lag, errstr,
                                 sizeof(errstr)) != MLS_OK)
                fail_msg("lag: %s", errstr);
        assert_int_equal(lag->part_cnt, 6);
}

static void kinspect__lag_follows_commits(void **state)
{
        /* Six instances so that several partitions hold messages. */
        const char *args[] = { "--brokers", bootstrap, "--topic", "lagtest",
                               "--instances",
                               "1-A-1,2-B-2,3-C-3,4-D-4,5-E-5,6-F-6",
                               "--events", "600", "--duplicate-share", "0",
                               "--expect", path_in("lag.json"), NULL };
        struct mls_kinspect_lag lag;
        int64_t want[6], high[6] = { 0 }, total = 0, events;
        json_object *exp;

        assert_int_equal(run_gen(args, NULL, NULL), 0);
        exp = load_json(path_in("lag.json"));
        assert_non_null(exp);
        events = jget(exp, "events", NULL);
        json_object_put(exp);

        /* No commits: the whole log is lag. */
        lag_get_ok("it-kinspect-idle", &lag);
        for (size_t i = 0; i < lag.part_cnt; i++) {
                const struct mls_kinspect_part *p = &lag.parts[i];

                assert_string_equal(p->topic, "lagtest");
                assert_int_equal(p->partition, (int32_t)i);
                assert_int_equal(p->committed, MLS_KINSPECT_NO_OFFSET);
                assert_int_equal(p->low, 0);
                assert_int_equal(p->lag, p->high);
                high[i] = p->high;
        }
        assert_int_equal(lag.total, events);
        mls_kinspect_lag_fini(&lag);

        /* Half of every partition, except partition 0: left uncommitted. */
        for (int p = 0; p < 6; p++)
                want[p] = p == 0 ? -1 : high[p] / 2;
        commit_offsets("it-kinspect-half", want, 6);
        lag_get_ok("it-kinspect-half", &lag);
        for (size_t i = 0; i < lag.part_cnt; i++) {
                const struct mls_kinspect_part *p = &lag.parts[i];
                int64_t lag_want = i == 0 ? high[0] : high[i] - want[i];

                assert_int_equal(p->committed, i == 0 ? MLS_KINSPECT_NO_OFFSET :
                                                        want[i]);
                assert_int_equal(p->high, high[i]);
                assert_int_equal(p->lag, lag_want);
                total += lag_want;
        }
        assert_int_equal(lag.total, total);
        assert_true(total > 0 && total < events);
        mls_kinspect_lag_fini(&lag);
}

static int count_cb(const struct mls_kinspect_msg *m, void *opaque)
{
        size_t *n = opaque;

        (*n)++;
        return 0;
}

static int stop_after_five(const struct mls_kinspect_msg *m, void *opaque)
{
        size_t *n = opaque;

        return ++(*n) >= 5;
}

static void kinspect__bad_arguments_and_unknown_topic(void **state)
{
        struct mls_kinspect_conn c = { .brokers = bootstrap,
                                       .timeout_ms = 20000 };
        struct mls_kinspect_conn none = { .brokers = "" };
        const char *topics[] = { "no-such-topic" };
        struct mls_kinspect_lag lag;
        char errstr[256];
        size_t n = 0, read_cnt = 99;

        assert_int_equal(mls_kinspect_lag_get(&c, "g", topics, 1, &lag, errstr,
                                              sizeof(errstr)),
                         MLS_ERR_CONFIG);
        assert_non_null(strstr(errstr, "no-such-topic"));
        assert_int_equal(lag.part_cnt, 0);
        assert_int_equal(mls_kinspect_lag_get(&c, "", topics, 1, &lag, errstr,
                                              sizeof(errstr)),
                         MLS_ERR_CONFIG);
        assert_int_equal(mls_kinspect_lag_get(&none, "g", topics, 1, &lag,
                                              errstr, sizeof(errstr)),
                         MLS_ERR_CONFIG);
        assert_int_equal(mls_kinspect_topic_read(&c, "no-such-topic",
                                                 count_cb, &n, &read_cnt,
                                                 errstr, sizeof(errstr)),
                         MLS_ERR_CONFIG);
        assert_int_equal(read_cnt, 0);
        assert_int_equal(n, 0);
}

static void kinspect__empty_topic_reads_nothing(void **state)
{
        struct mls_kinspect_conn c = { .brokers = bootstrap,
                                       .timeout_ms = 20000 };
        char errstr[256];
        size_t n = 0, read_cnt = 99;

        assert_int_equal(mls_kinspect_topic_read(&c, "empty", count_cb, &n,
                                                 &read_cnt, errstr,
                                                 sizeof(errstr)),
                         MLS_OK);
        assert_int_equal(read_cnt, 0);
        assert_int_equal(n, 0);
}

static void kinspect__callback_can_stop(void **state)
{
        struct mls_kinspect_conn c = { .brokers = bootstrap,
                                       .timeout_ms = 20000 };
        char errstr[256];
        size_t n = 0, read_cnt = 0;

        /* lagtest was filled by the lag test that runs before. */
        assert_int_equal(mls_kinspect_topic_read(&c, "lagtest", stop_after_five,
                                                 &n, &read_cnt, errstr,
                                                 sizeof(errstr)),
                         MLS_ERR_CANCELLED);
        assert_int_equal(n, 5);
        assert_int_equal(read_cnt, 5);
}

/* Produce three messages with headers to "hdrs", partition 1. */
static void produce_with_headers(void)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[256];
        rd_kafka_t *rk;

        assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                           bootstrap, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        assert_non_null(rk);
        for (int i = 0; i < 3; i++) {
                char val[16];

                snprintf(val, sizeof(val), "v%d", i);
                assert_int_equal(
                        rd_kafka_producev(
                                rk, RD_KAFKA_V_TOPIC("hdrs"),
                                RD_KAFKA_V_PARTITION(1),
                                RD_KAFKA_V_KEY("k", 1),
                                RD_KAFKA_V_VALUE(val, strlen(val)),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADER("stage", "decode", 6),
                                RD_KAFKA_V_HEADER("empty", NULL, 0),
                                RD_KAFKA_V_HEADER("n", val, strlen(val)),
                                RD_KAFKA_V_END),
                        0);
        }
        assert_int_equal(rd_kafka_flush(rk, 30000), 0);
        rd_kafka_destroy(rk);
}

static int check_headers(const struct mls_kinspect_msg *m, void *opaque)
{
        size_t *n = opaque;
        const struct mls_kinspect_hdr *h;
        char val[16];

        snprintf(val, sizeof(val), "v%lld", (long long)m->offset);
        assert_string_equal(m->topic, "hdrs");
        assert_int_equal(m->partition, 1);
        assert_int_equal(m->key_len, 1);
        assert_int_equal(m->value_len, strlen(val));
        assert_memory_equal(m->value, val, m->value_len);
        assert_int_equal(m->hdr_cnt, 3);
        h = mls_kinspect_msg_header(m, "stage");
        assert_non_null(h);
        assert_int_equal(h->size, 6);
        assert_memory_equal(h->value, "decode", 6);
        h = mls_kinspect_msg_header(m, "empty");
        assert_non_null(h);
        assert_null(h->value);
        h = mls_kinspect_msg_header(m, "n");
        assert_non_null(h);
        assert_memory_equal(h->value, val, h->size);
        assert_null(mls_kinspect_msg_header(m, "absent"));
        (*n)++;
        return 0;
}

static void kinspect__headers_and_offsets(void **state)
{
        struct mls_kinspect_conn c = { .brokers = bootstrap,
                                       .timeout_ms = 20000 };
        char errstr[256] = "";
        size_t n = 0, read_cnt = 0;

        produce_with_headers();
        if (mls_kinspect_topic_read(&c, "hdrs", check_headers, &n, &read_cnt,
                                    errstr, sizeof(errstr)) != MLS_OK)
                fail_msg("read: %s", errstr);
        assert_int_equal(n, 3);
        assert_int_equal(read_cnt, 3);
}

int main(void)
{
        const struct CMUnitTest gen_tests[] = {
                cmocka_unit_test(gen__stream_read_back_matches_expect),
                cmocka_unit_test(gen__same_seed_same_bytes),
                cmocka_unit_test(gen__usage_errors_exit_64),
                cmocka_unit_test(gen__missing_topic_fails),
        };
        const struct CMUnitTest kinspect_tests[] = {
                cmocka_unit_test(kinspect__part_lag_arithmetic),
                cmocka_unit_test(kinspect__lag_follows_commits),
                cmocka_unit_test(kinspect__bad_arguments_and_unknown_topic),
                cmocka_unit_test(kinspect__empty_topic_reads_nothing),
                cmocka_unit_test(kinspect__callback_can_stop),
                cmocka_unit_test(kinspect__headers_and_offsets),
        };
        int failed;

        setvbuf(stdout, NULL, _IOLBF, 0);
        failed = cmocka_run_group_tests_name("audience_gen", gen_tests,
                                             mock_setup, mock_teardown);
        failed += cmocka_run_group_tests_name("kinspect", kinspect_tests,
                                              mock_setup, mock_teardown);
        return failed ? 1 : 0;
}
