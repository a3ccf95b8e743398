/* SPDX-License-Identifier: Apache-2.0
 *
 * it_control.c - the control-topic plumbing against kafka-mock over TCP:
 * two handles see each other's records in one per-instance order, own
 * records come back, a late reader finds the history by stepping back,
 * instances keep their partition, broker outages turn health off and on,
 * and bad settings are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "../support/support.h"
#include "mlsync/config.h"
#include "mlsync/control.h"
#include "mlsync/util.h"

/* Waits are for conditions, never for a time: the deadline only keeps a
 * broken run from hanging. */
#define WAIT_MS 30000
#define MAX_RECS 512

static struct mls_proc kafka;
static char bootstrap[512];
static char fifo[1300];

/* Instances used across tests; which partition each lands on is decided
 * by mls_ctl_partition_of, and a test picks pairs from this list. */
static const char *const insts[] = { "100-AAA-001", "200-BBB-002",
                                     "300-CCC-003", "400-DDD-004",
                                     "500-EEE-005", "600-FFF-006" };

struct seen {
        char inst[MLS_CTL_KEY_MAX + 1];
        char val[64];
        int32_t partition;
        int64_t offset;
        int64_t ts_ms;
        enum mls_ctl_ts_type ts_type;
        bool own;
        bool history;
};

struct sink {
        struct seen recs[MAX_RECS];
        size_t cnt;
};

static int mock_setup(void **state)
{
        const char *dir = mls_tmpdir("control");
        char log[1300];
        const char *argv[] = { mls_bin("kafka-mock"), "--brokers", "3",
                               "--topic", "ctl.pair:3",
                               "--topic", "ctl.hist:3",
                               "--topic", "ctl.health:2",
                               "--topic", "ctl.empty:2",
                               "--topic", "ctl.misc:3",
                               "--control-fifo", fifo, NULL };

        snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
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

/* A config with only what the control module reads. The two properties
 * are one consumer-only and one producer-only key, which each client must
 * skip or accept as its kind dictates. */
static struct mls_cfg_prop props[] = {
        { "session.timeout.ms", "6000" },
        { "linger.ms", "2" },
};

static void cfg_init(struct mls_cfg *cfg, const char *topic)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->kafka.brokers = bootstrap;
        cfg->kafka.control_topic = (char *)topic;
        cfg->kafka.props = props;
        cfg->kafka.prop_cnt = MLS_ARRAY_LEN(props);
}

static struct mls_ctl *ctl_open(const char *topic, const char *wid,
                                const struct mls_ctl_opts *o)
{
        struct mls_cfg cfg;
        char errstr[512] = "";
        struct mls_ctl *ctl;

        cfg_init(&cfg, topic);
        ctl = mls_ctl_new_opts(&cfg, wid, o, errstr, sizeof(errstr));
        if (!ctl)
                fail_msg("mls_ctl_new(%s): %s", topic, errstr);
        return ctl;
}

static void on_record(void *opaque, const struct mls_ctl_record *rec)
{
        struct sink *s = opaque;
        struct seen *r;

        if (s->cnt == MAX_RECS)
                fail_msg("more than %d records", MAX_RECS);
        r = &s->recs[s->cnt++];
        snprintf(r->inst, sizeof(r->inst), "%s", rec->instance);
        snprintf(r->val, sizeof(r->val), "%.*s", (int)rec->len,
                 (const char *)rec->val);
        r->partition = rec->partition;
        r->offset = rec->offset;
        r->ts_ms = rec->ts_ms;
        r->ts_type = rec->ts_type;
        r->own = rec->own;
        r->history = rec->history;
}

typedef bool cond_fn(void *arg);

/* Poll every handle (each into its sink) until cond holds, sleeping on the
 * wake descriptors in between. @returns whether cond came true. */
static bool pump_until(struct mls_ctl **ctls, struct sink **sinks, size_t n,
                       cond_fn *cond, void *arg)
{
        int64_t deadline = mls_now_ms() + WAIT_MS;

        for (;;) {
                struct pollfd pfd[8];

                for (size_t i = 0; i < n; i++) {
                        int rc = mls_ctl_poll(ctls[i], mls_now_ms(), on_record,
                                              sinks[i]);

                        assert_true(rc >= 0);
                }
                if (cond(arg))
                        return true;
                if (mls_now_ms() > deadline)
                        return false;
                for (size_t i = 0; i < n; i++) {
                        pfd[i].fd = mls_ctl_wake_fd(ctls[i]);
                        pfd[i].events = POLLIN;
                }
                /* The timeout also covers conditions no event announces
                 * (health that turns with time). */
                poll(pfd, (nfds_t)n, 100);
        }
}

static bool all_caught(void *arg)
{
        struct mls_ctl **ctls = arg;

        for (size_t i = 0; ctls[i]; i++) {
                if (!mls_ctl_caught_up(ctls[i]))
                        return false;
        }
        return true;
}

struct count_arg {
        struct sink **sinks;
        size_t n;
        size_t want;
};

static bool all_have(void *arg)
{
        struct count_arg *c = arg;

        for (size_t i = 0; i < c->n; i++) {
                if (c->sinks[i]->cnt < c->want)
                        return false;
        }
        return true;
}

static bool acked(void *arg)
{
        struct mls_ctl **pc = arg;
        struct mls_ctl_stats st;

        mls_ctl_stats(pc[0], &st);
        return st.acked == st.published;
}

/* Two instances of insts[] on different partitions of cnt. */
static void pick_two(int32_t cnt, const char **a, const char **b)
{
        *a = insts[0];
        *b = NULL;
        for (size_t i = 1; i < MLS_ARRAY_LEN(insts); i++) {
                if (mls_ctl_partition_of(insts[i], cnt) !=
                    mls_ctl_partition_of(*a, cnt)) {
                        *b = insts[i];
                        return;
                }
        }
        fail_msg("every instance maps to one partition of %d", (int)cnt);
}

/* The values of inst's records, in the order a sink saw them, joined. */
static void order_of(const struct sink *s, const char *inst, char *out,
                     size_t size)
{
        size_t used = 0;

        out[0] = '\0';
        for (size_t i = 0; i < s->cnt && used < size; i++) {
                if (strcmp(s->recs[i].inst, inst))
                        continue;
                used += (size_t)snprintf(out + used, size - used, "%s,",
                                         s->recs[i].val);
        }
}

/* ---- partitioning ---- */

static void partition__stable_java_compatible_and_spread(void **state)
{
        const char *a, *b;

        /* Kafka's own murmur2 test vector: murmur2("21") = -973932308,
         * made positive by masking the sign bit. */
        assert_int_equal(mls_ctl_partition_of("21", 1000000007),
                         (int32_t)((-973932308 & 0x7fffffff) % 1000000007));
        for (size_t i = 0; i < MLS_ARRAY_LEN(insts); i++) {
                int32_t p = mls_ctl_partition_of(insts[i], 3);

                assert_in_range(p, 0, 2);
                assert_int_equal(p, mls_ctl_partition_of(insts[i], 3));
                assert_int_equal(mls_ctl_partition_of(insts[i], 1), 0);
        }
        pick_two(3, &a, &b);
        assert_int_not_equal(mls_ctl_partition_of(a, 3),
                             mls_ctl_partition_of(b, 3));
        /* Negative control: no partition without partitions. */
        assert_int_equal(mls_ctl_partition_of(insts[0], 0), -1);
        assert_int_equal(mls_ctl_partition_of(NULL, 3), -1);
}

/* ---- two handles ---- */

static void two__same_order_own_read_back(void **state)
{
        static struct sink sa, sb, sc;
        struct sink *sinks[] = { &sa, &sb, &sc };
        struct mls_ctl *ctls[4] = { NULL };
        struct count_arg want = { sinks, 3, 0 };
        const char *i1, *i2;
        char oa[4096], ob[4096], oc[4096];
        struct mls_ctl_stats st;
        int64_t t0 = mls_now_ms();
        const int n = 20;

        memset(&sa, 0, sizeof(sa));
        memset(&sb, 0, sizeof(sb));
        memset(&sc, 0, sizeof(sc));
        ctls[0] = ctl_open("ctl.pair", "wa", NULL);
        ctls[1] = ctl_open("ctl.pair", "wb", NULL);
        ctls[2] = ctl_open("ctl.pair", "wc", NULL); /* reads, never writes */
        assert_int_equal(mls_ctl_partition_cnt(ctls[0]), 3);
        assert_true(pump_until(ctls, sinks, 3, all_caught, ctls));
        assert_int_equal(mls_ctl_last_ack_ms(ctls[0]), -1);

        pick_two(3, &i1, &i2);
        for (int k = 0; k < n; k++) {
                char v[32];

                snprintf(v, sizeof(v), "a%d", k);
                assert_int_equal(mls_ctl_publish(ctls[0], i1, v, strlen(v),
                                                 mls_now_ms()), MLS_OK);
                snprintf(v, sizeof(v), "b%d", k);
                assert_int_equal(mls_ctl_publish(ctls[1], i1, v, strlen(v),
                                                 mls_now_ms()), MLS_OK);
                snprintf(v, sizeof(v), "x%d", k);
                assert_int_equal(mls_ctl_publish(ctls[0], i2, v, strlen(v),
                                                 mls_now_ms()), MLS_OK);
                /* Serve in between so the two writers interleave. */
                for (int j = 0; j < 3; j++)
                        mls_ctl_poll(ctls[j], mls_now_ms(), on_record,
                                     sinks[j]);
        }
        want.want = 3 * (size_t)n;
        assert_true(pump_until(ctls, sinks, 3, all_have, &want));

        /* One order per instance, whoever reads it. */
        order_of(&sa, i1, oa, sizeof(oa));
        order_of(&sb, i1, ob, sizeof(ob));
        order_of(&sc, i1, oc, sizeof(oc));
        assert_string_equal(oa, ob);
        assert_string_equal(oa, oc);
        order_of(&sa, i2, oa, sizeof(oa));
        order_of(&sb, i2, ob, sizeof(ob));
        assert_string_equal(oa, ob);

        for (size_t s = 0; s < 3; s++) {
                int next_a = 0, next_b = 0, next_x = 0;
                int64_t last_off[3] = { -1, -1, -1 };

                assert_int_equal(sinks[s]->cnt, 3 * (size_t)n);
                for (size_t i = 0; i < sinks[s]->cnt; i++) {
                        const struct seen *r = &sinks[s]->recs[i];
                        int k = atoi(r->val + 1);

                        /* Each writer's records in the order it sent them. */
                        if (r->val[0] == 'a')
                                assert_int_equal(k, next_a++);
                        else if (r->val[0] == 'b')
                                assert_int_equal(k, next_b++);
                        else
                                assert_int_equal(k, next_x++);
                        assert_int_equal(r->partition,
                                         mls_ctl_partition_of(r->inst, 3));
                        assert_true(r->offset > last_off[r->partition]);
                        last_off[r->partition] = r->offset;
                        assert_int_equal(r->ts_type, MLS_CTL_TS_CREATE);
                        assert_false(r->history);
                        /* Own means "this handle wrote it", nothing else. */
                        if (s == 0)
                                assert_int_equal(r->own, r->val[0] != 'b');
                        else if (s == 1)
                                assert_int_equal(r->own, r->val[0] == 'b');
                        else
                                assert_false(r->own);
                }
        }
        /* The two instances really went to two partitions. */
        assert_int_not_equal(mls_ctl_partition_of(i1, 3),
                             mls_ctl_partition_of(i2, 3));

        mls_ctl_stats(ctls[0], &st);
        assert_int_equal(st.published, 2 * (uint64_t)n);
        assert_int_equal(st.acked, 2 * (uint64_t)n);
        assert_int_equal(st.own_read, 2 * (uint64_t)n);
        assert_int_equal(st.failed, 0);
        mls_ctl_stats(ctls[2], &st);
        assert_int_equal(st.published, 0);
        assert_int_equal(st.own_read, 0);
        assert_true(mls_ctl_last_ack_ms(ctls[0]) >= t0);
        assert_int_equal(mls_ctl_last_ack_ms(ctls[2]), -1);
        for (int j = 0; j < 3; j++) {
                assert_true(mls_ctl_healthy(ctls[j], mls_now_ms()));
                assert_string_equal(mls_ctl_status(ctls[j]), "ok");
                mls_ctl_destroy(ctls[j]);
        }
}

/* ---- history ---- */

static void history__late_reader_steps_back(void **state)
{
        static struct sink sp, s1, s2;
        struct sink *one[1];
        struct mls_ctl *pc[2] = { NULL };
        struct mls_ctl *lc[3] = { NULL };
        struct mls_ctl_opts o = { 0 };
        struct count_arg want = { one, 1, 0 };
        struct mls_ctl_stats st;
        const char *inst = insts[2];
        int32_t part;
        const int n = 40;

        memset(&sp, 0, sizeof(sp));
        memset(&s1, 0, sizeof(s1));
        memset(&s2, 0, sizeof(s2));
        pc[0] = ctl_open("ctl.hist", "writer", NULL);
        part = mls_ctl_partition_of(inst, mls_ctl_partition_cnt(pc[0]));
        for (int k = 0; k < n; k++) {
                char v[32];

                snprintf(v, sizeof(v), "h%d", k);
                assert_int_equal(mls_ctl_publish(pc[0], inst, v, strlen(v),
                                                 mls_now_ms()), MLS_OK);
        }
        one[0] = &sp;
        assert_true(pump_until(pc, one, 1, acked, pc));
        /* Make every record at least a few ms old for the control below. */
        mls_sleep_ms(50);

        /* A late reader that starts 4 records behind the end must step
         * back (4, 8, 16, 32, 64) until it reaches the log start, since
         * every record is younger than 30 s. */
        o.tail_records = 4;
        lc[0] = ctl_open("ctl.hist", "late", &o);
        assert_false(mls_ctl_caught_up(lc[0]));
        one[0] = &s1;
        assert_true(pump_until(lc, one, 1, all_caught, lc));
        assert_int_equal(s1.cnt, (size_t)n);
        for (int k = 0; k < n; k++) {
                char v[32];

                snprintf(v, sizeof(v), "h%d", k);
                assert_string_equal(s1.recs[k].val, v);
                assert_int_equal(s1.recs[k].offset, k);
                assert_int_equal(s1.recs[k].partition, part);
                assert_true(s1.recs[k].history);
                assert_false(s1.recs[k].own);
        }
        mls_ctl_stats(lc[0], &st);
        assert_true(st.rewinds >= 4);

        /* Records published after the bootstrap arrive as live ones. */
        assert_int_equal(mls_ctl_publish(pc[0], inst, "live", 4,
                                         mls_now_ms()), MLS_OK);
        want.want = (size_t)n + 1;
        assert_true(pump_until(lc, one, 1, all_have, &want));
        assert_string_equal(s1.recs[n].val, "live");
        assert_false(s1.recs[n].history);

        /* Negative control: a reader content with 1 ms of history keeps
         * its first start and misses the older records. */
        o.history_ms = 1;
        lc[1] = ctl_open("ctl.hist", "short", &o);
        one[0] = &s2;
        assert_true(pump_until(&lc[1], one, 1, all_caught, &lc[1]));
        mls_ctl_stats(lc[1], &st);
        assert_int_equal(st.rewinds, 0);
        assert_int_equal(s2.cnt, 4);
        assert_int_equal(s2.recs[0].offset, n + 1 - 4);
        assert_string_equal(s2.recs[3].val, "live");

        mls_ctl_destroy(lc[0]);
        mls_ctl_destroy(lc[1]);
        mls_ctl_destroy(pc[0]);
}

static void history__empty_topic_caught_up_at_once(void **state)
{
        struct mls_ctl *ctl = ctl_open("ctl.empty", "w", NULL);

        /* Nothing to read: caught up before the first poll. */
        assert_true(mls_ctl_caught_up(ctl));
        assert_int_equal(mls_ctl_partition_cnt(ctl), 2);
        assert_true(mls_ctl_healthy(ctl, mls_now_ms()));
        assert_string_equal(mls_ctl_status(ctl), "ok");
        mls_ctl_destroy(ctl);
}

/* ---- health ---- */

static void fifo_cmd(const char *cmd)
{
        int fd = open(fifo, O_WRONLY);
        char line[64];
        int len = snprintf(line, sizeof(line), "%s\n", cmd);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, line, (size_t)len), len);
        close(fd);
}

struct health_arg {
        struct mls_ctl *ctl;
        bool want;
};

static bool health_is(void *arg)
{
        struct health_arg *h = arg;

        return mls_ctl_healthy(h->ctl, mls_now_ms()) == h->want;
}

struct err_arg {
        struct mls_ctl *ctl;
        uint64_t before;
};

static bool reader_erred(void *arg)
{
        struct err_arg *e = arg;
        struct mls_ctl_stats st;

        mls_ctl_stats(e->ctl, &st);
        return st.reader_errors > e->before;
}

static void health__outage_turns_it_off_and_on(void **state)
{
        static struct sink s, s2;
        struct sink *one[] = { &s };
        struct mls_ctl_opts o = { .ack_timeout_ms = 1000,
                                  .reader_timeout_ms = 3000 };
        struct mls_ctl *ctl = ctl_open("ctl.health", "h", &o);
        struct mls_ctl *gone = ctl_open("ctl.health", "gone", &o);
        struct mls_ctl *both[] = { ctl, ctl_open("ctl.health", "idle", &o) };
        struct sink *two[] = { &s, &s2 };
        struct health_arg h = { ctl, true };
        struct health_arg hi = { both[1], false };
        struct err_arg ea = { ctl, 0 };
        struct mls_ctl_stats st;
        int64_t before;

        memset(&s, 0, sizeof(s));
        memset(&s2, 0, sizeof(s2));
        assert_int_equal(mls_ctl_publish(ctl, insts[0], "1", 1, mls_now_ms()),
                         MLS_OK);
        assert_true(pump_until(&ctl, one, 1, acked, &ctl));
        assert_true(pump_until(&ctl, one, 1, health_is, &h));
        before = mls_ctl_last_ack_ms(ctl);
        assert_true(before >= 0);

        mls_ctl_stats(ctl, &st);
        ea.before = st.reader_errors;
        fifo_cmd("down 1");
        fifo_cmd("down 2");
        fifo_cmd("down 3");
        /* Publish only once the outage shows, or the mock could take the
         * record before it reads the commands. */
        assert_true(pump_until(both, two, 2, reader_erred, &ea));
        assert_int_equal(mls_ctl_publish(ctl, insts[0], "2", 1, mls_now_ms()),
                         MLS_OK);
        h.want = false;
        assert_true(pump_until(both, two, 2, health_is, &h));
        if (!strstr(mls_ctl_status(ctl), "no ack"))
                fail_msg("status: %s", mls_ctl_status(ctl));
        /* A handle that publishes nothing learns it from its reader. */
        assert_true(pump_until(both, two, 2, health_is, &hi));
        assert_non_null(strstr(mls_ctl_status(both[1]), "reader failing"));
        /* The lease time must not move while nothing is acked. */
        assert_int_equal(mls_ctl_last_ack_ms(ctl), before);
        /* Destroying with the cluster down and a record unsent ends
         * (bounded flush, then purge) and frees everything. */
        assert_int_equal(mls_ctl_publish(gone, insts[0], "g", 1,
                                         mls_now_ms()), MLS_OK);
        mls_ctl_destroy(gone);

        fifo_cmd("up 1");
        fifo_cmd("up 2");
        fifo_cmd("up 3");
        h.want = true;
        hi.want = true;
        assert_true(pump_until(both, two, 2, health_is, &h));
        assert_true(pump_until(both, two, 2, acked, &ctl));
        assert_true(pump_until(both, two, 2, health_is, &hi));
        mls_ctl_destroy(both[1]);
        assert_true(mls_ctl_last_ack_ms(ctl) > before);
        mls_ctl_stats(ctl, &st);
        assert_int_equal(st.acked, 2);
        assert_int_equal(st.failed, 0);
        mls_ctl_destroy(ctl);
}

/* ---- wake-up descriptor ---- */

static void wake__fd_fires_for_a_delivery(void **state)
{
        struct mls_ctl *ctl = ctl_open("ctl.misc", "wake", NULL);
        struct pollfd pfd = { .fd = mls_ctl_wake_fd(ctl), .events = POLLIN };
        struct mls_ctl_stats st;
        int64_t deadline = mls_now_ms() + WAIT_MS;

        assert_true(pfd.fd >= 0);
        assert_int_equal(mls_ctl_publish(ctl, insts[1], "w", 1, mls_now_ms()),
                         MLS_OK);
        /* Sleep only in poll(2) on the descriptor, as the worker does:
         * the ack must wake us, or this never finishes. */
        do {
                assert_true(mls_now_ms() < deadline);
                assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
                assert_true(mls_ctl_poll(ctl, mls_now_ms(), NULL, NULL) >= 0);
                mls_ctl_stats(ctl, &st);
        } while (st.acked == 0);
        assert_int_equal(st.acked, 1);
        assert_true(mls_ctl_last_ack_ms(ctl) >= 0);
        mls_ctl_destroy(ctl);
}

/* ---- refusals ---- */

static void refuse__bad_settings_and_keys(void **state)
{
        static struct mls_cfg_prop bad[] = { { "no.such.property", "1" } };
        struct mls_ctl_opts o = { .start_timeout_ms = 1500 };
        char long_id[MLS_CTL_KEY_MAX + 2];
        char errstr[512] = "";
        struct mls_cfg cfg;
        struct mls_ctl *ctl;

        cfg_init(&cfg, "ctl.misc");
        cfg.kafka.props = bad;
        cfg.kafka.prop_cnt = 1;
        assert_null(mls_ctl_new_opts(&cfg, "w", &o, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "no.such.property"));

        /* Nobody listens on port 1. (A missing topic cannot serve here:
         * the mock creates any topic a client asks about.) */
        cfg_init(&cfg, "ctl.misc");
        cfg.kafka.brokers = "127.0.0.1:1";
        errstr[0] = '\0';
        assert_null(mls_ctl_new_opts(&cfg, "w", &o, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "no metadata"));

        /* Positive control for the two above: the same config works. */
        cfg_init(&cfg, "ctl.misc");
        ctl = mls_ctl_new_opts(&cfg, "w", &o, errstr, sizeof(errstr));
        assert_non_null(ctl);
        memset(long_id, 'x', sizeof(long_id) - 1);
        long_id[sizeof(long_id) - 1] = '\0';
        assert_int_equal(mls_ctl_publish(ctl, "", "v", 1, mls_now_ms()),
                         MLS_ERR_REJECTED);
        assert_int_equal(mls_ctl_publish(ctl, NULL, "v", 1, mls_now_ms()),
                         MLS_ERR_REJECTED);
        assert_int_equal(mls_ctl_publish(ctl, long_id, "v", 1, mls_now_ms()),
                         MLS_ERR_REJECTED);
        assert_int_equal(mls_ctl_publish(ctl, insts[0], NULL, 3, mls_now_ms()),
                         MLS_ERR_REJECTED);
        assert_int_equal(mls_ctl_publish(ctl, insts[0], NULL, 0, mls_now_ms()),
                         MLS_OK);
        long_id[MLS_CTL_KEY_MAX] = '\0';
        assert_int_equal(mls_ctl_publish(ctl, long_id, "v", 1, mls_now_ms()),
                         MLS_OK);
        /* Destroy with a record possibly unacked: flushed, then freed. */
        mls_ctl_destroy(ctl);
        mls_ctl_destroy(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(partition__stable_java_compatible_and_spread),
                cmocka_unit_test(two__same_order_own_read_back),
                cmocka_unit_test(history__late_reader_steps_back),
                cmocka_unit_test(history__empty_topic_caught_up_at_once),
                cmocka_unit_test(health__outage_turns_it_off_and_on),
                cmocka_unit_test(wake__fd_fires_for_a_delivery),
                cmocka_unit_test(refuse__bad_settings_and_keys),
        };

        return cmocka_run_group_tests_name("control", tests, mock_setup,
                                           mock_teardown);
}
