/* SPDX-License-Identifier: Apache-2.0
 *
 * rig.c - run kafka-mock, the emulator and mlsync workers as separate
 * processes on loopback, and judge the outcome from Kafka and Marketo.
 */
#include "rig.h"

#include <ctype.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlsync/event.h"
#include "mlsync/kinspect.h"
#include "mlsync/util.h"

const char *const mls_rig_instances[3] = { "100-AAA-001", "200-BBB-002",
                                           "300-CCC-003" };

static const char *log_path(struct mls_rig *r, const char *name)
{
        static char path[4][1200];
        static int next;
        char *out = path[next++ % 4];

        snprintf(out, sizeof(path[0]), "%s/%s", r->dir, name);
        return out;
}

static int write_config(struct mls_rig *r, const struct mls_rig_opts *o)
{
        FILE *fp;

        snprintf(r->config, sizeof(r->config), "%s/mlsync.yaml", r->dir);
        fp = fopen(r->config, "w");
        if (!fp)
                return -1;
        fprintf(fp,
                "kafka:\n"
                "  brokers: %s\n"
                "  group: " MLS_RIG_GROUP "\n"
                "  topics: [" MLS_RIG_TOPIC "]\n"
                "  dead_letter_topic: " MLS_RIG_DLQ "\n"
                "  control_topic: mlsync.control\n"
                "  properties:\n"
                "    session.timeout.ms: 6000\n"
                "    heartbeat.interval.ms: 500\n"
                "    topic.metadata.refresh.interval.ms: 5000\n"
                "marketo:\n"
                "  folder: Audiences\n"
                "  budget: {calls_per_20s: 80, concurrent_calls: 8, "
                "daily_calls: 1000000}\n"
                "  instances:\n",
                r->bootstrap);
        for (int i = 0; i < 3; i++)
                fprintf(fp,
                        "    - munchkin_id: %s\n"
                        "      endpoint: %s/%s/rest\n"
                        "      client_id: id-%d\n"
                        "      client_secret: secret-%d\n",
                        mls_rig_instances[i], r->emu_base,
                        mls_rig_instances[i], i, i);
        fprintf(fp,
                "batch:\n"
                "  max_wait_ms: %d\n"
                "  max_pending: %d\n"
                "worker:\n"
                "  shutdown_timeout_ms: %d\n"
                "  commit_interval_ms: 500\n"
                "%s"
                "log:\n"
                "  level: %s\n"
                "  format: text\n",
                o->batch_max_wait_ms > 0 ? o->batch_max_wait_ms : 200,
                o->batch_max_pending > 0 ? o->batch_max_pending : 20000,
                o->shutdown_timeout_ms > 0 ? o->shutdown_timeout_ms : 15000,
                o->http ? "  http_addr: 127.0.0.1:0\n" : "",
                o->log_level ? o->log_level : "info");
        return fclose(fp);
}

static int start_kafka(struct mls_rig *r)
{
        char topic[128];
        const char *argv[] = { mls_bin("kafka-mock"), "--brokers", "3",
                               "--topic", topic, "--topic",
                               MLS_RIG_DLQ ":2", "--topic",
                               "mlsync.control:1", "--topic",
                               "mlsync.control.quota:1", NULL };

        snprintf(topic, sizeof(topic), MLS_RIG_TOPIC ":%d", r->partitions);
        if (mls_proc_spawn(&r->kafka, argv, log_path(r, "kafka-mock.log")) <
            0)
                return -1;
        if (mls_proc_read_line(&r->kafka, r->bootstrap, sizeof(r->bootstrap),
                               15000) < 0) {
                fprintf(stderr, "rig: kafka-mock printed no bootstrap\n");
                return -1;
        }
        return 0;
}

static int start_emulator(struct mls_rig *r, const char *const *extra,
                          int no_folder)
{
        const char *argv[48];
        char inst[3][128];
        size_t n = 0;
        char line[256];
        const char *port;

        argv[n++] = mls_bin("marketo-emulator");
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        for (int i = 0; i < 3; i++) {
                snprintf(inst[i], sizeof(inst[i]), "%s:id-%d:secret-%d%s",
                         mls_rig_instances[i], i, i,
                         no_folder == i + 1 ? "" : ":Audiences");
                argv[n++] = "--instance";
                argv[n++] = inst[i];
        }
        for (size_t i = 0; extra && extra[i] && n < 46; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        if (mls_proc_spawn(&r->emu, argv, log_path(r, "emulator.log")) < 0)
                return -1;
        if (mls_proc_read_line(&r->emu, line, sizeof(line), 10000) < 0) {
                fprintf(stderr, "rig: emulator printed no address\n");
                return -1;
        }
        port = strrchr(line, ':');
        if (!port)
                return -1;
        snprintf(r->emu_base, sizeof(r->emu_base), "http://127.0.0.1:%s",
                 port + 1);
        return 0;
}

int mls_rig_start(struct mls_rig *r, const char *tag,
                  const struct mls_rig_opts *opts)
{
        struct mls_rig_opts o = { 0 };

        if (opts)
                o = *opts;
        memset(r, 0, sizeof(*r));
        snprintf(r->dir, sizeof(r->dir), "%s", mls_tmpdir(tag));
        r->partitions = o.partitions > 0 ? o.partitions : 6;
        if (start_kafka(r) < 0 || start_emulator(r, o.emu_args, o.no_folder) < 0 ||
            write_config(r, &o) < 0) {
                mls_rig_stop(r);
                return -1;
        }
        if (!r->quiet)
                printf("rig: %s kafka=%s marketo=%s\n", r->dir, r->bootstrap,
                       r->emu_base);
        return 0;
}

int mls_rig_worker_start(struct mls_rig *r, int i)
{
        char name[32];
        const char *argv[] = { mls_bin("mlsync"), "run", "-c", r->config,
                               NULL };

        snprintf(name, sizeof(name), "worker-%d.log", i);
        return mls_proc_spawn(&r->workers[i], argv, log_path(r, name));
}

int mls_rig_worker_http_port(struct mls_rig *r, int i, int timeout_ms)
{
        char name[32];
        int64_t deadline = mls_now_ms() + timeout_ms;

        snprintf(name, sizeof(name), "worker-%d.log", i);
        for (;;) {
                char *log = NULL, *line, *p;
                int port = -1;

                if (mls_read_file(log_path(r, name), &log, NULL) == 0) {
                        line = strstr(log, "http server listening");
                        p = line ? strstr(line, " port=") : NULL;
                        if (p)
                                port = atoi(p + 6);
                        free(log);
                }
                if (port > 0)
                        return port;
                if (mls_now_ms() >= deadline)
                        return -1;
                mls_sleep_ms(100);
        }
}

int mls_rig_worker_stop(struct mls_rig *r, int i, int sig, int timeout_ms)
{
        mls_proc_signal(&r->workers[i], sig);
        return mls_proc_wait(&r->workers[i], timeout_ms);
}

int mls_rig_generate_start(struct mls_rig *r, const char *const args[])
{
        const char *argv[64];
        char insts[128];
        size_t n = 0;

        snprintf(insts, sizeof(insts), "%s,%s,%s", mls_rig_instances[0],
                 mls_rig_instances[1], mls_rig_instances[2]);
        argv[n++] = mls_bin("audience-gen");
        argv[n++] = "--brokers";
        argv[n++] = r->bootstrap;
        argv[n++] = "--topic";
        argv[n++] = MLS_RIG_TOPIC;
        argv[n++] = "--instances";
        argv[n++] = insts;
        argv[n++] = "--expect";
        argv[n++] = log_path(r, "expect.json");
        for (size_t i = 0; args && args[i] && n < 62; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        return mls_proc_spawn(&r->gen, argv, log_path(r, "generator.log"));
}

int mls_rig_generate_wait(struct mls_rig *r, int timeout_ms)
{
        return mls_proc_wait(&r->gen, timeout_ms);
}

int mls_rig_generate(struct mls_rig *r, const char *const args[])
{
        if (mls_rig_generate_start(r, args) < 0)
                return -1;
        return mls_rig_generate_wait(r, 120000);
}

static struct mls_kinspect_conn rig_conn(struct mls_rig *r)
{
        struct mls_kinspect_conn c = { .brokers = r->bootstrap,
                                       .props = NULL,
                                       .timeout_ms = 15000 };

        return c;
}

int mls_rig_committed(struct mls_rig *r, int64_t *committed, int n)
{
        struct mls_kinspect_conn c = rig_conn(r);
        const char *topics[] = { MLS_RIG_TOPIC };
        struct mls_kinspect_lag lag;
        char errstr[256];

        for (int i = 0; i < n; i++)
                committed[i] = -1;
        if (mls_kinspect_lag_get(&c, MLS_RIG_GROUP, topics, 1, &lag, errstr,
                                 sizeof(errstr)) != MLS_OK) {
                fprintf(stderr, "rig: lag: %s\n", errstr);
                return -1;
        }
        for (size_t i = 0; i < lag.part_cnt; i++)
                if (lag.parts[i].partition < n)
                        committed[lag.parts[i].partition] =
                                lag.parts[i].committed;
        mls_kinspect_lag_fini(&lag);
        return 0;
}

int mls_rig_wait_caught_up(struct mls_rig *r, int timeout_ms)
{
        struct mls_kinspect_conn c = rig_conn(r);
        const char *topics[] = { MLS_RIG_TOPIC };
        int64_t deadline = mls_now_ms() + timeout_ms;
        int64_t last_report = 0;

        for (;;) {
                struct mls_kinspect_lag lag;
                char errstr[256];
                int64_t now = mls_now_ms();

                if (mls_kinspect_lag_get(&c, MLS_RIG_GROUP, topics, 1, &lag,
                                         errstr, sizeof(errstr)) == MLS_OK) {
                        int64_t total = lag.total;
                        bool all = true;

                        /* An empty partition has nothing to commit. */
                        for (size_t i = 0; i < lag.part_cnt; i++)
                                if (lag.parts[i].committed !=
                                            lag.parts[i].high &&
                                    !(lag.parts[i].high == 0 &&
                                      lag.parts[i].committed < 0))
                                        all = false;
                        if (all && total == 0) {
                                mls_kinspect_lag_fini(&lag);
                                return 0;
                        }
                        if (now >= deadline || now - last_report >= 10000) {
                                last_report = now;
                                printf("rig: lag %lld:", (long long)total);
                                for (size_t i = 0; i < lag.part_cnt; i++)
                                        printf(" p%d=%lld/%lld",
                                               lag.parts[i].partition,
                                               (long long)lag.parts[i].committed,
                                               (long long)lag.parts[i].high);
                                printf("\n");
                                fflush(stdout);
                        }
                        mls_kinspect_lag_fini(&lag);
                }
                if (now >= deadline)
                        return -1;
                mls_sleep_ms(500);
        }
}

char *mls_rig_admin(struct mls_rig *r, const char *what)
{
        char url[256];
        char *resp = NULL;

        snprintf(url, sizeof(url), "%s/_admin/%s", r->emu_base, what);
        if (mls_http_req("GET", url, NULL, NULL, &resp) != 200) {
                free(resp);
                return NULL;
        }
        return resp;
}

void mls_rig_stop(struct mls_rig *r)
{
        mls_proc_stop(&r->gen);
        for (int i = 0; i < MLS_RIG_MAX_WORKERS; i++)
                mls_proc_stop(&r->workers[i]);
        mls_proc_stop(&r->emu);
        mls_proc_stop(&r->kafka);
}
