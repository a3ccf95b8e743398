/* SPDX-License-Identifier: Apache-2.0
 *
 * admin.c - the emulator's /_admin endpoints: state and counters for test
 * oracles, the call log, run-time limits and faults, reset, token expiry
 * and seeding. Admin calls are never counted against any limit.
 *
 *   GET  /_admin/state[?instance=M]     folders, lists with members, leads
 *   GET  /_admin/counters[?instance=M]  calls, errors, skips, peaks
 *   GET  /_admin/calls[?instance=M][&last=N]  the call log
 *   GET  /_admin/faults                 limits, latency and fault rules
 *   POST /_admin/faults                 change them (absent keys kept)
 *   POST /_admin/reset[?instance=M]     data, tokens, counters, windows
 *   POST /_admin/expire-tokens[?instance=M]
 *   POST /_admin/seed                   folders, leads and lists
 *
 * Errors are {"error":"..."} with HTTP 400 (bad input), 404 (unknown
 * endpoint or instance) or 405 (wrong method).
 */
#include "emu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlsync/util.h"

#define SEED_DUP_MAX 64 /* leads one seeded member email may map to */

struct admin_out {
        int *status;
        char **body;
        size_t *len;
};

static void out_json(struct admin_out *o, int status, json_object *j)
{
        const char *txt = j ? json_object_to_json_string_ext(
                                      j, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE) :
                              NULL;

        *o->body = txt ? strdup(txt) : NULL;
        *o->len = *o->body ? strlen(*o->body) : 0;
        *o->status = status;
        json_object_put(j);
}

static void out_error(struct admin_out *o, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void out_error(struct admin_out *o, int status, const char *fmt, ...)
{
        json_object *j = json_object_new_object();
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_object_object_add(j, "error", json_object_new_string(msg));
        out_json(o, status, j);
}

/* The instance named by ?instance=, NULL for all; *bad when unknown. */
static struct emu_instance *pick_instance(struct emu *e,
                                          const struct emu_req *rq,
                                          bool *bad)
{
        const char *m = emu_param(rq, "instance");
        struct emu_instance *in;

        *bad = false;
        if (!m || !*m)
                return NULL;
        in = emu_instance_find(e, m);
        *bad = !in;
        return in;
}

static bool selected(const struct emu_instance *in,
                     const struct emu_instance *only)
{
        return !only || only == in;
}

/* ---- state ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static json_object *list_members(struct emu_instance *in,
                                 const struct emu_list *l)
{
        json_object *arr = json_object_new_array();
        const char **emails;
        size_t n = 0;

        emails = malloc((l->members.count + 1) * sizeof(*emails));
        if (!emails)
                return arr;
        for (int64_t i = emu_idset_next(&l->members, 0);
             i >= 0 && n < l->members.count;
             i = emu_idset_next(&l->members, (size_t)i + 1))
                if ((size_t)i < in->lead_cnt)
                        emails[n++] = in->leads[i].email;
        qsort(emails, n, sizeof(*emails), cmp_str);
        for (size_t i = 0; i < n; i++)
                json_object_array_add(arr, json_object_new_string(emails[i]));
        free(emails);
        return arr;
}

static json_object *folder_json(const struct emu_folder *f)
{
        json_object *j = json_object_new_object();

        json_object_object_add(j, "id", json_object_new_int64(f->id));
        json_object_object_add(j, "name", json_object_new_string(f->name));
        json_object_object_add(j, "type",
                               json_object_new_string(
                                       emu_folder_is_program(f) ? "Program" :
                                                                  "Folder"));
        json_object_object_add(j, "path", json_object_new_string(f->path));
        json_object_object_add(j, "folderType",
                               json_object_new_string(
                                       emu_folder_kind_name(f->kind)));
        json_object_object_add(j, "parent_id",
                               json_object_new_int64(f->parent_id));
        json_object_object_add(j, "isSystem",
                               json_object_new_boolean(f->is_system));
        return j;
}

static json_object *instance_state(struct emu_instance *in)
{
        json_object *j = json_object_new_object();
        json_object *folders = json_object_new_array();
        json_object *lists = json_object_new_array();

        for (size_t i = 0; i < in->folder_cnt; i++)
                json_object_array_add(folders, folder_json(&in->folders[i]));
        for (size_t i = 0; i < in->list_cnt; i++) {
                const struct emu_list *l = in->lists[i];
                struct emu_folder *f = emu_folder_find(in, l->folder_id);
                json_object *lj = json_object_new_object();

                json_object_object_add(lj, "id", json_object_new_int64(l->id));
                json_object_object_add(lj, "name",
                                       json_object_new_string(l->name));
                json_object_object_add(lj, "folder_id",
                                       json_object_new_int64(l->folder_id));
                json_object_object_add(lj, "folder",
                                       f ? json_object_new_string(f->name) :
                                           NULL);
                json_object_object_add(lj, "members", list_members(in, l));
                json_object_array_add(lists, lj);
        }
        json_object_object_add(j, "folders", folders);
        json_object_object_add(j, "lists", lists);
        json_object_object_add(j, "leads",
                               json_object_new_int64((int64_t)in->lead_cnt));
        return j;
}

/* ---- counters and calls ------------------------------------------------ */

static json_object *code_table(const struct emu_code_count *slots,
                               size_t cnt)
{
        json_object *j = json_object_new_object();
        char key[32];

        for (size_t i = 0; i < cnt; i++) {
                emu_code_str(slots[i].code, key, sizeof(key));
                json_object_object_add(j, key,
                                       json_object_new_int64(
                                               (int64_t)slots[i].n));
        }
        return j;
}

static int64_t calls_in_window(const struct emu_instance *in, int64_t now)
{
        int64_t n = 0;

        for (size_t i = 0; i < in->win_len; i++)
                if (now - in->window[(in->win_head + i) % in->win_cap] <
                    EMU_WINDOW_MS)
                        n++;
        return n;
}

static json_object *instance_counters(struct emu *e, struct emu_instance *in)
{
        const struct emu_counters *k = &in->cnt;
        json_object *j = json_object_new_object();
        json_object *calls = json_object_new_object();
        int64_t day = emu_central_day(mls_wall_ms());

        for (int r = 0; r < EMU_RT_COUNT; r++)
                if (k->by_route[r])
                        json_object_object_add(
                                calls, emu_route_name((enum emu_route)r),
                                json_object_new_int64(
                                        (int64_t)k->by_route[r]));
        json_object_object_add(j, "total_calls",
                               json_object_new_int64((int64_t)k->total_calls));
        json_object_object_add(j, "calls", calls);
        json_object_object_add(j, "errors",
                               code_table(k->errors, k->error_cnt));
        json_object_object_add(j, "skips", code_table(k->skips, k->skip_cnt));
        json_object_object_add(j, "max_calls_in_20s",
                               json_object_new_int64(k->max_calls_in_20s));
        json_object_object_add(j, "max_concurrency",
                               json_object_new_int64(k->max_concurrency));
        json_object_object_add(j, "repeat_606",
                               json_object_new_int64(k->repeat_606));
        json_object_object_add(j, "daily_used",
                               json_object_new_int64(day == in->quota_day ?
                                                             in->quota_used :
                                                             0));
        json_object_object_add(j, "in_flight",
                               json_object_new_int64(in->in_flight));
        json_object_object_add(j, "calls_in_20s",
                               json_object_new_int64(
                                       calls_in_window(in, emu_now_ms(e))));
        return j;
}

static json_object *instance_calls(struct emu_instance *in, int64_t last)
{
        json_object *j = json_object_new_object();
        json_object *arr = json_object_new_array();
        size_t from = 0;
        char code[32];

        if (last >= 0 && (size_t)last < in->log_len)
                from = in->log_len - (size_t)last;
        for (size_t i = from; i < in->log_len; i++) {
                const struct emu_call *c =
                        &in->log[(in->log_head + i) % EMU_CALL_LOG_MAX];
                json_object *cj = json_object_new_object();

                emu_code_str(c->code, code, sizeof(code));
                json_object_object_add(cj, "t_ms",
                                       json_object_new_int64(c->t_ms));
                json_object_object_add(
                        cj, "route",
                        json_object_new_string(
                                emu_route_name((enum emu_route)c->route)));
                json_object_object_add(cj, "code",
                                       json_object_new_string(code));
                json_object_object_add(cj, "counted",
                                       json_object_new_boolean(c->counted));
                json_object_array_add(arr, cj);
        }
        json_object_object_add(j, "dropped",
                               json_object_new_int64(
                                       (int64_t)in->log_dropped));
        json_object_object_add(j, "calls", arr);
        return j;
}

enum view { VIEW_STATE, VIEW_COUNTERS, VIEW_CALLS };

static void admin_view(struct emu *e, const struct emu_req *rq,
                       enum view v, struct admin_out *o)
{
        json_object *root, *insts;
        struct emu_instance *only;
        const char *last_s = emu_param(rq, "last");
        int64_t last = -1;
        bool bad;

        if (last_s && (!emu_parse_i64(last_s, &last) || last < 0)) {
                out_error(o, 400, "last wants a count");
                return;
        }
        pthread_mutex_lock(&e->lock);
        only = pick_instance(e, rq, &bad);
        if (bad) {
                pthread_mutex_unlock(&e->lock);
                out_error(o, 404, "unknown instance");
                return;
        }
        root = json_object_new_object();
        insts = json_object_new_object();
        for (size_t i = 0; i < e->inst_cnt; i++) {
                struct emu_instance *in = e->inst[i];
                json_object *j;

                if (!selected(in, only))
                        continue;
                if (v == VIEW_STATE)
                        j = instance_state(in);
                else if (v == VIEW_COUNTERS)
                        j = instance_counters(e, in);
                else
                        j = instance_calls(in, last);
                json_object_object_add(insts, in->munchkin, j);
        }
        pthread_mutex_unlock(&e->lock);
        json_object_object_add(root, "instances", insts);
        out_json(o, 200, root);
}

/* ---- faults and limits ------------------------------------------------- */

static json_object *config_json(const struct emu_config *cfg)
{
        json_object *j = json_object_new_object();
        json_object *faults = json_object_new_object();
        char key[160], lat[64];

        for (size_t i = 0; i < cfg->fault_cnt; i++) {
                const struct emu_fault_rule *r = &cfg->faults[i];

                snprintf(key, sizeof(key), "%s%s%.120s",
                         emu_fault_name(r->kind), r->path ? "@" : "",
                         r->path ? r->path : "");
                json_object_object_add(faults, key,
                                       json_object_new_double(r->p));
        }
        snprintf(lat, sizeof(lat), "%lld-%lld",
                 (long long)cfg->latency_min_ms,
                 (long long)cfg->latency_max_ms);
        json_object_object_add(j, "faults", faults);
        json_object_object_add(j, "latency_ms", json_object_new_string(lat));
        json_object_object_add(j, "calls_per_20s",
                               json_object_new_int64(cfg->calls_per_20s));
        json_object_object_add(j, "concurrency",
                               json_object_new_int64(cfg->concurrency));
        json_object_object_add(j, "daily_quota",
                               json_object_new_int64(cfg->daily_quota));
        json_object_object_add(j, "token_ttl",
                               json_object_new_int64(cfg->token_ttl_s));
        json_object_object_add(j, "reject_query_token",
                               json_object_new_boolean(
                                       cfg->reject_query_token));
        return j;
}

static int parse_latency_json(json_object *v, int64_t *lo, int64_t *hi)
{
        const char *s, *dash;
        char a[32];

        if (json_object_is_type(v, json_type_int)) {
                *lo = *hi = json_object_get_int64(v);
                return *lo >= 0 ? 0 : -1;
        }
        if (!json_object_is_type(v, json_type_string))
                return -1;
        s = json_object_get_string(v);
        dash = strchr(s, '-');
        snprintf(a, sizeof(a), "%.*s", dash ? (int)(dash - s) : 31, s);
        if (!emu_parse_i64(a, lo))
                return -1;
        *hi = *lo;
        if (dash && !emu_parse_i64(dash + 1, hi))
                return -1;
        return *lo >= 0 && *hi >= *lo && *hi <= 600000 ? 0 : -1;
}

/* Read an integer key >= min into *out; absent keys leave it. */
static int int_key(json_object *root, const char *key, int64_t min,
                   int64_t *out, struct admin_out *o)
{
        json_object *v;

        if (!json_object_object_get_ex(root, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < min) {
                out_error(o, 400, "%s wants an integer >= %lld", key,
                          (long long)min);
                return -1;
        }
        *out = json_object_get_int64(v);
        return 0;
}

/* Fault rules from {"kind[@substring]": p, ...} into cfg (empty). */
static int faults_from_json(json_object *faults, struct emu_config *cfg,
                            struct admin_out *o)
{
        char arg[256], errstr[256];

        if (!json_object_is_type(faults, json_type_object)) {
                out_error(o, 400, "faults wants an object");
                return -1;
        }
        json_object_object_foreach(faults, k, v)
        {
                char *at = strchr(k, '@');

                if (!json_object_is_type(v, json_type_double) &&
                    !json_object_is_type(v, json_type_int)) {
                        out_error(o, 400, "fault %.64s wants a probability",
                                  k);
                        return -1;
                }
                snprintf(arg, sizeof(arg), "%.*s=%.17g%s%.150s",
                         at ? (int)(at - k) : 64, k,
                         json_object_get_double(v), at ? "@" : "",
                         at ? at + 1 : "");
                if (emu_fault_parse_arg(cfg, arg, errstr, sizeof(errstr))) {
                        out_error(o, 400, "fault %.64s: %s", k, errstr);
                        return -1;
                }
        }
        return 0;
}

static void admin_faults_set(struct emu *e, json_object *root,
                             struct admin_out *o)
{
        struct emu_config next;
        struct emu_config newf = { 0 };
        json_object *v;
        bool set_faults;

        /* Validate everything into a copy first: a bad key changes
         * nothing. */
        pthread_mutex_lock(&e->lock);
        next = e->cfg;
        if (int_key(root, "calls_per_20s", 1, &next.calls_per_20s, o) ||
            int_key(root, "concurrency", 1, &next.concurrency, o) ||
            int_key(root, "daily_quota", 0, &next.daily_quota, o) ||
            int_key(root, "token_ttl", 1, &next.token_ttl_s, o))
                goto out;
        if (json_object_object_get_ex(root, "latency_ms", &v) &&
            parse_latency_json(v, &next.latency_min_ms,
                               &next.latency_max_ms)) {
                out_error(o, 400, "latency_ms wants \"MIN-MAX\" in ms");
                goto out;
        }
        if (json_object_object_get_ex(root, "reject_query_token", &v))
                next.reject_query_token = json_object_get_boolean(v);
        set_faults = json_object_object_get_ex(root, "faults", &v);
        if (set_faults && faults_from_json(v, &newf, o)) {
                emu_faults_clear(&newf);
                goto out;
        }
        if (set_faults) {
                emu_faults_clear(&e->cfg);
                next.faults = newf.faults;
                next.fault_cnt = newf.fault_cnt;
        }
        e->cfg = next;
        out_json(o, 200, config_json(&e->cfg));
out:
        pthread_mutex_unlock(&e->lock);
}

/* ---- reset and tokens -------------------------------------------------- */

static void admin_reset(struct emu *e, const struct emu_req *rq,
                        bool tokens_only, struct admin_out *o)
{
        json_object *done = json_object_new_array();
        json_object *root = json_object_new_object();
        struct emu_instance *only;
        int64_t expired = 0;
        bool bad;

        pthread_mutex_lock(&e->lock);
        only = pick_instance(e, rq, &bad);
        for (size_t i = 0; !bad && i < e->inst_cnt; i++) {
                struct emu_instance *in = e->inst[i];
                int64_t now = emu_now_ms(e);

                if (!selected(in, only))
                        continue;
                if (tokens_only) {
                        for (size_t t = 0; t < in->token_cnt; t++) {
                                struct emu_token *tk = &in->tokens
                                        [(in->token_head + t) %
                                         EMU_TOKENS_KEPT];

                                if (tk->expires_ms > now) {
                                        tk->expires_ms = now;
                                        expired++;
                                }
                        }
                } else {
                        emu_instance_reset_locked(in);
                }
                json_object_array_add(done,
                                      json_object_new_string(in->munchkin));
        }
        pthread_mutex_unlock(&e->lock);
        if (bad) {
                json_object_put(done);
                json_object_put(root);
                out_error(o, 404, "unknown instance");
                return;
        }
        json_object_object_add(root, "instances", done);
        if (tokens_only)
                json_object_object_add(root, "expired",
                                       json_object_new_int64(expired));
        out_json(o, 200, root);
}

/* ---- seed -------------------------------------------------------------- */

/* A folder given by id (number) or name (string; the first match). */
static struct emu_folder *folder_by_ref(struct emu_instance *in,
                                        json_object *ref)
{
        const char *name;

        if (json_object_is_type(ref, json_type_int))
                return emu_folder_find(in, json_object_get_int64(ref));
        if (!json_object_is_type(ref, json_type_string))
                return NULL;
        name = json_object_get_string(ref);
        for (size_t i = 0; i < in->folder_cnt; i++)
                if (!strcmp(in->folders[i].name, name))
                        return &in->folders[i];
        return NULL;
}

static const char *str_key(json_object *obj, const char *key)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static bool name_ok(const char *name)
{
        return name && *name && strlen(name) <= EMU_NAME_MAX;
}

static int seed_folders(struct emu_instance *in, json_object *arr,
                        int64_t wall, json_object *out, struct admin_out *o)
{
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *fj = json_object_array_get_idx(arr, i);
                const char *name = str_key(fj, "name");
                const char *kind_s = str_key(fj, "kind");
                int kind = kind_s ? emu_folder_kind_parse(kind_s) : EMU_FK_LIST;
                int64_t parent;
                struct emu_folder *f;
                json_object *pj, *res;

                if (!name_ok(name) || kind < 0) {
                        out_error(o, 400,
                                  "folders[%zu]: name (1-255) and kind "
                                  "list|marketing|program|email", i);
                        return -1;
                }
                parent = emu_folder_home((enum emu_folder_kind)kind);
                if (json_object_object_get_ex(fj, "parent", &pj)) {
                        f = folder_by_ref(in, pj);
                        if (!f) {
                                out_error(o, 400, "folders[%zu]: unknown parent", i);
                                return -1;
                        }
                        parent = f->id;
                }
                f = emu_folder_add_locked(in, name,
                                          (enum emu_folder_kind)kind, parent,
                                          false, false, wall);
                if (!f) {
                        out_error(o, 500, "out of memory");
                        return -1;
                }
                res = folder_json(f);
                json_object_array_add(out, res);
        }
        return 0;
}

static int seed_leads(struct emu_instance *in, json_object *arr,
                      int64_t wall, json_object *out, struct admin_out *o)
{
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *lj = json_object_array_get_idx(arr, i);
                const char *email = json_object_is_type(lj, json_type_string) ?
                                            json_object_get_string(lj) :
                                            str_key(lj, "email");
                int64_t idx;

                if (!email || !emu_email_valid(email)) {
                        out_error(o, 400, "leads[%zu]: a valid email is required", i);
                        return -1;
                }
                idx = emu_lead_add_locked(in, email, str_key(lj, "firstName"),
                                          str_key(lj, "lastName"), wall);
                if (idx < 0) {
                        out_error(o, 500, "out of memory");
                        return -1;
                }
                json_object_array_add(out, json_object_new_int64(
                                                   emu_lead_id(in, idx)));
        }
        return 0;
}

/* Make email a member of l: every lead with that email, or a new one. */
static int seed_member(struct emu_instance *in, struct emu_list *l,
                       const char *email, int64_t wall)
{
        int64_t idx[SEED_DUP_MAX];
        size_t n = emu_lead_find_locked(in, email, idx, SEED_DUP_MAX);

        if (n > SEED_DUP_MAX)
                n = SEED_DUP_MAX;
        if (n == 0) {
                idx[0] = emu_lead_add_locked(in, email, NULL, NULL, wall);
                if (idx[0] < 0)
                        return -1;
                n = 1;
        }
        for (size_t i = 0; i < n; i++)
                if (emu_idset_add(&l->members, (size_t)idx[i]) < 0)
                        return -1;
        return 0;
}

/* Length of an array; 0 for anything else (absent keys included). */
static size_t arr_len(json_object *j)
{
        return json_object_is_type(j, json_type_array) ?
                       json_object_array_length(j) :
                       0;
}

static int seed_lists(struct emu_instance *in, json_object *arr,
                      int64_t wall, json_object *out, struct admin_out *o)
{
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *lj = json_object_array_get_idx(arr, i);
                const char *name = str_key(lj, "name");
                struct emu_folder *f = emu_folder_find(
                        in, emu_folder_home(EMU_FK_LIST));
                json_object *fj, *mj, *res;
                struct emu_list *l;

                if (!name_ok(name)) {
                        out_error(o, 400, "lists[%zu]: name (1-255) required", i);
                        return -1;
                }
                if (json_object_object_get_ex(lj, "folder", &fj))
                        f = folder_by_ref(in, fj);
                if (!f || !emu_folder_holds_lists(f)) {
                        out_error(o, 400,
                                  "lists[%zu]: unknown folder or one that "
                                  "holds no lists", i);
                        return -1;
                }
                if (!json_object_object_get_ex(lj, "members", &mj))
                        mj = NULL;
                if (mj && !json_object_is_type(mj, json_type_array)) {
                        out_error(o, 400, "lists[%zu].members wants an array", i);
                        return -1;
                }
                for (size_t m = 0; m < arr_len(mj); m++) {
                        const char *email = json_object_get_string(
                                json_object_array_get_idx(mj, m));

                        if (!email || !emu_email_valid(email)) {
                                out_error(o, 400, "lists[%zu].members[%zu]: invalid email", i, m);
                                return -1;
                        }
                }
                l = emu_list_add_locked(in, name, f->id,
                                        str_key(lj, "description"), wall);
                if (!l) {
                        out_error(o, 500, "out of memory");
                        return -1;
                }
                for (size_t m = 0; m < arr_len(mj); m++) {
                        if (seed_member(in, l,
                                        json_object_get_string(
                                                json_object_array_get_idx(
                                                        mj, m)),
                                        wall) < 0) {
                                out_error(o, 500, "out of memory");
                                return -1;
                        }
                }
                res = json_object_new_object();
                json_object_object_add(res, "id", json_object_new_int64(l->id));
                json_object_object_add(res, "name",
                                       json_object_new_string(l->name));
                json_object_object_add(res, "folder_id",
                                       json_object_new_int64(l->folder_id));
                json_object_array_add(out, res);
        }
        return 0;
}

/* Seeding bypasses the API's rules on purpose (a list name may repeat,
 * an email may have several leads), so tests can build the odd states a
 * real instance accumulates. Each entry is checked before it is made;
 * entries made before a failing one are kept. */
static void admin_seed(struct emu *e, json_object *root, struct admin_out *o)
{
        static const char *const keys[] = { "folders", "leads", "lists" };
        const char *m = str_key(root, "instance");
        json_object *res = json_object_new_object();
        json_object *folders = json_object_new_array();
        json_object *leads = json_object_new_array();
        json_object *lists = json_object_new_array();
        struct emu_instance *in;
        json_object *arr;
        int64_t wall = mls_wall_ms();
        int rc = 0;

        json_object_object_add(res, "folders", folders);
        json_object_object_add(res, "leads", leads);
        json_object_object_add(res, "lists", lists);
        pthread_mutex_lock(&e->lock);
        in = m ? emu_instance_find(e, m) : e->inst_cnt == 1 ? e->inst[0] :
                                                              NULL;
        if (!in) {
                pthread_mutex_unlock(&e->lock);
                json_object_put(res);
                out_error(o, 404, "instance missing or unknown");
                return;
        }
        for (size_t i = 0; i < MLS_ARRAY_LEN(keys); i++) {
                if (json_object_object_get_ex(root, keys[i], &arr) &&
                    !json_object_is_type(arr, json_type_array)) {
                        out_error(o, 400, "%s wants an array", keys[i]);
                        rc = -1;
                }
        }
        if (!rc && json_object_object_get_ex(root, "folders", &arr))
                rc = seed_folders(in, arr, wall, folders, o);
        if (!rc && json_object_object_get_ex(root, "leads", &arr))
                rc = seed_leads(in, arr, wall, leads, o);
        if (!rc && json_object_object_get_ex(root, "lists", &arr))
                rc = seed_lists(in, arr, wall, lists, o);
        json_object_object_add(res, "instance",
                               json_object_new_string(in->munchkin));
        pthread_mutex_unlock(&e->lock);
        if (rc) {
                json_object_put(res);
                return;
        }
        out_json(o, 200, res);
}

/* ---- dispatch ---------------------------------------------------------- */

static json_object *body_json(const struct emu_req *rq, struct admin_out *o)
{
        json_object *j;

        if (!rq->body_len)
                return json_object_new_object();
        j = emu_json_parse(rq->body, rq->body_len);
        if (!j || !json_object_is_type(j, json_type_object)) {
                json_object_put(j);
                out_error(o, 400, "body must be a JSON object");
                return NULL;
        }
        return j;
}

void emu_admin(struct emu *e, struct emu_req *rq, const char *what,
               int *status, char **body, size_t *len)
{
        struct admin_out o = { status, body, len };
        bool get = !strcmp(rq->method, "GET");
        bool post = !strcmp(rq->method, "POST");
        json_object *root;

        if (!strcmp(what, "state") && get) {
                admin_view(e, rq, VIEW_STATE, &o);
        } else if (!strcmp(what, "counters") && get) {
                admin_view(e, rq, VIEW_COUNTERS, &o);
        } else if (!strcmp(what, "calls") && get) {
                admin_view(e, rq, VIEW_CALLS, &o);
        } else if (!strcmp(what, "faults") && get) {
                pthread_mutex_lock(&e->lock);
                root = config_json(&e->cfg);
                pthread_mutex_unlock(&e->lock);
                out_json(&o, 200, root);
        } else if (!strcmp(what, "reset") && post) {
                admin_reset(e, rq, false, &o);
        } else if (!strcmp(what, "expire-tokens") && post) {
                admin_reset(e, rq, true, &o);
        } else if ((!strcmp(what, "faults") || !strcmp(what, "seed")) &&
                   post) {
                root = body_json(rq, &o);
                if (!root)
                        return;
                if (!strcmp(what, "faults"))
                        admin_faults_set(e, root, &o);
                else
                        admin_seed(e, root, &o);
                json_object_put(root);
        } else if (!strcmp(what, "state") || !strcmp(what, "counters") ||
                   !strcmp(what, "calls") || !strcmp(what, "faults") ||
                   !strcmp(what, "reset") || !strcmp(what, "expire-tokens") ||
                   !strcmp(what, "seed")) {
                out_error(&o, 405, "method not allowed");
        } else {
                out_error(&o, 404, "unknown admin endpoint");
        }
}
