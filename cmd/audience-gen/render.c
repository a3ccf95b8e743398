/* SPDX-License-Identifier: Apache-2.0
 *
 * render.c - turn one audience-gen plan entry into the bytes of a Kafka
 * message: native mlsync JSON, a Segment Engage identify or track event,
 * or one of many ways of being undecodable.
 *
 * Everything random here comes from the entry's own seed, so a duplicate
 * entry renders to exactly the same bytes as its original.
 */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

/* 2026-01-05T08:00:00Z; events are a few seconds apart from there. */
#define GEN_EPOCH_S 1767600000LL
#define GEN_EMAIL_MAX 320
#define GEN_MSG_EMAILS (GEN_MAX_EMAILS + 2)

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* What one rendered message says, before it takes a format. */
struct facts {
        const char *munchkin; /* the key */
        const struct gen_audience *au;
        bool add;
        char user_id[32];
        char anon_id[40];
        char emails[GEN_MSG_EMAILS][GEN_EMAIL_MAX];
        size_t email_cnt;
        uint32_t seq;
};

static void jstr(json_object *o, const char *k, const char *v)
{
        json_object_object_add(o, k, json_object_new_string(v));
}

static void jbool(json_object *o, const char *k, bool v)
{
        json_object_object_add(o, k, json_object_new_boolean(v));
}

static json_object *jobj(json_object *parent, const char *k)
{
        json_object *o = json_object_new_object();

        json_object_object_add(parent, k, o);
        return o;
}

static char upper(char c)
{
        return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Mixed-case spellings of one address, as people type them: the decoder
 * and Marketo must treat them as one ("Ann@Example.COM"). */
static void vary_case(struct gen_rng *g, char *email)
{
        char *at = strchr(email, '@');
        uint32_t v = gen_rng_below(g, 10);

        if (!at || v < 6)
                return;
        email[0] = upper(email[0]);
        if (v == 6)
                return;
        at[1] = upper(at[1]);
        if (v == 7)
                return;
        for (char *p = strrchr(at, '.'); p && *p; p++)
                *p = upper(*p);
        if (v == 9)
                for (char *p = at + 1; *p; p++)
                        *p = upper(*p);
}

static void iso_time(uint32_t seq, uint64_t rseed, bool millis, char *out,
                     size_t size)
{
        time_t t = (time_t)(GEN_EPOCH_S + (long long)seq * 5 +
                            (long long)(rseed % 5));
        struct tm tm;
        char base[32];

        gmtime_r(&t, &tm);
        if (!millis) {
                strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
                return;
        }
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out, size, "%.20s.%03uZ", base,
                 (unsigned)((rseed >> 8) % 1000));
}

static void message_id(struct gen_rng *g, char *out, size_t size)
{
        static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz";
        size_t j = (size_t)snprintf(out, size, "personas_");

        for (int i = 0; i < 27 && j + 1 < size; i++)
                out[j++] = b62[gen_rng_below(g, 62)];
        out[j] = '\0';
}

static void add_email(struct facts *f, const char *e)
{
        if (f->email_cnt < GEN_MSG_EMAILS)
                snprintf(f->emails[f->email_cnt++], GEN_EMAIL_MAX, "%s", e);
}

/* Who, which audience, which emails: the facts every format carries. */
static void facts_fill(const struct gen_world *w, const struct gen_msg *m,
                       struct gen_rng *g, struct facts *f)
{
        const struct gen_opts *o = w->o;
        char e[GEN_EMAIL_MAX];
        uint64_t h;

        memset(f, 0, sizeof(*f));
        f->au = &w->auds[m->aud];
        f->add = m->add;
        f->seq = m->seq;
        if (m->kind == GEN_MSG_UNKNOWN || m->kind == GEN_MSG_MALFORMED) {
                /* Someone outside the simulated user base. */
                f->munchkin = m->inst < 0 ? o->unknown_instance :
                                            o->instances[m->inst];
                snprintf(f->user_id, sizeof(f->user_id), "v-%u", m->user);
                snprintf(e, sizeof(e), "visitor%u@elsewhere.example",
                         m->user);
                add_email(f, e);
                h = m->rseed;
        } else {
                const struct gen_user *us = &w->users[m->user];

                f->munchkin = o->instances[m->inst];
                snprintf(f->user_id, sizeof(f->user_id), "u-%06u", m->user);
                if (m->kind == GEN_MSG_INVALID) {
                        gen_user_bad_email(w, m->user, e, sizeof(e));
                        add_email(f, e);
                }
                for (unsigned k = 0; k < us->email_cnt; k++) {
                        gen_user_email(w, m->user, k, e, sizeof(e));
                        vary_case(g, e);
                        add_email(f, e);
                }
                /* Now and then the same address twice, cased apart. */
                if (us->email_cnt && m->kind == GEN_MSG_MEMBER &&
                    gen_rng_chance(g, us->email_cnt > 1 ? 0.15 : 0.05)) {
                        gen_user_email(w, m->user, 0, e, sizeof(e));
                        for (char *p = e; *p; p++)
                                *p = upper(*p);
                        add_email(f, e);
                }
                h = gen_user_hash(w, m->user);
        }
        snprintf(f->anon_id, sizeof(f->anon_id), "%08x-%04x-4%03x-a%03x-%012llx",
                 (unsigned)(h >> 32), (unsigned)(h >> 16) & 0xffff,
                 (unsigned)(h >> 4) & 0xfff, (unsigned)(h >> 20) & 0xfff,
                 (unsigned long long)(h & 0xffffffffffffull));
}

/* The munchkin id as a body field: as keyed, or lower-cased (the decoder
 * compares case-insensitively). */
static void body_munchkin(struct gen_rng *g, json_object *o,
                          const char *name, const char *munchkin)
{
        char lc[80];
        size_t i;

        if (!gen_rng_chance(g, 0.3)) {
                jstr(o, name, munchkin);
                return;
        }
        for (i = 0; munchkin[i] && i < sizeof(lc) - 1; i++)
                lc[i] = (munchkin[i] >= 'A' && munchkin[i] <= 'Z') ?
                                (char)(munchkin[i] - 'A' + 'a') :
                                munchkin[i];
        lc[i] = '\0';
        jstr(o, name, lc);
}

static json_object *render_native(struct gen_rng *g, const struct facts *f)
{
        json_object *root = json_object_new_object();
        json_object *aud, *arr;
        uint32_t how;
        char ts[40];

        if (gen_rng_chance(g, 0.5))
                body_munchkin(g, root, "munchkin_id", f->munchkin);
        aud = jobj(root, "audience");
        if (!f->au->named) {
                jstr(aud, "id", f->au->key);
        } else {
                if (!gen_rng_chance(g, 0.1))
                        jstr(aud, "id", f->au->id);
                jstr(aud, "name", f->au->name);
        }
        if (!gen_rng_chance(g, 0.1))
                jstr(root, "user_id", f->user_id);
        how = gen_rng_below(g, 10);
        if (f->email_cnt || how >= 4) {
                arr = json_object_new_array();
                for (size_t i = 0; i < f->email_cnt; i++)
                        json_object_array_add(
                                arr, json_object_new_string(f->emails[i]));
                if (!f->email_cnt && how == 9) {
                        json_object_array_add(arr, json_object_new_string(""));
                        json_object_array_add(arr,
                                              json_object_new_string("  "));
                }
                json_object_object_add(root, "emails", arr);
        } else if (how >= 2) {
                json_object_object_add(root, "emails", NULL);
        }
        if (gen_rng_chance(g, 0.1))
                jstr(root, "action", f->add ? "Add" : "REMOVE");
        else
                jstr(root, "action", f->add ? "add" : "remove");
        iso_time(f->seq, (uint64_t)f->seq * 7919u, false, ts, sizeof(ts));
        jstr(root, "ts", ts);
        return root;
}

static json_object *external_id(const char *id, const char *type)
{
        json_object *e = json_object_new_object();

        jstr(e, "id", id);
        jstr(e, "type", type);
        jstr(e, "collection", "users");
        jstr(e, "encoding", "none");
        return e;
}

static json_object *personas(struct gen_rng *g, const struct gen_world *w,
                             const struct facts *f)
{
        json_object *p = json_object_new_object();
        char space[40];

        snprintf(space, sizeof(space), "spa_%016llx",
                 (unsigned long long)(w->o->seed * 0x9e3779b97f4a7c15ull));
        jstr(p, "computation_class", "audience");
        jstr(p, "computation_id", f->au->id);
        jstr(p, "computation_key", f->au->key);
        jstr(p, "namespace", space);
        jstr(p, "space_id", space);
        if (f->au->named)
                jstr(p, "audience_name", f->au->name);
        if (gen_rng_chance(g, 0.25))
                body_munchkin(g, p, "munchkin_id", f->munchkin);
        return p;
}

/**
 * Place the emails: the first in primary (traits.email, context.traits
 * .email or properties.email) unless primary is NULL, and the others, or
 * all, in an external-id list (context.externalIds, or now and then
 * context.personas.external_ids).
 */
static void segment_emails(struct gen_rng *g, const struct facts *f,
                           json_object *primary, json_object *context,
                           json_object *pers)
{
        json_object *ids;
        size_t first = 0;
        bool all = gen_rng_chance(g, 0.5);

        if (primary && f->email_cnt) {
                jstr(primary, "email", f->emails[0]);
                first = 1;
        }
        if (f->email_cnt <= first && !gen_rng_chance(g, 0.3))
                return;
        ids = json_object_new_array();
        json_object_array_add(ids, external_id(f->user_id, "user_id"));
        for (size_t i = all ? 0 : first; i < f->email_cnt; i++)
                json_object_array_add(
                        ids, external_id(f->emails[i],
                                         gen_rng_chance(g, 0.2) ? "Email" :
                                                                  "email"));
        json_object_array_add(ids, external_id(f->anon_id, "anonymous_id"));
        if (pers && gen_rng_chance(g, 0.2))
                json_object_object_add(pers, "external_ids", ids);
        else
                json_object_object_add(context, "externalIds", ids);
}

static void segment_common(struct gen_rng *g, json_object *root,
                           const struct facts *f, uint64_t rseed)
{
        char mid[48], ts[40];

        jstr(root, "userId", f->user_id);
        if (gen_rng_chance(g, 0.5))
                jstr(root, "anonymousId", f->anon_id);
        message_id(g, mid, sizeof(mid));
        jstr(root, "messageId", mid);
        iso_time(f->seq, rseed, true, ts, sizeof(ts));
        jstr(root, "timestamp", ts);
}

static json_object *render_identify(struct gen_rng *g,
                                    const struct gen_world *w,
                                    const struct facts *f, uint64_t rseed)
{
        json_object *root = json_object_new_object();
        json_object *traits, *context, *pers, *lib, *primary = NULL;
        uint32_t where = gen_rng_below(g, 20);

        jstr(root, "type", "identify");
        segment_common(g, root, f, rseed);
        traits = jobj(root, "traits");
        jbool(traits, f->au->key, f->add);
        context = jobj(root, "context");
        pers = personas(g, w, f);
        json_object_object_add(context, "personas", pers);
        lib = jobj(context, "library");
        jstr(lib, "name", "unknown");
        jstr(lib, "version", "unknown");
        if (where < 13)
                primary = traits;
        else if (where < 16)
                primary = jobj(context, "traits");
        segment_emails(g, f, primary, context, pers);
        return root;
}

static json_object *render_track(struct gen_rng *g, const struct gen_world *w,
                                 const struct facts *f, uint64_t rseed)
{
        json_object *root = json_object_new_object();
        json_object *props, *context, *pers = NULL, *primary = NULL;
        uint32_t where = gen_rng_below(g, 20);

        jstr(root, "type", "track");
        jstr(root, "event", f->add ? "Audience Entered" : "Audience Exited");
        segment_common(g, root, f, rseed);
        props = jobj(root, "properties");
        jstr(props, "audience_key", f->au->key);
        if (gen_rng_chance(g, 0.8))
                jbool(props, f->au->key, f->add);
        if (gen_rng_chance(g, 0.15))
                body_munchkin(g, props, "munchkin_id", f->munchkin);
        context = jobj(root, "context");
        /* A named audience needs personas for its name; a keyed one may
         * go without (the key is in properties.audience_key). */
        if (f->au->named || gen_rng_chance(g, 0.7)) {
                pers = personas(g, w, f);
                json_object_object_add(context, "personas", pers);
        }
        if (where < 11)
                primary = jobj(context, "traits");
        else if (where < 16)
                primary = props;
        segment_emails(g, f, primary, context, pers);
        return root;
}

static json_object *render_valid(struct gen_rng *g, const struct gen_world *w,
                                 const struct gen_msg *m,
                                 const struct facts *f)
{
        switch (m->fmt) {
        case GEN_FMT_IDENTIFY:
                return render_identify(g, w, f, m->rseed);
        case GEN_FMT_TRACK:
                return render_track(g, w, f, m->rseed);
        default:
                return render_native(g, f);
        }
}

static char *to_text(json_object *root)
{
        char *s = root ? strdup(json_object_to_json_string_ext(root,
                                                               JSON_FLAGS)) :
                         NULL;

        json_object_put(root);
        return s;
}

/* Malformed messages; each must fail mls_event_decode. */
enum bad_variant {
        BAD_TRUNCATED = 0,
        BAD_TRAILING_COMMA,
        BAD_NO_ACTION,
        BAD_ACTION_UNKNOWN,
        BAD_ACTION_BOOL,
        BAD_NO_AUDIENCE,
        BAD_AUDIENCE_STRING,
        BAD_EMAILS_STRING,
        BAD_EMAIL_NUMBER,
        BAD_MUNCHKIN_MISMATCH,
        BAD_ARRAY,
        BAD_UTF8,
        BAD_SEG_PAGE,
        BAD_SEG_TRAIT_CLASS,
        BAD_SEG_FLAG_STRING,
        BAD_SEG_OTHER_EVENT,
        BAD_SEG_CONTRADICTION,
        BAD_SEG_NO_PERSONAS,
        BAD_PLAIN_TEXT,
        BAD_AUDIENCE_EMPTY,
        BAD_NULL,
        BAD_SEG_TYPE_NUMBER,
        BAD_VARIANT_CNT,
};

static json_object *bad_native(struct gen_rng *g, const struct facts *f,
                               enum bad_variant v)
{
        json_object *root = render_native(g, f);
        json_object *arr;
        char other[96];

        switch (v) {
        case BAD_NO_ACTION:
                json_object_object_del(root, "action");
                break;
        case BAD_ACTION_UNKNOWN:
                jstr(root, "action", "upsert");
                break;
        case BAD_ACTION_BOOL:
                jbool(root, "action", true);
                break;
        case BAD_NO_AUDIENCE:
                json_object_object_del(root, "audience");
                break;
        case BAD_AUDIENCE_STRING:
                jstr(root, "audience", f->au->id);
                break;
        case BAD_AUDIENCE_EMPTY:
                json_object_object_add(root, "audience",
                                       json_object_new_object());
                break;
        case BAD_EMAILS_STRING:
                jstr(root, "emails", "someone@example.com");
                break;
        case BAD_EMAIL_NUMBER:
                arr = json_object_new_array();
                json_object_array_add(arr, json_object_new_string(
                                                   "someone@example.com"));
                json_object_array_add(arr, json_object_new_int(42));
                json_object_object_add(root, "emails", arr);
                break;
        default: /* BAD_MUNCHKIN_MISMATCH */
                snprintf(other, sizeof(other), "not-%s", f->munchkin);
                jstr(root, "munchkin_id", other);
                break;
        }
        return root;
}

static json_object *bad_segment(struct gen_rng *g, const struct gen_world *w,
                                const struct facts *f, uint64_t rseed,
                                enum bad_variant v)
{
        bool track = v == BAD_SEG_OTHER_EVENT || v == BAD_SEG_CONTRADICTION;
        json_object *root = track ? render_track(g, w, f, rseed) :
                                    render_identify(g, w, f, rseed);
        json_object *ctx = NULL, *pers = NULL, *sub = NULL;

        json_object_object_get_ex(root, "context", &ctx);
        if (ctx)
                json_object_object_get_ex(ctx, "personas", &pers);
        switch (v) {
        case BAD_SEG_PAGE:
                jstr(root, "type", "page");
                jstr(root, "name", "Pricing");
                break;
        case BAD_SEG_TYPE_NUMBER:
                json_object_object_add(root, "type", json_object_new_int(2));
                break;
        case BAD_SEG_TRAIT_CLASS:
                if (pers)
                        jstr(pers, "computation_class", "trait");
                break;
        case BAD_SEG_FLAG_STRING:
                if (json_object_object_get_ex(root, "traits", &sub))
                        jstr(sub, f->au->key, "yes");
                break;
        case BAD_SEG_OTHER_EVENT:
                jstr(root, "event", "Order Completed");
                break;
        case BAD_SEG_CONTRADICTION:
                jstr(root, "event", "Audience Entered");
                if (json_object_object_get_ex(root, "properties", &sub))
                        jbool(sub, f->au->key, false);
                break;
        default: /* BAD_SEG_NO_PERSONAS */
                if (ctx)
                        json_object_object_del(ctx, "personas");
                break;
        }
        return root;
}

static char *with_trailing_comma(char *text)
{
        size_t len = text ? strlen(text) : 0;
        char *out;

        if (len < 2) {
                free(text);
                return NULL;
        }
        out = malloc(len + 2);
        if (out) {
                memcpy(out, text, len - 1);
                memcpy(out + len - 1, ",}", 3);
        }
        free(text);
        return out;
}

static char *wrap_array(char *text)
{
        size_t len = text ? strlen(text) : 0;
        char *out = text ? malloc(len + 3) : NULL;

        if (out) {
                out[0] = '[';
                memcpy(out + 1, text, len);
                memcpy(out + 1 + len, "]", 2);
        }
        free(text);
        return out;
}

static char *render_bad(struct gen_rng *g, const struct gen_world *w,
                        const struct gen_msg *m, const struct facts *f)
{
        enum bad_variant v = (enum bad_variant)(m->user % BAD_VARIANT_CNT);
        char buf[256];
        char *text;

        switch (v) {
        case BAD_TRUNCATED:
                text = to_text(render_valid(g, w, m, f));
                if (text)
                        text[strlen(text) / 2] = '\0';
                return text;
        case BAD_TRAILING_COMMA:
                return with_trailing_comma(to_text(render_native(g, f)));
        case BAD_ARRAY:
                return wrap_array(to_text(render_native(g, f)));
        case BAD_UTF8:
                snprintf(buf, sizeof(buf),
                         "{\"audience\":{\"id\":\"%s\","
                         "\"name\":\"Bad \xc3\x28 name\"},"
                         "\"action\":\"add\"}",
                         f->au->id);
                return strdup(buf);
        case BAD_PLAIN_TEXT:
                snprintf(buf, sizeof(buf), "add %s to %s", f->user_id,
                         f->au->name);
                return strdup(buf);
        case BAD_NULL:
                return strdup("null");
        case BAD_SEG_PAGE:
        case BAD_SEG_TYPE_NUMBER:
        case BAD_SEG_TRAIT_CLASS:
        case BAD_SEG_FLAG_STRING:
        case BAD_SEG_OTHER_EVENT:
        case BAD_SEG_CONTRADICTION:
        case BAD_SEG_NO_PERSONAS:
                return to_text(bad_segment(g, w, f, m->rseed, v));
        default:
                return to_text(bad_native(g, f, v));
        }
}

char *gen_render(const struct gen_world *w, const struct gen_msg *m,
                 const char **keyp, size_t *lenp)
{
        struct gen_rng g;
        struct facts f;
        char *text;

        gen_rng_seed(&g, m->rseed);
        facts_fill(w, m, &g, &f);
        *keyp = f.munchkin;
        if (m->kind == GEN_MSG_MALFORMED)
                text = render_bad(&g, w, m, &f);
        else
                text = to_text(render_valid(&g, w, m, &f));
        if (text)
                *lenp = strlen(text);
        return text;
}
