/* SPDX-License-Identifier: Apache-2.0
 *
 * test_batch.c - last-change-wins batches and the per-partition offset
 * tracker that decides what may be committed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "mlsync/batch.h"
#include "mlsync/offsets.h"

static void batch__add_then_remove_keeps_only_remove(void **state)
{
        struct mls_batch *b = mls_batch_new();
        const char *emails[4];
        void *origins[4];
        int m1, m2;

        assert_int_equal(mls_batch_put(b, "a@x", MLS_BATCH_ADD, &m1), MLS_OK);
        assert_int_equal(mls_batch_put(b, "a@x", MLS_BATCH_REMOVE, &m2),
                         MLS_OK);
        assert_int_equal(mls_batch_size(b), 1);
        assert_int_equal(mls_batch_count(b, MLS_BATCH_ADD), 0);
        assert_int_equal(mls_batch_collect(b, MLS_BATCH_REMOVE, emails,
                                           origins, 4), 1);
        assert_string_equal(emails[0], "a@x");
        assert_ptr_equal(origins[0], &m2);
        assert_int_equal(mls_batch_collect(b, MLS_BATCH_ADD, emails, origins,
                                           4), 0);
        mls_batch_destroy(b);
}

static void batch__keeps_first_insertion_order(void **state)
{
        struct mls_batch *b = mls_batch_new();
        const char *emails[4];
        void *origins[4];

        mls_batch_put(b, "c@x", MLS_BATCH_ADD, NULL);
        mls_batch_put(b, "a@x", MLS_BATCH_ADD, NULL);
        mls_batch_put(b, "b@x", MLS_BATCH_REMOVE, NULL);
        mls_batch_put(b, "c@x", MLS_BATCH_ADD, NULL);
        assert_int_equal(mls_batch_collect(b, MLS_BATCH_ADD, emails, origins,
                                           4), 2);
        assert_string_equal(emails[0], "c@x");
        assert_string_equal(emails[1], "a@x");
        mls_batch_destroy(b);
}

static void batch__many_emails_survive_rehash(void **state)
{
        struct mls_batch *b = mls_batch_new();
        const char **emails = calloc(5000, sizeof(*emails));
        void **origins = calloc(5000, sizeof(*origins));
        char buf[32];

        for (int i = 0; i < 5000; i++) {
                snprintf(buf, sizeof(buf), "u%d@x", i);
                mls_batch_put(b, buf, i % 3 ? MLS_BATCH_ADD : MLS_BATCH_REMOVE,
                              NULL);
        }
        for (int i = 0; i < 5000; i += 2) {
                snprintf(buf, sizeof(buf), "u%d@x", i);
                mls_batch_put(b, buf, MLS_BATCH_REMOVE, NULL);
        }
        assert_int_equal(mls_batch_size(b), 5000);
        /* Removed: every even i, plus odd multiples of 3. */
        assert_int_equal(mls_batch_count(b, MLS_BATCH_REMOVE), 2500 + 833);
        assert_int_equal(mls_batch_collect(b, MLS_BATCH_ADD, emails, origins,
                                           5000), 5000 - 3333);
        free(emails);
        free(origins);
        mls_batch_destroy(b);
}

static void ptrack__empty_has_nothing_to_commit(void **state)
{
        struct mls_ptrack *pt = mls_ptrack_new();

        assert_int_equal(mls_ptrack_committable(pt), -1);
        mls_ptrack_destroy(pt);
}

static void ptrack__commit_stops_at_lowest_pending(void **state)
{
        struct mls_ptrack *pt = mls_ptrack_new();
        uint64_t s[5];

        for (int i = 0; i < 5; i++)
                assert_int_equal(mls_ptrack_add(pt, 10 + i * 2, &s[i]), MLS_OK);
        assert_int_equal(mls_ptrack_committable(pt), 10);
        mls_ptrack_done(pt, s[1]);
        mls_ptrack_done(pt, s[2]);
        assert_int_equal(mls_ptrack_committable(pt), 10);
        mls_ptrack_done(pt, s[0]);
        /* 10, 12, 14 done; 16 pending. */
        assert_int_equal(mls_ptrack_committable(pt), 16);
        mls_ptrack_done(pt, s[4]);
        assert_int_equal(mls_ptrack_committable(pt), 16);
        mls_ptrack_done(pt, s[3]);
        /* Everything done: commit past the last offset seen. */
        assert_int_equal(mls_ptrack_committable(pt), 19);
        assert_int_equal(mls_ptrack_pending(pt), 0);
        mls_ptrack_destroy(pt);
}

static void ptrack__going_back_is_refused(void **state)
{
        struct mls_ptrack *pt = mls_ptrack_new();
        uint64_t s;

        assert_int_equal(mls_ptrack_add(pt, 5, &s), MLS_OK);
        assert_int_equal(mls_ptrack_add(pt, 5, &s), MLS_ERR_BAD_MESSAGE);
        assert_int_equal(mls_ptrack_add(pt, 3, &s), MLS_ERR_BAD_MESSAGE);
        mls_ptrack_destroy(pt);
}

/* Random completion order against a brute-force model: the committable
 * offset is always the smallest offset not done, and never passes one. */
static void ptrack__random_order_matches_model(void **state)
{
        enum { N = 3000 };
        struct mls_ptrack *pt = mls_ptrack_new();
        static uint64_t seq[N];
        static int64_t off[N];
        static char done[N];
        static int order[N];
        int64_t o = 0;

        srand(7);
        for (int i = 0; i < N; i++) {
                o += 1 + rand() % 3;
                off[i] = o;
                assert_int_equal(mls_ptrack_add(pt, o, &seq[i]), MLS_OK);
                order[i] = i;
        }
        for (int i = N - 1; i > 0; i--) {
                int j = rand() % (i + 1), t = order[i];

                order[i] = order[j];
                order[j] = t;
        }
        for (int k = 0; k < N; k++) {
                int64_t want = o + 1;

                mls_ptrack_done(pt, seq[order[k]]);
                done[order[k]] = 1;
                for (int i = 0; i < N; i++) {
                        if (!done[i]) {
                                want = off[i];
                                break;
                        }
                }
                assert_int_equal(mls_ptrack_committable(pt), want);
        }
        mls_ptrack_destroy(pt);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(batch__add_then_remove_keeps_only_remove),
                cmocka_unit_test(batch__keeps_first_insertion_order),
                cmocka_unit_test(batch__many_emails_survive_rehash),
                cmocka_unit_test(ptrack__empty_has_nothing_to_commit),
                cmocka_unit_test(ptrack__commit_stops_at_lowest_pending),
                cmocka_unit_test(ptrack__going_back_is_refused),
                cmocka_unit_test(ptrack__random_order_matches_model),
        };

        return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
