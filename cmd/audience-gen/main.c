/* SPDX-License-Identifier: Apache-2.0
 *
 * audience-gen - produce a realistic, seed-deterministic stream of
 * audience-membership events (native and Segment Engage) to Kafka, with
 * the oddities mlsync must survive, and write what a worker should make
 * of it to an --expect file.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>

#include "gen.h"
#include "mlsync/log.h"
#include "mlsync/util.h"

#define AG_EXIT_USAGE 64 /* sysexits.h EX_USAGE */
#define AG_EXIT_FAIL 1
#define AG_MAX_PROPS 32
#define AG_MUNCHKIN_MAX 64
#define AG_FLUSH_MS 120000
#define AG_METADATA_MS 15000

static const char *const component = "audience-gen";

struct ag_opts {
        struct gen_opts g;
        const char *brokers;
        const char *topic;
        const char *expect_path;
        char *instances_buf; /* owns the strings in g.instances */
        const char *props[AG_MAX_PROPS * 2];
        size_t prop_cnt;     /* key/value pairs */
        long partitions_hint;
        double rate;
        bool spread;         /* partition by user, not by key */
        bool print;
        bool no_final;
};

/* Delivery bookkeeping, written by the delivery-report callback (which
 * runs inside rd_kafka_poll/flush on this thread). */
struct ag_dr {
        long delivered;
        long failed;
        char first_error[256];
        int32_t partition_of[GEN_MAX_INSTANCES + 1]; /* -1: none yet */
        bool split;   /* one key seen on two partitions */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
        (void)sig;
        stop_requested = 1;
}

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: audience-gen --brokers B [options]\n"
                "       audience-gen --print [options] > stream.tsv\n"
                "\n"
                "Produces a deterministic (by --seed) stream of audience-"
                "membership changes,\n"
                "keyed by Marketo munchkin id, in mlsync's native JSON and as"
                " Segment Engage\n"
                "identify/track events; with --expect it writes what mlsync"
                " should make of it.\n"
                "\n"
                "  --brokers B               bootstrap servers (required"
                " unless --print)\n"
                "  --topic T                 topic (default"
                " audience-membership); must exist\n"
                "  --instances ID,ID,...     munchkin ids the users belong to"
                " (default 123-ABC-456)\n"
                "  --expect FILE             write counts (and final"
                " membership) as JSON\n"
                "  --audiences N             audiences, 1..%d (default 5)\n"
                "  --users N                 users (default 200)\n"
                "  --events N                membership changes before"
                " duplicates and extras\n"
                "                            (default 1000)\n"
                "  --seed S                  random seed (default 1)\n"
                "  --segment-share F         share in Segment format (default"
                " 0.3)\n"
                "  --multi-email-share F     users with 2-3 emails (default"
                " 0.2)\n"
                "  --no-email-share F        users without any email (default"
                " 0.05)\n"
                "  --invalid-email-share F   users whose one add carries an"
                " email Marketo\n"
                "                            rejects (default 0.02)\n"
                "  --duplicate-share F       changes sent twice, not always"
                " adjacent (default 0.03)\n"
                "  --malformed N             extra undecodable messages"
                " (default 0)\n"
                "  --unknown N               extra messages keyed by"
                " --unknown-instance (default 0)\n"
                "  --unknown-instance ID     (default 999-ZZZ-999)\n"
                "  --partitions-hint N       expected partition count: warn"
                " when the topic differs\n"
                "  --rate N                  at most N messages per second"
                " (default: no limit)\n"
                "  --property K=V            extra librdkafka producer"
                " property; repeatable\n"
                "  --print                   write \"key<TAB>payload\" lines"
                " to stdout, produce nothing\n"
                "  --spread-users            partition by user instead of by key\n"
                "                            (each user's changes stay in order;\n"
                "                            one instance then feeds every partition)\n"
                "  --no-final                leave final membership out of"
                " --expect\n"
                "  --help                    this text\n"
                "\n"
                "Total messages = events + duplicates + malformed + unknown."
                " All messages of\n"
                "one instance share a key, hence a partition, so their order"
                " is kept. The mock\n"
                "cluster keeps about 5 MiB per partition: keep --events"
                " below ~5000 per instance\n"
                "there, or add --property compression.codec=lz4.\n"
                "\n"
                "Exit status: 0 when every message was delivered, 64 on a"
                " usage error, 1 otherwise.\n",
                GEN_MAX_AUDIENCES);
}

static int parse_long(const char *name, const char *s, long min, long max,
                      long *out)
{
        char *end;
        long v;

        errno = 0;
        v = s && *s && !isspace((unsigned char)*s) ? strtol(s, &end, 10) : 0;
        if (!s || !*s || isspace((unsigned char)*s) || errno || *end ||
            v < min || v > max) {
                fprintf(stderr, "audience-gen: %s must be an integer in %ld..%ld\n",
                        name, min, max);
                return -1;
        }
        *out = v;
        return 0;
}

static int parse_share(const char *name, const char *s, double *out)
{
        char *end;
        double v;

        errno = 0;
        v = s && *s && !isspace((unsigned char)*s) ? strtod(s, &end) : -1;
        if (!s || !*s || isspace((unsigned char)*s) || errno || *end ||
            !(v >= 0 && v <= 1)) {
                fprintf(stderr, "audience-gen: %s must be a number in 0..1\n",
                        name);
                return -1;
        }
        *out = v;
        return 0;
}

/* Same rule as the decoder: short printable ASCII, no spaces. */
static bool munchkin_ok(const char *s)
{
        size_t len = strlen(s);

        if (len == 0 || len > AG_MUNCHKIN_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
                    *p == ',')
                        return false;
        return true;
}

static int parse_instances(struct ag_opts *o, const char *arg)
{
        char *save = NULL, *tok;

        free(o->instances_buf);
        o->instances_buf = strdup(arg);
        if (!o->instances_buf)
                return -1;
        o->g.instance_cnt = 0;
        for (tok = strtok_r(o->instances_buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
                if (o->g.instance_cnt == GEN_MAX_INSTANCES) {
                        fprintf(stderr, "audience-gen: at most %d instances\n",
                                GEN_MAX_INSTANCES);
                        return -1;
                }
                if (!munchkin_ok(tok)) {
                        fprintf(stderr,
                                "audience-gen: --instances: '%s' is not a munchkin id\n",
                                tok);
                        return -1;
                }
                for (size_t i = 0; i < o->g.instance_cnt; i++) {
                        if (!strcasecmp(o->g.instances[i], tok)) {
                                fprintf(stderr,
                                        "audience-gen: --instances: '%s' given twice\n",
                                        tok);
                                return -1;
                        }
                }
                o->g.instances[o->g.instance_cnt++] = tok;
        }
        if (!o->g.instance_cnt) {
                fprintf(stderr, "audience-gen: --instances is empty\n");
                return -1;
        }
        return 0;
}

static int add_property(struct ag_opts *o, char *arg)
{
        char *eq = strchr(arg, '=');

        if (!eq || eq == arg) {
                fprintf(stderr, "audience-gen: --property wants KEY=VALUE\n");
                return -1;
        }
        if (o->prop_cnt == AG_MAX_PROPS) {
                fprintf(stderr, "audience-gen: at most %d --property options\n",
                        AG_MAX_PROPS);
                return -1;
        }
        *eq = '\0';
        o->props[o->prop_cnt * 2] = arg;
        o->props[o->prop_cnt * 2 + 1] = eq + 1;
        o->prop_cnt++;
        return 0;
}

enum {
        OPT_BROKERS = 256, OPT_TOPIC, OPT_INSTANCES, OPT_EXPECT,
        OPT_AUDIENCES, OPT_USERS, OPT_EVENTS, OPT_SEED, OPT_SEGMENT,
        OPT_MULTI, OPT_NO_EMAIL, OPT_INVALID, OPT_DUP, OPT_MALFORMED,
        OPT_UNKNOWN, OPT_UNKNOWN_INSTANCE, OPT_PARTITIONS_HINT, OPT_RATE,
        OPT_PROPERTY, OPT_PRINT, OPT_NO_FINAL, OPT_SPREAD, OPT_HELP,
};

static const struct option long_opts[] = {
        { "brokers", required_argument, NULL, OPT_BROKERS },
        { "topic", required_argument, NULL, OPT_TOPIC },
        { "instances", required_argument, NULL, OPT_INSTANCES },
        { "expect", required_argument, NULL, OPT_EXPECT },
        { "audiences", required_argument, NULL, OPT_AUDIENCES },
        { "users", required_argument, NULL, OPT_USERS },
        { "events", required_argument, NULL, OPT_EVENTS },
        { "seed", required_argument, NULL, OPT_SEED },
        { "segment-share", required_argument, NULL, OPT_SEGMENT },
        { "multi-email-share", required_argument, NULL, OPT_MULTI },
        { "no-email-share", required_argument, NULL, OPT_NO_EMAIL },
        { "invalid-email-share", required_argument, NULL, OPT_INVALID },
        { "duplicate-share", required_argument, NULL, OPT_DUP },
        { "malformed", required_argument, NULL, OPT_MALFORMED },
        { "unknown", required_argument, NULL, OPT_UNKNOWN },
        { "unknown-instance", required_argument, NULL, OPT_UNKNOWN_INSTANCE },
        { "partitions-hint", required_argument, NULL, OPT_PARTITIONS_HINT },
        { "rate", required_argument, NULL, OPT_RATE },
        { "property", required_argument, NULL, OPT_PROPERTY },
        { "print", no_argument, NULL, OPT_PRINT },
        { "no-final", no_argument, NULL, OPT_NO_FINAL },
        { "spread-users", no_argument, NULL, OPT_SPREAD },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
};

static void opts_defaults(struct ag_opts *o)
{
        memset(o, 0, sizeof(*o));
        o->topic = "audience-membership";
        o->g.unknown_instance = "999-ZZZ-999";
        o->g.audiences = 5;
        o->g.users = 200;
        o->g.events = 1000;
        o->g.seed = 1;
        o->g.segment_share = 0.3;
        o->g.multi_email_share = 0.2;
        o->g.no_email_share = 0.05;
        o->g.invalid_email_share = 0.02;
        o->g.duplicate_share = 0.03;
}

/* One option; @returns 0, 1 for --help, or -1 on a usage error. */
static int parse_one(struct ag_opts *o, int c, char *arg)
{
        long v;

        switch (c) {
        case OPT_BROKERS:
                o->brokers = arg;
                return 0;
        case OPT_TOPIC:
                o->topic = arg;
                return 0;
        case OPT_INSTANCES:
                return parse_instances(o, arg);
        case OPT_EXPECT:
                o->expect_path = arg;
                return 0;
        case OPT_AUDIENCES:
                return parse_long("--audiences", arg, 1, GEN_MAX_AUDIENCES,
                                  &o->g.audiences);
        case OPT_USERS:
                return parse_long("--users", arg, 1, 10000000, &o->g.users);
        case OPT_EVENTS:
                return parse_long("--events", arg, 0, 10000000, &o->g.events);
        case OPT_SEED:
                if (parse_long("--seed", arg, 0, LONG_MAX, &v) < 0)
                        return -1;
                o->g.seed = (uint64_t)v;
                return 0;
        case OPT_SEGMENT:
                return parse_share("--segment-share", arg,
                                   &o->g.segment_share);
        case OPT_MULTI:
                return parse_share("--multi-email-share", arg,
                                   &o->g.multi_email_share);
        case OPT_NO_EMAIL:
                return parse_share("--no-email-share", arg,
                                   &o->g.no_email_share);
        case OPT_INVALID:
                return parse_share("--invalid-email-share", arg,
                                   &o->g.invalid_email_share);
        case OPT_DUP:
                return parse_share("--duplicate-share", arg,
                                   &o->g.duplicate_share);
        case OPT_MALFORMED:
                return parse_long("--malformed", arg, 0, 1000000,
                                  &o->g.malformed);
        case OPT_UNKNOWN:
                return parse_long("--unknown", arg, 0, 1000000,
                                  &o->g.unknown);
        case OPT_UNKNOWN_INSTANCE:
                o->g.unknown_instance = arg;
                return 0;
        case OPT_PARTITIONS_HINT:
                return parse_long("--partitions-hint", arg, 1, 100000,
                                  &o->partitions_hint);
        case OPT_RATE:
                if (parse_long("--rate", arg, 0, 10000000, &v) < 0)
                        return -1;
                o->rate = (double)v;
                return 0;
        case OPT_PROPERTY:
                return add_property(o, arg);
        case OPT_PRINT:
                o->print = true;
                return 0;
        case OPT_SPREAD:
                o->spread = true;
                return 0;
        case OPT_NO_FINAL:
                o->no_final = true;
                return 0;
        case OPT_HELP:
                return 1;
        default:
                return -1;
        }
}

static int check_opts(struct ag_opts *o)
{
        if (!o->g.instance_cnt && parse_instances(o, "123-ABC-456") < 0)
                return -1;
        if (!o->print && (!o->brokers || !*o->brokers)) {
                fprintf(stderr, "audience-gen: --brokers is required (or use --print)\n");
                return -1;
        }
        if (!o->topic || !*o->topic) {
                fprintf(stderr, "audience-gen: --topic is empty\n");
                return -1;
        }
        if (!munchkin_ok(o->g.unknown_instance)) {
                fprintf(stderr, "audience-gen: --unknown-instance is not a munchkin id\n");
                return -1;
        }
        for (size_t i = 0; i < o->g.instance_cnt; i++) {
                if (!strcasecmp(o->g.instances[i], o->g.unknown_instance)) {
                        fprintf(stderr, "audience-gen: --unknown-instance is one of --instances\n");
                        return -1;
                }
        }
        /* Membership is tracked per user and audience, one byte each. */
        if ((double)o->g.users * (double)o->g.audiences > 5e7) {
                fprintf(stderr, "audience-gen: --users times --audiences "
                                "must stay below 50000000\n");
                return -1;
        }
        if (o->g.no_email_share + o->g.invalid_email_share > 1) {
                fprintf(stderr, "audience-gen: --no-email-share plus "
                                "--invalid-email-share exceed 1\n");
                return -1;
        }
        return 0;
}

/* @returns 0, 1 after --help, or -1 on a usage error (message printed). */
static int parse_args(struct ag_opts *o, int argc, char **argv)
{
        int c, rc;

        opts_defaults(o);
        opterr = 0;
        for (;;) {
                c = getopt_long(argc, argv, "", long_opts, NULL);
                if (c == -1)
                        break;
                if (c == '?' || c == ':') {
                        fprintf(stderr, "audience-gen: unknown option or missing value: %s\n",
                                argv[optind - 1]);
                        return -1;
                }
                rc = parse_one(o, c, optarg);
                if (rc)
                        return rc;
        }
        if (optind < argc) {
                fprintf(stderr, "audience-gen: unexpected argument '%s'\n",
                        argv[optind]);
                return -1;
        }
        return check_opts(o);
}

/* librdkafka calls this from its own threads; mls_log_write is safe. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac,
                           const char *buf)
{
        enum mls_log_level lvl = level <= 3 ? MLS_LOG_ERROR :
                                 level == 4 ? MLS_LOG_WARN :
                                 level <= 6 ? MLS_LOG_INFO : MLS_LOG_DEBUG;

        (void)rk;
        mls_log(lvl, component, "librdkafka", MLS_KV_STR("fac", fac),
                MLS_KV_STR("detail", buf));
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque)
{
        struct ag_dr *dr = opaque;
        intptr_t slot = (intptr_t)rkm->_private;

        (void)rk;
        if (rkm->err) {
                if (!dr->failed++)
                        snprintf(dr->first_error, sizeof(dr->first_error),
                                 "%s", rd_kafka_err2str(rkm->err));
                return;
        }
        dr->delivered++;
        if (slot < 0 || slot > GEN_MAX_INSTANCES)
                return;
        if (dr->partition_of[slot] < 0)
                dr->partition_of[slot] = rkm->partition;
        else if (dr->partition_of[slot] != rkm->partition)
                dr->split = true;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
        char err[256];

        if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        mls_log(MLS_LOG_ERROR, component, "config rejected",
                MLS_KV_STR("property", k), MLS_KV_STR("detail", err));
        return -1;
}

/* An idempotent producer: acks=all, no duplicates or reordering from
 * retries, so a key's messages land in produce order. */
static rd_kafka_t *producer_new(const struct ag_opts *o, struct ag_dr *dr)
{
        static const char *const defaults[] = {
                "linger.ms", "5",
                "batch.num.messages", "10000",
                "queue.buffering.max.messages", "200000",
                "message.timeout.ms", "90000",
        };
        static const char *const fixed[] = {
                "enable.idempotence", "true",
                "acks", "all",
        };
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;
        char err[256];
        int rc = conf_set(conf, "bootstrap.servers", o->brokers);

        for (size_t i = 0; !rc && i < MLS_ARRAY_LEN(defaults); i += 2)
                rc = conf_set(conf, defaults[i], defaults[i + 1]);
        for (size_t i = 0; !rc && i < o->prop_cnt; i++)
                rc = conf_set(conf, o->props[i * 2], o->props[i * 2 + 1]);
        for (size_t i = 0; !rc && i < MLS_ARRAY_LEN(fixed); i += 2)
                rc = conf_set(conf, fixed[i], fixed[i + 1]);
        if (rc) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, dr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                mls_log(MLS_LOG_ERROR, component, "producer create failed",
                        MLS_KV_STR("detail", err));
        }
        return rk;
}

/* The topic must exist: asking for all topics never auto-creates one.
 * @returns its partition count, or -1. */
static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t rerr;
        int parts = -1;

        rerr = rd_kafka_metadata(rk, 1, NULL, &md, AG_METADATA_MS);
        if (rerr) {
                mls_log(MLS_LOG_ERROR, component, "metadata failed",
                        MLS_KV_STR("detail", rd_kafka_err2str(rerr)));
                return -1;
        }
        for (int i = 0; i < md->topic_cnt; i++)
                if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err)
                        parts = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
        if (parts <= 0)
                mls_log(MLS_LOG_ERROR, component, "topic does not exist",
                        MLS_KV_STR("topic", topic));
        return parts;
}

/* Hand one message to librdkafka, waiting while its queue is full.
 * Takes ownership of payload. @returns 0 or -1. */
static int produce_one(rd_kafka_t *rk, const char *topic, int32_t partition,
                       const char *key, char *payload, size_t len,
                       intptr_t slot)
{
        rd_kafka_resp_err_t rerr;

        for (;;) {
                rerr = rd_kafka_producev(
                        rk, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_PARTITION(partition),
                        RD_KAFKA_V_KEY(key, strlen(key)),
                        RD_KAFKA_V_VALUE(payload, len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                        RD_KAFKA_V_OPAQUE((void *)slot), RD_KAFKA_V_END);
                if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(rk, 100);
        }
        if (!rerr)
                return 0;
        free(payload);
        mls_log(MLS_LOG_ERROR, component, "produce failed",
                MLS_KV_STR("detail", rd_kafka_err2str(rerr)));
        return -1;
}

/* Hold the pace of --rate: wait until message i is due. */
static void pace(rd_kafka_t *rk, double rate, int64_t start_ms, size_t i)
{
        int64_t due;

        if (rate <= 0)
                return;
        due = start_ms + (int64_t)((double)i * 1000.0 / rate);
        while (!stop_requested) {
                int64_t left = due - mls_now_ms();

                if (left <= 0)
                        break;
                if (rk)
                        rd_kafka_poll(rk, left > 100 ? 100 : (int)left);
                else
                        mls_sleep_ms(left > 100 ? 100 : left);
        }
}

static int print_all(const struct ag_opts *o, const struct gen_world *w)
{
        int64_t start = mls_now_ms();

        for (size_t i = 0; i < w->plan_cnt && !stop_requested; i++) {
                const struct gen_msg *m = &w->plan[i];
                const char *key;
                size_t len;
                char *payload = gen_render(w, m, &key, &len);

                if (!payload)
                        return -1;
                pace(NULL, o->rate, start, i);
                printf("%s\t%s\n", key, payload);
                free(payload);
        }
        return fflush(stdout) == 0 && !stop_requested ? 0 : -1;
}

static int produce_all(const struct ag_opts *o, const struct gen_world *w,
                       rd_kafka_t *rk, struct ag_dr *dr, int parts)
{
        int64_t start = mls_now_ms();
        rd_kafka_resp_err_t rerr;

        for (size_t i = 0; i < w->plan_cnt && !stop_requested; i++) {
                const struct gen_msg *m = &w->plan[i];
                intptr_t slot = m->inst < 0 ? GEN_MAX_INSTANCES : m->inst;
                const char *key;
                size_t len;
                char *payload = gen_render(w, m, &key, &len);

                if (!payload) {
                        mls_log(MLS_LOG_ERROR, component, "out of memory");
                        return -1;
                }
                int32_t part = RD_KAFKA_PARTITION_UA;

                /* Spread: all of one user's messages on one partition, so
                 * each email's changes keep their order. */
                if (o->spread && parts > 0)
                        part = (int32_t)(gen_user_hash(w, m->user) %
                                         (uint64_t)parts);
                pace(rk, o->rate, start, i);
                if (produce_one(rk, o->topic, part, key, payload, len,
                                slot) < 0)
                        return -1;
                rd_kafka_poll(rk, 0);
        }
        rerr = rd_kafka_flush(rk, AG_FLUSH_MS);
        if (rerr || rd_kafka_outq_len(rk) > 0) {
                mls_log(MLS_LOG_ERROR, component, "flush timed out",
                        MLS_KV_INT("undelivered", rd_kafka_outq_len(rk)));
                return -1;
        }
        if (stop_requested) {
                mls_log(MLS_LOG_ERROR, component, "interrupted",
                        MLS_KV_INT("delivered", dr->delivered));
                return -1;
        }
        if (dr->failed || dr->delivered != (long)w->plan_cnt) {
                mls_log(MLS_LOG_ERROR, component, "delivery failed",
                        MLS_KV_INT("failed", dr->failed),
                        MLS_KV_INT("delivered", dr->delivered),
                        MLS_KV_STR("first_error", dr->first_error));
                return -1;
        }
        return 0;
}

static void jint(json_object *o, const char *k, int64_t v)
{
        json_object_object_add(o, k, json_object_new_int64(v));
}

static json_object *expect_json(const struct ag_opts *o,
                                const struct gen_world *w,
                                const struct ag_dr *dr)
{
        json_object *root = json_object_new_object();
        json_object *dl = json_object_new_object();
        json_object *by = json_object_new_object();

        jint(root, "events", (int64_t)w->plan_cnt);
        jint(dl, "malformed", w->malformed_cnt);
        jint(dl, "unknown_instance", w->unknown_cnt);
        jint(dl, "rejected_email_messages", w->invalid_cnt);
        json_object_object_add(root, "dead_letter", dl);
        jint(root, "no_email", w->no_email_cnt);
        jint(root, "membership_changes", w->member_cnt);
        jint(root, "duplicates", w->dup_cnt);
        for (size_t i = 0; i < o->g.instance_cnt; i++)
                jint(by, o->g.instances[i], w->by_instance[i]);
        if (w->by_instance[GEN_MAX_INSTANCES])
                jint(by, o->g.unknown_instance,
                     w->by_instance[GEN_MAX_INSTANCES]);
        json_object_object_add(root, "by_instance", by);
        jint(root, "seed", (int64_t)o->g.seed);
        if (dr) {
                json_object *parts = json_object_new_object();

                for (size_t i = 0; i < o->g.instance_cnt; i++)
                        if (dr->partition_of[i] >= 0)
                                jint(parts, o->g.instances[i],
                                     dr->partition_of[i]);
                if (dr->partition_of[GEN_MAX_INSTANCES] >= 0)
                        jint(parts, o->g.unknown_instance,
                             dr->partition_of[GEN_MAX_INSTANCES]);
                json_object_object_add(root, "partitions", parts);
        }
        return root;
}

/* Write the --expect file atomically (temp file, then rename). */
static int write_expect(const struct ag_opts *o, const struct gen_world *w,
                        const struct ag_dr *dr)
{
        json_object *root = expect_json(o, w, dr);
        char *final = o->no_final ? NULL : gen_final_json(w);
        char tmp[4096];
        FILE *fp;
        int rc = -1;

        if (!root || (!o->no_final && !final))
                goto out;
        if (final)
                json_object_object_add(root, "final",
                                       json_tokener_parse(final));
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", o->expect_path,
                 (long)getpid());
        fp = fopen(tmp, "w");
        if (!fp)
                goto out;
        fprintf(fp, "%s\n",
                json_object_to_json_string_ext(
                        root, JSON_C_TO_STRING_PRETTY |
                                      JSON_C_TO_STRING_SPACED |
                                      JSON_C_TO_STRING_NOSLASHESCAPE));
        if (fclose(fp) != 0 || rename(tmp, o->expect_path) != 0) {
                unlink(tmp);
                goto out;
        }
        rc = 0;
out:
        if (rc)
                mls_log(MLS_LOG_ERROR, component, "expect file not written",
                        MLS_KV_STR("path", o->expect_path),
                        MLS_KV_STR("detail", strerror(errno)));
        free(final);
        json_object_put(root);
        return rc;
}

/* Warn about what would make a test mean less than it seems. */
static void check_layout(const struct ag_opts *o, const struct ag_dr *dr,
                         int parts)
{
        if (o->partitions_hint && parts != o->partitions_hint)
                mls_log(MLS_LOG_WARN, component,
                        "partition count differs from hint",
                        MLS_KV_INT("partitions", parts),
                        MLS_KV_INT("hint", o->partitions_hint));
        if (dr->split && !o->spread)
                mls_log(MLS_LOG_WARN, component,
                        "one key landed on two partitions");
        for (size_t i = 0; i < o->g.instance_cnt; i++)
                for (size_t j = i + 1; j < o->g.instance_cnt; j++)
                        if (dr->partition_of[i] >= 0 &&
                            dr->partition_of[i] == dr->partition_of[j])
                                mls_log(MLS_LOG_INFO, component,
                                        "instances share a partition",
                                        MLS_KV_STR("a", o->g.instances[i]),
                                        MLS_KV_STR("b", o->g.instances[j]),
                                        MLS_KV_INT("partition",
                                                   dr->partition_of[i]));
}

static int run_produce(const struct ag_opts *o, const struct gen_world *w)
{
        struct ag_dr dr;
        rd_kafka_t *rk;
        int parts, rc = -1;

        memset(&dr, 0, sizeof(dr));
        for (size_t i = 0; i <= GEN_MAX_INSTANCES; i++)
                dr.partition_of[i] = -1;
        rk = producer_new(o, &dr);
        if (!rk)
                return -1;
        parts = topic_partitions(rk, o->topic);
        if (parts > 0)
                rc = produce_all(o, w, rk, &dr, parts);
        if (!rc) {
                check_layout(o, &dr, parts);
                if (o->expect_path)
                        rc = write_expect(o, w, &dr);
        }
        rd_kafka_destroy(rk);
        return rc;
}

int main(int argc, char **argv)
{
        struct ag_opts o;
        struct gen_world w;
        int rc;

        mls_log_setup(MLS_LOG_INFO, isatty(2) ? MLS_LOG_TEXT : MLS_LOG_JSON);
        rc = parse_args(&o, argc, argv);
        if (rc) {
                usage(rc > 0 ? stdout : stderr);
                free(o.instances_buf);
                return rc > 0 ? 0 : AG_EXIT_USAGE;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);

        if (gen_world_build(&w, &o.g) < 0) {
                mls_log(MLS_LOG_ERROR, component, "out of memory");
                free(o.instances_buf);
                return AG_EXIT_FAIL;
        }
        if (o.print) {
                rc = print_all(&o, &w);
                if (!rc && o.expect_path)
                        rc = write_expect(&o, &w, NULL);
        } else {
                rc = run_produce(&o, &w);
        }
        if (!rc)
                mls_log(MLS_LOG_INFO, component,
                        o.print ? "printed" : "produced",
                        MLS_KV_STR("topic", o.topic),
                        MLS_KV_INT("messages", w.plan_cnt),
                        MLS_KV_INT("changes", w.member_cnt),
                        MLS_KV_INT("duplicates", w.dup_cnt),
                        MLS_KV_INT("no_email", w.no_email_cnt),
                        MLS_KV_INT("rejected_email", w.invalid_cnt),
                        MLS_KV_INT("malformed", w.malformed_cnt),
                        MLS_KV_INT("unknown_instance", w.unknown_cnt),
                        MLS_KV_INT("seed", o.g.seed));
        gen_world_fini(&w);
        free(o.instances_buf);
        return rc ? AG_EXIT_FAIL : 0;
}
