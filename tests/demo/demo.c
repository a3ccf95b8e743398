/* SPDX-License-Identifier: Apache-2.0
 *
 * demo.c - `make demo`: the main job end to end on embedded defaults.
 *
 * Starts kafka-mock and the Marketo emulator, produces a sample stream of
 * audience events (both formats, multi-email users, users without email,
 * invalid emails, duplicates, a few broken messages), runs two mlsync
 * workers in one consumer group until everything is applied and
 * committed, prints every Marketo list with its members and a summary,
 * and stops everything. Exit 0 when the lists match the stream.
 */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/rig.h"
#include "mlsync/util.h"

static struct mls_rig rig;

static void on_signal(int sig)
{
        (void)sig;
        mls_rig_stop(&rig);
        _exit(130);
}

static void print_members(json_object *members)
{
        size_t n = json_object_array_length(members);
        int col = 4;

        printf("    ");
        for (size_t i = 0; i < n; i++) {
                const char *e = json_object_get_string(
                        json_object_array_get_idx(members, i));
                int len = (int)strlen(e) + 2;

                if (i > 0 && col + len > 96) {
                        printf(",\n    ");
                        col = 4;
                } else if (i > 0) {
                        printf(", ");
                }
                printf("%s", e);
                col += len;
        }
        printf("\n");
}

static int print_lists(void)
{
        char *txt = mls_rig_admin(&rig, "state");
        json_object *root = txt ? json_tokener_parse(txt) : NULL, *insts;

        free(txt);
        if (!root || !json_object_object_get_ex(root, "instances", &insts)) {
                fprintf(stderr, "demo: emulator state not readable\n");
                json_object_put(root);
                return -1;
        }
        printf("\n== Marketo static lists (as the emulator holds them) ==\n");
        json_object_object_foreach(insts, id, inst)
        {
                json_object *lists;

                if (!json_object_object_get_ex(inst, "lists", &lists))
                        continue;
                for (size_t i = 0; i < json_object_array_length(lists); i++) {
                        json_object *l = json_object_array_get_idx(lists, i);
                        json_object *name, *members;

                        json_object_object_get_ex(l, "name", &name);
                        json_object_object_get_ex(l, "members", &members);
                        printf("\n%s / \"%s\": %zu members\n", id,
                               json_object_get_string(name),
                               json_object_array_length(members));
                        print_members(members);
                }
        }
        json_object_put(root);
        return 0;
}

/* Marketo calls and errors by code, summed over instances. */
static void print_counters(void)
{
        char *txt = mls_rig_admin(&rig, "counters");
        json_object *root = txt ? json_tokener_parse(txt) : NULL, *insts;

        free(txt);
        if (!root || !json_object_object_get_ex(root, "instances", &insts)) {
                json_object_put(root);
                return;
        }
        printf("\n== Marketo calls (emulator counters) ==\n");
        json_object_object_foreach(insts, id, inst)
        {
                json_object *total, *peak, *errors, *skips;

                json_object_object_get_ex(inst, "total_calls", &total);
                json_object_object_get_ex(inst, "max_calls_in_20s", &peak);
                printf("%s: %lld calls, at most %lld in any 20 s window",
                       id, (long long)json_object_get_int64(total),
                       (long long)json_object_get_int64(peak));
                printf("\n    errors by code:");
                if (json_object_object_get_ex(inst, "errors", &errors) &&
                    json_object_object_length(errors) > 0) {
                        json_object_object_foreach(errors, code, cnt)
                                printf(" %s=%lld", code,
                                       (long long)json_object_get_int64(cnt));
                } else {
                        printf(" none");
                }
                printf("\n    records Marketo skipped, by reason (1015: "
                       "not a member, counts as done; 1003: invalid, "
                       "dead-lettered):");
                if (json_object_object_get_ex(inst, "skips", &skips) &&
                    json_object_object_length(skips) > 0) {
                        json_object_object_foreach(skips, code, cnt)
                                printf(" %s=%lld", code,
                                       (long long)json_object_get_int64(cnt));
                } else {
                        printf(" none");
                }
                printf("\n");
        }
        json_object_put(root);
}

/* The workers' own totals, from the line each logs when it stops. */
static void print_worker_totals(void)
{
        static const char *const keys[] = { "consumed", "applied",
                                            "no_email", "dead_lettered",
                                            "marketo_calls" };
        long long sum[5] = { 0 };

        for (int i = 0; i < 2; i++) {
                char path[1200], *log = NULL, *line;

                snprintf(path, sizeof(path), "%s/worker-%d.log", rig.dir, i);
                if (mls_read_file(path, &log, NULL) < 0)
                        continue;
                line = strstr(log, "msg=stopped");
                for (size_t k = 0; line && k < 5; k++) {
                        char pat[32];
                        char *p;

                        snprintf(pat, sizeof(pat), " %s=", keys[k]);
                        p = strstr(line, pat);
                        if (p)
                                sum[k] += atoll(p + strlen(pat));
                }
                free(log);
        }
        printf("\n== mlsync workers (2, one consumer group) ==\n"
               "messages consumed %lld, applied %lld, without email %lld, "
               "dead-lettered %lld; Marketo calls %lld\n",
               sum[0], sum[1], sum[2], sum[3], sum[4]);
}

int main(void)
{
        static const char *const stream[] = {
                "--audiences", "4", "--users", "150", "--events", "1500",
                "--seed", "2026", "--segment-share", "0.4",
                "--multi-email-share", "0.3", "--no-email-share", "0.05",
                "--invalid-email-share", "0.02", "--duplicate-share", "0.05",
                "--malformed", "3", "--unknown", "2", "--unknown-instance",
                "999-ZZZ-999", NULL
        };
        /* A few failed calls, so the retries show in the summary. */
        static const char *const emu[] = { "--fault", "http502=0.03",
                                           "--fault", "drop=0.02", NULL };
        struct mls_rig_opts o = { .partitions = 4, .emu_args = emu };
        struct mls_rig_dlq d;
        int64_t start = mls_now_ms();
        int diffs = -1;

        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        printf("demo: starting kafka-mock, the Marketo emulator (failing "
               "about 5%% of calls on purpose) and two mlsync workers\n");
        if (mls_rig_start(&rig, "demo", &o) < 0)
                return 1;
        printf("demo: producing a sample stream of 1500 audience events\n");
        if (mls_rig_generate(&rig, stream) != 0) {
                fprintf(stderr, "demo: generator failed, see %s\n", rig.dir);
                goto out;
        }
        if (mls_rig_worker_start(&rig, 0) < 0 ||
            mls_rig_worker_start(&rig, 1) < 0)
                goto out;
        printf("demo: waiting until every offset is applied and "
               "committed\n");
        if (mls_rig_wait_caught_up(&rig, 50000) < 0) {
                fprintf(stderr, "demo: not caught up in time; logs in %s\n",
                        rig.dir);
                goto out;
        }
        diffs = mls_rig_check_lists(&rig, NULL);
        for (int i = 0; i < 2; i++)
                mls_rig_worker_stop(&rig, i, SIGTERM, 20000);
        print_lists();
        print_counters();
        print_worker_totals();
        if (mls_rig_read_dlq(&rig, &d) == 0)
                printf("dead-letter topic: %d records (undecodable %d, "
                       "unknown instance %d, rejected by Marketo %d)\n",
                       d.total, d.decode, d.route, d.marketo);
        printf("\ndemo: lists %s the stream; %.1f s; logs in %s\n",
               diffs == 0 ? "match" : "DO NOT match",
               (mls_now_ms() - start) / 1000.0, rig.dir);
out:
        mls_rig_stop(&rig);
        return diffs == 0 ? 0 : 1;
}
