/* SPDX-License-Identifier: Apache-2.0
 *
 * test_limiter.c - the per-instance call gate, checked case by case and
 * against a brute-force rolling-window checker on random traffic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "mlsync/limiter.h"

#define W MLS_LIMITER_WINDOW_MS

static void window__full_of_finished_calls_waits_for_oldest(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(3, 10, 0);

        (void)state;
        assert_non_null(lim);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(mls_limiter_acquire(lim, 1000 + i), 0);
                mls_limiter_release(lim, 1100 + i * 10);
        }
        assert_int_equal(mls_limiter_window_used(lim, 2000), 3);
        /* The oldest slot ends 20 s after its reply at 1100. */
        assert_int_equal(mls_limiter_acquire(lim, 2000), 1100 + W - 2000);
        assert_int_equal(mls_limiter_acquire(lim, 1100 + W - 1), 1);
        assert_int_equal(mls_limiter_acquire(lim, 1100 + W), 0);
        assert_int_equal(mls_limiter_in_flight(lim), 1);
        mls_limiter_destroy(lim);
}

static void window__slot_held_until_reply_plus_window(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(1, 10, 0);

        (void)state;
        assert_int_equal(mls_limiter_acquire(lim, 0), 0);
        /* In flight only: wait for a release, not a timer. */
        assert_int_equal(mls_limiter_acquire(lim, 50000), 1);
        mls_limiter_release(lim, 60000);
        assert_int_equal(mls_limiter_acquire(lim, 60000), W);
        assert_int_equal(mls_limiter_acquire(lim, 60000 + W - 1), 1);
        assert_int_equal(mls_limiter_acquire(lim, 60000 + W), 0);
        mls_limiter_destroy(lim);
}

static void inflight__cap_reached_returns_one(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(100, 2, 0);

        (void)state;
        assert_int_equal(mls_limiter_acquire(lim, 10), 0);
        assert_int_equal(mls_limiter_acquire(lim, 10), 0);
        assert_int_equal(mls_limiter_acquire(lim, 10), 1);
        assert_int_equal(mls_limiter_in_flight(lim), 2);
        mls_limiter_release(lim, 20);
        assert_int_equal(mls_limiter_acquire(lim, 20), 0);
        mls_limiter_destroy(lim);
}

static void release__without_call_is_ignored(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(1, 1, 0);

        (void)state;
        mls_limiter_release(lim, 5);
        assert_int_equal(mls_limiter_in_flight(lim), 0);
        assert_int_equal(mls_limiter_window_used(lim, 5), 0);
        assert_int_equal(mls_limiter_acquire(lim, 5), 0);
        mls_limiter_destroy(lim);
}

static void hold__blocks_until_and_only_extends(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(10, 10, 0);

        (void)state;
        mls_limiter_hold(lim, 5000);
        mls_limiter_hold(lim, 3000);
        assert_int_equal(mls_limiter_acquire(lim, 1000), 4000);
        assert_int_equal(mls_limiter_acquire(lim, 4999), 1);
        assert_int_equal(mls_limiter_acquire(lim, 5000), 0);
        mls_limiter_destroy(lim);
}

static void daily__allowance_spent_refuses_until_reset(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(100, 10, 2);

        (void)state;
        assert_int_equal(mls_limiter_acquire(lim, 0), 0);
        mls_limiter_release(lim, 1);
        assert_int_equal(mls_limiter_acquire(lim, 2), 0);
        mls_limiter_release(lim, 3);
        assert_true(mls_limiter_acquire(lim, 4) > 1);
        assert_int_equal(mls_limiter_daily_used(lim), 2);
        mls_limiter_daily_reset(lim);
        assert_int_equal(mls_limiter_daily_used(lim), 0);
        assert_int_equal(mls_limiter_acquire(lim, 5), 0);
        mls_limiter_destroy(lim);
}

static void set__lower_rate_applies_to_live_slots(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(5, 5, 0);

        (void)state;
        for (int i = 0; i < 3; i++) {
                assert_int_equal(mls_limiter_acquire(lim, 100), 0);
                mls_limiter_release(lim, 200);
        }
        mls_limiter_set(lim, 2, 5);
        assert_int_equal(mls_limiter_acquire(lim, 300), 200 + W - 300);
        mls_limiter_set(lim, 0, 5);
        /* Paused: a timer, never "wait for a release" that cannot come. */
        assert_true(mls_limiter_acquire(lim, 200 + W) > 1);
        mls_limiter_set(lim, 4, 5);
        assert_int_equal(mls_limiter_acquire(lim, 200 + W), 0);
        mls_limiter_destroy(lim);
}

static void window__many_slots_grow_ring_in_order(void **state)
{
        struct mls_limiter *lim = mls_limiter_new(500, 500, 0);
        int64_t t = 0;

        (void)state;
        for (int i = 0; i < 500; i++) {
                assert_int_equal(mls_limiter_acquire(lim, t), 0);
                if (i % 3 == 2) {
                        mls_limiter_release(lim, t);
                        mls_limiter_release(lim, t);
                        mls_limiter_release(lim, t);
                }
                t += 10;
        }
        assert_int_equal(mls_limiter_window_used(lim, t), 500);
        assert_int_equal(mls_limiter_acquire(lim, t), 20 + W - t);
        mls_limiter_destroy(lim);
}

/* ---- randomized check against a brute-force window checker ---- */

struct span {
        int64_t send;
        int64_t reply;
};

struct sim {
        struct span *spans;
        size_t cnt;
        int max_overlap;
};

static uint64_t rng_next(uint64_t *s)
{
        uint64_t x = *s;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *s = x;
        return x;
}

static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
        return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/*
 * Drive one limiter with greedy random traffic for dur_ms. When
 * early_release is set, each slot is released as if its window ended at
 * the reply (the bug the checker must catch).
 */
static void simulate(struct sim *sm, uint64_t seed, int rate, int conc,
                     int64_t lat_lo, int64_t lat_hi, int64_t dur_ms,
                     bool early_release)
{
        struct mls_limiter *lim = mls_limiter_new(rate, conc, 0);
        size_t cap = 4096;
        uint64_t rs = seed;
        int64_t t = 0;

        assert_non_null(lim);
        sm->spans = calloc(cap, sizeof(*sm->spans));
        sm->cnt = 0;
        assert_non_null(sm->spans);
        while (t < dur_ms) {
                /* Replies due by now, earliest first. */
                for (;;) {
                        size_t best = sm->cnt;

                        for (size_t i = 0; i < sm->cnt; i++)
                                if (sm->spans[i].reply <= t &&
                                    sm->spans[i].reply >= 0 &&
                                    (best == sm->cnt ||
                                     sm->spans[i].reply <
                                             sm->spans[best].reply))
                                        best = i;
                        if (best == sm->cnt)
                                break;
                        mls_limiter_release(lim,
                                            early_release ?
                                                    sm->spans[best].reply - W :
                                                    sm->spans[best].reply);
                        /* Mark as released: store the reply negated-free. */
                        sm->spans[best].reply = -sm->spans[best].reply - 1;
                }
                while (sm->cnt < cap && mls_limiter_acquire(lim, t) == 0) {
                        sm->spans[sm->cnt].send = t;
                        sm->spans[sm->cnt].reply =
                                t + rng_range(&rs, lat_lo, lat_hi);
                        sm->cnt++;
                }
                t += rng_range(&rs, 1, 400);
        }
        for (size_t i = 0; i < sm->cnt; i++)
                if (sm->spans[i].reply < 0)
                        sm->spans[i].reply = -(sm->spans[i].reply + 1);
        mls_limiter_destroy(lim);
}

/*
 * Most spans that could all be counted inside one rolling window of W ms:
 * a call may be counted anywhere in [send, reply], so a span touches the
 * window [T, T + W - 1] when send <= T + W - 1 and reply >= T. The maximum
 * is reached at some T equal to a reply or to a send - W + 1.
 */
static int brute_max_window(const struct sim *sm)
{
        int best = 0;

        for (size_t k = 0; k < 2 * sm->cnt; k++) {
                const struct span *a = &sm->spans[k / 2];
                int64_t T = (k % 2) ? a->reply : a->send - W + 1;
                int n = 0;

                for (size_t j = 0; j < sm->cnt; j++)
                        if (sm->spans[j].send <= T + W - 1 &&
                            sm->spans[j].reply >= T)
                                n++;
                if (n > best)
                        best = n;
        }
        return best;
}

static int brute_max_overlap(const struct sim *sm)
{
        int best = 0;

        for (size_t i = 0; i < sm->cnt; i++) {
                int n = 0;

                for (size_t j = 0; j < sm->cnt; j++)
                        if (sm->spans[j].send <= sm->spans[i].send &&
                            sm->spans[j].reply > sm->spans[i].send)
                                n++;
                if (n > best)
                        best = n;
        }
        return best;
}

static void random__traffic_never_exceeds_window_or_cap(void **state)
{
        uint64_t seed = 0x9e3779b97f4a7c15ULL;

        (void)state;
        for (int trial = 0; trial < 40; trial++) {
                struct sim sm;
                int rate = (int)rng_range(&seed, 1, 12);
                int conc = (int)rng_range(&seed, 1, 6);
                int64_t lo = rng_range(&seed, 0, 3000);
                int64_t hi = lo + rng_range(&seed, 0, 12000);

                simulate(&sm, rng_next(&seed), rate, conc, lo, hi, 120000,
                         false);
                assert_true(sm.cnt > (size_t)rate);
                assert_true(brute_max_window(&sm) <= rate);
                assert_true(brute_max_overlap(&sm) <= conc);
                free(sm.spans);
        }
}

static void random__release_at_reply_is_caught(void **state)
{
        uint64_t seed = 0x243f6a8885a308d3ULL;
        int caught = 0;

        (void)state;
        for (int trial = 0; trial < 10; trial++) {
                struct sim sm;
                int rate = (int)rng_range(&seed, 2, 8);

                simulate(&sm, rng_next(&seed), rate, rate, 4000, 15000,
                         120000, true);
                if (brute_max_window(&sm) > rate)
                        caught++;
                free(sm.spans);
        }
        /* Slow replies let the buggy gate reuse slots inside a window in
         * every trial; the checker must see it each time. */
        assert_int_equal(caught, 10);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        window__full_of_finished_calls_waits_for_oldest),
                cmocka_unit_test(window__slot_held_until_reply_plus_window),
                cmocka_unit_test(inflight__cap_reached_returns_one),
                cmocka_unit_test(release__without_call_is_ignored),
                cmocka_unit_test(hold__blocks_until_and_only_extends),
                cmocka_unit_test(daily__allowance_spent_refuses_until_reset),
                cmocka_unit_test(set__lower_rate_applies_to_live_slots),
                cmocka_unit_test(window__many_slots_grow_ring_in_order),
                cmocka_unit_test(random__traffic_never_exceeds_window_or_cap),
                cmocka_unit_test(random__release_at_reply_is_caught),
        };

        return cmocka_run_group_tests_name("limiter", tests, NULL, NULL);
}
