/* SPDX-License-Identifier: Apache-2.0
 *
 * worker_obs.c - what the worker shows to operators besides its logs: the
 * Prometheus series and the /livez /readyz probes, served on
 * worker.http_addr when it is set.
 *
 * The worker thread owns every series. It mirrors its own totals (and each
 * Marketo client's) into the registry once per loop turn; a counter's set
 * only ever raises it, so mirroring a running total is exact. The HTTP
 * thread only renders.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlsync/budget.h"
#include "mlsync/httpd.h"
#include "mlsync/log.h"
#include "mlsync/metrics.h"
#include "mlsync/util.h"
#include "worker_int.h"

/* /livez fails when the loop has not turned for this long: well below
 * librdkafka's max.poll.interval.ms (300 s), so a stuck worker is
 * restarted before the group evicts it. */
#define OBS_STALL_MS 120000

struct obs_inst {
        struct mls_metric *calls, *token_calls, *retries;
        struct mls_metric *e606, *e615, *e607, *eother;
        struct mls_metric *applied, *rejected;
        struct mls_metric *in_flight, *window_used, *budget, *held;
        struct mls_metric *shared, *others, *fenced, *daily_used;
        struct mls_metric *rec_bad, *rec_version;
};

struct wobs {
        struct mls_metrics *m;
        struct mls_health health;
        struct mls_httpd *srv;
        struct mls_metric *ready, *draining, *heartbeat;
        struct mls_metric *consumed, *applied, *no_email, *dead_lettered;
        struct mls_metric *pending, *assigned, *paused, *in_flight;
        struct mls_metric *batches, *batch_retries;
        struct mls_metric *commits_ok, *commits_err, *last_commit;
        struct obs_inst *insts;
};

static struct mls_metric *counter(struct wobs *o, const char *name,
                                  const char *help, const char *labels)
{
        return mls_metric_get(o->m, MLS_COUNTER, name, help, labels);
}

static struct mls_metric *gauge(struct wobs *o, const char *name,
                                const char *help, const char *labels)
{
        return mls_metric_get(o->m, MLS_GAUGE, name, help, labels);
}

static void register_instance(struct wobs *o, struct obs_inst *s,
                              const char *id)
{
        char l[96];

        snprintf(l, sizeof(l), "instance=%s", id);
        s->calls = counter(o, "mlsync_api_requests_total",
                           "Marketo REST calls sent (identity excluded)", l);
        s->token_calls = counter(o, "mlsync_token_requests_total",
                                 "Marketo identity (token) calls sent", l);
        s->retries = counter(o, "mlsync_api_retries_total",
                             "Marketo calls sent again after a failure", l);
#define ERR_SERIES(field, code)                                              \
        do {                                                                 \
                snprintf(l, sizeof(l), "instance=%s,code=%s", id, code);     \
                s->field = counter(o, "mlsync_api_errors_total",             \
                                   "Failed Marketo calls by reason code", l); \
        } while (0)
        ERR_SERIES(e606, "606");
        ERR_SERIES(e615, "615");
        ERR_SERIES(e607, "607");
        ERR_SERIES(eother, "other");
#undef ERR_SERIES
        snprintf(l, sizeof(l), "instance=%s", id);
        s->applied = counter(o, "mlsync_emails_applied_total",
                             "List memberships Marketo accepted (adds and "
                             "removes, one per email)", l);
        s->rejected = counter(o, "mlsync_emails_rejected_total",
                              "Emails Marketo refused (dead-lettered)", l);
        s->in_flight = gauge(o, "mlsync_api_in_flight_calls",
                             "Marketo calls in flight now", l);
        s->window_used = gauge(o, "mlsync_rate_budget_used_calls",
                               "Our calls in the current rolling 20 s window",
                               l);
        s->budget = gauge(o, "mlsync_rate_budget_allocated_calls",
                          "Calls per rolling 20 s window this worker may "
                          "make (its confirmed share)", l);
        s->shared = gauge(o, "mlsync_rate_budget_effective_calls",
                          "The shared budget per 20 s after 606/615 "
                          "feedback", l);
        s->others = gauge(o, "mlsync_rate_budget_others_calls",
                          "Other workers' footprints per 20 s", l);
        s->fenced = gauge(o, "mlsync_rate_budget_fenced",
                          "1 while this worker may not call (its control "
                          "records are not read back)", l);
        s->daily_used = gauge(o, "mlsync_daily_quota_used_calls",
                              "Calls this worker made today (Marketo day)",
                              l);
        snprintf(l, sizeof(l), "instance=%s,reason=invalid", id);
        s->rec_bad = counter(o, "mlsync_control_records_skipped_total",
                             "Control records skipped, by reason", l);
        snprintf(l, sizeof(l), "instance=%s,reason=version", id);
        s->rec_version = counter(o, "mlsync_control_records_skipped_total",
                                 "Control records skipped, by reason", l);
        snprintf(l, sizeof(l), "instance=%s", id);
        s->held = gauge(o, "mlsync_instance_held",
                        "1 while the instance is held after a fatal error or "
                        "a spent daily quota", l);
}

static int register_all(struct worker *w, struct wobs *o)
{
        char l[160];

        snprintf(l, sizeof(l), "version=%s,librdkafka=%s", MLS_VERSION,
                 rd_kafka_version_str());
        mls_metric_set(gauge(o, "mlsync_build_info",
                             "Build information; always 1", l),
                       1);
        o->ready = gauge(o, "mlsync_ready",
                         "1 when the worker has joined its group", NULL);
        o->draining = gauge(o, "mlsync_draining",
                            "1 from the first SIGTERM/SIGINT on", NULL);
        o->heartbeat = gauge(o,
                             "mlsync_poll_loop_last_iteration_timestamp_seconds",
                             "Unix time of the main loop's last turn", NULL);
        o->consumed = counter(o, "mlsync_records_consumed_total",
                              "Kafka records read", NULL);
#define RESULT(field, v)                                                     \
        o->field = counter(o, "mlsync_records_processed_total",              \
                           "Kafka records done, by outcome", "result=" v)
        RESULT(applied, "applied");
        RESULT(no_email, "no_email");
        RESULT(dead_lettered, "dead_lettered");
#undef RESULT
        o->pending = gauge(o, "mlsync_pending_records",
                           "Records read but not done (their offsets wait)",
                           NULL);
        o->assigned = gauge(o, "mlsync_assigned_partitions",
                            "Partitions assigned to this worker", NULL);
        o->paused = gauge(o, "mlsync_paused_partitions",
                          "Partitions paused because too much is pending",
                          NULL);
        o->in_flight = gauge(o, "mlsync_inflight_batches",
                             "List batches out at Marketo", NULL);
        o->batches = counter(o, "mlsync_batches_total",
                             "List batches sent to Marketo", NULL);
        o->batch_retries = counter(o, "mlsync_batch_retries_total",
                                   "List batches sent again after a "
                                   "retryable failure", NULL);
        o->commits_ok = counter(o, "mlsync_offset_commits_total",
                                "Offset commits, by result", "result=ok");
        o->commits_err = counter(o, "mlsync_offset_commits_total",
                                 "Offset commits, by result", "result=error");
        o->last_commit = gauge(o, "mlsync_last_commit_timestamp_seconds",
                               "Unix time of the last offset commit sent",
                               NULL);
        o->insts = calloc(w->inst_cnt ? w->inst_cnt : 1, sizeof(*o->insts));
        if (!o->insts)
                return -1;
        for (size_t i = 0; i < w->inst_cnt; i++)
                register_instance(o, &o->insts[i],
                                  w->insts[i].cfg->munchkin_id);
        return mls_metrics_enable_process(o->m);
}

int mls_wobs_start(struct worker *w)
{
        struct wobs *o;
        char errstr[256];

        if (!w->cfg->worker.http_addr)
                return 0;
        o = calloc(1, sizeof(*o));
        if (!o)
                return -1;
        w->obs = o;
        mls_health_init(&o->health);
        o->health.not_ready_reason = "waiting for partition assignment";
        o->m = mls_metrics_new();
        if (!o->m || register_all(w, o) < 0)
                return -1;
        o->srv = mls_httpd_start(w->cfg->worker.http_addr, o->m, &o->health,
                                 OBS_STALL_MS, errstr, sizeof(errstr));
        if (!o->srv) {
                mls_log(MLS_LOG_ERROR, "worker", "http server not started",
                        MLS_KV_STR("addr", w->cfg->worker.http_addr),
                        MLS_KV_STR("detail", errstr));
                return -1;
        }
        mls_log(MLS_LOG_INFO, "worker", "http server listening",
                MLS_KV_STR("addr", w->cfg->worker.http_addr),
                MLS_KV_INT("port", mls_httpd_port(o->srv)));
        return 0;
}

void mls_wobs_ready(struct worker *w)
{
        if (!w->obs)
                return;
        w->obs->health.ready = 1;
        w->obs->health.not_ready_reason = NULL;
}

void mls_wobs_draining(struct worker *w)
{
        if (!w->obs)
                return;
        w->obs->health.draining = 1;
        mls_metric_set(w->obs->draining, 1);
}

void mls_wobs_tick(struct worker *w, int64_t now)
{
        struct wobs *o = w->obs;
        size_t paused = 0;

        if (!o)
                return;
        o->health.heartbeat_ms = now;
        mls_metric_set(o->heartbeat, (double)mls_wall_ms() / 1000.0);
        mls_metric_set(o->ready, o->health.ready);
        mls_metric_set(o->consumed, (double)w->st.consumed);
        mls_metric_set(o->applied, (double)w->st.applied);
        mls_metric_set(o->no_email, (double)w->st.no_email);
        mls_metric_set(o->dead_lettered, (double)w->st.dead_lettered);
        mls_metric_set(o->pending, (double)w->pending);
        mls_metric_set(o->assigned, (double)w->part_cnt);
        mls_metric_set(o->in_flight, (double)w->in_flight);
        for (struct wpart *p = w->parts; p; p = p->next)
                paused += p->paused;
        mls_metric_set(o->paused, (double)paused);
        mls_metric_set(o->batches, (double)w->st.batches);
        mls_metric_set(o->batch_retries, (double)w->st.batch_retries);
        mls_metric_set(o->commits_ok, (double)w->st.commits);
        mls_metric_set(o->commits_err, (double)w->st.commit_errors);
        if (w->last_commit_ms > 0)
                mls_metric_set(o->last_commit,
                               (double)(mls_wall_ms() -
                                        (now - w->last_commit_ms)) /
                                       1000.0);
        for (size_t i = 0; i < w->inst_cnt; i++) {
                struct obs_inst *s = &o->insts[i];
                struct mls_mkto_stats ms;

                mls_mkto_get_stats(w->insts[i].mk, &ms);
                mls_metric_set(s->calls, (double)ms.calls);
                mls_metric_set(s->token_calls, (double)ms.token_calls);
                mls_metric_set(s->retries, (double)ms.retries);
                mls_metric_set(s->e606, (double)ms.errors_606);
                mls_metric_set(s->e615, (double)ms.errors_615);
                mls_metric_set(s->e607, (double)ms.errors_607);
                mls_metric_set(s->eother, (double)ms.errors_other);
                mls_metric_set(s->applied, (double)ms.emails_applied);
                mls_metric_set(s->rejected, (double)ms.emails_rejected);
                mls_metric_set(s->in_flight, ms.in_flight);
                mls_metric_set(s->window_used, ms.window_used);
                if (w->insts[i].bud) {
                        struct mls_budget_stats bs;

                        mls_budget_get_stats(w->insts[i].bud, now, &bs);
                        mls_metric_set(s->budget, bs.conf);
                        mls_metric_set(s->shared, bs.beff);
                        mls_metric_set(s->others, bs.others);
                        mls_metric_set(s->fenced, bs.fenced);
                        mls_metric_set(s->daily_used,
                                       (double)bs.daily_used);
                        mls_metric_set(s->rec_bad, (double)bs.records_bad);
                        mls_metric_set(s->rec_version,
                                       (double)bs.records_version);
                } else {
                        mls_metric_set(s->budget,
                                       w->insts[i].cfg->budget.calls_per_20s);
                }
                mls_metric_set(s->held, w->insts[i].hold_until > now);
        }
}

void mls_wobs_stop(struct worker *w)
{
        struct wobs *o = w->obs;

        if (!o)
                return;
        mls_httpd_stop(o->srv);
        mls_metrics_destroy(o->m);
        free(o->insts);
        free(o);
        w->obs = NULL;
}
