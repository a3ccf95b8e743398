/* SPDX-License-Identifier: Apache-2.0
 *
 * worker_budget.c - the worker's side of the shared Marketo budget: it
 * carries control records between the control topic (control.c) and one
 * budget state per instance (budget.c), and puts that state in front of
 * every REST call the instance's Marketo client makes.
 *
 * Everything runs on the worker's loop thread. A call may start only when
 * the budget state allows it; while the control topic cannot be trusted
 * the state fences itself (no read-back of our own records), so no call
 * starts, batches wait, their offsets stay uncommitted, and partitions are
 * paused by the usual back-pressure once too much is pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "marketo_int.h"
#include "mlsync/budget.h"
#include "mlsync/control.h"
#include "mlsync/log.h"
#include "mlsync/util.h"
#include "worker_int.h"

/* The daily-quota records live in their own topic, named after the control
 * topic, which can be compacted and is read from the start of the day. */
#define WB_QUOTA_SUFFIX ".quota"
/* History of the quota topic read at start: a whole Marketo day and a
 * margin for clock differences. */
#define WB_QUOTA_HISTORY_MS (26LL * 3600 * 1000)

/* An abandoned call (a revoke cancels its batch) may still be travelling
 * to Marketo, which counts it on arrival: it stays counted as in flight
 * this much longer before its 20 s in the window start. */
#define WB_ABANDON_GRACE_MS 5000

/* How often "control topic unhealthy" is logged while it lasts. */
#define WB_WARN_EVERY_MS 10000
/* Calls one waiting batch is expected to need: the lead call and the
 * list call (a remove: lookup and list call). */
#define WB_CALLS_PER_BATCH 2

static int64_t gate_allow(void *opaque, int64_t now_ms)
{
        struct winst *inst = opaque;

        if (!inst->bud)
                return 0;
        /* A poll of the loop (at most 100 ms) is soon enough to ask again:
         * allowance changes with records and with calls ageing out. */
        return mls_budget_allowance(inst->bud, now_ms) > 0 ? 0 : 50;
}

static void gate_spent(void *opaque, int64_t now_ms)
{
        struct winst *inst = opaque;
        struct mls_budget_stats st;

        if (!inst->bud)
                return;
        if (!mls_budget_try_spend(inst->bud, now_ms)) {
                /* The gate said yes a moment ago: should never happen. */
                inst->gate_overdraft++;
                mls_log(MLS_LOG_WARN, "budget", "call sent without budget",
                        MLS_KV_STR("instance", inst->cfg->munchkin_id));
                return;
        }
        if (mls_log_enabled(MLS_LOG_DEBUG)) {
                mls_budget_get_stats(inst->bud, now_ms, &st);
                mls_log(MLS_LOG_DEBUG, "budget", "call started",
                        MLS_KV_STR("instance", inst->cfg->munchkin_id),
                        MLS_KV_INT("wall_ms", mls_wall_ms()),
                        MLS_KV_INT("conf", st.conf),
                        MLS_KV_INT("window", st.window_calls),
                        MLS_KV_INT("others", st.others),
                        MLS_KV_INT("in_flight", st.in_flight));
        }
}

static void gate_ended(void *opaque, int code, int64_t sent_ms,
                       int64_t now_ms)
{
        struct winst *inst = opaque;
        struct wb_late *late;

        if (!inst->bud)
                return;
        if (code != MLS_MKTO_GATE_ABANDONED) {
                mls_budget_on_reply(inst->bud, code, sent_ms, now_ms);
                return;
        }
        late = malloc(sizeof(*late));
        if (!late) {
                /* LIMIT: without memory an abandoned call ends at once. */
                mls_budget_on_reply(inst->bud, 0, sent_ms, now_ms);
                return;
        }
        late->sent_ms = sent_ms;
        late->due_ms = now_ms + WB_ABANDON_GRACE_MS;
        late->next = inst->late;
        inst->late = late;
}

/* End the abandoned calls whose grace is over. */
static void end_late_calls(struct winst *inst, int64_t now)
{
        struct wb_late **pp = &inst->late;

        while (*pp) {
                struct wb_late *l = *pp;

                if (l->due_ms > now) {
                        pp = &l->next;
                        continue;
                }
                *pp = l->next;
                mls_budget_on_reply(inst->bud, 0, l->sent_ms, now);
                free(l);
        }
}

/* A Marketo day number: the reset instants are a day apart, so the next
 * one names the current day in Marketo's own time zone. */
static long marketo_day(void)
{
        return (long)(mkto_next_reset_wall_ms(mls_wall_ms()) / 86400000);
}

static struct mls_ctl *open_quota_topic(struct worker *w, char *errstr,
                                         size_t n)
{
        struct mls_ctl_opts opts = { .history_ms = WB_QUOTA_HISTORY_MS };
        struct mls_cfg qcfg = *w->cfg;
        char name[256]; /* Kafka topic names are at most 249 bytes */

        if (snprintf(name, sizeof(name), "%s" WB_QUOTA_SUFFIX,
                     w->cfg->kafka.control_topic) >= (int)sizeof(name)) {
                snprintf(errstr, n, "control topic name too long");
                return NULL;
        }
        qcfg.kafka.control_topic = name;
        return mls_ctl_new_opts(&qcfg, w->worker_id, &opts, errstr, n);
}

int mls_wbud_setup(struct worker *w)
{
        char errstr[512];
        int64_t incarnation;

        w->ctl = mls_ctl_new(w->cfg, w->worker_id, errstr, sizeof(errstr));
        if (w->ctl)
                w->ctlq = open_quota_topic(w, errstr, sizeof(errstr));
        if (!w->ctl || !w->ctlq) {
                mls_log(MLS_LOG_ERROR, "budget",
                        "control topic unusable (it and <topic>.quota "
                        "must exist)",
                        MLS_KV_STR("topic", w->cfg->kafka.control_topic),
                        MLS_KV_STR("detail", errstr));
                return -1;
        }
        /* A new incarnation per process start: a restarted worker is a new
         * member, and its old self is counted until it lapses. */
        incarnation = (mls_wall_ms() << 16 ^ (int64_t)getpid()) &
                      INT64_MAX;
        for (size_t i = 0; i < w->inst_cnt; i++) {
                struct winst *inst = &w->insts[i];
                const struct mls_budget *b = &inst->cfg->budget;
                struct mls_mkto_gate g = { .allow = gate_allow,
                                           .spent = gate_spent,
                                           .ended = gate_ended,
                                           .opaque = inst };

                inst->bud = mls_budget_new(inst->cfg->munchkin_id,
                                           w->worker_id, incarnation,
                                           b->calls_per_20s,
                                           b->concurrent_calls,
                                           b->daily_calls, NULL);
                if (!inst->bud) {
                        mls_log(MLS_LOG_ERROR, "budget",
                                "budget state not created",
                                MLS_KV_STR("instance",
                                           inst->cfg->munchkin_id));
                        return -1;
                }
                mls_budget_set_day(inst->bud, marketo_day());
                mls_mkto_set_gate(inst->mk, &g);
        }
        w->bud_day = marketo_day();
        /* Control records wake the loop like Kafka messages do. */
        mls_mkto_loop_watch_fd(w->loop, mls_ctl_wake_fd(w->ctl));
        mls_mkto_loop_watch_fd(w->loop, mls_ctl_wake_fd(w->ctlq));
        mls_log(MLS_LOG_INFO, "budget", "sharing the Marketo budget",
                MLS_KV_STR("topic", w->cfg->kafka.control_topic),
                MLS_KV_INT("partitions", mls_ctl_partition_cnt(w->ctl)),
                MLS_KV_INT("instances", w->inst_cnt));
        return 0;
}

static struct winst *inst_by_id(struct worker *w, const char *id)
{
        for (size_t i = 0; i < w->inst_cnt; i++)
                if (!strcasecmp(w->insts[i].cfg->munchkin_id, id))
                        return &w->insts[i];
        return NULL;
}

static void on_control_record(void *opaque, const struct mls_ctl_record *rec)
{
        struct worker *w = opaque;
        struct winst *inst = inst_by_id(w, rec->instance);
        enum mls_err err;

        /* Instances this worker is not configured for are other
         * deployments' business. */
        if (!inst || !inst->bud)
                return;
        err = mls_budget_on_record(inst->bud, rec->val, rec->len,
                                   rec->ts_ms, mls_now_ms());
        if (err == MLS_ERR_BAD_MESSAGE)
                mls_log(MLS_LOG_WARN, "budget", "control record skipped",
                        MLS_KV_STR("instance", inst->cfg->munchkin_id),
                        MLS_KV_INT("partition", rec->partition),
                        MLS_KV_INT("offset", rec->offset));
}

/* Calls the instance is waiting to make: its lists with a batch gathering
 * or out at Marketo. */
static long queued_calls(struct worker *w, const struct winst *inst)
{
        long n = 0;

        for (size_t i = 0; i < w->list_cap; i++)
                for (struct wlist *l = w->lists[i]; l; l = l->hnext)
                        if (l->inst == inst && (l->open || l->flight))
                                n += WB_CALLS_PER_BATCH;
        return n;
}

static void publish_due(struct worker *w, struct winst *inst, int64_t now)
{
        enum mls_budget_topic topic;
        char *rec;

        while ((rec = mls_budget_next_record(inst->bud, now, &topic))) {
                struct mls_ctl *ctl = topic == MLS_BUDGET_TOPIC_QUOTA ?
                                              w->ctlq :
                                              w->ctl;
                enum mls_err err = mls_ctl_publish(
                        ctl, inst->cfg->munchkin_id, rec, strlen(rec), now);

                free(rec);
                if (err != MLS_OK) {
                        /* The state treats an unpublished record like a
                         * lost one: no read-back, so no raise, and the
                         * fence closes if it lasts. */
                        mls_log(MLS_LOG_WARN, "budget",
                                "control record not published",
                                MLS_KV_STR("instance",
                                           inst->cfg->munchkin_id),
                                MLS_KV_STR("err", mls_err_name(err)));
                        break;
                }
        }
}

static int poll_topic(struct worker *w, struct mls_ctl *ctl, int64_t now)
{
        int n;

        do {
                n = mls_ctl_poll(ctl, now, on_control_record, w);
                if (n < 0) {
                        mls_log(MLS_LOG_ERROR, "budget",
                                "control topic failed",
                                MLS_KV_STR("detail", mls_ctl_status(ctl)));
                        return -1;
                }
        } while (n >= MLS_CTL_POLL_MAX);
        return 0;
}

int mls_wbud_tick(struct worker *w, int64_t now)
{
        bool healthy;
        long day;

        if (!w->ctl)
                return 0;
        if (poll_topic(w, w->ctlq, now) < 0 || poll_topic(w, w->ctl, now) < 0)
                return -1;
        if (!w->bud_started && mls_ctl_caught_up(w->ctl) &&
            mls_ctl_caught_up(w->ctlq)) {
                w->bud_started = true;
                for (size_t i = 0; i < w->inst_cnt; i++)
                        mls_budget_start(w->insts[i].bud, now);
                mls_log(MLS_LOG_INFO, "budget", "control history read");
        }
        healthy = mls_ctl_healthy(w->ctl, now);
        healthy &= mls_ctl_healthy(w->ctlq, now);
        if (!healthy) {
                if (now - w->ctl_warn_ms >= WB_WARN_EVERY_MS) {
                        w->ctl_warn_ms = now;
                        mls_log(MLS_LOG_WARN, "budget",
                                "control topic unhealthy: Marketo calls "
                                "wait, offsets are held",
                                MLS_KV_STR("rate", mls_ctl_status(w->ctl)),
                                MLS_KV_STR("quota",
                                           mls_ctl_status(w->ctlq)));
                }
        } else if (w->ctl_warn_ms) {
                w->ctl_warn_ms = 0;
                mls_log(MLS_LOG_INFO, "budget", "control topic healthy again");
        }
        day = marketo_day();
        for (size_t i = 0; i < w->inst_cnt; i++) {
                struct winst *inst = &w->insts[i];

                end_late_calls(inst, now);
                if (day != w->bud_day)
                        mls_budget_set_day(inst->bud, day);
                mls_budget_set_demand(inst->bud, queued_calls(w, inst), now);
                publish_due(w, inst, now);
        }
        w->bud_day = day;
        return 0;
}

void mls_wbud_teardown(struct worker *w)
{
        for (size_t i = 0; i < w->inst_cnt; i++) {
                if (w->insts[i].mk)
                        mls_mkto_set_gate(w->insts[i].mk, NULL);
                while (w->insts[i].late) {
                        struct wb_late *l = w->insts[i].late;

                        w->insts[i].late = l->next;
                        free(l);
                }
                mls_budget_destroy(w->insts[i].bud);
                w->insts[i].bud = NULL;
        }
        mls_ctl_destroy(w->ctl);
        mls_ctl_destroy(w->ctlq);
        w->ctl = NULL;
        w->ctlq = NULL;
}
