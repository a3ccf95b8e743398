/* SPDX-License-Identifier: Apache-2.0
 *
 * test_budget.c - the shared rate budget: fair shares, footprints and
 * their ageing, the raise rule, AIMD in log order, daily blocks and record
 * decoding case by case; then a deterministic simulator (several states
 * exchanging records through an in-memory log with delays, each spending
 * as fast as it is allowed) checked by a rolling-window counter, with
 * negative controls that break one assumption each and must be caught.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mlsync/budget.h"

#define INST "123-ABC-456"
#define WIN 20000
#define SAT 1000000L /* a queue that never drains */

/* ------------------------------------------------------------------ */
/* Helpers for the case-by-case tests                                  */

static struct mls_budget *mk(const char *wid, int64_t inc, int b, int c,
                             long q)
{
        struct mls_budget *bud = mls_budget_new(INST, wid, inc, b, c, q, NULL);

        assert_non_null(bud);
        return bud;
}

static struct mls_budget_stats stats(struct mls_budget *bud, int64_t now)
{
        struct mls_budget_stats st;

        mls_budget_get_stats(bud, now, &st);
        return st;
}

static enum mls_err feed(struct mls_budget *bud, const char *s, int64_t log)
{
        return mls_budget_on_record(bud, s, strlen(s), log, log);
}

/* A rate record of another worker, written by hand. */
static char *rate_rec(const char *wid, int64_t inc, int64_t seq, int c,
                      int want, const char *hist, int r606, int64_t rb,
                      int64_t rt)
{
        char *s = malloc(512);

        assert_non_null(s);
        snprintf(s, 512,
                 "{\"v\":1,\"kind\":\"rate\",\"inst\":\"" INST "\","
                 "\"wid\":\"%s\",\"inc\":%lld,\"seq\":%lld,\"c\":%d,"
                 "\"want\":%d,\"cc\":1,\"infl\":0,\"hist\":[%s],"
                 "\"r606\":%d,\"r615\":0,\"aimd\":{\"rb\":%lld,"
                 "\"rt\":%lld,\"cb\":8000,\"ct\":-1}}",
                 wid, (long long)inc, (long long)seq, c, want, hist, r606,
                 (long long)rb, (long long)rt);
        return s;
}

static void feed_free(struct mls_budget *bud, char *s, int64_t log)
{
        assert_int_equal(feed(bud, s, log), MLS_OK);
        free(s);
}

/* The next record of bud; fails the test when none is due. */
static char *take(struct mls_budget *bud, int64_t now,
                  enum mls_budget_topic want)
{
        enum mls_budget_topic topic;
        char *s = mls_budget_next_record(bud, now, &topic);

        assert_non_null(s);
        assert_int_equal(topic, want);
        return s;
}

/* Deliver every due record of every state to every state, in the order
 * produced, at log time t; repeat until nothing is due. */
static void exchange(struct mls_budget **buds, int n, int64_t t)
{
        for (int round = 0; round < 8; round++) {
                char *recs[64];
                int k = 0;

                for (int i = 0; i < n; i++) {
                        enum mls_budget_topic topic;
                        char *s;

                        while (k < 64 &&
                               (s = mls_budget_next_record(buds[i], t,
                                                           &topic)))
                                recs[k++] = s;
                }
                if (k == 0)
                        return;
                for (int j = 0; j < k; j++) {
                        for (int i = 0; i < n; i++)
                                assert_int_equal(feed(buds[i], recs[j], t),
                                                 MLS_OK);
                        free(recs[j]);
                }
        }
}

static void start_all(struct mls_budget **buds, int n, long queued,
                      int64_t t)
{
        for (int i = 0; i < n; i++) {
                mls_budget_set_demand(buds[i], queued, t);
                mls_budget_start(buds[i], t);
        }
}

/* ------------------------------------------------------------------ */
/* Fair shares                                                         */

static void fair__equal_demand_splits_evenly(void **state)
{
        struct mls_budget *b[4] = {mk("a", 1, 80, 8, 0), mk("b", 1, 80, 8, 0),
                                   mk("c", 1, 80, 8, 0), mk("d", 1, 80, 8, 0)};

        (void)state;
        start_all(b, 4, SAT, 1000);
        for (int64_t t = 1000; t <= 4000; t += 250)
                exchange(b, 4, t);
        for (int i = 0; i < 4; i++) {
                struct mls_budget_stats st = stats(b[i], 4000);

                assert_int_equal(st.target, 20);
                assert_int_equal(st.conf, 20);
                assert_int_equal(st.members, 3);
                assert_int_equal(st.cc, 2); /* 8 * 20 / 80 */
                assert_int_equal(mls_budget_allowance(b[i], 4000), 2);
                mls_budget_destroy(b[i]);
        }
}

static void fair__small_demand_keeps_its_want_rest_split(void **state)
{
        struct mls_budget *b[3] = {mk("a", 1, 80, 8, 0), mk("b", 1, 80, 8, 0),
                                   mk("c", 1, 80, 8, 0)};
        int sum = 0, lo = 80, hi = 0;

        (void)state;
        start_all(b, 3, SAT, 1000);
        mls_budget_set_demand(b[1], 5, 1000);
        for (int64_t t = 1000; t <= 4000; t += 250)
                exchange(b, 3, t);
        assert_int_equal(stats(b[1], 4000).target, 5);
        for (int i = 0; i < 3; i++) {
                struct mls_budget_stats st = stats(b[i], 4000);

                sum += st.target;
                if (i != 1) {
                        lo = st.target < lo ? st.target : lo;
                        hi = st.target > hi ? st.target : hi;
                }
                assert_int_equal(st.conf, st.target);
        }
        /* 75 over two: 37 and 38, never 36/39; nothing left unshared. */
        assert_int_equal(sum, 80);
        assert_int_equal(lo, 37);
        assert_int_equal(hi, 38);
        for (int i = 0; i < 3; i++)
                mls_budget_destroy(b[i]);
}

/* ------------------------------------------------------------------ */
/* Footprints                                                          */

static void footprint__hist_ages_out_by_log_time(void **state)
{
        struct mls_budget *b = mk("me", 1, 80, 8, 0);
        /* 10 calls at age 0 s and 20 at age 5 s, ceiling 7. */
        const char *h = "10,0,0,0,0,20,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0";
        int64_t t = 100000;

        (void)state;
        feed_free(b, rate_rec("x", 1, 1, 7, 0, h, 0, 80000, -1), t);
        assert_int_equal(stats(b, t).others, 30);
        /* A record of a third worker moves the replica clock. */
        feed_free(b, rate_rec("y", 1, 1, 0, 0, "0", 0, 80000, -1),
                  t + 15999);
        assert_int_equal(stats(b, t).others, 30);
        feed_free(b, rate_rec("y", 1, 2, 0, 0, "0", 0, 80000, -1),
                  t + 16000);
        assert_int_equal(stats(b, t).others, 10); /* the age-5 calls left */
        feed_free(b, rate_rec("y", 1, 3, 0, 0, "0", 0, 80000, -1),
                  t + 20999);
        assert_int_equal(stats(b, t).others, 10);
        feed_free(b, rate_rec("y", 1, 4, 0, 0, "0", 0, 80000, -1),
                  t + 21000);
        /* Calls gone; the promise counts until the lease has lapsed. */
        assert_int_equal(stats(b, t).others, 7);
        feed_free(b, rate_rec("y", 1, 5, 0, 0, "0", 0, 80000, -1),
                  t + 26000);
        assert_int_equal(stats(b, t).others, 7);
        feed_free(b, rate_rec("y", 1, 6, 0, 0, "0", 0, 80000, -1),
                  t + 26001);
        assert_int_equal(stats(b, t).others, 0);
        mls_budget_destroy(b);
}

static void footprint__crashed_share_reused_only_after_it_ages(void **state)
{
        struct mls_budget *b[2] = {mk("a", 1, 80, 8, 0), mk("b", 1, 80, 8, 0)};
        int64_t t, crash;

        (void)state;
        start_all(b, 2, SAT, 1000);
        for (t = 1000; t <= 30000; t += 250) {
                exchange(b, 2, t);
                while (mls_budget_try_spend(b[1], t))
                        mls_budget_on_reply(b[1], 0, t, t + 1);
        }
        assert_int_equal(stats(b[0], t).conf, 40);
        crash = t;
        /* b is gone: a alone keeps heartbeating. */
        for (; t <= crash + 40000; t += 250) {
                exchange(b, 1, t);
                /* Lease (5 s) plus window and margin (21 s) after b's
                 * last record, sent at most a heartbeat and a tick before
                 * the crash: its 40 still count. */
                if (t <= crash - 1250 + 26000)
                        assert_true(stats(b[0], t).conf <= 40);
        }
        assert_int_equal(stats(b[0], t).conf, 80);
        assert_int_equal(stats(b[0], t).members, 0);
        mls_budget_destroy(b[0]);
        mls_budget_destroy(b[1]);
}

/* ------------------------------------------------------------------ */
/* The raise rule                                                      */

static void raise__only_after_read_back(void **state)
{
        struct mls_budget *b = mk("me", 1, 80, 8, 0);
        char *s;

        (void)state;
        mls_budget_set_demand(b, SAT, 0);
        assert_int_equal(mls_budget_allowance(b, 0), 0); /* not started */
        mls_budget_start(b, 0);
        s = take(b, 0, MLS_BUDGET_TOPIC_RATE);
        assert_non_null(strstr(s, "\"c\":80"));
        assert_int_equal(mls_budget_allowance(b, 10), 0);
        assert_int_equal(stats(b, 10).conf, 0);
        assert_int_equal(feed(b, s, 50), MLS_OK);
        free(s);
        assert_int_equal(stats(b, 60).conf, 80);
        assert_int_equal(mls_budget_allowance(b, 60), 8); /* in-flight cap */
        mls_budget_destroy(b);
}

static void raise__second_of_two_racing_claims_is_clipped(void **state)
{
        struct mls_budget *a = mk("a", 1, 80, 8, 0), *b = mk("b", 1, 80, 8, 0);
        char *ra, *rb;

        (void)state;
        /* Each claims all 80 before seeing the other. */
        mls_budget_set_demand(a, SAT, 0);
        mls_budget_set_demand(b, SAT, 0);
        mls_budget_start(a, 0);
        mls_budget_start(b, 0);
        ra = take(a, 0, MLS_BUDGET_TOPIC_RATE);
        rb = take(b, 0, MLS_BUDGET_TOPIC_RATE);
        assert_non_null(strstr(ra, "\"c\":80"));
        assert_non_null(strstr(rb, "\"c\":80"));
        /* The log holds a's claim first. */
        assert_int_equal(feed(a, ra, 100), MLS_OK);
        assert_int_equal(feed(b, ra, 100), MLS_OK);
        assert_int_equal(feed(a, rb, 101), MLS_OK);
        assert_int_equal(feed(b, rb, 101), MLS_OK);
        free(ra);
        free(rb);
        assert_int_equal(stats(a, 101).conf, 40); /* lowered to target */
        assert_int_equal(stats(b, 101).conf, 0);  /* a's 80 was ahead */
        assert_true(stats(b, 101).claims_clipped >= 1);
        mls_budget_destroy(a);
        mls_budget_destroy(b);
}

static void raise__capped_by_later_lower_promise(void **state)
{
        struct mls_budget *a = mk("a", 1, 80, 8, 0);
        char *claim, *lower;

        (void)state;
        mls_budget_set_demand(a, SAT, 0);
        mls_budget_start(a, 0);
        claim = take(a, 0, MLS_BUDGET_TOPIC_RATE); /* c = 80 */
        /* A newcomer's demand arrives before our claim is back. */
        feed_free(a, rate_rec("z", 1, 1, 0, 80, "0", 0, 80000, -1), 10);
        assert_int_equal(stats(a, 10).target, 40);
        /* The next heartbeat promises only the new target. */
        lower = take(a, 1000, MLS_BUDGET_TOPIC_RATE);
        assert_non_null(strstr(lower, "\"c\":40"));
        feed_free(a, rate_rec("z", 1, 2, 0, 0, "0", 0, 80000, -1), 1010);
        /* z wants nothing now: target is 80 again, but we promised 40
         * after the claim, so its read-back raises only to 40. */
        assert_int_equal(stats(a, 1010).target, 80);
        assert_int_equal(feed(a, claim, 1100), MLS_OK);
        assert_int_equal(stats(a, 1100).conf, 40);
        free(claim);
        free(lower);
        mls_budget_destroy(a);
}

/* ------------------------------------------------------------------ */
/* AIMD in log order                                                   */

static void aimd__same_log_same_state_on_two_replicas(void **state)
{
        struct mls_budget *x = mk("x", 1, 80, 8, 0), *y = mk("y", 1, 80, 8, 0);
        struct mls_budget *late = mk("late", 1, 80, 8, 0);
        struct {
                int64_t t;
                int r606;
        } log[] = {{1000, 1}, {2000, 1}, {24000, 1}, {30000, 2},
                   {31000, 1}, {33000, 3}, {40000, 2}, {41000, 1}};
        int64_t cut_t0 = -1;
        char *s;

        (void)state;
        for (size_t i = 0; i < sizeof(log) / sizeof(log[0]); i++) {
                s = rate_rec("z", 1, (int64_t)i + 1, 10, 10, "0",
                             log[i].r606, 80000, -1);
                feed(x, s, log[i].t);
                feed(y, s, log[i].t);
                free(s);
                assert_int_equal(stats(x, 0).beff_milli,
                                 stats(y, 0).beff_milli);
                assert_int_equal(stats(x, 0).aimd_t0_ms,
                                 stats(y, 0).aimd_t0_ms);
        }
        /* 1 + 1 at 1-2 s, then one more 22 s later: only 1 in 20 s.
         * 2 + 1 at 30-31 s: cut to 64 at 31 s (those three are spent).
         * 3 at 33 s: within the 5 s guard, no cut, but still evidence:
         * with 2 more at 40 s, cut to 51.2. 1 at 41 s: fresh count 1. */
        cut_t0 = stats(x, 0).aimd_t0_ms;
        assert_int_equal(cut_t0, 40000);
        assert_int_equal(stats(x, 0).beff_milli, 51200);
        assert_int_equal(stats(x, 0).rate_decreases, 2);
        /* Additive recovery: hold 20 s, then +8 per 20 s, up to 80. */
        s = rate_rec("z", 1, 100, 10, 10, "0", 0, 80000, -1);
        feed(x, s, cut_t0 + 30000);
        free(s);
        assert_int_equal(stats(x, 0).beff_milli, 51200 + 4000);
        s = rate_rec("z", 1, 101, 10, 10, "0", 0, 80000, -1);
        feed(x, s, cut_t0 + 200000);
        free(s);
        assert_int_equal(stats(x, 0).beff, 80);

        /* A late joiner adopts the state a record carries. */
        mls_budget_set_demand(y, SAT, 50000);
        mls_budget_start(y, 50000);
        s = take(y, 50000, MLS_BUDGET_TOPIC_RATE);
        assert_int_equal(feed(late, s, 50000), MLS_OK);
        free(s);
        assert_int_equal(stats(late, 0).aimd_t0_ms, 40000);
        assert_int_equal(stats(late, 0).beff_milli, stats(y, 0).beff_milli);
        mls_budget_destroy(x);
        mls_budget_destroy(y);
        mls_budget_destroy(late);
}

static void aimd__own_606s_apply_when_read_back(void **state)
{
        struct mls_budget *x = mk("x", 1, 80, 8, 0), *y = mk("y", 1, 80, 8, 0);
        struct mls_budget *b[2] = {x, y};
        char *s;

        (void)state;
        start_all(b, 2, SAT, 0);
        for (int64_t t = 0; t <= 2000; t += 250)
                exchange(b, 2, t);
        for (int i = 0; i < 3; i++) {
                assert_true(mls_budget_try_spend(x, 2000));
                mls_budget_on_reply(x, 606, 2000, 2100);
        }
        /* Counted locally, not applied until the record is in the log. */
        assert_int_equal(stats(x, 2100).beff, 80);
        s = take(x, 2300, MLS_BUDGET_TOPIC_RATE);
        assert_non_null(strstr(s, "\"r606\":3"));
        feed(y, s, 2400);
        feed(x, s, 2400);
        free(s);
        assert_int_equal(stats(x, 2400).beff, 64);
        assert_int_equal(stats(y, 2400).beff, 64);
        assert_int_equal(stats(x, 2400).target, 32);
        assert_true(stats(x, 2400).conf <= 32);
        /* A 606 for a call sent before the cut is not evidence again. */
        assert_true(mls_budget_try_spend(x, 2400));
        mls_budget_on_reply(x, 606, 2300, 2500);
        s = take(x, 2700, MLS_BUDGET_TOPIC_RATE);
        assert_non_null(strstr(s, "\"r606\":0"));
        free(s);
        mls_budget_destroy(x);
        mls_budget_destroy(y);
}

/* ------------------------------------------------------------------ */
/* Concurrency split                                                   */

static void conc__cap_follows_share_with_floor_one(void **state)
{
        struct mls_budget *b[2] = {mk("a", 1, 80, 8, 0), mk("b", 1, 80, 8, 0)};

        (void)state;
        start_all(b, 2, SAT, 0);
        mls_budget_set_demand(b[1], 5, 0);
        for (int64_t t = 0; t <= 3000; t += 250)
                exchange(b, 2, t);
        assert_int_equal(stats(b[0], 3000).conf, 75);
        assert_int_equal(stats(b[0], 3000).cc, 7); /* floor(8 * 75 / 80) */
        assert_int_equal(stats(b[1], 3000).cc, 1); /* floor 0, at least 1 */
        mls_budget_destroy(b[0]);
        mls_budget_destroy(b[1]);
}

/* ------------------------------------------------------------------ */
/* Daily blocks                                                        */

static void daily__blocks_claimed_as_allowance_runs_low(void **state)
{
        struct mls_budget *b = mk("me", 1, 80, 8, 120);
        long used = 0;
        char *s;

        (void)state;
        mls_budget_set_demand(b, SAT, 0);
        mls_budget_start(b, 0);
        s = take(b, 0, MLS_BUDGET_TOPIC_RATE);
        feed(b, s, 1);
        free(s);
        /* No day yet: no block, no call. */
        assert_int_equal(mls_budget_allowance(b, 2), 0);
        mls_budget_set_day(b, 20000);
        s = take(b, 2, MLS_BUDGET_TOPIC_QUOTA);
        assert_non_null(strstr(s, "\"total\":50"));
        feed(b, s, 3);
        free(s);
        assert_int_equal(stats(b, 3).daily_confirmed, 50);
        for (int64_t t = 3; t < 400000; t += 100) {
                enum mls_budget_topic topic;

                while ((s = mls_budget_next_record(b, t, &topic))) {
                        feed(b, s, t);
                        free(s);
                }
                while (mls_budget_try_spend(b, t)) {
                        used++;
                        mls_budget_on_reply(b, 0, t, t);
                }
        }
        /* 50 + 50 + the last 20: exactly the share, never more. */
        assert_int_equal(used, 120);
        assert_int_equal(stats(b, 0).daily_confirmed, 120);
        mls_budget_set_day(b, 20001);
        assert_int_equal(stats(b, 0).daily_used, 0);
        mls_budget_destroy(b);
}

static void daily__lost_race_is_retracted_then_tail_claimed(void **state)
{
        struct mls_budget *a = mk("a", 1, 80, 8, 60);
        struct mls_budget *b = mk("b", 1, 80, 8, 60);
        char *qa, *qb, *s;

        (void)state;
        mls_budget_start(a, 0);
        mls_budget_start(b, 0);
        mls_budget_set_day(a, 7);
        mls_budget_set_day(b, 7);
        qa = take(a, 0, MLS_BUDGET_TOPIC_QUOTA);
        qb = take(b, 0, MLS_BUDGET_TOPIC_QUOTA);
        feed(a, qa, 10);
        feed(b, qa, 10);
        feed(a, qb, 11);
        feed(b, qb, 11);
        free(qa);
        free(qb);
        assert_int_equal(stats(a, 11).daily_confirmed, 50);
        assert_int_equal(stats(b, 11).daily_confirmed, 0);
        /* b takes its claim back (total 0) ... */
        s = take(b, 20, MLS_BUDGET_TOPIC_QUOTA);
        assert_non_null(strstr(s, "\"total\":0"));
        feed(a, s, 30);
        feed(b, s, 30);
        free(s);
        /* ... and claims only what is left of the 60. */
        s = take(b, 40, MLS_BUDGET_TOPIC_QUOTA);
        assert_non_null(strstr(s, "\"total\":10"));
        feed(a, s, 50);
        feed(b, s, 50);
        free(s);
        assert_int_equal(stats(b, 50).daily_confirmed, 10);
        mls_budget_destroy(a);
        mls_budget_destroy(b);
}

static void daily__old_incarnation_keeps_counting(void **state)
{
        struct mls_budget *old = mk("w", 1, 80, 8, 80), *neu;
        char *s;

        (void)state;
        mls_budget_start(old, 0);
        mls_budget_set_day(old, 7);
        s = take(old, 0, MLS_BUDGET_TOPIC_QUOTA);
        feed(old, s, 10);
        mls_budget_destroy(old); /* crash */
        neu = mk("w", 2, 80, 8, 80);
        feed(neu, s, 10); /* replayed from the quota topic */
        free(s);
        mls_budget_start(neu, 100);
        mls_budget_set_day(neu, 7);
        s = take(neu, 100, MLS_BUDGET_TOPIC_QUOTA);
        assert_non_null(strstr(s, "\"total\":30"));
        free(s);
        mls_budget_destroy(neu);
}

static void daily__607_stops_everyone_until_next_day(void **state)
{
        struct mls_budget *b[2] = {mk("a", 1, 80, 8, 1000),
                                   mk("b", 1, 80, 8, 1000)};

        (void)state;
        mls_budget_set_day(b[0], 7);
        mls_budget_set_day(b[1], 7);
        start_all(b, 2, SAT, 0);
        for (int64_t t = 0; t <= 2000; t += 250)
                exchange(b, 2, t);
        assert_true(mls_budget_allowance(b[1], 2000) > 0);
        assert_true(mls_budget_try_spend(b[0], 2000));
        mls_budget_on_reply(b[0], 607, 2000, 2100);
        assert_int_equal(mls_budget_allowance(b[0], 2100), 0);
        exchange(b, 2, 2200);
        assert_true(stats(b[1], 2200).stopped_607);
        assert_int_equal(mls_budget_allowance(b[1], 2200), 0);
        mls_budget_set_day(b[1], 8);
        assert_false(stats(b[1], 2300).stopped_607);
        mls_budget_destroy(b[0]);
        mls_budget_destroy(b[1]);
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */

static void decode__bad_and_unknown_version_counted_and_skipped(void **state)
{
        struct mls_budget *b = mk("me", 1, 80, 8, 0);
        const char *bad[] = {
                "{",
                "[]",
                "not json",
                "{\"v\":1}",
                "{\"v\":\"1\",\"kind\":\"rate\"}",
                "{\"v\":1,\"kind\":\"rate\",\"inst\":\"" INST "\",\"wid\":"
                "\"x\",\"inc\":1,\"seq\":1,\"c\":-1,\"want\":0,\"cc\":0,"
                "\"infl\":0,\"hist\":[0],\"r606\":0,\"r615\":0,\"aimd\":"
                "{\"rb\":1,\"rt\":-1,\"cb\":1,\"ct\":-1}}",
                "{\"v\":1,\"kind\":\"rate\",\"inst\":\"" INST "\",\"wid\":"
                "\"x\",\"inc\":1,\"seq\":1,\"c\":1,\"want\":0,\"cc\":0,"
                "\"infl\":0,\"hist\":[],\"r606\":0,\"r615\":0,\"aimd\":"
                "{\"rb\":1,\"rt\":-1,\"cb\":1,\"ct\":-1}}",
                "{\"v\":1,\"kind\":\"lease\",\"inst\":\"" INST "\","
                "\"wid\":\"x\",\"inc\":1,\"seq\":1}",
                "{\"v\":1,\"kind\":\"quota\",\"inst\":\"" INST "\","
                "\"wid\":\"x\",\"inc\":1,\"seq\":1,\"day\":1,\"total\":5,"
                "\"used\":1,\"f607\":0}",
        };
        char *good = rate_rec("x", 1, 1, 5, 5, "0", 0, 80000, -1);
        char trailing[600], *v2;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(feed(b, bad[i], 1000), MLS_ERR_BAD_MESSAGE);
        snprintf(trailing, sizeof(trailing), "%s{}", good);
        assert_int_equal(feed(b, trailing, 1000), MLS_ERR_BAD_MESSAGE);
        /* The valid record with a NUL inside its length. */
        assert_int_equal(mls_budget_on_record(b, good, strlen(good) + 1, 1000,
                                              1000),
                         MLS_ERR_BAD_MESSAGE);
        v2 = strdup(good);
        v2[5] = '2'; /* "v":2 */
        assert_int_equal(feed(b, v2, 1000), MLS_ERR_BAD_MESSAGE);
        assert_int_equal(stats(b, 1000).records_bad,
                         sizeof(bad) / sizeof(bad[0]) + 2);
        assert_int_equal(stats(b, 1000).records_version, 1);
        assert_int_equal(stats(b, 1000).members, 0);
        assert_int_equal(stats(b, 1000).others, 0);
        /* Another instance's record: ignored, not an error. */
        v2 = realloc(v2, strlen(good) + 8);
        strcpy(v2, good);
        memcpy(strstr(v2, INST), "999", 3);
        assert_int_equal(feed(b, v2, 1000), MLS_OK);
        assert_int_equal(stats(b, 1000).records_foreign, 1);
        assert_int_equal(stats(b, 1000).members, 0);
        free(v2);
        free(good);
        mls_budget_destroy(b);
}

static void decode__unreadable_record_holds_raises_until_aged(void **state)
{
        struct mls_budget *b = mk("me", 1, 80, 8, 0);
        const char *v9 = "{\"v\":9,\"anything\":true}";
        int64_t t;

        (void)state;
        mls_budget_set_demand(b, SAT, 0);
        mls_budget_start(b, 0);
        assert_int_equal(feed(b, v9, 1000), MLS_ERR_BAD_MESSAGE);
        assert_true(stats(b, 1000).doubt);
        /* A worker we cannot read may hold any share: no raise until its
         * record would have aged out (5 + 20 + 1 s after it). */
        for (t = 1000; t < 27000; t += 250) {
                char *s;
                enum mls_budget_topic topic;

                while ((s = mls_budget_next_record(b, t, &topic))) {
                        feed(b, s, t);
                        free(s);
                }
                assert_int_equal(stats(b, t).conf, 0);
        }
        for (; t < 29000; t += 250) {
                char *s;
                enum mls_budget_topic topic;

                while ((s = mls_budget_next_record(b, t, &topic))) {
                        feed(b, s, t);
                        free(s);
                }
        }
        assert_false(stats(b, t).doubt);
        assert_int_equal(stats(b, t).conf, 80);
        mls_budget_destroy(b);
}

static void decode__own_identity_used_elsewhere_is_bad(void **state)
{
        struct mls_budget *b = mk("me", 1, 80, 8, 0);
        char *s = rate_rec("me", 1, 99, 80, 80, "0", 0, 80000, -1);

        (void)state;
        mls_budget_start(b, 0);
        assert_int_equal(feed(b, s, 10), MLS_ERR_BAD_MESSAGE);
        assert_true(stats(b, 10).doubt);
        free(s);
        mls_budget_destroy(b);
}

/* ------------------------------------------------------------------ */
/* Simulator                                                           */

#define SIM_MAXW 16
#define SIM_TICK 10

struct lrec {
        char *json;
        int owner;
        int64_t append_ms;
        enum mls_budget_topic topic;
};

struct reply {
        int64_t at, sent;
};

struct sworker {
        struct mls_budget *bud;
        char wid[16];
        int64_t inc;
        bool on;
        bool naive;           /* spends its target, ignores footprints */
        int64_t cut_from, cut_to; /* off the control topic */
        size_t cursor;
        int64_t visible_at;   /* when log[cursor] reaches this reader */
        int64_t last_append;
        struct reply rep[64];
        int nrep;
        long queued;
        int64_t naive_log[256]; /* naive worker's own slot ends */
        int nnaive;
};

struct sim {
        struct mls_budget_params p;
        int B, C;
        long Q;
        int64_t now;
        uint64_t rng;
        int dlo, dhi; /* control delay per hop, ms */
        bool forget_quota; /* restart without the quota history */
        struct lrec *pend;
        size_t npend, cpend;
        struct lrec *log;
        size_t nlog, clog;
        int64_t *arr; /* arrival times at Marketo */
        size_t narr, carr;
        long day_calls[4];
        long day;
        int64_t day_len;
        struct sworker w[SIM_MAXW];
        int nw;
};

static uint64_t rnd(struct sim *sm)
{
        uint64_t z = (sm->rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static int64_t urange(struct sim *sm, int64_t lo, int64_t hi)
{
        return lo + (int64_t)(rnd(sm) % (uint64_t)(hi - lo + 1));
}

static void sim_init(struct sim *sm, int b, int c, long q, uint64_t seed)
{
        memset(sm, 0, sizeof(*sm));
        mls_budget_params_default(&sm->p);
        sm->B = b;
        sm->C = c;
        sm->Q = q;
        sm->rng = seed;
        sm->dlo = 25;
        sm->dhi = 1000;
        sm->day_len = INT64_MAX;
}

static void grow(void **v, size_t *cap, size_t n, size_t sz)
{
        if (n < *cap)
                return;
        *cap = *cap ? *cap * 2 : 1024;
        *v = realloc(*v, *cap * sz);
        assert_non_null(*v);
}

/* Start (or restart as a new incarnation) worker i: replay the history a
 * joining worker reads, then start. */
static void sim_start(struct sim *sm, int i, long queued)
{
        struct sworker *w = &sm->w[i];

        if (i >= sm->nw)
                sm->nw = i + 1;
        snprintf(w->wid, sizeof(w->wid), "w%02d", i);
        w->inc++;
        w->bud = mls_budget_new(INST, w->wid, w->inc, sm->B, sm->C, sm->Q,
                                &sm->p);
        assert_non_null(w->bud);
        for (size_t k = 0; k < sm->nlog; k++) {
                const struct lrec *r = &sm->log[k];
                bool quota = r->topic == MLS_BUDGET_TOPIC_QUOTA;

                if (quota ? sm->forget_quota && r->append_ms < sm->now - 60000
                          : r->append_ms < sm->now - 60000)
                        continue;
                mls_budget_on_record(w->bud, r->json, strlen(r->json),
                                     r->append_ms, sm->now);
        }
        w->cursor = sm->nlog;
        w->visible_at = INT64_MIN;
        w->nrep = 0;
        w->nnaive = 0;
        w->queued = queued;
        w->on = true;
        if (sm->Q > 0)
                mls_budget_set_day(w->bud, sm->day);
        mls_budget_set_demand(w->bud, queued, sm->now);
        mls_budget_start(w->bud, sm->now);
}

static void sim_stop(struct sim *sm, int i)
{
        mls_budget_destroy(sm->w[i].bud);
        sm->w[i].bud = NULL;
        sm->w[i].on = false;
}

static bool cut(const struct sworker *w, int64_t now)
{
        return now >= w->cut_from && now < w->cut_to;
}

static void sim_append_due(struct sim *sm)
{
        /* Pending records in append order (stable for equal times). */
        for (;;) {
                size_t best = SIZE_MAX;

                for (size_t k = 0; k < sm->npend; k++) {
                        if (sm->pend[k].append_ms <= sm->now &&
                            (best == SIZE_MAX ||
                             sm->pend[k].append_ms < sm->pend[best].append_ms))
                                best = k;
                }
                if (best == SIZE_MAX)
                        return;
                grow((void **)&sm->log, &sm->clog, sm->nlog, sizeof(*sm->log));
                sm->log[sm->nlog++] = sm->pend[best];
                memmove(&sm->pend[best], &sm->pend[best + 1],
                        (sm->npend - best - 1) * sizeof(*sm->pend));
                sm->npend--;
        }
}

static void sim_read(struct sim *sm, struct sworker *w)
{
        while (w->cursor < sm->nlog) {
                const struct lrec *r = &sm->log[w->cursor];

                if (w->visible_at == INT64_MIN)
                        w->visible_at = r->append_ms +
                                        urange(sm, sm->dlo, sm->dhi);
                if (sm->now < w->visible_at)
                        return;
                mls_budget_on_record(w->bud, r->json, strlen(r->json),
                                     r->append_ms, sm->now);
                w->cursor++;
                /* In-order delivery: the next one is not visible earlier. */
                w->visible_at = w->cursor < sm->nlog ?
                        sm->log[w->cursor].append_ms +
                                urange(sm, sm->dlo, sm->dhi) : INT64_MIN;
                if (w->visible_at != INT64_MIN &&
                    w->visible_at < sm->now)
                        w->visible_at = sm->now;
        }
}

static void sim_call(struct sim *sm, struct sworker *w)
{
        grow((void **)&sm->arr, &sm->carr, sm->narr, sizeof(*sm->arr));
        sm->arr[sm->narr++] = sm->now + urange(sm, 20, 100);
        if (sm->day >= 0 && sm->day < 4)
                sm->day_calls[sm->day]++;
        assert_true(w->nrep < 64);
        w->rep[w->nrep].sent = sm->now;
        w->rep[w->nrep].at = sm->now + urange(sm, 100, 1500);
        w->nrep++;
        if (w->queued > 0 && w->queued < SAT)
                w->queued--;
}

/* A worker that does not run the protocol's rule: it spends up to its
 * advisory target at once, with its own sliding log, and never reports
 * those calls. */
static void sim_naive_spend(struct sim *sm, struct sworker *w)
{
        struct mls_budget_stats st = stats(w->bud, sm->now);
        int k = 0;

        for (int j = 0; j < w->nnaive; j++) {
                if (w->naive_log[j] > sm->now)
                        w->naive_log[k++] = w->naive_log[j];
        }
        w->nnaive = k;
        while (w->nnaive < st.target && w->nnaive < 256 && w->queued > 0) {
                w->naive_log[w->nnaive++] = sm->now + 20500;
                grow((void **)&sm->arr, &sm->carr, sm->narr, sizeof(*sm->arr));
                sm->arr[sm->narr++] = sm->now + urange(sm, 20, 100);
        }
}

static void sim_worker_tick(struct sim *sm, struct sworker *w)
{
        enum mls_budget_topic topic;
        char *s;
        int k = 0;

        if (!cut(w, sm->now))
                sim_read(sm, w);
        for (int j = 0; j < w->nrep; j++) {
                if (w->rep[j].at <= sm->now)
                        mls_budget_on_reply(w->bud, 0, w->rep[j].sent,
                                            sm->now);
                else
                        w->rep[k++] = w->rep[j];
        }
        w->nrep = k;
        mls_budget_set_demand(w->bud, w->queued, sm->now);
        if (w->naive) {
                sim_naive_spend(sm, w);
        } else {
                while (w->queued > 0 && mls_budget_try_spend(w->bud, sm->now))
                        sim_call(sm, w);
        }
        while ((s = mls_budget_next_record(w->bud, sm->now, &topic))) {
                struct lrec r;

                if (cut(w, sm->now)) {
                        free(s); /* produce fails: the record is lost */
                        continue;
                }
                r.json = s;
                r.owner = (int)(w - sm->w);
                r.topic = topic;
                r.append_ms = sm->now + urange(sm, sm->dlo, sm->dhi);
                if (r.append_ms < w->last_append)
                        r.append_ms = w->last_append; /* idempotent order */
                w->last_append = r.append_ms;
                grow((void **)&sm->pend, &sm->cpend, sm->npend,
                     sizeof(*sm->pend));
                sm->pend[sm->npend++] = r;
        }
}

static void sim_run_until(struct sim *sm, int64_t until)
{
        for (; sm->now < until; sm->now += SIM_TICK) {
                long day = (long)(sm->now / sm->day_len);

                if (sm->day_len != INT64_MAX && day != sm->day) {
                        sm->day = day;
                        for (int i = 0; i < sm->nw; i++) {
                                if (sm->w[i].on)
                                        mls_budget_set_day(sm->w[i].bud, day);
                        }
                }
                sim_append_due(sm);
                for (int i = 0; i < sm->nw; i++) {
                        if (sm->w[i].on)
                                sim_worker_tick(sm, &sm->w[i]);
                }
        }
}

static void sim_free(struct sim *sm)
{
        for (int i = 0; i < sm->nw; i++)
                mls_budget_destroy(sm->w[i].bud);
        for (size_t k = 0; k < sm->nlog; k++)
                free(sm->log[k].json);
        for (size_t k = 0; k < sm->npend; k++)
                free(sm->pend[k].json);
        free(sm->log);
        free(sm->pend);
        free(sm->arr);
}

static int cmp64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Most arrivals in any rolling window (u - WIN, u]. */
static long max_window(struct sim *sm)
{
        long best = 0;
        size_t lo = 0;

        qsort(sm->arr, sm->narr, sizeof(*sm->arr), cmp64);
        for (size_t hi = 0; hi < sm->narr; hi++) {
                while (sm->arr[lo] <= sm->arr[hi] - WIN)
                        lo++;
                if ((long)(hi - lo + 1) > best)
                        best = (long)(hi - lo + 1);
        }
        return best;
}

/* Share of the budget used by arrivals in [from, to). */
static double utilisation(const struct sim *sm, int64_t from, int64_t to)
{
        long n = 0;

        for (size_t k = 0; k < sm->narr; k++) {
                if (sm->arr[k] >= from && sm->arr[k] < to)
                        n++;
        }
        return (double)n / ((double)(to - from) / WIN * sm->B);
}

static void report(const char *name, struct sim *sm, double util)
{
        long m = max_window(sm);

        print_message("sim %-34s max20=%ld (budget %d) util=%.1f%%\n", name,
                      m, sm->B, util * 100.0);
}

/* ---- scenarios --------------------------------------------------- */

static void run_saturated(struct sim *sm, int n, int64_t len)
{
        for (int i = 0; i < n; i++)
                sim_start(sm, i, SAT);
        sim_run_until(sm, len);
}

static void sim__saturated_four_within_budget_over_90pct(void **state)
{
        struct sim sm;
        double u;

        (void)state;
        sim_init(&sm, 80, 8, 0, 1);
        run_saturated(&sm, 4, 600000);
        u = utilisation(&sm, 60000, 600000);
        report("4 saturated, delay 25-1000 ms", &sm, u);
        assert_true(max_window(&sm) <= 80);
        assert_true(u >= 0.90);
        sim_free(&sm);
}

static void sim__single_worker_uses_its_budget(void **state)
{
        struct sim sm;
        double u;

        (void)state;
        sim_init(&sm, 80, 8, 0, 2);
        run_saturated(&sm, 1, 300000);
        u = utilisation(&sm, 30000, 300000);
        report("1 saturated", &sm, u);
        assert_true(max_window(&sm) <= 80);
        assert_true(u >= 0.90);
        sim_free(&sm);
}

/* 4 saturated; at 100 s two join; at 200 s two crash; at 300 s one goes
 * idle; at 400 s a crashed one restarts and two more join. */
static void run_churn(struct sim *sm)
{
        for (int i = 0; i < 4; i++)
                sim_start(sm, i, SAT);
        sim_run_until(sm, 100000);
        sim_start(sm, 4, SAT);
        sim_start(sm, 5, SAT);
        sim_run_until(sm, 200000);
        sim_stop(sm, 1);
        sim_stop(sm, 4);
        sim_run_until(sm, 300000);
        sm->w[2].queued = 0;
        sim_run_until(sm, 400000);
        sim_start(sm, 1, SAT);
        sim_start(sm, 6, SAT);
        sim_start(sm, 7, SAT);
        sim_run_until(sm, 600000);
}

static void sim__churn_within_budget(void **state)
{
        struct sim sm;
        double u;

        (void)state;
        sim_init(&sm, 80, 8, 0, 3);
        run_churn(&sm);
        u = utilisation(&sm, 30000, 600000);
        report("churn (join/crash/idle/restart)", &sm, u);
        assert_true(max_window(&sm) <= 80);
        assert_true(u >= 0.85);
        sim_free(&sm);
}

static void sim__slow_control_topic_stays_within_budget(void **state)
{
        struct sim sm;
        double u;

        (void)state;
        /* Control delay is not a safety assumption: 0.5-3 s per hop with
         * the default 4 s fence mostly fences workers, yet stays safe. */
        sim_init(&sm, 80, 8, 0, 4);
        sm.dlo = 500;
        sm.dhi = 3000;
        run_churn(&sm);
        u = utilisation(&sm, 30000, 600000);
        report("churn, delay 0.5-3 s, fence 4 s", &sm, u);
        assert_true(max_window(&sm) <= 80);
        sim_free(&sm);

        /* Leases sized for that delay bring the throughput back. */
        sim_init(&sm, 80, 8, 0, 4);
        sm.dlo = 500;
        sm.dhi = 3000;
        sm.p.ttl_ms = 13000;
        sm.p.ttl_self_ms = 12000;
        run_churn(&sm);
        u = utilisation(&sm, 30000, 600000);
        report("churn, delay 0.5-3 s, fence 12 s", &sm, u);
        assert_true(max_window(&sm) <= 80);
        assert_true(u >= 0.80);
        sim_free(&sm);
}

static void run_cut_off(struct sim *sm)
{
        for (int i = 0; i < 4; i++)
                sim_start(sm, i, SAT);
        sm->w[0].cut_from = 60000;
        sm->w[0].cut_to = 120000;
        sim_run_until(sm, 240000);
}

static void sim__cut_off_worker_fences_before_lease_lapses(void **state)
{
        struct sim sm;

        (void)state;
        sim_init(&sm, 80, 8, 0, 5);
        run_cut_off(&sm);
        report("one worker cut off 60 s", &sm,
               utilisation(&sm, 30000, 240000));
        assert_true(max_window(&sm) <= 80);
        sim_free(&sm);
}

static void neg__fence_later_than_lease_is_caught(void **state)
{
        struct sim sm;

        (void)state;
        /* A4 broken: the cut-off worker calls on for 40 s while the
         * others reuse its share 5 + 21 s after its last record. (With
         * 20 s the overlap is too short to show in this scenario.) */
        sim_init(&sm, 80, 8, 0, 5);
        sm.p.ttl_self_ms = 40000;
        run_cut_off(&sm);
        report("NEG fence 40 s > lease 5 s", &sm,
               utilisation(&sm, 30000, 240000));
        assert_true(max_window(&sm) > 80);
        sim_free(&sm);
}

static void neg__worker_ignoring_footprints_is_caught(void **state)
{
        struct sim sm;

        (void)state;
        /* A1 broken: a joiner spends its fair target at once, while the
         * incumbents' calls are still in the window. */
        sim_init(&sm, 80, 8, 0, 6);
        for (int i = 0; i < 4; i++)
                sim_start(&sm, i, SAT);
        sim_run_until(&sm, 100000);
        sm.w[4].naive = true;
        sim_start(&sm, 4, SAT);
        sim_run_until(&sm, 200000);
        report("NEG joiner ignores footprints", &sm,
               utilisation(&sm, 30000, 200000));
        assert_true(max_window(&sm) > 80);
        sim_free(&sm);
}

static void neg__window_shorter_than_marketo_is_caught(void **state)
{
        struct sim sm;

        (void)state;
        /* Lemma 1 broken: we count calls over 15 s; Marketo over 20 s. */
        sim_init(&sm, 80, 8, 0, 7);
        sm.p.window_ms = 15000;
        run_saturated(&sm, 4, 200000);
        report("NEG local window 15 s < 20 s", &sm,
               utilisation(&sm, 30000, 200000));
        assert_true(max_window(&sm) > 80);
        sim_free(&sm);
}

static void run_days(struct sim *sm)
{
        sm->day_len = 400000;
        sm->day = 0;
        for (int i = 0; i < 3; i++)
                sim_start(sm, i, SAT);
        sim_run_until(sm, 150000);
        sim_stop(sm, 1);
        sim_start(sm, 1, SAT);
        sim_run_until(sm, 250000);
        sim_stop(sm, 1);
        sim_start(sm, 1, SAT);
        sim_run_until(sm, 550000);
        sim_stop(sm, 2);
        sim_start(sm, 2, SAT);
        sim_run_until(sm, 800000);
}

static void sim__daily_share_kept_across_restarts(void **state)
{
        struct sim sm;

        (void)state;
        sim_init(&sm, 80, 8, 1000, 8);
        run_days(&sm);
        print_message("sim %-34s day1=%ld day2=%ld (share 1000)\n",
                      "daily, 3 restarts", sm.day_calls[0], sm.day_calls[1]);
        assert_true(sm.day_calls[0] <= 1000 && sm.day_calls[0] >= 900);
        assert_true(sm.day_calls[1] <= 1000 && sm.day_calls[1] >= 900);
        assert_true(max_window(&sm) <= 80);
        sim_free(&sm);
}

static void neg__restart_without_quota_history_is_caught(void **state)
{
        struct sim sm;

        (void)state;
        /* A6 broken for the quota topic: a restart reads only the last
         * minute, so its old incarnation's blocks are forgotten. */
        sim_init(&sm, 80, 8, 1000, 8);
        sm.forget_quota = true;
        run_days(&sm);
        print_message("sim %-34s day1=%ld day2=%ld (share 1000)\n",
                      "NEG restart forgets quota", sm.day_calls[0],
                      sm.day_calls[1]);
        assert_true(sm.day_calls[0] > 1000 || sm.day_calls[1] > 1000);
        sim_free(&sm);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(fair__equal_demand_splits_evenly),
                cmocka_unit_test(fair__small_demand_keeps_its_want_rest_split),
                cmocka_unit_test(footprint__hist_ages_out_by_log_time),
                cmocka_unit_test(
                        footprint__crashed_share_reused_only_after_it_ages),
                cmocka_unit_test(raise__only_after_read_back),
                cmocka_unit_test(raise__second_of_two_racing_claims_is_clipped),
                cmocka_unit_test(raise__capped_by_later_lower_promise),
                cmocka_unit_test(aimd__same_log_same_state_on_two_replicas),
                cmocka_unit_test(aimd__own_606s_apply_when_read_back),
                cmocka_unit_test(conc__cap_follows_share_with_floor_one),
                cmocka_unit_test(daily__blocks_claimed_as_allowance_runs_low),
                cmocka_unit_test(
                        daily__lost_race_is_retracted_then_tail_claimed),
                cmocka_unit_test(daily__old_incarnation_keeps_counting),
                cmocka_unit_test(daily__607_stops_everyone_until_next_day),
                cmocka_unit_test(
                        decode__bad_and_unknown_version_counted_and_skipped),
                cmocka_unit_test(
                        decode__unreadable_record_holds_raises_until_aged),
                cmocka_unit_test(decode__own_identity_used_elsewhere_is_bad),
                cmocka_unit_test(sim__saturated_four_within_budget_over_90pct),
                cmocka_unit_test(sim__single_worker_uses_its_budget),
                cmocka_unit_test(sim__churn_within_budget),
                cmocka_unit_test(sim__slow_control_topic_stays_within_budget),
                cmocka_unit_test(
                        sim__cut_off_worker_fences_before_lease_lapses),
                cmocka_unit_test(neg__fence_later_than_lease_is_caught),
                cmocka_unit_test(neg__worker_ignoring_footprints_is_caught),
                cmocka_unit_test(neg__window_shorter_than_marketo_is_caught),
                cmocka_unit_test(sim__daily_share_kept_across_restarts),
                cmocka_unit_test(neg__restart_without_quota_history_is_caught),
        };

        return cmocka_run_group_tests_name("budget", tests, NULL, NULL);
}
