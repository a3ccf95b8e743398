/* SPDX-License-Identifier: Apache-2.0
 *
 * budget_view.c - `mlsync budget -c FILE`: a read-only view of the shared
 * Marketo budget for operators. It reads the control topics the way a
 * worker does at start, and prints, per configured instance, the workers
 * seen with their ceilings and footprints, the effective budget after the
 * shared 606/615 feedback, and today's daily-quota claims and use. It never
 * publishes anything.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "budget_view.h"
#include "mlsync/budget.h"
#include "mlsync/control.h"
#include "mlsync/util.h"

#define BV_MAX_WORKERS 256
#define BV_CATCH_UP_MS 20000

struct bv_worker {
        char wid[129];
        int64_t inc;
        int64_t log_ms;   /* latest rate record's time */
        int c, want, cc, infl;
        int hist[64];
        int hist_len;
        long day;         /* latest quota record */
        long total, used;
        bool f607;
};

struct bv_inst {
        const struct mls_cfg_instance *cfg;
        struct mls_budget *bud;  /* a passive replica: beff, members */
        struct bv_worker w[BV_MAX_WORKERS];
        size_t n;
        int64_t last_log_ms;
};

struct bv {
        struct bv_inst *insts;
        size_t cnt;
};

static struct bv_worker *worker_slot(struct bv_inst *in, const char *wid,
                                     int64_t inc)
{
        for (size_t i = 0; i < in->n; i++)
                if (in->w[i].inc == inc && !strcmp(in->w[i].wid, wid))
                        return &in->w[i];
        if (in->n == BV_MAX_WORKERS)
                return NULL;
        memset(&in->w[in->n], 0, sizeof(in->w[0]));
        snprintf(in->w[in->n].wid, sizeof(in->w[0].wid), "%s", wid);
        in->w[in->n].inc = inc;
        in->w[in->n].day = -1;
        return &in->w[in->n++];
}

static int get_int(json_object *o, const char *k, int dflt)
{
        json_object *v;

        return json_object_object_get_ex(o, k, &v) ? json_object_get_int(v) :
                                                     dflt;
}

/* The record's JSON (not NUL-terminated), or NULL. */
static json_object *parse(const void *val, size_t len)
{
        struct json_tokener *tok;
        json_object *o;

        if (!val || !len || len > MLS_BUDGET_RECORD_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, val, (int)len);
        json_tokener_free(tok);
        return o;
}

static void on_record(void *opaque, const struct mls_ctl_record *rec)
{
        struct bv *bv = opaque;
        struct bv_inst *in = NULL;
        json_object *root, *v, *hist;
        struct bv_worker *w;
        const char *kind, *wid;

        for (size_t i = 0; i < bv->cnt && !in; i++)
                if (!strcasecmp(bv->insts[i].cfg->munchkin_id, rec->instance))
                        in = &bv->insts[i];
        if (!in)
                return;
        mls_budget_on_record(in->bud, rec->val, rec->len, rec->ts_ms,
                             mls_now_ms());
        if (rec->ts_ms > in->last_log_ms)
                in->last_log_ms = rec->ts_ms;
        root = parse(rec->val, rec->len);
        if (!root || !json_object_is_type(root, json_type_object) ||
            get_int(root, "v", 0) != MLS_BUDGET_RECORD_VERSION ||
            !json_object_object_get_ex(root, "kind", &v) ||
            !(kind = json_object_get_string(v)) ||
            !json_object_object_get_ex(root, "wid", &v) ||
            !(wid = json_object_get_string(v))) {
                json_object_put(root);
                return;
        }
        json_object_object_get_ex(root, "inc", &v);
        w = worker_slot(in, wid, json_object_get_int64(v));
        if (w && !strcmp(kind, "rate")) {
                w->log_ms = rec->ts_ms;
                w->c = get_int(root, "c", 0);
                w->want = get_int(root, "want", 0);
                w->cc = get_int(root, "cc", 0);
                w->infl = get_int(root, "infl", 0);
                w->hist_len = 0;
                if (json_object_object_get_ex(root, "hist", &hist) &&
                    json_object_is_type(hist, json_type_array)) {
                        size_t n = json_object_array_length(hist);

                        for (size_t b = 0; b < n && b < 64; b++)
                                w->hist[w->hist_len++] = json_object_get_int(
                                        json_object_array_get_idx(hist, b));
                }
        } else if (w && !strcmp(kind, "quota")) {
                w->day = get_int(root, "day", -1);
                w->total = get_int(root, "total", 0);
                w->used = get_int(root, "used", 0);
                json_object_object_get_ex(root, "f607", &v);
                w->f607 = json_object_get_boolean(v);
        }
        json_object_put(root);
}

/* The footprint of a worker's latest record, as rate-budget.md §3.5 and
 * the budget module define it, at the newest log time seen. */
static int footprint(const struct bv_worker *w, int64_t at,
                     const struct mls_budget_params *p, const char **state)
{
        int64_t a = at - w->log_ms;
        int recent = 0;

        if (a > p->ttl_ms + p->window_ms + p->margin_ms) {
                *state = "gone";
                return 0;
        }
        if (a > p->window_ms + p->margin_ms) {
                *state = a > p->ttl_ms ? "lapsed" : "live";
                return w->c;
        }
        for (int b = 0; b < w->hist_len; b++)
                if (a < p->window_ms + p->margin_ms - (int64_t)b * 1000)
                        recent += w->hist[b];
        *state = a > p->ttl_ms ? "lapsed" : "live";
        return recent > w->c ? recent : w->c;
}

static void print_instance(struct bv_inst *in, int32_t partition,
                           long today)
{
        struct mls_budget_params p;
        struct mls_budget_stats st;
        long claimed = 0, used = 0;
        int sum = 0, incs = 0;

        mls_budget_params_default(&p);
        mls_budget_get_stats(in->bud, mls_now_ms(), &st);
        printf("instance %s (control partition %d)\n", in->cfg->munchkin_id,
               (int)partition);
        printf("  budget %d calls per 20 s, effective %d after 606/615 "
               "feedback; %d concurrent (effective %d); daily share %ld\n",
               in->cfg->budget.calls_per_20s, st.beff,
               in->cfg->budget.concurrent_calls, st.ceff,
               in->cfg->budget.daily_calls);
        if (in->n == 0) {
                printf("  no worker seen in the control history\n\n");
                return;
        }
        printf("  %-32s %20s %7s %6s %7s %9s %5s %5s\n", "worker",
               "incarnation", "age s", "state", "ceiling", "footprint",
               "want", "infl");
        for (size_t i = 0; i < in->n; i++) {
                const struct bv_worker *w = &in->w[i];
                const char *state = "";
                int f;

                if (w->day == today) {
                        claimed += w->total;
                        used += w->used;
                        incs++;
                }
                if (!w->log_ms)
                        continue;
                f = footprint(w, in->last_log_ms, &p, &state);
                sum += f;
                printf("  %-32.32s %20lld %7.1f %6s %7d %9d %5d %5d\n",
                       w->wid, (long long)w->inc,
                       (double)(in->last_log_ms - w->log_ms) / 1000.0, state,
                       w->c, f, w->want, w->infl);
        }
        printf("  footprints together: %d of %d\n", sum, st.beff);
        printf("  daily quota today: %ld calls claimed, %ld used, by %d "
               "incarnation%s\n\n",
               claimed, used, incs, incs == 1 ? "" : "s");
}

int mls_budget_view(const struct mls_cfg *cfg)
{
        struct bv bv = { 0 };
        struct mls_ctl *rate, *quota;
        struct mls_ctl_opts qopts = { .history_ms = 26LL * 3600 * 1000 };
        struct mls_cfg qcfg = *cfg;
        char id[96], qname[256], errstr[512];
        int64_t deadline;
        long today = -1;
        int rc = 0;

        snprintf(id, sizeof(id), "mlsync-budget-view/%d", (int)getpid());
        snprintf(qname, sizeof(qname), "%s.quota", cfg->kafka.control_topic);
        qcfg.kafka.control_topic = qname;
        rate = mls_ctl_new(cfg, id, errstr, sizeof(errstr));
        if (!rate) {
                fprintf(stderr, "mlsync: %s: %s\n", cfg->kafka.control_topic,
                        errstr);
                return EX_UNAVAILABLE;
        }
        quota = mls_ctl_new_opts(&qcfg, id, &qopts, errstr, sizeof(errstr));
        if (!quota) {
                fprintf(stderr, "mlsync: %s: %s\n", qname, errstr);
                mls_ctl_destroy(rate);
                return EX_UNAVAILABLE;
        }
        bv.cnt = cfg->marketo.instance_cnt;
        bv.insts = calloc(bv.cnt, sizeof(*bv.insts));
        for (size_t i = 0; bv.insts && i < bv.cnt; i++) {
                const struct mls_cfg_instance *ic = &cfg->marketo.instances[i];

                bv.insts[i].cfg = ic;
                bv.insts[i].bud = mls_budget_new(
                        ic->munchkin_id, id, 0, ic->budget.calls_per_20s,
                        ic->budget.concurrent_calls, ic->budget.daily_calls,
                        NULL);
        }
        deadline = mls_now_ms() + BV_CATCH_UP_MS;
        while (bv.insts && mls_now_ms() < deadline &&
               !(mls_ctl_caught_up(rate) && mls_ctl_caught_up(quota))) {
                if (mls_ctl_poll(rate, mls_now_ms(), on_record, &bv) < 0 ||
                    mls_ctl_poll(quota, mls_now_ms(), on_record, &bv) < 0)
                        break;
                mls_sleep_ms(20);
        }
        if (!bv.insts) {
                rc = EX_SOFTWARE;
        } else if (!mls_ctl_caught_up(rate) || !mls_ctl_caught_up(quota)) {
                fprintf(stderr, "mlsync: control history not read within "
                                "%d s: %s / %s\n",
                        BV_CATCH_UP_MS / 1000, mls_ctl_status(rate),
                        mls_ctl_status(quota));
                rc = EX_UNAVAILABLE;
        } else {
                /* The newest quota day seen is today's for this view. */
                for (size_t i = 0; i < bv.cnt; i++)
                        for (size_t k = 0; k < bv.insts[i].n; k++)
                                if (bv.insts[i].w[k].day > today)
                                        today = bv.insts[i].w[k].day;
                for (size_t i = 0; i < bv.cnt; i++)
                        print_instance(&bv.insts[i],
                                       mls_ctl_partition_of(
                                               bv.insts[i].cfg->munchkin_id,
                                               mls_ctl_partition_cnt(rate)),
                                       today);
        }
        for (size_t i = 0; bv.insts && i < bv.cnt; i++)
                mls_budget_destroy(bv.insts[i].bud);
        free(bv.insts);
        mls_ctl_destroy(quota);
        mls_ctl_destroy(rate);
        return rc;
}
