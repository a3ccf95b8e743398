/* SPDX-License-Identifier: Apache-2.0
 *
 * leads.c - the emulator's lead database API: sync and look up leads,
 * add, remove and test list members, page through members, the older
 * list endpoints and the usage statistics.
 *
 * Choices where marketo-api.md is UNCERTAIN or silent:
 * - More than 300 records, ids or filter values is request-level 1003;
 *   more than 1000 leads matching a lookup is 1003 "Too many results
 *   match the filter". batchSize outside 1..300 is 1003.
 * - A missing required parameter (filterType, filterValues, ids) is 1002.
 * - Lookups accept filterType email or id; other filter types are 1011.
 *   Sync accepts lookupField email, or id with action updateOnly only.
 * - Email matching is case-insensitive everywhere.
 * - Sync record skips: no or empty lookup value 1003 "Value for lookup
 *   field 'email' not found"; invalid email 1003; unknown field 1006;
 *   wrong value type 1001; the same key twice in one request 1036 (the
 *   later records); several leads with the email 1007; updateOnly with no
 *   match 1004; createOnly with a match 1005.
 * - Ids for list calls come from a JSON body {"input":[{"id":N}]} when
 *   the body is application/json, else from id parameters, repeated or
 *   comma-separated. A non-integer id is request-level 1003. A body of
 *   any other type (not a form) is 612.
 * - Unknown list id is request-level 1013 "Static list not found".
 * - Lead records always carry id; requested fields the emulator knows
 *   of but does not store come back null; other names are 1006.
 * - A malformed nextPageToken is 1003.
 */
#include "emu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_FIELDS "id,email,updatedAt,createdAt,firstName,lastName"
#define FIELDS_MAX 64
#define TOKEN_PREFIX "EMUPT"

enum field {
        F_ID = 0,
        F_EMAIL,
        F_FIRST,
        F_LAST,
        F_CREATED,
        F_UPDATED,
        F_UNSTORED, /* a standard field the emulator keeps no value for */
};

static const struct {
        const char *name;
        enum field f;
} field_table[] = {
        { "id", F_ID },
        { "email", F_EMAIL },
        { "firstName", F_FIRST },
        { "lastName", F_LAST },
        { "createdAt", F_CREATED },
        { "updatedAt", F_UPDATED },
        /* LIMIT: only these standard fields exist; custom fields are 1006. */
        { "middleName", F_UNSTORED },
        { "company", F_UNSTORED },
        { "title", F_UNSTORED },
        { "phone", F_UNSTORED },
        { "mobilePhone", F_UNSTORED },
        { "address", F_UNSTORED },
        { "city", F_UNSTORED },
        { "state", F_UNSTORED },
        { "country", F_UNSTORED },
        { "postalCode", F_UNSTORED },
        { "website", F_UNSTORED },
        { "leadSource", F_UNSTORED },
        { "leadStatus", F_UNSTORED },
        { "unsubscribed", F_UNSTORED },
};

/* Index into field_table of a field name (any case), -1 when unknown. */
static int field_find(const char *name, size_t len)
{
        for (size_t i = 0; i < sizeof(field_table) / sizeof(field_table[0]);
             i++)
                if (strlen(field_table[i].name) == len &&
                    !strncasecmp(field_table[i].name, name, len))
                        return (int)i;
        return -1;
}

/* ---- shared helpers ---------------------------------------------------- */

static void add_reason(json_object *o, int code, const char *msg)
{
        json_object *reasons = json_object_new_array();
        json_object *r = json_object_new_object();
        char buf[16];

        snprintf(buf, sizeof(buf), "%d", code);
        json_object_object_add(r, "code", json_object_new_string(buf));
        json_object_object_add(r, "message", json_object_new_string(msg));
        json_object_array_add(reasons, r);
        json_object_object_add(o, "status", json_object_new_string("skipped"));
        json_object_object_add(o, "reasons", reasons);
}

/* A skipped record: id < 0 leaves the id out (sync leads). */
static json_object *skipped(struct emu_ctx *c, int64_t id, int code,
                            const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static json_object *skipped(struct emu_ctx *c, int64_t id, int code,
                            const char *fmt, ...)
{
        json_object *o = json_object_new_object();
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (id >= 0)
                json_object_object_add(o, "id", json_object_new_int64(id));
        add_reason(o, code, msg);
        emu_count_skip_locked(c->in, code);
        return o;
}

static json_object *status_rec(int64_t id, const char *status)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "status", json_object_new_string(status));
        return o;
}

/* Make sure the result key is present even when nothing matches. */
static void result_init(struct emu_ctx *c)
{
        if (!c->result)
                c->result = json_object_new_array();
}

/* Paging tokens are opaque to clients: a prefix, a kind letter and a
 * position in hex. */
static void token_make(struct emu_ctx *c, char kind, int64_t pos)
{
        snprintf(c->next_page_token, sizeof(c->next_page_token),
                 TOKEN_PREFIX "%c%016llX", kind, (unsigned long long)pos);
}

/* Position from the nextPageToken parameter; 0 when absent. */
static bool token_parse(struct emu_ctx *c, char kind, int64_t *pos)
{
        const char *t = emu_param(c->rq, "nextPageToken");
        size_t plen = strlen(TOKEN_PREFIX);
        char *end;
        unsigned long long v;

        *pos = 0;
        if (!t || !*t)
                return true;
        if (strncmp(t, TOKEN_PREFIX, plen) || t[plen] != kind ||
            strlen(t + plen + 1) != 16)
                goto bad;
        v = strtoull(t + plen + 1, &end, 16);
        if (*end || v > (unsigned long long)INT64_MAX)
                goto bad;
        *pos = (int64_t)v;
        return true;
bad:
        emu_fail(c, 1003, "Invalid nextPageToken");
        return false;
}

/* Calls fn(item, len, arg) for each non-empty comma-separated item of s,
 * trimmed of blanks; stops when fn returns false. */
static bool split_each(const char *s,
                       bool (*fn)(const char *item, size_t len, void *arg),
                       void *arg)
{
        while (*s) {
                size_t len = strcspn(s, ",");
                const char *p = s;
                size_t n = len;

                while (n && (*p == ' ' || *p == '\t')) {
                        p++;
                        n--;
                }
                while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                        n--;
                if (n && !fn(p, n, arg))
                        return false;
                s += len;
                if (*s == ',')
                        s++;
        }
        return true;
}

/* ---- lead records ------------------------------------------------------ */

struct fields {
        int idx[FIELDS_MAX]; /* into field_table */
        size_t cnt;
        const char *bad;     /* first unknown name */
        size_t bad_len;
};

static bool field_take(const char *item, size_t len, void *arg)
{
        struct fields *fs = arg;
        int i = field_find(item, len);

        if (i < 0) {
                fs->bad = item;
                fs->bad_len = len;
                return false;
        }
        for (size_t k = 0; k < fs->cnt; k++)
                if (fs->idx[k] == i)
                        return true;
        if (fs->cnt < FIELDS_MAX)
                fs->idx[fs->cnt++] = i;
        return true;
}

/* The fields parameter (or the defaults), id always first; 1006 when a
 * name is unknown. */
static bool fields_parse(struct emu_ctx *c, struct fields *fs)
{
        const char *s = emu_param(c->rq, "fields");

        memset(fs, 0, sizeof(*fs));
        fs->idx[fs->cnt++] = F_ID;
        if (!s || !*s)
                s = DEFAULT_FIELDS;
        if (!split_each(s, field_take, fs)) {
                emu_fail(c, 1006, "Field '%.*s' not found", (int)(fs->bad_len > 100 ? 100 : fs->bad_len), fs->bad);
                return false;
        }
        return true;
}

static json_object *opt_str(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static json_object *lead_json(struct emu_instance *in, int64_t idx,
                              const struct fields *fs)
{
        const struct emu_lead *ld = &in->leads[idx];
        json_object *o = json_object_new_object();
        char date[40];

        for (size_t k = 0; k < fs->cnt; k++) {
                const char *name = field_table[fs->idx[k]].name;
                json_object *v = NULL;

                switch (field_table[fs->idx[k]].f) {
                case F_ID:
                        v = json_object_new_int64(emu_lead_id(in, idx));
                        break;
                case F_EMAIL:
                        v = opt_str(ld->email);
                        break;
                case F_FIRST:
                        v = opt_str(ld->first_name);
                        break;
                case F_LAST:
                        v = opt_str(ld->last_name);
                        break;
                case F_CREATED:
                case F_UPDATED:
                        emu_date_str(field_table[fs->idx[k]].f == F_CREATED ?
                                             ld->created_wall_ms :
                                             ld->updated_wall_ms,
                                     false, date, sizeof(date));
                        v = json_object_new_string(date);
                        break;
                case F_UNSTORED:
                        break;
                }
                json_object_object_add(o, name, v);
        }
        return o;
}

/* ---- sync leads ------------------------------------------------------- */

enum action {
        ACT_CREATE_OR_UPDATE = 0,
        ACT_CREATE_ONLY,
        ACT_UPDATE_ONLY,
        ACT_CREATE_DUPLICATE,
};

struct sync {
        enum action act;
        bool by_id;
        char **seen_email;   /* lower-case keys of earlier records */
        int64_t *seen_id;
        size_t seen_cnt;
};

/* What one input record asks for. */
struct rec {
        const char *email;
        bool has_id;
        int64_t id;
        const char *first;
        const char *last;
};

static bool key_seen(struct sync *s, const struct rec *r)
{
        for (size_t i = 0; i < s->seen_cnt; i++) {
                if (s->by_id ? s->seen_id[i] == r->id :
                               !strcasecmp(s->seen_email[i], r->email))
                        return true;
        }
        if (s->by_id)
                s->seen_id[s->seen_cnt++] = r->id;
        else
                s->seen_email[s->seen_cnt++] = (char *)r->email;
        return false;
}

/* Read the fields of one record; a skip record when it is unusable. */
static json_object *rec_read(struct emu_ctx *c, json_object *jr,
                             struct rec *r)
{
        memset(r, 0, sizeof(*r));
        if (!json_object_is_type(jr, json_type_object))
                return skipped(c, -1, 1003, "Invalid record, expected an object");
        json_object_object_foreach(jr, key, val)
        {
                int i = field_find(key, strlen(key));
                bool is_str = json_object_is_type(val, json_type_string);

                if (i < 0)
                        return skipped(c, -1, 1006, "Field '%.100s' not found", key);
                if (val == NULL)
                        continue;
                switch (field_table[i].f) {
                case F_ID:
                        if (!json_object_is_type(val, json_type_int))
                                return skipped(c, -1, 1001, "Invalid value type for field 'id'");
                        r->has_id = true;
                        r->id = json_object_get_int64(val);
                        break;
                case F_EMAIL:
                case F_FIRST:
                case F_LAST:
                        if (!is_str)
                                return skipped(c, -1, 1001, "Invalid value type for field '%s'", field_table[i].name);
                        if (field_table[i].f == F_EMAIL)
                                r->email = json_object_get_string(val);
                        else if (field_table[i].f == F_FIRST)
                                r->first = json_object_get_string(val);
                        else
                                r->last = json_object_get_string(val);
                        break;
                default:
                        break; /* read-only or not kept: ignored */
                }
        }
        if (r->email && !*r->email)
                r->email = NULL;
        return NULL;
}

static json_object *create_lead(struct emu_ctx *c, const struct rec *r)
{
        int64_t idx = emu_lead_add_locked(c->in, r->email, r->first, r->last,
                                          c->wall_ms);

        if (idx < 0)
                return NULL;
        return status_rec(emu_lead_id(c->in, idx), "created");
}

static json_object *update_lead(struct emu_ctx *c, int64_t idx,
                                const struct rec *r)
{
        emu_lead_update_locked(c->in, idx, r->first, r->last, c->wall_ms);
        return status_rec(emu_lead_id(c->in, idx), "updated");
}

/* One record keyed on id (updateOnly). */
static json_object *sync_by_id(struct emu_ctx *c, struct sync *s,
                               const struct rec *r)
{
        int64_t idx;

        if (!r->has_id)
                return skipped(c, -1, 1003, "Value for lookup field 'id' not found");
        if (r->email && !emu_email_valid(r->email))
                return skipped(c, -1, 1003, "Invalid value for field 'email'");
        if (key_seen(s, r))
                return skipped(c, -1, 1036, "Duplicate object found in input");
        idx = emu_lead_index(c->in, r->id);
        if (idx < 0)
                return skipped(c, -1, 1004, "Lead not found");
        /* LIMIT: an id-keyed update never changes the email (index kept). */
        return update_lead(c, idx, r);
}

/* One record keyed on email. NULL only when out of memory. */
static json_object *sync_one(struct emu_ctx *c, struct sync *s,
                             json_object *jr)
{
        struct rec r;
        json_object *skip = rec_read(c, jr, &r);
        int64_t idx[2];
        size_t n;

        if (skip)
                return skip;
        if (s->by_id)
                return sync_by_id(c, s, &r);
        if (!r.email)
                return skipped(c, -1, 1003, "Value for lookup field 'email' not found");
        if (!emu_email_valid(r.email))
                return skipped(c, -1, 1003, "Invalid value for field 'email'");
        if (key_seen(s, &r))
                return skipped(c, -1, 1036, "Duplicate object found in input");
        if (s->act == ACT_CREATE_DUPLICATE)
                return create_lead(c, &r);

        n = emu_lead_find_locked(c->in, r.email, idx, 2);
        if (n > 1 && s->act != ACT_CREATE_ONLY)
                return skipped(c, -1, 1007, "Multiple lead match lookup criteria");
        switch (s->act) {
        case ACT_CREATE_ONLY:
                if (n)
                        return skipped(c, -1, 1005, "Lead already exists");
                return create_lead(c, &r);
        case ACT_UPDATE_ONLY:
                if (!n)
                        return skipped(c, -1, 1004, "Lead not found");
                return update_lead(c, idx[0], &r);
        default:
                return n ? update_lead(c, idx[0], &r) : create_lead(c, &r);
        }
}

static bool sync_options(struct emu_ctx *c, json_object *root,
                         struct sync *s, json_object **inputp)
{
        static const char *const actions[] = {
                "createOrUpdate", "createOnly", "updateOnly",
                "createDuplicate",
        };
        json_object *j;
        const char *lf = "email";

        memset(s, 0, sizeof(*s));
        if (json_object_object_get_ex(root, "action", &j) && j) {
                const char *a = json_object_get_string(j);
                size_t i;

                for (i = 0; i < 4; i++)
                        if (!strcmp(a, actions[i]))
                                break;
                if (i == 4) {
                        emu_fail(c, 1003, "Invalid action '%.64s'", a);
                        return false;
                }
                s->act = (enum action)i;
        }
        if (json_object_object_get_ex(root, "lookupField", &j) && j)
                lf = json_object_get_string(j);
        if (!strcasecmp(lf, "id")) {
                if (s->act != ACT_UPDATE_ONLY) {
                        emu_fail(c, 1003, "lookupField 'id' can only be used with action updateOnly");
                        return false;
                }
                s->by_id = true;
        } else if (strcasecmp(lf, "email")) {
                emu_fail(c, 1011, "Field '%.64s' not supported for lookup", lf);
                return false;
        }
        if (!json_object_object_get_ex(root, "input", inputp) ||
            !json_object_is_type(*inputp, json_type_array)) {
                emu_fail(c, 1003, "input must be an array of lead records");
                return false;
        }
        return true;
}

void emu_leads_sync(struct emu_ctx *c)
{
        json_object *root = NULL, *input;
        struct sync s = { .act = ACT_CREATE_OR_UPDATE };
        size_t n;

        if (!emu_ctype_is(c->rq->ctype, "application/json")) {
                emu_fail(c, 612, "Invalid Content Type");
                return;
        }
        root = emu_json_parse(c->rq->body, c->rq->body_len);
        if (!root || !json_object_is_type(root, json_type_object)) {
                emu_fail(c, 609, "Invalid JSON");
                goto out;
        }
        if (!sync_options(c, root, &s, &input))
                goto out;
        n = json_object_array_length(input);
        if (n == 0) {
                emu_fail(c, 1003, "input is empty");
                goto out;
        }
        if (n > EMU_BATCH_MAX) {
                emu_fail(c, 1003, "Batch size %zu exceeds the limit of %d records", n, EMU_BATCH_MAX);
                goto out;
        }
        s.seen_email = calloc(n, sizeof(*s.seen_email));
        s.seen_id = calloc(n, sizeof(*s.seen_id));
        if (!s.seen_email || !s.seen_id)
                goto nomem;

        result_init(c);
        for (size_t i = 0; i < n; i++) {
                json_object *r = sync_one(c, &s,
                                          json_object_array_get_idx(input, i));

                if (!r)
                        goto nomem;
                emu_result_add(c, r);
        }
        goto out;
nomem:
        emu_fail(c, 611, "System error");
out:
        free(s.seen_email);
        free(s.seen_id);
        json_object_put(root);
}

/* ---- lookup ------------------------------------------------------------ */

struct matches {
        struct emu_ctx *c;
        bool by_id;
        int64_t *idx;
        size_t cnt;
        size_t values;
        bool too_many;
        bool bad_value;
};

static bool match_take(const char *item, size_t len, void *arg)
{
        struct matches *m = arg;
        size_t room = EMU_LOOKUP_MATCH_MAX + 1 - m->cnt;
        char buf[320];
        int64_t id, i;
        size_t n;

        if (++m->values > EMU_BATCH_MAX)
                return false;
        if (len >= sizeof(buf)) {
                if (m->by_id)
                        m->bad_value = true;
                return !m->by_id; /* too long to be an email Marketo has */
        }
        memcpy(buf, item, len);
        buf[len] = '\0';
        if (m->by_id) {
                if (!emu_parse_i64(buf, &id)) {
                        m->bad_value = true;
                        return false;
                }
                i = emu_lead_index(m->c->in, id);
                if (i >= 0 && room)
                        m->idx[m->cnt++] = i;
                return true;
        }
        n = emu_lead_find_locked(m->c->in, buf, m->idx + m->cnt, room);
        if (n > room) {
                m->too_many = true;
                return false;
        }
        m->cnt += n;
        return true;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a;
        int64_t y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Sorted, duplicate-free lead indexes matching the filter. */
static bool lookup_matches(struct emu_ctx *c, struct matches *m,
                           const char *values)
{
        size_t k = 0;

        m->idx = malloc((EMU_LOOKUP_MATCH_MAX + 1) * sizeof(*m->idx));
        if (!m->idx) {
                emu_fail(c, 611, "System error");
                return false;
        }
        split_each(values, match_take, m);
        if (m->values > EMU_BATCH_MAX) {
                emu_fail(c, 1003, "Too many filter values, the limit is %d", EMU_BATCH_MAX);
                return false;
        }
        if (m->bad_value) {
                emu_fail(c, 1003, "Invalid value in filterValues for filterType 'id'");
                return false;
        }
        qsort(m->idx, m->cnt, sizeof(*m->idx), cmp_i64);
        for (size_t i = 0; i < m->cnt; i++)
                if (!k || m->idx[k - 1] != m->idx[i])
                        m->idx[k++] = m->idx[i];
        m->cnt = k;
        if (m->too_many || m->cnt > EMU_LOOKUP_MATCH_MAX) {
                emu_fail(c, 1003, "Too many results match the filter");
                return false;
        }
        return true;
}

void emu_leads_lookup(struct emu_ctx *c)
{
        const char *type = emu_param(c->rq, "filterType");
        const char *values = emu_param(c->rq, "filterValues");
        struct matches m = { .c = c };
        struct fields fs;
        int64_t batch, pos;

        if (!type || !*type || !values) {
                emu_fail(c, 1002, "Missing value for required parameter '%s'", !type || !*type ? "filterType" : "filterValues");
                return;
        }
        if (!strcasecmp(type, "id")) {
                m.by_id = true;
        } else if (strcasecmp(type, "email")) {
                emu_fail(c, 1011, "Field '%.64s' not supported for filter", type);
                return;
        }
        if (!fields_parse(c, &fs) ||
            !emu_int_param(c, "batchSize", EMU_BATCH_MAX, 1, EMU_BATCH_MAX,
                       &batch) ||
            !token_parse(c, 'L', &pos) || !lookup_matches(c, &m, values))
                goto out;

        result_init(c);
        for (int64_t i = pos; i < (int64_t)m.cnt && i < pos + batch; i++)
                emu_result_add(c, lead_json(c->in, m.idx[i], &fs));
        if (pos + batch < (int64_t)m.cnt)
                token_make(c, 'L', pos + batch);
out:
        free(m.idx);
}

/* ---- list membership ------------------------------------------------- */

struct ids {
        int64_t v[EMU_BATCH_MAX];
        size_t cnt;
        size_t total;
        bool bad;
};

static bool id_take(const char *item, size_t len, void *arg)
{
        struct ids *ids = arg;
        char buf[32];
        int64_t id;

        if (len >= sizeof(buf)) {
                ids->bad = true;
                return false;
        }
        memcpy(buf, item, len);
        buf[len] = '\0';
        if (!emu_parse_i64(buf, &id)) {
                ids->bad = true;
                return false;
        }
        if (ids->cnt < EMU_BATCH_MAX)
                ids->v[ids->cnt++] = id;
        ids->total++;
        return true;
}

static bool body_blank(const struct emu_req *rq)
{
        for (size_t i = 0; i < rq->body_len; i++)
                if (rq->body[i] != ' ' && rq->body[i] != '\t' &&
                    rq->body[i] != '\r' && rq->body[i] != '\n')
                        return false;
        return true;
}

static bool ids_from_json(struct emu_ctx *c, struct ids *ids)
{
        json_object *root = emu_json_parse(c->rq->body, c->rq->body_len);
        json_object *input, *jid;
        bool ok = false;

        if (!root || !json_object_is_type(root, json_type_object)) {
                emu_fail(c, 609, "Invalid JSON");
                goto out;
        }
        if (!json_object_object_get_ex(root, "input", &input) ||
            !json_object_is_type(input, json_type_array)) {
                emu_fail(c, 1003, "input must be an array of {\"id\":N}");
                goto out;
        }
        for (size_t i = 0; i < json_object_array_length(input); i++) {
                json_object *it = json_object_array_get_idx(input, i);

                if (!json_object_is_type(it, json_type_object) ||
                    !json_object_object_get_ex(it, "id", &jid) ||
                    !json_object_is_type(jid, json_type_int)) {
                        emu_fail(c, 1003, "Invalid lead id in input");
                        goto out;
                }
                if (ids->cnt < EMU_BATCH_MAX)
                        ids->v[ids->cnt++] = json_object_get_int64(jid);
                ids->total++;
        }
        ok = true;
out:
        json_object_put(root);
        return ok;
}

/* The lead ids of a membership call, 1..300 of them. */
static bool ids_collect(struct emu_ctx *c, struct ids *ids)
{
        const struct emu_req *rq = c->rq;

        memset(ids, 0, sizeof(*ids));
        if (!body_blank(rq) &&
            !emu_ctype_is(rq->ctype, "application/x-www-form-urlencoded")) {
                if (!emu_ctype_is(rq->ctype, "application/json")) {
                        emu_fail(c, 612, "Invalid Content Type");
                        return false;
                }
                if (!ids_from_json(c, ids))
                        return false;
        } else {
                for (size_t i = 0; i < rq->param_cnt && !ids->bad; i++)
                        if (!strcmp(rq->params[i].key, "id"))
                                split_each(rq->params[i].val, id_take, ids);
                if (ids->bad) {
                        emu_fail(c, 1003, "Invalid value for parameter 'id'");
                        return false;
                }
        }
        if (!ids->total) {
                emu_fail(c, 1002, "Missing value for required parameter 'id'");
                return false;
        }
        if (ids->total > EMU_BATCH_MAX) {
                emu_fail(c, 1003, "Batch size %zu exceeds the limit of %d ids", ids->total, EMU_BATCH_MAX);
                return false;
        }
        return true;
}

static struct emu_list *list_need(struct emu_ctx *c)
{
        struct emu_list *l = emu_list_find(c->in, c->path_id);

        if (!l)
                emu_fail(c, 1013, "Static list not found");
        return l;
}

void emu_list_addrm(struct emu_ctx *c)
{
        bool add = c->route == EMU_RT_LIST_ADD;
        struct emu_list *l;
        struct ids ids;

        if (!ids_collect(c, &ids))
                return;
        l = list_need(c);
        if (!l)
                return;

        result_init(c);
        for (size_t i = 0; i < ids.cnt; i++) {
                int64_t id = ids.v[i];
                int64_t idx = emu_lead_index(c->in, id);

                if (idx < 0) {
                        emu_result_add(c, skipped(c, id, 1004, "Lead not found"));
                } else if (add) {
                        if (emu_idset_add(&l->members, (size_t)idx) < 0) {
                                emu_fail(c, 611, "System error");
                                return;
                        }
                        emu_result_add(c, status_rec(id, "added"));
                } else if (emu_idset_has(&l->members, (size_t)idx)) {
                        emu_idset_del(&l->members, (size_t)idx);
                        emu_result_add(c, status_rec(id, "removed"));
                } else {
                        emu_result_add(c, skipped(c, id, 1015, "Lead not in list"));
                }
        }
        l->updated_wall_ms = c->wall_ms;
}

void emu_list_ismember(struct emu_ctx *c)
{
        struct emu_list *l;
        struct ids ids;

        if (!ids_collect(c, &ids))
                return;
        l = list_need(c);
        if (!l)
                return;

        result_init(c);
        for (size_t i = 0; i < ids.cnt; i++) {
                int64_t id = ids.v[i];
                int64_t idx = emu_lead_index(c->in, id);

                if (idx < 0)
                        emu_result_add(c, skipped(c, id, 1004, "Lead not found"));
                else if (emu_idset_has(&l->members, (size_t)idx))
                        emu_result_add(c, status_rec(id, "memberof"));
                else
                        emu_result_add(c, status_rec(id, "notmemberof"));
        }
}

void emu_list_members(struct emu_ctx *c)
{
        struct emu_list *l = list_need(c);
        struct fields fs;
        int64_t batch, pos, next;

        if (!l || !fields_parse(c, &fs) ||
            !emu_int_param(c, "batchSize", EMU_BATCH_MAX, 1, EMU_BATCH_MAX,
                       &batch) ||
            !token_parse(c, 'M', &pos))
                return;

        result_init(c);
        next = emu_idset_next(&l->members, (size_t)pos);
        for (int64_t n = 0; next >= 0 && n < batch; n++) {
                if (next < (int64_t)c->in->lead_cnt)
                        emu_result_add(c, lead_json(c->in, next, &fs));
                next = emu_idset_next(&l->members, (size_t)next + 1);
        }
        if (next >= 0)
                token_make(c, 'M', next);
}

/* ---- older list endpoints, usage -------------------------------------- */

static json_object *list_rec(struct emu_instance *in, const struct emu_list *l)
{
        json_object *o = json_object_new_object();
        struct emu_folder *f = emu_folder_find(in, l->folder_id);
        char date[40];

        json_object_object_add(o, "id", json_object_new_int64(l->id));
        json_object_object_add(o, "name", json_object_new_string(l->name));
        if (l->description)
                json_object_object_add(o, "description",
                                       json_object_new_string(l->description));
        if (f && emu_folder_is_program(f))
                json_object_object_add(o, "programName",
                                       json_object_new_string(f->name));
        json_object_object_add(o, "workspaceName",
                               json_object_new_string("Default"));
        emu_date_str(l->created_wall_ms, false, date, sizeof(date));
        json_object_object_add(o, "createdAt", json_object_new_string(date));
        emu_date_str(l->updated_wall_ms, false, date, sizeof(date));
        json_object_object_add(o, "updatedAt", json_object_new_string(date));
        return o;
}

void emu_list_get(struct emu_ctx *c)
{
        struct emu_list *l = list_need(c);

        if (l)
                emu_result_add(c, list_rec(c->in, l));
}

struct name_match {
        const char *name;
        bool hit;
};

static bool name_take(const char *item, size_t len, void *arg)
{
        struct name_match *nm = arg;

        if (strlen(nm->name) == len && !strncasecmp(nm->name, item, len)) {
                nm->hit = true;
                return false;
        }
        return true;
}

/* True when name is in the comma list of parameter key, or key absent. */
static bool name_filter(struct emu_ctx *c, const char *key, const char *name)
{
        const char *v = emu_param(c->rq, key);
        struct name_match nm = { .name = name ? name : "" };

        if (!v || !*v)
                return true;
        if (!name)
                return false;
        split_each(v, name_take, &nm);
        return nm.hit;
}

static bool list_wanted(struct emu_ctx *c, const struct ids *ids,
                        const struct emu_list *l)
{
        struct emu_folder *f = emu_folder_find(c->in, l->folder_id);
        bool in_ids = !ids->cnt;

        for (size_t i = 0; i < ids->cnt && !in_ids; i++)
                in_ids = ids->v[i] == l->id;
        return in_ids && name_filter(c, "name", l->name) &&
               name_filter(c, "programName",
                           f && emu_folder_is_program(f) ? f->name : NULL) &&
               name_filter(c, "workspaceName", "Default");
}

void emu_lists_query(struct emu_ctx *c)
{
        struct ids ids = { .cnt = 0 };
        int64_t batch, pos, n = 0;
        size_t i;

        for (i = 0; i < c->rq->param_cnt && !ids.bad; i++)
                if (!strcmp(c->rq->params[i].key, "id"))
                        split_each(c->rq->params[i].val, id_take, &ids);
        if (ids.bad || ids.total > EMU_BATCH_MAX) {
                emu_fail(c, 1003, "Invalid value for parameter 'id'");
                return;
        }
        if (!emu_int_param(c, "batchSize", EMU_BATCH_MAX, 1, EMU_BATCH_MAX,
                       &batch) ||
            !token_parse(c, 'Q', &pos))
                return;

        result_init(c);
        for (i = 0; i < c->in->list_cnt; i++) {
                struct emu_list *l = c->in->lists[i];

                if (l->id < pos || !list_wanted(c, &ids, l))
                        continue;
                if (n++ == batch) {
                        token_make(c, 'Q', l->id);
                        break;
                }
                emu_result_add(c, list_rec(c->in, l));
        }
}

void emu_usage(struct emu_ctx *c)
{
        json_object *day = json_object_new_object();
        json_object *users = json_object_new_array();
        json_object *u = json_object_new_object();
        char buf[320];

        /* LIMIT: no per-day history; last7days shows only the current day. */
        emu_day_str(c->in->quota_day, buf, sizeof(buf));
        json_object_object_add(day, "date", json_object_new_string(buf));
        json_object_object_add(day, "total",
                               json_object_new_int64(c->in->quota_used));
        snprintf(buf, sizeof(buf), "api-user@%s.emulator.invalid",
                 c->in->munchkin);
        json_object_object_add(u, "userId", json_object_new_string(buf));
        json_object_object_add(u, "count",
                               json_object_new_int64(c->in->quota_used));
        json_object_array_add(users, u);
        json_object_object_add(day, "users", users);
        emu_result_add(c, day);
}
