/* SPDX-License-Identifier: Apache-2.0
 *
 * budget.c - shared rate budget for one Marketo instance: a replica of the
 * instance's control records (other workers' ceilings, call ages, demand,
 * rejections, daily blocks), the claim/confirm rule that raises our own
 * ceiling, fair targets, shared AIMD, the concurrency split and daily
 * blocks. Pure state machine: no I/O, no clock. Design notes and the
 * record schema: docs/rate-budget.md.
 */
#include "mlsync/budget.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define NEVER INT64_MIN
#define MAX_BINS 64
#define WID_MAX 128
#define INST_MAX 64
#define U16_MAX 65535
/* Own records remembered until read back; older ones are forgotten and
 * their read-back ignored, which only ever withholds a raise. */
#define OUT_MAX 128
#define QOUT_MAX 16
/* A daily claim not read back after this long is sent again. */
#define QUOTA_RESEND_MS 10000

/* Shared AIMD (docs/rate-budget.md): k rejections within the span cut the
 * budget to 4/5, at most once per guard, then it grows linearly after a
 * hold. */
#define AIMD_K 3
#define AIMD_SPAN_MS 20000
#define AIMD_GUARD_MS 5000
#define AIMD_HOLD_MS 20000
/* Which member gets the odd calls of a fair split changes this often. */
#define ROTATE_MS 60000
/* A lower demand is announced only after it has lasted this long. */
#define WANT_HOLD_MS 2000

enum kind { KIND_RATE, KIND_QUOTA };

/* One decoded control record. */
struct rec {
        enum kind kind;
        char wid[WID_MAX + 1];
        int64_t inc;
        int64_t seq;
        /* rate */
        int c, want, cc, infl, r606, r615, nbins;
        int hist[MAX_BINS];
        int64_t rb, rt, cb, ct;
        /* quota */
        long day, total, used;
        bool f607;
};

/* Another (worker, incarnation): its latest rate and quota records. */
struct member {
        char wid[WID_MAX + 1];
        int64_t inc;
        bool has_rate;
        int64_t rate_seq;
        int64_t t_ms; /* log time of its latest rate record */
        int c, want, nbins;
        int hist[MAX_BINS];
        bool has_quota;
        int64_t quota_seq;
        long q_day, q_total;
        bool q_607;
};

struct aimd {
        int64_t full_m; /* all values in thousandths */
        int64_t min_m;
        int64_t step_m; /* growth per AIMD_SPAN_MS after the hold */
        int64_t base_m;
        int64_t t0_ms; /* log time of the latest decrease, NEVER */
        /* Latest AIMD_K reports: older ones can never complete a count
         * of k that the newer ones have not already completed. */
        int64_t rej_t[AIMD_K];
        int rej_n[AIMD_K];
        int nrej;
        uint64_t cuts; /* decreases made or adopted */
};

/* An own record sent and not yet read back. */
struct sent {
        int64_t seq;
        long val; /* ceiling, or daily total */
        int64_t sent_ms;
};

struct mls_budget {
        char inst[INST_MAX + 1];
        char wid[WID_MAX + 1];
        int64_t inc;
        int B, C;
        long Q;
        struct mls_budget_params p;
        int nbins;
        bool started;
        int64_t next_seq;

        /* replica */
        int64_t L;
        struct member *mem; /* sorted by (wid, inc) */
        size_t nmem, capmem;
        int *sw, *sa; /* scratch for fair splits, capmem + 1 */
        int64_t doubt_until;
        struct aimd rate, conc;
        int64_t rate_applied_ms; /* our clock when rate t0 last moved */
        int64_t conc_applied_ms;

        /* own rate state */
        int conf;
        int64_t renew_ms; /* send time of our latest record read back */
        struct sent out[OUT_MAX];
        size_t nout;
        int64_t last_rate_ms;
        int64_t last_claim_ms;
        bool pub_active;
        bool lowered;
        int r606, r615;

        /* demand */
        long queued;
        int want;
        int64_t want_low_since;

        /* own calls: reply times of finished calls, oldest first */
        int64_t *ends;
        size_t head, cnt, cap;
        int infl;

        /* daily blocks */
        long day;
        long q_conf, q_used;
        struct sent qout[QOUT_MAX];
        size_t nqout;
        bool q_retract, q_607_pub, stopped607;

        uint64_t records_in, records_out, records_bad, records_version,
                records_foreign, claims_confirmed, claims_clipped, fences;
};

static int64_t min64(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

void mls_budget_params_default(struct mls_budget_params *p)
{
        p->window_ms = 20000;
        p->margin_ms = 1000;
        p->ttl_ms = 5000;
        p->ttl_self_ms = 4000;
        p->heartbeat_ms = 1000;
        p->claim_gap_ms = 250;
        p->reserve = 0;
        p->block_calls = 50;
}

/* ------------------------------------------------------------------ */
/* AIMD                                                                */

static void aimd_init(struct aimd *a, int full, int min, int step_m)
{
        memset(a, 0, sizeof(*a));
        a->full_m = (int64_t)full * 1000;
        a->min_m = (int64_t)min * 1000;
        a->step_m = step_m;
        a->base_m = a->full_m;
        a->t0_ms = NEVER;
}

static int64_t aimd_value_m(const struct aimd *a, int64_t L)
{
        int64_t grow;

        if (a->t0_ms == NEVER || L == NEVER)
                return a->base_m;
        grow = L - a->t0_ms - AIMD_HOLD_MS;
        if (grow <= 0)
                return a->base_m;
        /* Past this point the value is full anyway; avoids overflow. */
        if (grow > (int64_t)AIMD_SPAN_MS * (a->full_m / a->step_m + 1))
                return a->full_m;
        return min64(a->full_m, a->base_m + a->step_m * grow / AIMD_SPAN_MS);
}

/* Take a sender's (base, t0) if it knows of a later decrease. */
static bool aimd_adopt(struct aimd *a, int64_t base_m, int64_t t0_ms)
{
        if (t0_ms < 0 || (a->t0_ms != NEVER && t0_ms <= a->t0_ms))
                return false;
        a->base_m = max64(a->min_m, min64(a->full_m, base_m));
        a->t0_ms = t0_ms;
        a->nrej = 0;
        a->cuts++;
        return true;
}

/* Count n rejections reported at log time L. @returns true on a cut. */
static bool aimd_report(struct aimd *a, int64_t L, int n)
{
        int sum = 0;

        if (a->nrej == AIMD_K) {
                memmove(a->rej_t, a->rej_t + 1,
                        (AIMD_K - 1) * sizeof(a->rej_t[0]));
                memmove(a->rej_n, a->rej_n + 1,
                        (AIMD_K - 1) * sizeof(a->rej_n[0]));
                a->nrej--;
        }
        a->rej_t[a->nrej] = L;
        a->rej_n[a->nrej] = n;
        a->nrej++;
        for (int i = 0; i < a->nrej; i++) {
                if (a->rej_t[i] > L - AIMD_SPAN_MS)
                        sum += a->rej_n[i];
        }
        if (sum < AIMD_K)
                return false;
        if (a->t0_ms != NEVER && L - a->t0_ms < AIMD_GUARD_MS)
                return false;
        a->base_m = max64(a->min_m, aimd_value_m(a, L) * 4 / 5);
        a->t0_ms = L;
        /* The reports that caused a cut are spent by it. */
        a->nrej = 0;
        a->cuts++;
        return true;
}

static int beff(const struct mls_budget *bud)
{
        return (int)(aimd_value_m(&bud->rate, bud->L) / 1000);
}

static int ceff(const struct mls_budget *bud)
{
        return (int)(aimd_value_m(&bud->conc, bud->L) / 1000);
}

/* ------------------------------------------------------------------ */
/* Own call log                                                        */

/* How long a finished call is remembered: the window, and the span of
 * the age histogram. */
static int64_t keep_ms(const struct mls_budget *bud)
{
        return max64(bud->p.window_ms, (int64_t)bud->nbins * 1000);
}

static int64_t ring_at(const struct mls_budget *bud, size_t i)
{
        return bud->ends[(bud->head + i) % bud->cap];
}

static void ring_expire(struct mls_budget *bud, int64_t now_ms)
{
        int64_t keep = keep_ms(bud);

        while (bud->cnt > 0 && bud->ends[bud->head] <= now_ms - keep) {
                bud->head = (bud->head + 1) % bud->cap;
                bud->cnt--;
        }
}

/* Make room for need entries, keeping order. @returns 0, or -1 when out
 * of memory. Invariant kept by try_spend: cap >= cnt + infl. */
static int ring_reserve(struct mls_budget *bud, size_t need)
{
        size_t ncap = bud->cap;
        int64_t *n;

        if (need <= bud->cap)
                return 0;
        while (ncap < need)
                ncap *= 2;
        n = malloc(ncap * sizeof(*n));
        if (!n)
                return -1;
        for (size_t i = 0; i < bud->cnt; i++)
                n[i] = ring_at(bud, i);
        free(bud->ends);
        bud->ends = n;
        bud->head = 0;
        bud->cap = ncap;
        return 0;
}

/* Our calls that may still be inside some Marketo window: every call in
 * flight, and every finished one until window_ms after its reply (it
 * reached Marketo before its reply came back). */
static int window_calls(const struct mls_budget *bud, int64_t now_ms)
{
        size_t old = 0;

        while (old < bud->cnt &&
               ring_at(bud, old) <= now_ms - bud->p.window_ms)
                old++;
        return bud->infl + (int)(bud->cnt - old);
}

static void own_hist(const struct mls_budget *bud, int64_t now_ms, int *hist)
{
        memset(hist, 0, (size_t)bud->nbins * sizeof(*hist));
        hist[0] = bud->infl;
        for (size_t i = 0; i < bud->cnt; i++) {
                int64_t b = (now_ms - ring_at(bud, i)) / 1000;

                if (b >= 0 && b < bud->nbins && hist[b] < U16_MAX)
                        hist[b]++;
        }
}

/* ------------------------------------------------------------------ */
/* Replica: members, footprints, targets                               */

static int member_cmp(const char *wid, int64_t inc, const struct member *m)
{
        int r = strcmp(wid, m->wid);

        if (r)
                return r;
        return inc < m->inc ? -1 : inc > m->inc;
}

/* Position of (wid, inc) in the sorted table; *found tells if it is
 * there. */
static size_t member_pos(const struct mls_budget *bud, const char *wid,
                         int64_t inc, bool *found)
{
        size_t lo = 0, hi = bud->nmem;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int r = member_cmp(wid, inc, &bud->mem[mid]);

                if (r == 0) {
                        *found = true;
                        return mid;
                }
                if (r < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        *found = false;
        return lo;
}

static struct member *member_get(struct mls_budget *bud, const char *wid,
                                 int64_t inc)
{
        bool found;
        size_t i = member_pos(bud, wid, inc, &found);
        struct member *m;

        if (found)
                return &bud->mem[i];
        if (bud->nmem == bud->capmem) {
                size_t ncap = bud->capmem * 2;
                struct member *nm = realloc(bud->mem, ncap * sizeof(*nm));
                int *nw, *na;

                if (!nm)
                        return NULL;
                bud->mem = nm;
                nw = realloc(bud->sw, (ncap + 1) * sizeof(*nw));
                if (!nw)
                        return NULL;
                bud->sw = nw;
                na = realloc(bud->sa, (ncap + 1) * sizeof(*na));
                if (!na)
                        return NULL;
                bud->sa = na;
                bud->capmem = ncap;
        }
        memmove(&bud->mem[i + 1], &bud->mem[i],
                (bud->nmem - i) * sizeof(*bud->mem));
        bud->nmem++;
        m = &bud->mem[i];
        memset(m, 0, sizeof(*m));
        strcpy(m->wid, wid);
        m->inc = inc;
        return m;
}

/* Age of a member's latest rate record at replica time. */
static int64_t rate_age(const struct mls_budget *bud, const struct member *m)
{
        return bud->L - m->t_ms;
}

/*
 * Upper bound on the member's calls in any Marketo window that ends after
 * the replica's log time: its promise c, or its recorded calls that have
 * not yet aged out, whichever is larger; c alone while its lease may still
 * let it call; 0 once the lease and the last calls have lapsed.
 */
static int footprint(const struct mls_budget *bud, const struct member *m)
{
        int64_t a, span = (int64_t)bud->p.window_ms + bud->p.margin_ms;
        int h = 0;

        if (!m->has_rate)
                return 0;
        a = rate_age(bud, m);
        if (a > bud->p.ttl_ms + span)
                return 0;
        if (a > span)
                return m->c;
        for (int b = 0; b < m->nbins; b++) {
                if (a < span - (int64_t)b * 1000)
                        h += m->hist[b];
        }
        return h > m->c ? h : m->c;
}

static int others_footprint(const struct mls_budget *bud)
{
        long sum = 0;

        for (size_t i = 0; i < bud->nmem; i++)
                sum += footprint(bud, &bud->mem[i]);
        return sum > INT_MAX ? INT_MAX : (int)sum;
}

/* Max-min fair split of cap over w[0..n) into a[]; the calls left after
 * whole shares go one each to unsatisfied members from index rot on. */
static void waterfill(const int *w, int *a, int n, long cap, int rot)
{
        int left = 0;

        for (int i = 0; i < n; i++) {
                a[i] = 0;
                if (w[i] > 0)
                        left++;
        }
        while (left > 0 && cap > 0) {
                long q = cap / left;
                bool fitted = false;

                for (int i = 0; q > 0 && i < n; i++) {
                        if (a[i] < w[i] && w[i] <= q) {
                                a[i] = w[i];
                                cap -= w[i];
                                left--;
                                fitted = true;
                        }
                }
                if (fitted)
                        continue;
                for (int i = 0; i < n; i++) {
                        if (a[i] < w[i]) {
                                a[i] += (int)q;
                                cap -= q;
                        }
                }
                break;
        }
        for (int k = 0; k < n && cap > 0; k++) {
                int i = (rot + k) % n;

                if (a[i] < w[i]) {
                        a[i]++;
                        cap--;
                }
        }
}

/* Our fair share among the members with a live lease and demand. Every
 * replica with the same records computes the same split; only our own
 * want is local. */
static int target(struct mls_budget *bud)
{
        int n = 0, self = -1, rot;
        long cap = (long)beff(bud) - bud->p.reserve;

        if (bud->want <= 0 || cap <= 0)
                return 0;
        for (size_t i = 0; i <= bud->nmem; i++) {
                const struct member *m = i < bud->nmem ? &bud->mem[i] : NULL;

                if (self < 0 && (!m || member_cmp(bud->wid, bud->inc, m) < 0)) {
                        self = n;
                        bud->sw[n++] = bud->want;
                }
                if (m && m->has_rate && m->want > 0 &&
                    rate_age(bud, m) <= bud->p.ttl_ms)
                        bud->sw[n++] = m->want;
        }
        rot = bud->L == NEVER ? 0 : (int)((bud->L / ROTATE_MS) % n);
        if (rot < 0)
                rot += n;
        waterfill(bud->sw, bud->sa, n, cap, rot);
        return bud->sa[self];
}

static bool in_doubt(const struct mls_budget *bud)
{
        return bud->doubt_until != NEVER && bud->L < bud->doubt_until;
}

/* What we could claim now: our target, bounded by what the others'
 * footprints leave. */
static int claimable(struct mls_budget *bud)
{
        int d = beff(bud) - others_footprint(bud);
        int t = target(bud);

        if (t < d)
                d = t;
        if (in_doubt(bud) && d > bud->conf)
                d = bud->conf;
        return d < 0 ? 0 : d;
}

/* LIMIT: the lease is renewed only by reading our own record back, not by
 * the producer's ack; the module has no delivery-report input yet. */
static bool fenced(const struct mls_budget *bud, int64_t now_ms)
{
        return bud->renew_ms == NEVER ||
               now_ms - bud->renew_ms > bud->p.ttl_self_ms;
}

static void update_want(struct mls_budget *bud, int64_t now_ms)
{
        long raw = window_calls(bud, now_ms) + bud->queued;

        if (raw > bud->B)
                raw = bud->B;
        if (raw >= bud->want) {
                bud->want = (int)raw;
                bud->want_low_since = NEVER;
                return;
        }
        if (bud->want_low_since == NEVER)
                bud->want_low_since = now_ms;
        if (now_ms - bud->want_low_since >= WANT_HOLD_MS) {
                bud->want = (int)raw;
                bud->want_low_since = NEVER;
        }
}

/* Rules that act at once: the fence, and lowering to the target. */
static void tick(struct mls_budget *bud, int64_t now_ms)
{
        int t;

        ring_expire(bud, now_ms);
        update_want(bud, now_ms);
        if (bud->conf > 0 && fenced(bud, now_ms)) {
                bud->conf = 0;
                bud->fences++;
                bud->lowered = true;
        }
        t = target(bud);
        if (bud->conf > t) {
                bud->conf = t;
                bud->lowered = true;
        }
}

/* LIMIT: concurrency caps are derived from the rate share (soft when more
 * than C workers are active); the doc's hard slot mode is not built. */
static int own_cc(const struct mls_budget *bud)
{
        int be = beff(bud), ce = ceff(bud), cc;

        if (bud->conf < 1 || be < 1)
                return 0;
        cc = (int)((int64_t)ce * bud->conf / be);
        if (cc < 1)
                cc = 1;
        return cc > ce ? ce : cc;
}

/* ------------------------------------------------------------------ */
/* Lifetime                                                            */

struct mls_budget *mls_budget_new(const char *instance, const char *worker_id,
                                  int64_t incarnation, int calls_per_20s,
                                  int concurrent_calls, long daily_calls,
                                  const struct mls_budget_params *p)
{
        struct mls_budget *bud;
        int span;

        if (!instance || !worker_id || !*instance || !*worker_id ||
            strlen(instance) > INST_MAX || strlen(worker_id) > WID_MAX ||
            incarnation < 0 || calls_per_20s <= 0 ||
            calls_per_20s > U16_MAX || concurrent_calls <= 0 ||
            concurrent_calls > U16_MAX || daily_calls < 0)
                return NULL;
        bud = calloc(1, sizeof(*bud));
        if (!bud)
                return NULL;
        if (p)
                bud->p = *p;
        else
                mls_budget_params_default(&bud->p);
        if (bud->p.window_ms <= 0 || bud->p.block_calls <= 0) {
                free(bud);
                return NULL;
        }
        strcpy(bud->inst, instance);
        strcpy(bud->wid, worker_id);
        bud->inc = incarnation;
        bud->B = calls_per_20s;
        bud->C = concurrent_calls;
        bud->Q = daily_calls;
        span = bud->p.window_ms + bud->p.margin_ms;
        bud->nbins = span <= 1000 ? 1 : (span + 999) / 1000;
        if (bud->nbins > MAX_BINS)
                bud->nbins = MAX_BINS;
        bud->next_seq = 1;
        bud->L = NEVER;
        bud->doubt_until = NEVER;
        aimd_init(&bud->rate, calls_per_20s,
                  calls_per_20s / 4 > 1 ? calls_per_20s / 4 : 1,
                  calls_per_20s * 100 > 1000 ? calls_per_20s * 100 : 1000);
        aimd_init(&bud->conc, concurrent_calls, 1, 1000);
        bud->rate_applied_ms = NEVER;
        bud->conc_applied_ms = NEVER;
        bud->renew_ms = NEVER;
        bud->last_rate_ms = NEVER;
        bud->last_claim_ms = NEVER;
        bud->want_low_since = NEVER;
        bud->day = -1;
        bud->capmem = 8;
        bud->cap = 64;
        bud->mem = calloc(bud->capmem, sizeof(*bud->mem));
        bud->sw = calloc(bud->capmem + 1, sizeof(*bud->sw));
        bud->sa = calloc(bud->capmem + 1, sizeof(*bud->sa));
        bud->ends = calloc(bud->cap, sizeof(*bud->ends));
        if (!bud->mem || !bud->sw || !bud->sa || !bud->ends) {
                mls_budget_destroy(bud);
                return NULL;
        }
        return bud;
}

void mls_budget_destroy(struct mls_budget *bud)
{
        if (!bud)
                return;
        free(bud->mem);
        free(bud->sw);
        free(bud->sa);
        free(bud->ends);
        free(bud);
}

void mls_budget_start(struct mls_budget *bud, int64_t now_ms)
{
        bud->started = true;
        tick(bud, now_ms);
}

void mls_budget_set_day(struct mls_budget *bud, long day)
{
        if (day == bud->day)
                return;
        bud->day = day;
        bud->q_conf = 0;
        bud->q_used = 0;
        bud->nqout = 0;
        bud->q_retract = false;
        bud->q_607_pub = false;
        bud->stopped607 = false;
        for (size_t i = 0; i < bud->nmem; i++) {
                const struct member *m = &bud->mem[i];

                if (m->has_quota && m->q_607 && m->q_day == day)
                        bud->stopped607 = true;
        }
}

/* ------------------------------------------------------------------ */
/* Record decoding                                                     */

enum dec_result { DEC_OK, DEC_BAD, DEC_VERSION, DEC_FOREIGN, DEC_NOMEM };

static bool get_int(json_object *root, const char *key, int64_t lo,
                    int64_t hi, int64_t *out)
{
        json_object *v;
        int64_t x;

        if (!json_object_object_get_ex(root, key, &v) ||
            !json_object_is_type(v, json_type_int))
                return false;
        x = json_object_get_int64(v);
        if (x < lo || x > hi)
                return false;
        *out = x;
        return true;
}

static bool get_str(json_object *root, const char *key, size_t max,
                    const char **out)
{
        json_object *v;
        size_t n;

        if (!json_object_object_get_ex(root, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return false;
        n = (size_t)json_object_get_string_len(v);
        *out = json_object_get_string(v);
        return n > 0 && n <= max && strlen(*out) == n;
}

static bool dec_rate(json_object *root, struct rec *r)
{
        json_object *h, *aimd;
        int64_t x[6];
        size_t n;

        if (!get_int(root, "c", 0, U16_MAX, &x[0]) ||
            !get_int(root, "want", 0, U16_MAX, &x[1]) ||
            !get_int(root, "cc", 0, U16_MAX, &x[2]) ||
            !get_int(root, "infl", 0, U16_MAX, &x[3]) ||
            !get_int(root, "r606", 0, U16_MAX, &x[4]) ||
            !get_int(root, "r615", 0, U16_MAX, &x[5]))
                return false;
        r->c = (int)x[0];
        r->want = (int)x[1];
        r->cc = (int)x[2];
        r->infl = (int)x[3];
        r->r606 = (int)x[4];
        r->r615 = (int)x[5];
        if (!json_object_object_get_ex(root, "hist", &h) ||
            !json_object_is_type(h, json_type_array))
                return false;
        n = json_object_array_length(h);
        if (n < 1 || n > MAX_BINS)
                return false;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(h, i);
                int64_t v;

                if (!json_object_is_type(e, json_type_int))
                        return false;
                v = json_object_get_int64(e);
                if (v < 0 || v > U16_MAX)
                        return false;
                r->hist[i] = (int)v;
        }
        r->nbins = (int)n;
        if (!json_object_object_get_ex(root, "aimd", &aimd) ||
            !json_object_is_type(aimd, json_type_object))
                return false;
        return get_int(aimd, "rb", 0, INT64_MAX, &r->rb) &&
               get_int(aimd, "rt", -1, INT64_MAX, &r->rt) &&
               get_int(aimd, "cb", 0, INT64_MAX, &r->cb) &&
               get_int(aimd, "ct", -1, INT64_MAX, &r->ct);
}

static bool dec_quota(json_object *root, struct rec *r)
{
        json_object *f;
        int64_t x[3];

        if (!get_int(root, "day", 0, LONG_MAX, &x[0]) ||
            !get_int(root, "total", 0, LONG_MAX, &x[1]) ||
            !get_int(root, "used", 0, LONG_MAX, &x[2]))
                return false;
        r->day = (long)x[0];
        r->total = (long)x[1];
        r->used = (long)x[2];
        if (!json_object_object_get_ex(root, "f607", &f) ||
            !json_object_is_type(f, json_type_boolean))
                return false;
        r->f607 = json_object_get_boolean(f);
        return true;
}

static enum dec_result dec_fields(const struct mls_budget *bud,
                                  json_object *root, struct rec *r)
{
        const char *kind, *inst, *wid;
        int64_t v;

        /* Version first: a later version may change every other field. */
        if (!get_int(root, "v", 0, INT64_MAX, &v))
                return DEC_BAD;
        if (v != MLS_BUDGET_RECORD_VERSION)
                return DEC_VERSION;
        if (!get_str(root, "kind", 16, &kind) ||
            !get_str(root, "inst", INST_MAX, &inst) ||
            !get_str(root, "wid", WID_MAX, &wid) ||
            !get_int(root, "inc", 0, INT64_MAX, &r->inc) ||
            !get_int(root, "seq", 1, INT64_MAX, &r->seq))
                return DEC_BAD;
        if (strcmp(kind, "rate") == 0)
                r->kind = KIND_RATE;
        else if (strcmp(kind, "quota") == 0)
                r->kind = KIND_QUOTA;
        else
                return DEC_BAD;
        strcpy(r->wid, wid);
        if (!(r->kind == KIND_RATE ? dec_rate(root, r) : dec_quota(root, r)))
                return DEC_BAD;
        return strcmp(inst, bud->inst) ? DEC_FOREIGN : DEC_OK;
}

static enum dec_result decode(const struct mls_budget *bud, const char *json,
                              size_t len, struct rec *r)
{
        struct json_tokener *tok;
        json_object *root;
        enum json_tokener_error jerr;
        enum dec_result res;
        size_t end;

        if (!json || len == 0 || len > MLS_BUDGET_RECORD_MAX)
                return DEC_BAD;
        tok = json_tokener_new();
        if (!tok)
                return DEC_NOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                            JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, json, (int)len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (jerr != json_tokener_success || !root || end < len ||
            !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return DEC_BAD;
        }
        res = dec_fields(bud, root, r);
        json_object_put(root);
        return res;
}

/* ------------------------------------------------------------------ */
/* Applying records                                                    */

static void apply_aimd(struct mls_budget *bud, const struct rec *r,
                       int64_t now_ms)
{
        if (aimd_adopt(&bud->rate, r->rb, r->rt))
                bud->rate_applied_ms = now_ms;
        if (aimd_adopt(&bud->conc, r->cb, r->ct))
                bud->conc_applied_ms = now_ms;
        if (r->r606 > 0 && aimd_report(&bud->rate, bud->L, r->r606))
                bud->rate_applied_ms = now_ms;
        if (r->r615 > 0 && aimd_report(&bud->conc, bud->L, r->r615))
                bud->conc_applied_ms = now_ms;
}

/* Forget own records up to seq; @returns the entry for seq (copied into
 * *hit) and the least value among the later ones. */
static bool sent_take(struct sent *list, size_t *n, int64_t seq,
                      struct sent *hit, long *later_min)
{
        size_t k = 0;
        bool found = false;

        *later_min = LONG_MAX;
        for (size_t i = 0; i < *n; i++) {
                if (list[i].seq == seq) {
                        *hit = list[i];
                        found = true;
                }
                if (list[i].seq <= seq)
                        continue;
                if (list[i].val < *later_min)
                        *later_min = list[i].val;
                list[k++] = list[i];
        }
        *n = k;
        return found;
}

static void sent_push(struct sent *list, size_t *n, size_t max,
                      int64_t seq, long val, int64_t sent_ms)
{
        if (*n == max) {
                memmove(list, list + 1, (max - 1) * sizeof(*list));
                (*n)--;
        }
        list[*n].seq = seq;
        list[*n].val = val;
        list[*n].sent_ms = sent_ms;
        (*n)++;
}

/*
 * Our own rate record is back from the log: it renews our lease, and at
 * this log position we may raise to what it claimed, as far as the
 * others' footprints (as they stand just before it), our target and every
 * later promise of ours allow.
 */
static void confirm_rate(struct mls_budget *bud, const struct rec *r,
                         int64_t now_ms)
{
        struct sent hit;
        long later_min, ok;

        if (!sent_take(bud->out, &bud->nout, r->seq, &hit, &later_min))
                return;
        if (bud->renew_ms == NEVER || hit.sent_ms > bud->renew_ms)
                bud->renew_ms = hit.sent_ms;
        if (r->c <= bud->conf || fenced(bud, now_ms))
                return;
        update_want(bud, now_ms);
        ok = r->c;
        ok = ok < later_min ? ok : later_min;
        ok = ok < target(bud) ? ok : target(bud);
        ok = ok < beff(bud) - others_footprint(bud) ?
                     ok : beff(bud) - others_footprint(bud);
        if (in_doubt(bud))
                ok = bud->conf;
        if (ok > bud->conf) {
                bud->conf = (int)ok;
                bud->claims_confirmed++;
        }
        if (ok < r->c)
                bud->claims_clipped++;
}

/* LIMIT: no usage-endpoint reconciler and no double debit around Marketo's
 * midnight; the caller sets the day and our share is fixed. */
static long others_daily(const struct mls_budget *bud)
{
        long sum = 0;

        for (size_t i = 0; i < bud->nmem; i++) {
                const struct member *m = &bud->mem[i];

                if (m->has_quota && m->q_day == bud->day)
                        sum += m->q_total;
        }
        return sum;
}

/* Own daily record back: the same last-writer rule with counts. */
static void confirm_quota(struct mls_budget *bud, const struct rec *r)
{
        struct sent hit;
        long later_min, ok;

        if (r->day != bud->day ||
            !sent_take(bud->qout, &bud->nqout, r->seq, &hit, &later_min))
                return;
        if (r->total <= bud->q_conf)
                return;
        if (others_daily(bud) + r->total > bud->Q) {
                /* Lost the race: take the claim back so that it does not
                 * hold the block from everyone for the rest of the day. */
                bud->q_retract = true;
                return;
        }
        ok = r->total < later_min ? r->total : later_min;
        if (ok > bud->q_conf)
                bud->q_conf = ok;
}

static void apply_other(struct mls_budget *bud, const struct rec *r,
                        int64_t log_ms, struct member *m)
{
        if (r->kind == KIND_RATE) {
                if (m->has_rate && r->seq <= m->rate_seq)
                        return;
                m->has_rate = true;
                m->rate_seq = r->seq;
                m->t_ms = log_ms;
                m->c = r->c;
                m->want = r->want;
                m->nbins = r->nbins;
                memcpy(m->hist, r->hist, sizeof(m->hist));
                return;
        }
        if (m->has_quota && (r->day < m->q_day ||
                             (r->day == m->q_day && r->seq <= m->quota_seq)))
                return;
        m->has_quota = true;
        m->quota_seq = r->seq;
        m->q_day = r->day;
        m->q_total = r->total;
        m->q_607 = r->f607;
        if (r->f607 && r->day == bud->day)
                bud->stopped607 = true;
}

/* Drop members that no longer count for anything. */
static void prune(struct mls_budget *bud)
{
        int64_t dead = (int64_t)bud->p.ttl_ms + bud->p.window_ms +
                       bud->p.margin_ms;
        size_t k = 0;

        for (size_t i = 0; i < bud->nmem; i++) {
                const struct member *m = &bud->mem[i];
                bool rate = m->has_rate && rate_age(bud, m) <= dead;
                bool quota = m->has_quota && m->q_day >= bud->day;

                if (rate || quota)
                        bud->mem[k++] = *m;
        }
        bud->nmem = k;
}

static void hold_raises(struct mls_budget *bud, int64_t log_ms)
{
        int64_t until = log_ms + bud->p.ttl_ms + bud->p.window_ms +
                        bud->p.margin_ms;

        if (bud->doubt_until == NEVER || until > bud->doubt_until)
                bud->doubt_until = until;
}

enum mls_err mls_budget_on_record(struct mls_budget *bud, const char *json,
                                  size_t len, int64_t log_ms, int64_t now_ms)
{
        struct rec r;
        enum dec_result res;
        struct member *m;

        memset(&r, 0, sizeof(r));
        bud->records_in++;
        if (bud->L == NEVER || log_ms > bud->L)
                bud->L = log_ms;
        res = decode(bud, json, len, &r);
        if (res == DEC_NOMEM)
                return MLS_ERR_NOMEM;
        if (res == DEC_FOREIGN) {
                bud->records_foreign++;
                return MLS_OK;
        }
        if (res == DEC_BAD || res == DEC_VERSION) {
                /* We cannot tell whose record it was or what it promised,
                 * so we raise nothing until its footprint must have gone. */
                if (res == DEC_BAD)
                        bud->records_bad++;
                else
                        bud->records_version++;
                hold_raises(bud, log_ms);
                tick(bud, now_ms);
                return MLS_ERR_BAD_MESSAGE;
        }

        if (strcmp(r.wid, bud->wid) == 0 && r.inc == bud->inc) {
                if (r.seq >= bud->next_seq) {
                        /* Someone else uses our identity (assumption A1
                         * broken): trust nothing we cannot account for. */
                        bud->records_bad++;
                        hold_raises(bud, log_ms);
                        tick(bud, now_ms);
                        return MLS_ERR_BAD_MESSAGE;
                }
                if (r.kind == KIND_RATE) {
                        confirm_rate(bud, &r, now_ms);
                        apply_aimd(bud, &r, now_ms);
                } else {
                        confirm_quota(bud, &r);
                }
        } else {
                m = member_get(bud, r.wid, r.inc);
                if (!m)
                        return MLS_ERR_NOMEM;
                apply_other(bud, &r, log_ms, m);
                if (r.kind == KIND_RATE)
                        apply_aimd(bud, &r, now_ms);
        }
        prune(bud);
        tick(bud, now_ms);
        return MLS_OK;
}

/* ------------------------------------------------------------------ */
/* Record encoding                                                     */

struct enc {
        json_object *root;
        bool failed;
};

static void put(struct enc *e, json_object *o, const char *key,
                json_object *v)
{
        if (!v || json_object_object_add(o, key, v) != 0) {
                json_object_put(v);
                e->failed = true;
        }
}

static void put_int(struct enc *e, json_object *o, const char *key,
                    int64_t v)
{
        put(e, o, key, json_object_new_int64(v));
}

static void enc_head(struct mls_budget *bud, struct enc *e, const char *kind,
                     int64_t seq)
{
        e->root = json_object_new_object();
        e->failed = !e->root;
        if (e->failed)
                return;
        put_int(e, e->root, "v", MLS_BUDGET_RECORD_VERSION);
        put(e, e->root, "kind", json_object_new_string(kind));
        put(e, e->root, "inst", json_object_new_string(bud->inst));
        put(e, e->root, "wid", json_object_new_string(bud->wid));
        put_int(e, e->root, "inc", bud->inc);
        put_int(e, e->root, "seq", seq);
}

static char *enc_finish(struct enc *e)
{
        char *s = NULL;

        if (!e->failed) {
                const char *t = json_object_to_json_string_ext(
                        e->root, JSON_C_TO_STRING_PLAIN);

                s = t ? strdup(t) : NULL;
        }
        json_object_put(e->root);
        return s;
}

static char *enc_rate(struct mls_budget *bud, int64_t seq, int c,
                      int64_t now_ms)
{
        struct enc e;
        int hist[MAX_BINS];
        json_object *h, *aimd;

        enc_head(bud, &e, "rate", seq);
        if (e.failed)
                return NULL;
        own_hist(bud, now_ms, hist);
        put_int(&e, e.root, "c", c);
        put_int(&e, e.root, "want", bud->want);
        put_int(&e, e.root, "cc", own_cc(bud));
        put_int(&e, e.root, "infl", bud->infl > U16_MAX ? U16_MAX : bud->infl);
        h = json_object_new_array();
        for (int b = 0; h && b < bud->nbins; b++) {
                json_object *v = json_object_new_int(hist[b]);

                if (!v || json_object_array_add(h, v) != 0) {
                        json_object_put(v);
                        e.failed = true;
                }
        }
        put(&e, e.root, "hist", h);
        put_int(&e, e.root, "r606", bud->r606 > U16_MAX ? U16_MAX : bud->r606);
        put_int(&e, e.root, "r615", bud->r615 > U16_MAX ? U16_MAX : bud->r615);
        aimd = json_object_new_object();
        if (aimd) {
                put_int(&e, aimd, "rb", bud->rate.base_m);
                put_int(&e, aimd, "rt",
                        bud->rate.t0_ms == NEVER ? -1 : bud->rate.t0_ms);
                put_int(&e, aimd, "cb", bud->conc.base_m);
                put_int(&e, aimd, "ct",
                        bud->conc.t0_ms == NEVER ? -1 : bud->conc.t0_ms);
        }
        put(&e, e.root, "aimd", aimd);
        return enc_finish(&e);
}

static char *enc_quota(struct mls_budget *bud, int64_t seq, long total,
                       bool f607)
{
        struct enc e;

        enc_head(bud, &e, "quota", seq);
        if (e.failed)
                return NULL;
        put_int(&e, e.root, "day", bud->day);
        put_int(&e, e.root, "total", total);
        put_int(&e, e.root, "used", bud->q_used);
        put(&e, e.root, "f607", json_object_new_boolean(f607));
        return enc_finish(&e);
}

/* ------------------------------------------------------------------ */
/* Publishing                                                          */

static bool active(const struct mls_budget *bud)
{
        return bud->want > 0 || bud->conf > 0 || bud->infl > 0 ||
               bud->cnt > 0;
}

static long sent_max(const struct sent *list, size_t n)
{
        long m = LONG_MIN;

        for (size_t i = 0; i < n; i++) {
                if (list[i].val > m)
                        m = list[i].val;
        }
        return m;
}

static char *next_rate(struct mls_budget *bud, int64_t now_ms)
{
        int d = claimable(bud);
        bool act = active(bud), due;
        bool claim = d > bud->conf &&
                     (bud->last_claim_ms == NEVER ||
                      now_ms - bud->last_claim_ms >= bud->p.claim_gap_ms) &&
                     sent_max(bud->out, bud->nout) < d;
        bool since_gap = bud->last_rate_ms == NEVER ||
                         now_ms - bud->last_rate_ms >= bud->p.claim_gap_ms;
        bool since_hb = bud->last_rate_ms == NEVER ||
                        now_ms - bud->last_rate_ms >= bud->p.heartbeat_ms;
        int64_t seq;
        int c;
        char *s;

        due = bud->lowered || claim ||
              ((bud->r606 > 0 || bud->r615 > 0) && since_gap) ||
              (act && since_hb) || (!act && bud->pub_active);
        if (!due)
                return NULL;
        /* Heartbeats carry the claim too: c is a promise either way. */
        c = d > bud->conf ? d : bud->conf;
        seq = bud->next_seq;
        s = enc_rate(bud, seq, c, now_ms);
        if (!s)
                return NULL;
        bud->next_seq++;
        sent_push(bud->out, &bud->nout, OUT_MAX, seq, c, now_ms);
        if (c > bud->conf)
                bud->last_claim_ms = now_ms;
        bud->last_rate_ms = now_ms;
        bud->pub_active = act;
        bud->lowered = false;
        bud->r606 = 0;
        bud->r615 = 0;
        return s;
}

static char *next_quota(struct mls_budget *bud, int64_t now_ms)
{
        long total, size, pending = sent_max(bud->qout, bud->nqout);
        bool f607 = false;
        int64_t seq = bud->next_seq;
        char *s;

        if (bud->Q == 0 || bud->day < 0)
                return NULL;
        if (bud->q_607_pub || bud->q_retract) {
                f607 = bud->stopped607;
                total = bud->q_conf;
        } else {
                bool waiting = pending > bud->q_conf &&
                               now_ms - bud->qout[bud->nqout - 1].sent_ms <
                                       QUOTA_RESEND_MS;

                if (bud->stopped607 || waiting ||
                    (bud->q_conf - bud->q_used) * 2 >= bud->p.block_calls)
                        return NULL;
                size = bud->Q - others_daily(bud) - bud->q_conf;
                if (size > bud->p.block_calls)
                        size = bud->p.block_calls;
                if (size <= 0)
                        return NULL;
                total = bud->q_conf + size;
        }
        s = enc_quota(bud, seq, total, f607);
        if (!s)
                return NULL;
        bud->next_seq++;
        sent_push(bud->qout, &bud->nqout, QOUT_MAX, seq, total, now_ms);
        bud->q_607_pub = false;
        bud->q_retract = false;
        return s;
}

char *mls_budget_next_record(struct mls_budget *bud, int64_t now_ms,
                             enum mls_budget_topic *topicp)
{
        char *s;

        if (!bud->started)
                return NULL;
        tick(bud, now_ms);
        s = next_rate(bud, now_ms);
        if (s) {
                *topicp = MLS_BUDGET_TOPIC_RATE;
                bud->records_out++;
                return s;
        }
        s = next_quota(bud, now_ms);
        if (s) {
                *topicp = MLS_BUDGET_TOPIC_QUOTA;
                bud->records_out++;
        }
        return s;
}

/* ------------------------------------------------------------------ */
/* Spending                                                            */

void mls_budget_set_demand(struct mls_budget *bud, long queued,
                           int64_t now_ms)
{
        bud->queued = queued < 0 ? 0 : queued;
        tick(bud, now_ms);
}

int mls_budget_allowance(struct mls_budget *bud, int64_t now_ms)
{
        long a;

        tick(bud, now_ms);
        if (!bud->started || bud->stopped607 || fenced(bud, now_ms))
                return 0;
        a = bud->conf - window_calls(bud, now_ms);
        if (own_cc(bud) - bud->infl < a)
                a = own_cc(bud) - bud->infl;
        if (bud->Q > 0 && bud->q_conf - bud->q_used < a)
                a = bud->q_conf - bud->q_used;
        return a > 0 ? (int)a : 0;
}

bool mls_budget_try_spend(struct mls_budget *bud, int64_t now_ms)
{
        if (mls_budget_allowance(bud, now_ms) <= 0)
                return false;
        /* Reserve the ring slot now so that the reply never fails. */
        if (ring_reserve(bud, bud->cnt + (size_t)bud->infl + 1) < 0)
                return false;
        bud->infl++;
        bud->q_used++;
        return true;
}

/* LIMIT: a call the client abandons (timeout) counts from the abandon time;
 * a request still travelling to Marketo after that is not covered. */
void mls_budget_on_reply(struct mls_budget *bud, int code, int64_t sent_ms,
                         int64_t now_ms)
{
        if (bud->infl <= 0)
                return;
        bud->infl--;
        ring_expire(bud, now_ms);
        /* The slot was reserved when the call was spent. */
        bud->ends[(bud->head + bud->cnt) % bud->cap] = now_ms;
        bud->cnt++;
        if (code == 606 && sent_ms >= bud->rate_applied_ms)
                bud->r606++;
        else if (code == 615 && sent_ms >= bud->conc_applied_ms)
                bud->r615++;
        else if (code == 607 && !bud->stopped607) {
                bud->stopped607 = true;
                bud->q_607_pub = true;
        }
}

void mls_budget_get_stats(struct mls_budget *bud, int64_t now_ms,
                          struct mls_budget_stats *st)
{
        tick(bud, now_ms);
        memset(st, 0, sizeof(*st));
        st->conf = bud->conf;
        st->target = target(bud);
        st->others = others_footprint(bud);
        st->beff = beff(bud);
        st->ceff = ceff(bud);
        st->beff_milli = aimd_value_m(&bud->rate, bud->L);
        st->aimd_t0_ms = bud->rate.t0_ms == NEVER ? -1 : bud->rate.t0_ms;
        st->cc = own_cc(bud);
        st->window_calls = window_calls(bud, now_ms);
        st->in_flight = bud->infl;
        st->want = bud->want;
        for (size_t i = 0; i < bud->nmem; i++) {
                const struct member *m = &bud->mem[i];

                if (m->has_rate && rate_age(bud, m) <= bud->p.ttl_ms)
                        st->members++;
        }
        st->started = bud->started;
        st->fenced = fenced(bud, now_ms);
        st->doubt = in_doubt(bud);
        st->stopped_607 = bud->stopped607;
        st->day = bud->day;
        st->daily_confirmed = bud->q_conf;
        st->daily_used = bud->q_used;
        st->records_in = bud->records_in;
        st->records_out = bud->records_out;
        st->records_bad = bud->records_bad;
        st->records_version = bud->records_version;
        st->records_foreign = bud->records_foreign;
        st->claims_confirmed = bud->claims_confirmed;
        st->claims_clipped = bud->claims_clipped;
        st->fences = bud->fences;
        st->rate_decreases = bud->rate.cuts;
        st->conc_decreases = bud->conc.cuts;
}
