/* SPDX-License-Identifier: Apache-2.0
 *
 * worker_sync.c - gather membership changes per (instance, list) and send
 * them to Marketo one batch at a time per list, retrying until accepted.
 *
 * Order per list: a list's next batch starts only after the one before it
 * is done, so an add and a later remove of the same email never swap at
 * Marketo. Lists and instances are independent of each other: a slow or
 * failing instance holds only its own lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlsync/log.h"
#include "mlsync/util.h"
#include "worker_int.h"

#define RETRY_BASE_MS 1000
#define RETRY_CAP_MS 60000
#define FATAL_BASE_MS 10000
#define FATAL_CAP_MS 300000
#define WARN_EVERY_MS 10000

static uint32_t list_hash(const struct winst *inst, const char *name)
{
        uint32_t h = 2166136261u ^ (uint32_t)(uintptr_t)inst;

        for (; *name; name++) {
                h ^= (unsigned char)*name;
                h *= 16777619u;
        }
        return h;
}

static enum mls_err lists_grow(struct worker *w)
{
        size_t cap = w->list_cap ? w->list_cap * 2 : 64;
        struct wlist **tab = calloc(cap, sizeof(*tab));

        if (!tab)
                return MLS_ERR_NOMEM;
        for (size_t i = 0; i < w->list_cap; i++) {
                struct wlist *l = w->lists[i];

                while (l) {
                        struct wlist *next = l->hnext;
                        uint32_t h = list_hash(l->inst, l->name) & (cap - 1);

                        l->hnext = tab[h];
                        tab[h] = l;
                        l = next;
                }
        }
        free(w->lists);
        w->lists = tab;
        w->list_cap = cap;
        return MLS_OK;
}

static struct wlist *list_get(struct worker *w, struct winst *inst,
                              const char *name)
{
        struct wlist *l;
        uint32_t h;

        if (w->list_cap) {
                h = list_hash(inst, name) & (w->list_cap - 1);
                for (l = w->lists[h]; l; l = l->hnext)
                        if (l->inst == inst && !strcmp(l->name, name))
                                return l;
        }
        if (w->list_cnt * 2 >= w->list_cap && lists_grow(w) != MLS_OK)
                return NULL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return NULL;
        l->inst = inst;
        l->name = strdup(name);
        if (!l->name) {
                free(l);
                return NULL;
        }
        h = list_hash(inst, name) & (w->list_cap - 1);
        l->hnext = w->lists[h];
        w->lists[h] = l;
        w->list_cnt++;
        return l;
}

static struct wbatch *batch_new(struct wlist *l, int64_t now)
{
        struct wbatch *wb = calloc(1, sizeof(*wb));

        if (!wb)
                return NULL;
        wb->b = mls_batch_new();
        if (!wb->b) {
                free(wb);
                return NULL;
        }
        wb->list = l;
        wb->first_ms = now;
        for (int op = 0; op < 2; op++) {
                wb->jobs[op].batch = wb;
                wb->jobs[op].op = (enum mls_batch_action)op;
        }
        return wb;
}

static void batch_free(struct wbatch *wb)
{
        if (!wb)
                return;
        for (int op = 0; op < 2; op++) {
                free(wb->emails[op]);
                free(wb->origins[op]);
        }
        mls_batch_destroy(wb->b);
        free(wb->msgs);
        free(wb);
}

static enum mls_err batch_hold_msg(struct wbatch *wb, struct wmsg *m)
{
        if (wb->msg_cnt && wb->msgs[wb->msg_cnt - 1] == m)
                return MLS_OK;
        if (wb->msg_cnt == wb->msg_cap) {
                size_t cap = wb->msg_cap ? wb->msg_cap * 2 : 16;
                struct wmsg **nm = realloc(wb->msgs, cap * sizeof(*nm));

                if (!nm)
                        return MLS_ERR_NOMEM;
                wb->msgs = nm;
                wb->msg_cap = cap;
        }
        wb->msgs[wb->msg_cnt++] = m;
        m->refs++;
        return MLS_OK;
}

enum mls_err mls_wsync_route(struct worker *w, struct wmsg *m,
                             struct winst *inst, const char *list_name,
                             enum mls_batch_action action,
                             char *const *emails, size_t email_cnt)
{
        struct wlist *l = list_get(w, inst, list_name);
        enum mls_err err;

        if (!l)
                return MLS_ERR_NOMEM;
        if (!l->open) {
                l->open = batch_new(l, mls_now_ms());
                if (!l->open)
                        return MLS_ERR_NOMEM;
        }
        err = batch_hold_msg(l->open, m);
        for (size_t i = 0; !err && i < email_cnt; i++)
                err = mls_batch_put(l->open->b, emails[i], action, m);
        return err;
}

/* The whole batch is accepted: hand every message on. A message with a
 * rejected email goes to the dead-letter topic; the rest are done. */
static void batch_finish(struct worker *w, struct wbatch *wb)
{
        struct wlist *l = wb->list;

        w->in_flight--;
        l->inst->flights--;
        l->flight = NULL;
        for (size_t i = 0; i < wb->msg_cnt; i++) {
                if (!wb->msgs[i]->reject_reason[0])
                        w->st.applied++;
                mls_worker_msg_release(w, wb->msgs[i]);
        }
        batch_free(wb);
}

static void note_rejects(struct wbatch *wb, enum mls_batch_action op,
                         const struct mls_mkto_result *res)
{
        for (size_t i = 0; i < res->reject_cnt; i++) {
                const struct mls_mkto_reject *r = &res->rejects[i];
                struct wmsg *m;

                if (r->index >= wb->n[op])
                        continue;
                m = wb->origins[op][r->index];
                if (m->reject_reason[0])
                        continue;
                snprintf(m->reject_code, sizeof(m->reject_code), "%s",
                         r->code);
                snprintf(m->reject_reason, sizeof(m->reject_reason),
                         "marketo rejected an email of this message: %s %s",
                         r->code, r->message);
        }
}

static int64_t retry_delay(struct winst *inst, const struct mls_mkto_result *res,
                           unsigned attempt, int64_t now)
{
        int64_t at;

        switch (res->err) {
        case MLS_ERR_FATAL:
        case MLS_ERR_REJECTED:
        case MLS_ERR_CONFIG:
                at = now + mls_backoff_ms(attempt, FATAL_BASE_MS,
                                          FATAL_CAP_MS);
                break;
        default:
                at = now + mls_backoff_ms(attempt, RETRY_BASE_MS,
                                          RETRY_CAP_MS);
                break;
        }
        if (res->retry_at_ms > at)
                at = res->retry_at_ms;
        if (res->err == MLS_ERR_QUOTA || res->err == MLS_ERR_FATAL) {
                if (at > inst->hold_until)
                        inst->hold_until = at;
        }
        return at;
}

static void log_failure(struct wbatch *wb, const struct mls_mkto_result *res,
                        int64_t now, int64_t delay)
{
        struct winst *inst = wb->list->inst;
        bool severe = res->err == MLS_ERR_FATAL || res->err == MLS_ERR_QUOTA ||
                      res->err == MLS_ERR_REJECTED ||
                      res->err == MLS_ERR_CONFIG;

        /* A fatal instance is logged on every (slow) retry; transient
         * trouble at most every WARN_EVERY_MS per instance. */
        if (!severe && now - inst->last_warn_ms < WARN_EVERY_MS)
                return;
        inst->last_warn_ms = now;
        mls_log(severe ? MLS_LOG_ERROR : MLS_LOG_WARN, "sync",
                severe ? "instance held" : "batch retry",
                MLS_KV_STR("instance", inst->cfg->munchkin_id),
                MLS_KV_STR("err", mls_err_name(res->err)),
                MLS_KV_STR("code", res->code),
                MLS_KV_STR("detail", res->errstr),
                MLS_KV_INT("attempt", wb->attempt),
                MLS_KV_DBL("retry_in_s", (double)delay / 1000.0));
}

static void batch_send(struct worker *w, struct wbatch *wb);

static void on_job_done(const struct mls_mkto_result *res, void *opaque)
{
        struct wjob *job = opaque;
        struct wbatch *wb = job->batch;
        struct winst *inst = wb->list->inst;
        struct worker *w = inst->w;
        int64_t now, at;

        wb->running--;
        if (res->err == MLS_OK) {
                wb->op_done[job->op] = true;
                note_rejects(wb, job->op, res);
        } else if (wb->last_err == MLS_OK ||
                   wb->last_err == MLS_ERR_TRANSIENT) {
                wb->last_err = res->err;
        }
        if (w->abandoning || wb->running > 0)
                return;
        if (wb->op_done[MLS_BATCH_ADD] && wb->op_done[MLS_BATCH_REMOVE]) {
                batch_finish(w, wb);
                return;
        }
        /* Part of the batch failed: send the unfinished part again later.
         * Its messages stay pending, so their offsets wait. */
        now = mls_now_ms();
        wb->attempt++;
        at = retry_delay(inst, res, wb->attempt, now);
        log_failure(wb, res, now, at - now);
        wb->waiting = true;
        wb->next_try_ms = at;
        w->st.batch_retries++;
}

static enum mls_err batch_snapshot(struct wbatch *wb)
{
        for (int op = 0; op < 2; op++) {
                size_t n = mls_batch_count(wb->b, (enum mls_batch_action)op);

                wb->emails[op] = calloc(n ? n : 1, sizeof(char *));
                wb->origins[op] = calloc(n ? n : 1, sizeof(void *));
                if (!wb->emails[op] || !wb->origins[op])
                        return MLS_ERR_NOMEM;
                wb->n[op] = mls_batch_collect(wb->b, (enum mls_batch_action)op,
                                              wb->emails[op], wb->origins[op],
                                              n);
                wb->op_done[op] = wb->n[op] == 0;
        }
        return MLS_OK;
}

/* Start the jobs of every action not yet accepted. */
static void batch_send(struct worker *w, struct wbatch *wb)
{
        struct winst *inst = wb->list->inst;
        static const enum mls_mkto_op ops[2] = { MLS_MKTO_ADD,
                                                 MLS_MKTO_REMOVE };

        wb->waiting = false;
        wb->last_err = MLS_OK;
        for (int op = 0; op < 2; op++) {
                if (wb->op_done[op])
                        continue;
                wb->running++;
                if (mls_mkto_sync(inst->mk, wb->list->name, ops[op],
                                  wb->emails[op], wb->n[op], on_job_done,
                                  &wb->jobs[op]) != MLS_OK) {
                        /* Out of memory: try again shortly. */
                        wb->running--;
                        wb->waiting = true;
                        wb->next_try_ms = mls_now_ms() + RETRY_BASE_MS;
                }
        }
        if (wb->running == 0 && !wb->waiting)
                batch_finish(w, wb);
}

/* Move the list's gathering batch into flight. */
static void list_flush(struct worker *w, struct wlist *l)
{
        struct wbatch *wb = l->open;

        l->open = NULL;
        l->flight = wb;
        w->in_flight++;
        l->inst->flights++;
        w->st.batches++;
        if (batch_snapshot(wb) != MLS_OK) {
                wb->waiting = true;
                wb->next_try_ms = mls_now_ms() + RETRY_BASE_MS;
                return;
        }
        batch_send(w, wb);
}

/* Look at what is due on one list: resend a waiting batch, or say (in
 * *ready) that its gathering batch should start. Returns when the list
 * next needs attention, or INT64_MAX when only a reply can move it on. */
static int64_t list_tick(struct worker *w, struct wlist *l, int64_t now,
                         bool *ready)
{
        struct wbatch *wb = l->flight;
        int64_t hold = l->inst->hold_until;
        int64_t due;
        bool full;

        if (wb && wb->waiting) {
                due = wb->next_try_ms > hold ? wb->next_try_ms : hold;
                if (due > now)
                        return due;
                batch_send(w, wb);
                return INT64_MAX;
        }
        if (wb || !l->open)
                return INT64_MAX;
        full = mls_batch_size(l->open->b) >= (size_t)w->cfg->batch.max_emails;
        due = l->open->first_ms + w->cfg->batch.max_wait_ms;
        if (!full && !w->draining && due > now)
                return due;
        if (hold > now)
                return hold;
        *ready = true;
        return INT64_MAX;
}

static int oldest_first(const void *a, const void *b)
{
        const struct wlist *x = *(struct wlist *const *)a;
        const struct wlist *y = *(struct wlist *const *)b;

        return (x->open->first_ms > y->open->first_ms) -
               (x->open->first_ms < y->open->first_ms);
}

/* Batches one instance may have out at Marketo at once. Each waits for
 * the instance's calls anyway; the others keep gathering meanwhile, so
 * that when calls are scarce (a busy shared budget) each one carries as
 * many changes as it can, and the oldest batch goes first. */
static int flight_cap(const struct winst *inst)
{
        int cap = inst->cfg->budget.concurrent_calls;

        return cap > 1 ? cap : 1;
}

int64_t mls_wsync_tick(struct worker *w, int64_t now)
{
        int64_t next = INT64_MAX;
        size_t n = 0;

        for (size_t i = 0; i < w->list_cap; i++) {
                for (struct wlist *l = w->lists[i]; l; l = l->hnext) {
                        bool ready = false;
                        int64_t due = list_tick(w, l, now, &ready);

                        if (due < next)
                                next = due;
                        if (!ready)
                                continue;
                        if (n == w->ready_cap) {
                                size_t cap = n ? n * 2 : 64;
                                struct wlist **r = realloc(
                                        w->ready, cap * sizeof(*r));

                                if (!r) {
                                        /* Start it now, unordered. */
                                        list_flush(w, l);
                                        continue;
                                }
                                w->ready = r;
                                w->ready_cap = cap;
                        }
                        w->ready[n++] = l;
                }
        }
        qsort(w->ready, n, sizeof(*w->ready), oldest_first);
        for (size_t i = 0; i < n; i++) {
                struct wlist *l = w->ready[i];

                if (!w->draining && l->inst->flights >= flight_cap(l->inst)) {
                        /* A finished batch frees a slot; the loop turns
                         * at least every 100 ms. */
                        next = now + 100 < next ? now + 100 : next;
                        continue;
                }
                list_flush(w, l);
        }
        return next;
}

size_t mls_wsync_busy(const struct worker *w)
{
        size_t busy = 0;

        for (size_t i = 0; i < w->list_cap; i++)
                for (struct wlist *l = w->lists[i]; l; l = l->hnext)
                        busy += (l->open != NULL) + (l->flight != NULL);
        return busy;
}

/* Throw every batch away without completing its messages: used on revoke
 * and at the end of a drain. The messages stay uncommitted, so the next
 * owner of their partitions reads them again. */
void mls_wsync_abandon_all(struct worker *w)
{
        w->abandoning = true;
        for (size_t i = 0; i < w->inst_cnt; i++)
                mls_mkto_cancel_all(w->insts[i].mk);
        for (size_t i = 0; i < w->list_cap; i++) {
                for (struct wlist *l = w->lists[i]; l; l = l->hnext) {
                        struct wbatch *both[2] = { l->open, l->flight };

                        for (int k = 0; k < 2; k++) {
                                if (!both[k])
                                        continue;
                                for (size_t j = 0; j < both[k]->msg_cnt; j++)
                                        both[k]->msgs[j]->refs--;
                                batch_free(both[k]);
                        }
                        if (l->flight) {
                                w->in_flight--;
                                l->inst->flights--;
                        }
                        l->open = NULL;
                        l->flight = NULL;
                }
        }
        w->abandoning = false;
}

void mls_wsync_destroy_lists(struct worker *w)
{
        mls_wsync_abandon_all(w);
        for (size_t i = 0; i < w->list_cap; i++) {
                struct wlist *l = w->lists[i];

                while (l) {
                        struct wlist *next = l->hnext;

                        free(l->name);
                        free(l);
                        l = next;
                }
        }
        free(w->lists);
        free(w->ready);
        w->ready = NULL;
        w->ready_cap = 0;
        w->lists = NULL;
        w->list_cap = 0;
        w->list_cnt = 0;
}
