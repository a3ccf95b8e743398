/* SPDX-License-Identifier: Apache-2.0
 *
 * it_budget.c - the shared Marketo budget with real processes: four mlsync
 * workers feed one Marketo instance (the stream is spread over four
 * partitions by user, so every worker has work for it), the emulator
 * enforces Marketo's 100 calls per rolling 20 s, and our budget is 80.
 * Demand is far above the budget for more than two minutes; midway one
 * worker is killed with SIGKILL and a new one joins. The emulator must
 * have seen no 606, at most 80 of our calls in any rolling 20 s window,
 * and the lists must come out exact.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "../support/rig.h"
#include "mlsync/util.h"

#define INSTANCE "100-AAA-001"

static struct mls_rig r;

static int rig_teardown(void **state)
{
        mls_rig_stop(&r);
        return 0;
}

/* One field of the instance's /_admin/counters entry (field.sub when sub
 * is given); -1 when missing. */
static int64_t counter(const char *field, const char *sub)
{
        char *txt = mls_rig_admin(&r, "counters");
        json_object *root = txt ? json_tokener_parse(txt) : NULL;
        json_object *insts, *inst, *v;
        int64_t out = -1;

        free(txt);
        if (root && json_object_object_get_ex(root, "instances", &insts) &&
            json_object_object_get_ex(insts, INSTANCE, &inst) &&
            json_object_object_get_ex(inst, field, &v)) {
                if (!sub)
                        out = json_object_get_int64(v);
                else if (json_object_object_get_ex(v, sub, &v))
                        out = json_object_get_int64(v);
                else
                        out = 0;
        }
        json_object_put(root);
        return out;
}

/* The busiest rolling 20 s window in the emulator's call log: its start
 * (wall ms) and what it held, printed so a failure can be traced in the
 * workers' debug logs ("call started" lines carry wall_ms). */
static void print_busiest_window(void)
{
        char *txt = mls_rig_admin(&r, "calls?instance=" INSTANCE);
        json_object *root = txt ? json_tokener_parse(txt) : NULL, *calls;
        int64_t *t = NULL;
        size_t n = 0, best = 0, best_i = 0, j = 0;

        free(txt);
        if (!root || !json_object_object_get_ex(root, "instances", &calls) ||
            !json_object_object_get_ex(calls, INSTANCE, &calls) ||
            !json_object_object_get_ex(calls, "calls", &calls)) {
                json_object_put(root);
                return;
        }
        t = calloc(json_object_array_length(calls) + 1, sizeof(*t));
        for (size_t i = 0; t && i < json_object_array_length(calls); i++) {
                json_object *c = json_object_array_get_idx(calls, i), *v;

                if (json_object_object_get_ex(c, "counted", &v) &&
                    json_object_get_boolean(v) &&
                    json_object_object_get_ex(c, "t_ms", &v))
                        t[n++] = json_object_get_int64(v);
        }
        for (size_t i = 0; i < n; i++) {
                while (t[i] - t[j] >= 20000)
                        j++;
                if (i - j + 1 > best) {
                        best = i - j + 1;
                        best_i = j;
                }
        }
        if (best)
                printf("busiest window: %zu calls from t_ms=%lld to %lld\n",
                       best, (long long)t[best_i],
                       (long long)t[best_i + best - 1]);
        free(t);
        json_object_put(root);
}

/* `mlsync budget` sees the live workers and the killed one, read-only. */
static void check_budget_view(void)
{
        const char *argv[] = { mls_bin("mlsync"), "budget", "-c", r.config,
                               NULL };
        struct mls_proc p;
        char line[512];
        int live = 0, inst = 0, lines = 0;

        assert_int_equal(mls_proc_spawn(&p, argv, NULL), 0);
        while (mls_proc_read_line(&p, line, sizeof(line), 30000) == 0) {
                lines++;
                inst += strstr(line, "instance " INSTANCE) != NULL;
                live += strstr(line, " live ") != NULL;
                if (lines <= 12)
                        printf("view: %s\n", line);
        }
        assert_int_equal(mls_proc_wait(&p, 30000), 0);
        assert_int_equal(inst, 1);
        assert_int_equal(live, 4);
}

static void budget__four_workers_crash_and_join_stay_within_80(void **state)
{
        /* 120 s of production at 100 changes per second over 12 lists,
         * each list on every worker: far more calls wanted than 80 per
         * 20 s allow, and a backlog that keeps it so after. */
        static const char *const stream[] = {
                "--instances", INSTANCE, "--spread-users", "--audiences",
                "12", "--users", "3000", "--events", "12000", "--seed", "4",
                "--rate", "100", "--duplicate-share", "0.02", NULL
        };
        /* Debug logs: every call's start with the budget's view. */
        struct mls_rig_opts o = { .partitions = 4, .log_level = "debug" };
        int64_t start, calls_at_kill, calls_end, elapsed;

        assert_int_equal(mls_rig_start(&r, "budget", &o), 0);
        for (int i = 0; i < 4; i++)
                assert_int_equal(mls_rig_worker_start(&r, i), 0);
        assert_int_equal(mls_rig_generate_start(&r, stream), 0);
        start = mls_now_ms();

        mls_sleep_ms(60000);
        calls_at_kill = counter("total_calls", NULL);
        printf("budget: %lld calls after 60 s, max %lld in 20 s; killing "
               "worker 1\n",
               (long long)calls_at_kill,
               (long long)counter("max_calls_in_20s", NULL));
        assert_int_equal(mls_rig_worker_stop(&r, 1, SIGKILL, 10000),
                         128 + SIGKILL);
        mls_sleep_ms(15000);
        printf("budget: worker 4 joins\n");
        assert_int_equal(mls_rig_worker_start(&r, 4), 0);

        assert_int_equal(mls_rig_generate_wait(&r, 400000), 0);
        assert_int_equal(mls_rig_wait_caught_up(&r, 400000), 0);
        elapsed = mls_now_ms() - start;
        calls_end = counter("total_calls", NULL);
        printf("budget: %lld calls in %.0f s (%.1f per 20 s on average), "
               "max %lld in any 20 s, 606=%lld 615=%lld\n",
               (long long)calls_end, elapsed / 1000.0,
               (double)calls_end * 20000.0 / (double)elapsed,
               (long long)counter("max_calls_in_20s", NULL),
               (long long)counter("errors", "606"),
               (long long)counter("errors", "615"));

        print_busiest_window();
        check_budget_view();
        assert_true(elapsed >= 120000);
        assert_int_equal(counter("errors", "606"), 0);
        assert_true(counter("max_calls_in_20s", NULL) <= 80);
        assert_int_equal(mls_rig_check_lists(&r, NULL), 0);
        for (int i = 0; i < 5; i++)
                if (i != 1)
                        assert_int_equal(
                                mls_rig_worker_stop(&r, i, SIGTERM, 30000),
                                0);
        mls_rig_stop(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(
                        budget__four_workers_crash_and_join_stay_within_80,
                        rig_teardown),
        };

        setvbuf(stdout, NULL, _IOLBF, 0);
        return cmocka_run_group_tests_name("budget", tests, NULL, NULL);
}
