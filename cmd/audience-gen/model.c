/* SPDX-License-Identifier: Apache-2.0
 *
 * model.c - audience-gen's simulated world: instances, audiences and
 * users, the ordered plan of messages (membership changes, duplicates,
 * undecodable and unroutable messages), and the membership it leaves.
 */
#include "gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* Extras (malformed, unknown) and duplicates are slotted between base
 * events: base event i sorts at i * GEN_SLOT. */
#define GEN_SLOT 64
#define GEN_DUP_MAX_DISTANCE 25
#define GEN_REMOVE_CHANCE 0.55

static const char *const audience_names[] = {
        "Churn Risk",         "High LTV",          "Trial Ending",
        "Cart Abandoners",    "Power Users",       "Newsletter Engaged",
        "Dormant 90 Days",    "Enterprise Prospects", "Webinar Attendees",
        "Upsell Ready",       "New Signups",       "Renewal Due",
};

static const char *const first_names[] = {
        "ann",   "bob",   "carol", "dave",  "erin",   "frank", "grace",
        "heidi", "ivan",  "judy",  "mallory", "niaj", "olivia", "peggy",
        "rupert", "sybil", "trent", "uma",  "victor", "walter", "xena",
        "yusuf", "zoe",   "amir",  "bea",   "chen",   "dana",  "emeka",
};

static const char *const last_names[] = {
        "smith",  "jones",  "garcia", "miller", "davis",  "lopez",
        "wilson", "moore",  "taylor", "thomas", "martin", "lee",
        "walker", "hall",   "young",  "king",   "wright", "scott",
        "green",  "baker",  "adams",  "nelson", "hill",   "campbell",
};

static const char *const domains[] = {
        "example.com", "example.org", "example.net", "mail.example",
        "acme.example", "globex.example", "initech.example",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void gen_rng_seed(struct gen_rng *g, uint64_t seed)
{
        g->s = seed ^ 0x6a09e667f3bcc909ull;
        (void)gen_rng_next(g);
}

uint64_t gen_rng_next(struct gen_rng *g)
{
        uint64_t z;

        g->s += 0x9e3779b97f4a7c15ull;
        z = g->s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

uint32_t gen_rng_below(struct gen_rng *g, uint32_t n)
{
        /* 64 random bits over a 32-bit range: the bias is below 2^-32. */
        return (uint32_t)(gen_rng_next(g) % n);
}

bool gen_rng_chance(struct gen_rng *g, double p)
{
        if (p <= 0)
                return false;
        return (double)(gen_rng_next(g) >> 11) * 0x1.0p-53 < p;
}

uint64_t gen_user_hash(const struct gen_world *w, uint32_t u)
{
        struct gen_rng g;

        gen_rng_seed(&g, w->o->seed * 1000003u + u);
        return gen_rng_next(&g);
}

/* A count from a share, at least 1 when the share is above zero. */
static size_t share_of(double share, size_t n)
{
        size_t k;

        if (share <= 0 || n == 0)
                return 0;
        k = (size_t)llround(share * (double)n);
        if (k == 0)
                k = 1;
        return k > n ? n : k;
}

static void make_key(char *out, size_t size, const char *name)
{
        size_t j = 0;

        for (const char *p = name; *p && j + 1 < size; p++) {
                if (*p >= 'A' && *p <= 'Z')
                        out[j++] = (char)(*p - 'A' + 'a');
                else if (*p == ' ')
                        out[j++] = '_';
                else
                        out[j++] = *p;
        }
        out[j] = '\0';
}

static void random_id(struct gen_rng *g, const char *prefix, char *out,
                      size_t size)
{
        static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz";
        size_t j = (size_t)snprintf(out, size, "%s", prefix);

        for (; j < size - 1 && j < strlen(prefix) + 27; j++)
                out[j] = b62[gen_rng_below(g, 62)];
        out[j] = '\0';
}

static int build_audiences(struct gen_world *w, struct gen_rng *g)
{
        size_t n = (size_t)w->o->audiences;

        w->auds = calloc(n, sizeof(*w->auds));
        if (!w->auds)
                return -1;
        w->aud_cnt = n;
        for (size_t a = 0; a < n; a++) {
                struct gen_audience *au = &w->auds[a];
                const char *base =
                        audience_names[a % ARRAY_LEN(audience_names)];
                size_t round = a / ARRAY_LEN(audience_names);

                if (round)
                        snprintf(au->name, sizeof(au->name), "%s %zu", base,
                                 round + 1);
                else
                        snprintf(au->name, sizeof(au->name), "%s", base);
                make_key(au->key, sizeof(au->key), au->name);
                random_id(g, "aud_", au->id, sizeof(au->id));
                au->named = a % 3 != 1;
        }
        return 0;
}

/* Shuffle idx[0..n) (Fisher-Yates). */
static void shuffle(struct gen_rng *g, uint32_t *idx, size_t n)
{
        for (size_t i = n; i > 1; i--) {
                uint32_t j = gen_rng_below(g, (uint32_t)i);
                uint32_t t = idx[i - 1];

                idx[i - 1] = idx[j];
                idx[j] = t;
        }
}

/* Kinds are dealt by exact counts over a shuffled order, so a share of
 * 0.03 of 700 users is always 21 users. */
static int build_users(struct gen_world *w, struct gen_rng *g)
{
        const struct gen_opts *o = w->o;
        size_t n = (size_t)o->users;
        size_t n_inv, n_none, n_multi, k = 0;
        uint32_t *idx;

        w->users = calloc(n, sizeof(*w->users));
        idx = malloc(n * sizeof(*idx));
        if (!w->users || !idx) {
                free(idx);
                return -1;
        }
        w->user_cnt = n;
        for (size_t u = 0; u < n; u++) {
                idx[u] = (uint32_t)u;
                w->users[u].inst =
                        gen_rng_below(g, (uint32_t)o->instance_cnt);
                w->users[u].email_cnt = 1;
        }
        shuffle(g, idx, n);
        n_inv = share_of(o->invalid_email_share, n);
        n_none = share_of(o->no_email_share, n - n_inv);
        n_multi = share_of(o->multi_email_share, n - n_inv - n_none);
        for (size_t i = 0; i < n_inv; i++, k++) {
                w->users[idx[k]].kind = GEN_USER_INVALID;
                w->users[idx[k]].email_cnt = gen_rng_chance(g, 0.5) ? 1 : 0;
        }
        for (size_t i = 0; i < n_none; i++, k++) {
                w->users[idx[k]].kind = GEN_USER_NO_EMAIL;
                w->users[idx[k]].email_cnt = 0;
        }
        for (size_t i = 0; i < n_multi; i++, k++)
                w->users[idx[k]].email_cnt =
                        (uint8_t)(2 + gen_rng_below(g, GEN_MAX_EMAILS - 1));
        free(idx);
        return 0;
}

void gen_user_email(const struct gen_world *w, uint32_t u, unsigned k,
                    char *out, size_t out_size)
{
        uint64_t h = gen_user_hash(w, u);
        const char *f = first_names[h % ARRAY_LEN(first_names)];
        const char *l = last_names[(h >> 8) % ARRAY_LEN(last_names)];
        const char *d = domains[(h >> 16) % ARRAY_LEN(domains)];

        /* The user number keeps every address unique. */
        switch (k) {
        case 0:
                snprintf(out, out_size, "%s.%s%u@%s", f, l, u, d);
                break;
        case 1:
                snprintf(out, out_size, "%c%s%u@%s", f[0], l, u,
                         domains[((h >> 24) % 3) + 4]);
                break;
        default:
                snprintf(out, out_size, "%s+%u.%u@%s", f, u, k, "mail.example");
                break;
        }
}

void gen_user_bad_email(const struct gen_world *w, uint32_t u, char *out,
                        size_t out_size)
{
        uint64_t h = gen_user_hash(w, u);
        const char *f = first_names[h % ARRAY_LEN(first_names)];
        const char *l = last_names[(h >> 8) % ARRAY_LEN(last_names)];
        char pad[261];

        switch (u % 7) {
        case 0:
                snprintf(out, out_size, "no-at-sign.%s%u.example.com", f, u);
                break;
        case 1:
                snprintf(out, out_size, "%s%u@@example.com", f, u);
                break;
        case 2:
                snprintf(out, out_size, "@%s%u.example.com", f, u);
                break;
        case 3:
                snprintf(out, out_size, "%s.%s%u@", f, l, u);
                break;
        case 4:
                snprintf(out, out_size, "%s %s%u@example.com", f, l, u);
                break;
        case 5:
                /* Over Marketo's 255 characters. */
                memset(pad, 'x', sizeof(pad) - 1);
                pad[sizeof(pad) - 1] = '\0';
                snprintf(out, out_size, "%s%u.%s@example.com", f, u, pad);
                break;
        default:
                snprintf(out, out_size, "%s\t%s%u@example.com", f, l, u);
                break;
        }
}

const char *gen_list_name(const struct gen_world *w, uint16_t a)
{
        return w->auds[a].named ? w->auds[a].name : w->auds[a].key;
}

static uint8_t pick_fmt(struct gen_rng *g, double segment_share)
{
        if (!gen_rng_chance(g, segment_share))
                return GEN_FMT_NATIVE;
        return gen_rng_chance(g, 0.5) ? GEN_FMT_IDENTIFY : GEN_FMT_TRACK;
}

/* One membership change for a random user that can have any: removes
 * only what the user is in, so every exit follows an entry. */
static void next_change(struct gen_world *w, struct gen_rng *g,
                        const uint32_t *pool, size_t pool_cnt, uint8_t *mem,
                        struct gen_msg *m)
{
        uint32_t u = pool[gen_rng_below(g, (uint32_t)pool_cnt)];
        uint8_t *row = &mem[(size_t)u * w->aud_cnt];
        uint16_t a = (uint16_t)gen_rng_below(g, (uint32_t)w->aud_cnt);

        m->kind = GEN_MSG_MEMBER;
        m->user = u;
        m->inst = (int32_t)w->users[u].inst;
        m->add = true;
        if (row[a] && !gen_rng_chance(g, GEN_REMOVE_CHANCE)) {
                /* Stay in a; enter another audience if one is free. */
                for (int tries = 0; tries < 3 && row[a]; tries++)
                        a = (uint16_t)gen_rng_below(g, (uint32_t)w->aud_cnt);
        }
        if (row[a])
                m->add = false;
        row[a] = m->add;
        m->aud = a;
}

static int cmp_order(const void *pa, const void *pb)
{
        const struct gen_msg *a = pa, *b = pb;

        if (a->order != b->order)
                return a->order < b->order ? -1 : 1;
        return (a->serial > b->serial) - (a->serial < b->serial);
}

/* The base stream: events in time order, invalid-email adds spread
 * evenly at random positions among the membership changes. */
static int build_base(struct gen_world *w, struct gen_rng *g, size_t *cnt)
{
        const struct gen_opts *o = w->o;
        size_t pool_cnt = 0, inv_cnt = 0, inv_next = 0, n = 0;
        size_t events = (size_t)o->events;
        uint32_t *pool = malloc(w->user_cnt * sizeof(*pool));
        uint32_t *inv = malloc(w->user_cnt * sizeof(*inv));
        uint8_t *mem = calloc(w->user_cnt * w->aud_cnt, 1);
        size_t inv_left, slots_left;

        if (!pool || !inv || !mem)
                goto fail;
        for (uint32_t u = 0; u < w->user_cnt; u++) {
                if (w->users[u].kind == GEN_USER_INVALID)
                        inv[inv_cnt++] = u;
                else
                        pool[pool_cnt++] = u;
        }
        inv_left = inv_cnt < events ? inv_cnt : events;
        if (pool_cnt == 0)
                events = inv_left;
        for (size_t i = 0; i < events; i++) {
                struct gen_msg *m = &w->plan[n];

                memset(m, 0, sizeof(*m));
                slots_left = events - i;
                if (inv_left && gen_rng_below(g, (uint32_t)slots_left) <
                                        inv_left) {
                        uint32_t u = inv[inv_next++];

                        inv_left--;
                        m->kind = GEN_MSG_INVALID;
                        m->user = u;
                        m->inst = (int32_t)w->users[u].inst;
                        m->aud = (uint16_t)gen_rng_below(
                                g, (uint32_t)w->aud_cnt);
                        m->add = true;
                } else {
                        next_change(w, g, pool, pool_cnt, mem, m);
                }
                m->fmt = pick_fmt(g, o->segment_share);
                m->rseed = gen_rng_next(g);
                m->seq = (uint32_t)i;
                m->order = (uint64_t)i * GEN_SLOT;
                m->serial = (uint32_t)n;
                n++;
        }
        free(pool);
        free(inv);
        free(mem);
        *cnt = n;
        return 0;
fail:
        free(pool);
        free(inv);
        free(mem);
        return -1;
}

/* Second copies of a share of the membership changes, each placed right
 * after its original or up to GEN_DUP_MAX_DISTANCE events later. */
static size_t add_duplicates(struct gen_world *w, struct gen_rng *g,
                             size_t base_cnt, size_t n)
{
        size_t eligible = 0, want, left;

        for (size_t i = 0; i < base_cnt; i++)
                if (w->plan[i].kind == GEN_MSG_MEMBER)
                        eligible++;
        want = w->o->duplicate_share > 0 ?
                       (size_t)llround(w->o->duplicate_share *
                                       (double)eligible) :
                       0;
        left = eligible;
        for (size_t i = 0; i < base_cnt && want; i++) {
                struct gen_msg *m;
                uint32_t d;

                if (w->plan[i].kind != GEN_MSG_MEMBER)
                        continue;
                /* Selection sampling: exactly `want` of `eligible`. */
                if (gen_rng_below(g, (uint32_t)left--) >= want)
                        continue;
                want--;
                m = &w->plan[n];
                *m = w->plan[i];
                m->dup = true;
                d = gen_rng_below(g, GEN_DUP_MAX_DISTANCE + 1);
                m->order = (w->plan[i].seq + (uint64_t)d) * GEN_SLOT + 1 +
                           gen_rng_below(g, 30);
                m->serial = (uint32_t)n;
                n++;
        }
        return n;
}

static size_t add_extras(struct gen_world *w, struct gen_rng *g,
                         size_t base_cnt, size_t n)
{
        const struct gen_opts *o = w->o;
        uint32_t start = gen_rng_below(g, 1000);

        for (long j = 0; j < o->malformed + o->unknown; j++) {
                struct gen_msg *m = &w->plan[n];
                bool bad = j < o->malformed;

                memset(m, 0, sizeof(*m));
                m->kind = bad ? GEN_MSG_MALFORMED : GEN_MSG_UNKNOWN;
                /* Malformed variants go round in turn from a random start,
                 * so N >= the variant count covers all of them. */
                m->user = bad ? start + (uint32_t)j :
                                (uint32_t)(j - o->malformed);
                m->inst = bad ? (int32_t)gen_rng_below(
                                        g, (uint32_t)o->instance_cnt) :
                                -1;
                m->aud = (uint16_t)gen_rng_below(g, (uint32_t)w->aud_cnt);
                m->add = gen_rng_chance(g, 0.7);
                m->fmt = pick_fmt(g, 0.5);
                m->rseed = gen_rng_next(g);
                m->seq = gen_rng_below(g, (uint32_t)base_cnt + 1);
                m->order = (uint64_t)m->seq * GEN_SLOT + 32 +
                           gen_rng_below(g, 31);
                m->serial = (uint32_t)n;
                n++;
        }
        return n;
}

static void count_plan(struct gen_world *w)
{
        for (size_t i = 0; i < w->plan_cnt; i++) {
                const struct gen_msg *m = &w->plan[i];

                w->by_instance[m->inst < 0 ? GEN_MAX_INSTANCES : m->inst]++;
                switch (m->kind) {
                case GEN_MSG_MEMBER:
                        w->member_cnt++;
                        if (m->dup)
                                w->dup_cnt++;
                        if (w->users[m->user].kind == GEN_USER_NO_EMAIL)
                                w->no_email_cnt++;
                        break;
                case GEN_MSG_INVALID:
                        w->invalid_cnt++;
                        break;
                case GEN_MSG_MALFORMED:
                        w->malformed_cnt++;
                        break;
                default:
                        w->unknown_cnt++;
                        break;
                }
        }
}

int gen_world_build(struct gen_world *w, const struct gen_opts *o)
{
        struct gen_rng g;
        size_t base_cnt = 0, n, cap;

        memset(w, 0, sizeof(*w));
        w->o = o;
        gen_rng_seed(&g, o->seed);
        if (build_audiences(w, &g) < 0 || build_users(w, &g) < 0)
                goto fail;

        /* Worst case: every event duplicated, plus the extras. */
        cap = (size_t)o->events * 2 + (size_t)o->malformed +
              (size_t)o->unknown + 1;
        w->plan = calloc(cap, sizeof(*w->plan));
        if (!w->plan)
                goto fail;
        if (build_base(w, &g, &base_cnt) < 0)
                goto fail;
        n = add_duplicates(w, &g, base_cnt, base_cnt);
        n = add_extras(w, &g, base_cnt, n);
        qsort(w->plan, n, sizeof(*w->plan), cmp_order);
        w->plan_cnt = n;
        count_plan(w);
        return 0;
fail:
        gen_world_fini(w);
        return -1;
}

void gen_world_fini(struct gen_world *w)
{
        free(w->auds);
        free(w->users);
        free(w->plan);
        memset(w, 0, sizeof(*w));
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Emails of the members of one list, sorted, as a JSON array. */
static json_object *final_list(const struct gen_world *w, const uint8_t *fin,
                               size_t inst, uint16_t a)
{
        json_object *arr = json_object_new_array();
        char **v = NULL;
        size_t cnt = 0, cap = 0;
        char email[320];

        for (uint32_t u = 0; arr && u < w->user_cnt; u++) {
                const struct gen_user *us = &w->users[u];

                if (us->inst != inst || !fin[(size_t)u * w->aud_cnt + a])
                        continue;
                for (unsigned k = 0; k < us->email_cnt; k++) {
                        if (cnt == cap) {
                                char **nv;

                                cap = cap ? cap * 2 : 64;
                                nv = realloc(v, cap * sizeof(*nv));
                                if (!nv)
                                        goto fail;
                                v = nv;
                        }
                        gen_user_email(w, u, k, email, sizeof(email));
                        v[cnt] = strdup(email);
                        if (!v[cnt])
                                goto fail;
                        cnt++;
                }
        }
        if (cnt)
                qsort(v, cnt, sizeof(*v), cmp_str);
        for (size_t i = 0; arr && i < cnt; i++)
                json_object_array_add(arr, json_object_new_string(v[i]));
        for (size_t i = 0; i < cnt; i++)
                free(v[i]);
        free(v);
        return arr;
fail:
        for (size_t i = 0; i < cnt; i++)
                free(v[i]);
        free(v);
        json_object_put(arr);
        return NULL;
}

char *gen_final_json(const struct gen_world *w)
{
        uint8_t *fin = calloc(w->user_cnt * w->aud_cnt + 1, 1);
        json_object *root = json_object_new_object();
        char *out = NULL;

        if (!fin || !root)
                goto out;
        /* Replay in produce order: the last change of each user and
         * audience wins, duplicates included. */
        for (size_t i = 0; i < w->plan_cnt; i++) {
                const struct gen_msg *m = &w->plan[i];

                if (m->kind == GEN_MSG_MEMBER || m->kind == GEN_MSG_INVALID)
                        fin[(size_t)m->user * w->aud_cnt + m->aud] = m->add;
        }
        for (size_t inst = 0; inst < w->o->instance_cnt; inst++) {
                json_object *lists = json_object_new_object();

                if (!lists)
                        goto out;
                json_object_object_add(root, w->o->instances[inst], lists);
                for (uint16_t a = 0; a < w->aud_cnt; a++) {
                        json_object *arr = final_list(w, fin, inst, a);

                        if (!arr)
                                goto out;
                        if (json_object_array_length(arr) == 0) {
                                json_object_put(arr);
                                continue;
                        }
                        json_object_object_add(lists, gen_list_name(w, a),
                                               arr);
                }
        }
        out = strdup(json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
        json_object_put(root);
        free(fin);
        return out;
}
