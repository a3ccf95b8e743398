/* SPDX-License-Identifier: Apache-2.0
 *
 * limits.c - the emulator's gatekeeping: clock and randomness, OAuth
 * tokens, the rate window, concurrency and daily quota, fault injection,
 * and the counters and call log behind /_admin/counters and /calls.
 *
 * Choices where marketo-api.md is UNCERTAIN (also listed in --help):
 * - A missing Authorization header is 600 "Access token not specified"
 *   unless an access_token query or form parameter is given; that one is
 *   accepted as Marketo still does, or, with --reject-query-token (the
 *   announced removal), answered 601 even next to a valid header.
 * - Unknown client_id: HTTP 401 {"error":"unauthorized",...}; a wrong
 *   secret: HTTP 401 {"error":"invalid_client",...}.
 * - Order of checks for a REST call: route (605/610, not counted), token
 *   (600/601/602, not counted), then rate 606, quota 607, concurrency
 *   615. Every call that passes the token check takes a slot in the
 *   rolling 20 s window, including calls rejected with 606/607/615, so a
 *   client that hammers after a 606 keeps itself locked out. Only calls
 *   admitted past all three count toward the daily quota.
 * - repeat_606 counts the 606s for calls that arrived after an earlier
 *   606 reply had been sent, less than 20 s before (the plumbing stamps
 *   last_606_ms when it sends a 606, and first_606_ms for the first 606
 *   of an episode): calls that arrive within EMU_606_GRACE_MS of the
 *   episode's first 606 were already on their way and are not blamed.
 * - The rolling window is exact: a call is rejected when the calls that
 *   arrived in the last 20,000 ms, itself included, exceed the limit.
 * - The daily quota resets at midnight America/Chicago, with US daylight
 *   saving rules (second Sunday of March to first Sunday of November).
 * - Faults are drawn only for admitted calls (and for identity calls,
 *   except timeout604). http502, timeout604 and drop apply the operation
 *   with probability 1/2 before failing; http503 never applies it.
 *   Faulted calls count toward window and quota like any admitted call.
 */
#include "emu.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mlsync/util.h"

static const char *const route_names[EMU_RT_COUNT] = {
        [EMU_RT_UNKNOWN] = "unknown",
        [EMU_RT_IDENTITY] = "identity",
        [EMU_RT_FOLDER_BYNAME] = "folder.byName",
        [EMU_RT_FOLDER_GET] = "folder.get",
        [EMU_RT_SL_BYNAME] = "staticList.byName",
        [EMU_RT_SL_GET] = "staticList.get",
        [EMU_RT_SL_BROWSE] = "staticList.browse",
        [EMU_RT_SL_CREATE] = "staticList.create",
        [EMU_RT_SL_DELETE] = "staticList.delete",
        [EMU_RT_LEADS_SYNC] = "leads.sync",
        [EMU_RT_LEADS_LOOKUP] = "leads.lookup",
        [EMU_RT_LIST_ADD] = "list.add",
        [EMU_RT_LIST_REMOVE] = "list.remove",
        [EMU_RT_LIST_MEMBERS] = "list.members",
        [EMU_RT_LIST_ISMEMBER] = "list.ismember",
        [EMU_RT_LIST_GET] = "list.get",
        [EMU_RT_LISTS_QUERY] = "lists.query",
        [EMU_RT_USAGE] = "stats.usage",
        [EMU_RT_BULK_IMPORT] = "bulk.import",
        [EMU_RT_BULK_STATUS] = "bulk.status",
        [EMU_RT_BULK_FAILURES] = "bulk.failures",
        [EMU_RT_BULK_WARNINGS] = "bulk.warnings",
};

static const char *const fault_names[EMU_FAULT_COUNT] = {
        [EMU_FAULT_NONE] = "none",
        [EMU_FAULT_HTTP502] = "http502",
        [EMU_FAULT_HTTP503] = "http503",
        [EMU_FAULT_TIMEOUT604] = "timeout604",
        [EMU_FAULT_DROP] = "drop",
        [EMU_FAULT_SLOW] = "slow",
};

const char *emu_route_name(enum emu_route rt)
{
        return rt < EMU_RT_COUNT ? route_names[rt] : "unknown";
}

const char *emu_fault_name(enum emu_fault f)
{
        return f < EMU_FAULT_COUNT ? fault_names[f] : "none";
}

enum emu_fault emu_fault_by_name(const char *name)
{
        for (int i = 1; i < EMU_FAULT_COUNT; i++)
                if (!strcmp(name, fault_names[i]))
                        return (enum emu_fault)i;
        return EMU_FAULT_NONE;
}

/* ---- clock and randomness ------------------------------------------- */

int64_t emu_now_ms(const struct emu *e)
{
        return mls_now_ms() - e->epoch_ms;
}

/* splitmix64: seedable, so --seed makes fault draws repeatable for one
 * arrival order. */
uint64_t emu_rand_locked(struct emu *e)
{
        uint64_t z = (e->rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

double emu_rand_unit_locked(struct emu *e)
{
        return (double)(emu_rand_locked(e) >> 11) / 9007199254740992.0;
}

/* ---- calendar -------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_date(int64_t y, int64_t m, int64_t d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void date_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *d = doy - (153 * mp + 2) / 5 + 1;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Day number of the n-th Sunday (1-based) of a month. */
static int64_t nth_sunday(int64_t y, int64_t m, int n)
{
        int64_t first = days_from_date(y, m, 1);
        int64_t wd = ((first + 4) % 7 + 7) % 7; /* 0 = Sunday */

        return first + (7 - wd) % 7 + 7 * (n - 1);
}

int64_t emu_central_day(int64_t wall_ms)
{
        int64_t s = floor_div(wall_ms, 1000);
        int64_t y, m, d, dst_on, dst_off, offset;

        date_from_days(floor_div(s, 86400), &y, &m, &d);
        /* 2:00 local: 08:00 UTC in March (CST), 07:00 UTC in November. */
        dst_on = nth_sunday(y, 3, 2) * 86400 + 8 * 3600;
        dst_off = nth_sunday(y, 11, 1) * 86400 + 7 * 3600;
        offset = (s >= dst_on && s < dst_off) ? -5 * 3600 : -6 * 3600;
        return floor_div(s + offset, 86400);
}

void emu_day_str(int64_t day, char *buf, size_t size)
{
        int64_t y, m, d;

        date_from_days(day, &y, &m, &d);
        snprintf(buf, size, "%04lld-%02lld-%02lld", (long long)y,
                 (long long)m, (long long)d);
}

void emu_date_str(int64_t wall_ms, bool asset, char *buf, size_t size)
{
        int64_t s = floor_div(wall_ms, 1000);
        int64_t day = floor_div(s, 86400);
        int64_t sec = s - day * 86400;
        char date[16];

        emu_day_str(day, date, sizeof(date));
        snprintf(buf, size, "%sT%02lld:%02lld:%02lldZ%s", date,
                 (long long)(sec / 3600), (long long)(sec / 60 % 60),
                 (long long)(sec % 60), asset ? "+0000" : "");
}

/* ---- tokens ---------------------------------------------------------- */

static struct emu_token *token_newest(struct emu_instance *in)
{
        if (!in->token_cnt)
                return NULL;
        return &in->tokens[(in->token_head + in->token_cnt - 1) %
                           EMU_TOKENS_KEPT];
}

static struct emu_token *token_issue(struct emu *e, struct emu_instance *in,
                                     int64_t now)
{
        struct emu_token *t;
        uint64_t a = emu_rand_locked(e);
        uint64_t b = emu_rand_locked(e);

        if (in->token_cnt == EMU_TOKENS_KEPT) {
                in->token_head = (in->token_head + 1) % EMU_TOKENS_KEPT;
                in->token_cnt--;
        }
        t = &in->tokens[(in->token_head + in->token_cnt) % EMU_TOKENS_KEPT];
        in->token_cnt++;
        snprintf(t->value, sizeof(t->value),
                 "%08x-%04x-%04x-%04x-%012llx:em", (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff,
                 (unsigned)(b >> 48),
                 (unsigned long long)(b & 0xffffffffffffULL));
        t->expires_ms = now + e->cfg.token_ttl_s * 1000;
        return t;
}

static void raw_json(struct emu_ctx *c, int status, json_object *o)
{
        const char *s = json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

        c->raw_status = status;
        c->raw_body = strdup(s ? s : "{}");
        c->raw_len = c->raw_body ? strlen(c->raw_body) : 0;
        c->raw_ctype = "application/json;charset=UTF-8";
        json_object_put(o);
}

static void oauth_error(struct emu_ctx *c, int status, const char *err,
                        const char *desc)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "error", json_object_new_string(err));
        json_object_object_add(o, "error_description",
                               json_object_new_string(desc));
        raw_json(c, status, o);
        c->err_code = EMU_CODE_HTTP(status);
}

void emu_identity(struct emu_ctx *c)
{
        struct emu_instance *in = c->in;
        const char *grant = emu_param(c->rq, "grant_type");
        const char *id = emu_param(c->rq, "client_id");
        const char *secret = emu_param(c->rq, "client_secret");
        struct emu_token *t;
        json_object *o;
        char scope[320];
        int64_t left;

        if (!grant || !id || !secret) {
                oauth_error(c, 400, "invalid_request",
                            "Missing grant_type, client_id or client_secret");
                return;
        }
        if (strcmp(grant, "client_credentials")) {
                oauth_error(c, 400, "unsupported_grant_type",
                            "Unsupported grant type");
                return;
        }
        if (strcmp(id, in->client_id)) {
                oauth_error(c, 401, "unauthorized",
                            "No client with requested id");
                return;
        }
        if (strcmp(secret, in->secret)) {
                oauth_error(c, 401, "invalid_client",
                            "Bad client credentials");
                return;
        }

        t = token_newest(in);
        if (!t || c->now_ms >= t->expires_ms)
                t = token_issue(c->e, in, c->now_ms);
        left = (t->expires_ms - c->now_ms - 1) / 1000;
        snprintf(scope, sizeof(scope), "api-user@%s.emulator.invalid",
                 in->munchkin);
        o = json_object_new_object();
        json_object_object_add(o, "access_token",
                               json_object_new_string(t->value));
        json_object_object_add(o, "token_type",
                               json_object_new_string("bearer"));
        json_object_object_add(o, "expires_in",
                               json_object_new_int64(left < 0 ? 0 : left));
        json_object_object_add(o, "scope", json_object_new_string(scope));
        raw_json(c, 200, o);
}

/* 0 when value names a live token of c's instance, else 601/602. */
static int token_check(struct emu_ctx *c, const char *value)
{
        struct emu_instance *in = c->in;

        for (size_t i = 0; i < in->token_cnt; i++) {
                struct emu_token *t =
                        &in->tokens[(in->token_head + i) % EMU_TOKENS_KEPT];

                if (strcmp(t->value, value))
                        continue;
                if (c->now_ms >= t->expires_ms) {
                        emu_fail(c, 602, "Access token expired");
                        return 602;
                }
                return 0;
        }
        emu_fail(c, 601, "Access token invalid");
        return 601;
}

int emu_auth_check_locked(struct emu_ctx *c, bool query_token)
{
        const char *h = c->rq->authz;

        if (query_token && c->e->cfg.reject_query_token) {
                emu_fail(c, 601, "Access token invalid: the access_token parameter is not supported, use the Authorization header");
                return 601;
        }
        if (h && *h) {
                while (*h == ' ')
                        h++;
                if (strncasecmp(h, "Bearer ", 7)) {
                        emu_fail(c, 601, "Access token invalid");
                        return 601;
                }
                h += 7;
                while (*h == ' ')
                        h++;
                return token_check(c, h);
        }
        if (query_token)
                return token_check(c, emu_param(c->rq, "access_token"));
        emu_fail(c, 600, "Access token not specified");
        return 600;
}

/* ---- rate, quota, concurrency ----------------------------------------- */

static int window_push(struct emu_instance *in, int64_t now)
{
        if (in->win_len == in->win_cap) {
                size_t n = in->win_cap ? in->win_cap * 2 : 256;
                int64_t *nw = malloc(n * sizeof(*nw));

                if (!nw)
                        return -1;
                for (size_t i = 0; i < in->win_len; i++)
                        nw[i] = in->window[(in->win_head + i) % in->win_cap];
                free(in->window);
                in->window = nw;
                in->win_cap = n;
                in->win_head = 0;
        }
        in->window[(in->win_head + in->win_len) % in->win_cap] = now;
        in->win_len++;
        return 0;
}

int emu_admit_locked(struct emu_ctx *c, bool *counted)
{
        struct emu_instance *in = c->in;
        const struct emu_config *cfg = &c->e->cfg;
        int64_t now = c->now_ms;
        int64_t day = emu_central_day(c->wall_ms);

        while (in->win_len && now - in->window[in->win_head] >= EMU_WINDOW_MS) {
                in->win_head = (in->win_head + 1) % in->win_cap;
                in->win_len--;
        }
        *counted = window_push(in, now) == 0;
        if ((int64_t)in->win_len > in->cnt.max_calls_in_20s)
                in->cnt.max_calls_in_20s = (int64_t)in->win_len;
        if ((int64_t)in->win_len > cfg->calls_per_20s) {
                /* Hammering: sent after a 606 reply had gone out, while
                 * the window that caused it is still full. */
                if (in->cnt.first_606_ms >= 0 &&
                    now >= in->cnt.first_606_ms + EMU_606_GRACE_MS &&
                    now - in->cnt.last_606_ms < EMU_WINDOW_MS)
                        in->cnt.repeat_606++;
                emu_fail(c, 606,
                         "Max rate limit '%lld' exceeded with in '20' secs",
                         (long long)cfg->calls_per_20s);
                return 606;
        }
        if (day != in->quota_day) {
                in->quota_day = day;
                in->quota_used = 0;
        }
        if (in->quota_used >= cfg->daily_quota) {
                emu_fail(c, 607, "Daily quota reached");
                return 607;
        }
        if (in->in_flight >= cfg->concurrency) {
                emu_fail(c, 615, "Concurrent access limit '%lld' reached",
                         (long long)cfg->concurrency);
                return 615;
        }
        in->in_flight++;
        in->quota_used++;
        if (in->in_flight > in->cnt.max_concurrency)
                in->cnt.max_concurrency = in->in_flight;
        return 0;
}

void emu_release_locked(struct emu_instance *in)
{
        if (in->in_flight > 0)
                in->in_flight--;
}

/* ---- faults ---------------------------------------------------------- */

enum emu_fault emu_fault_draw_locked(struct emu *e, const char *path,
                                     bool identity, bool *slow,
                                     bool *apply)
{
        enum emu_fault hit = EMU_FAULT_NONE;

        *slow = false;
        *apply = true;
        for (size_t i = 0; i < e->cfg.fault_cnt; i++) {
                const struct emu_fault_rule *r = &e->cfg.faults[i];

                if (r->p <= 0 || (r->path && !strstr(path, r->path)))
                        continue;
                if (identity && r->kind == EMU_FAULT_TIMEOUT604)
                        continue;
                if (r->kind == EMU_FAULT_SLOW) {
                        if (!*slow && emu_rand_unit_locked(e) < r->p)
                                *slow = true;
                        continue;
                }
                if (hit == EMU_FAULT_NONE && emu_rand_unit_locked(e) < r->p)
                        hit = r->kind;
        }
        if (hit == EMU_FAULT_HTTP503)
                *apply = false;
        else if (hit != EMU_FAULT_NONE)
                *apply = emu_rand_locked(e) & 1;
        return hit;
}

int64_t emu_latency_draw_locked(struct emu *e)
{
        int64_t lo = e->cfg.latency_min_ms;
        int64_t hi = e->cfg.latency_max_ms;

        if (hi <= lo)
                return lo;
        return lo + (int64_t)(emu_rand_locked(e) % (uint64_t)(hi - lo + 1));
}

void emu_faults_clear(struct emu_config *cfg)
{
        for (size_t i = 0; i < cfg->fault_cnt; i++)
                free(cfg->faults[i].path);
        free(cfg->faults);
        cfg->faults = NULL;
        cfg->fault_cnt = 0;
}

int emu_fault_parse_arg(struct emu_config *cfg, const char *arg,
                        char *errstr, size_t errstr_size)
{
        const char *eq = strchr(arg, '=');
        const char *at;
        char kind[32];
        char *end;
        double p;
        struct emu_fault_rule *nf;
        enum emu_fault f;

        if (!eq || (size_t)(eq - arg) >= sizeof(kind))
                goto bad;
        snprintf(kind, sizeof(kind), "%.*s", (int)(eq - arg), arg);
        f = emu_fault_by_name(kind);
        if (f == EMU_FAULT_NONE)
                goto bad;
        p = strtod(eq + 1, &end);
        at = end;
        if (end == eq + 1 || (*at && *at != '@') || p < 0 || p > 1)
                goto bad;
        nf = realloc(cfg->faults, (cfg->fault_cnt + 1) * sizeof(*nf));
        if (!nf) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        cfg->faults = nf;
        nf[cfg->fault_cnt].kind = f;
        nf[cfg->fault_cnt].p = p;
        nf[cfg->fault_cnt].path = *at && at[1] ? strdup(at + 1) : NULL;
        cfg->fault_cnt++;
        return 0;
bad:
        snprintf(errstr, errstr_size,
                 "--fault wants KIND=PROBABILITY[@SUBSTRING], KIND one of http502 http503 timeout604 drop slow, PROBABILITY in [0,1]");
        return -1;
}

/* ---- counters and call log ------------------------------------------ */

void emu_code_str(int code, char *buf, size_t size)
{
        if (code == EMU_CODE_OK)
                snprintf(buf, size, "ok");
        else if (code == EMU_CODE_DROP)
                snprintf(buf, size, "drop");
        else if (code >= EMU_CODE_HTTP(0) && code < EMU_CODE_DROP)
                snprintf(buf, size, "http_%d", code - EMU_CODE_HTTP(0));
        else
                snprintf(buf, size, "%d", code);
}

static void bump(struct emu_code_count *slots, size_t *cnt, int code)
{
        for (size_t i = 0; i < *cnt; i++) {
                if (slots[i].code == code) {
                        slots[i].n++;
                        return;
                }
        }
        /* LIMIT: at most 64 distinct codes per table; more are not kept. */
        if (*cnt == EMU_CODE_SLOTS)
                return;
        slots[*cnt].code = code;
        slots[*cnt].n = 1;
        (*cnt)++;
}

void emu_count_skip_locked(struct emu_instance *in, int code)
{
        bump(in->cnt.skips, &in->cnt.skip_cnt, code);
}

void emu_count_call_locked(struct emu_instance *in, enum emu_route route,
                           int code, int64_t t_ms, bool counted)
{
        struct emu_call *call;

        if (route != EMU_RT_IDENTITY)
                in->cnt.total_calls++;
        in->cnt.by_route[route < EMU_RT_COUNT ? route : 0]++;
        if (code != EMU_CODE_OK)
                bump(in->cnt.errors, &in->cnt.error_cnt, code);

        if (in->log_len == EMU_CALL_LOG_MAX) {
                in->log_head = (in->log_head + 1) % EMU_CALL_LOG_MAX;
                in->log_len--;
                in->log_dropped++;
        }
        call = &in->log[(in->log_head + in->log_len) % EMU_CALL_LOG_MAX];
        call->t_ms = t_ms;
        call->code = code;
        call->route = (uint16_t)route;
        call->counted = counted;
        in->log_len++;
}
