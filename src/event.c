/* SPDX-License-Identifier: Apache-2.0
 *
 * event.c - decode one Kafka message (native mlsync JSON or a Segment
 * Engage audience event) into one membership change for one user.
 *
 * Segment field names, as Segment's docs show its Engage events
 * (segment-docs src/engage/using-engage-data.md and
 * event-mapping-configuration.md) and as action-destinations reads them
 * (packages/core/src/audience-membership.ts, marketo-static-lists):
 *   type "identify" | "track"; event "Audience Entered" | "Audience
 *   Exited"; traits.<key> (identify) / properties.<key> (track) true |
 *   false; properties.audience_key; context.personas.computation_class,
 *   computation_key, computation_id; emails in traits.email,
 *   context.traits.email and properties.email (track).
 * context.externalIds entries ({id, type, collection, encoding}) appear in
 * Segment destination-function payloads rather than in those docs, and
 * context.personas.external_ids and context.personas.audience_name appear
 * in neither: all three are read for producers that send them.
 * Without a name the list is named after the audience key.
 */
#include "mlsync/event.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#define EVENT_PAYLOAD_MAX (1024 * 1024)
#define EVENT_MUNCHKIN_MAX 64

/* Deduplicating list of normalised emails, in order of first appearance.
 * The open-addressing index keeps a 1 MiB payload of short addresses from
 * turning into a quadratic scan. */
struct email_set {
        char **v;
        size_t cnt;
        size_t cap;
        uint32_t *slots; /* index + 1 into v; 0 = empty */
        size_t slot_cnt; /* power of two, > 2 * cnt */
};

struct dec {
        struct mls_event *ev;
        struct email_set emails;
        bool key_given; /* munchkin_id came from the message key */
        char *errstr;
        size_t errstr_size;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static enum mls_err
bad(struct dec *d, const char *fmt, ...)
{
        va_list ap;

        if (d->errstr && d->errstr_size) {
                va_start(ap, fmt);
                vsnprintf(d->errstr, d->errstr_size, fmt, ap);
                va_end(ap);
        }
        return MLS_ERR_BAD_MESSAGE;
}

static enum mls_err nomem(struct dec *d)
{
        if (d->errstr && d->errstr_size)
                snprintf(d->errstr, d->errstr_size, "out of memory");
        return MLS_ERR_NOMEM;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
               c == '\f' || c == '\v';
}

static bool has_control(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return true;
        return false;
}

static void trim(const char **s, size_t *len)
{
        while (*len && is_space(**s)) {
                (*s)++;
                (*len)--;
        }
        while (*len && is_space((*s)[*len - 1]))
                (*len)--;
}

/** Member of obj, treating JSON null like a missing member. Borrowed. */
static json_object *member(json_object *obj, const char *name)
{
        json_object *v = NULL;

        if (!obj || !json_object_object_get_ex(obj, name, &v))
                return NULL;
        return v;
}

/**
 * Optional string member. *sp is NULL when absent. A string holding a
 * NUL (JSON "\u0000") is refused: it would be cut short as a C string.
 */
static enum mls_err opt_string(struct dec *d, json_object *obj,
                               const char *name, const char *path,
                               const char **sp, size_t *lenp)
{
        json_object *v = member(obj, name);

        *sp = NULL;
        *lenp = 0;
        if (!v)
                return MLS_OK;
        if (!json_object_is_type(v, json_type_string))
                return bad(d, "%s is not a string", path);
        *sp = json_object_get_string(v);
        *lenp = (size_t)json_object_get_string_len(v);
        if (memchr(*sp, '\0', *lenp))
                return bad(d, "%s contains a NUL character", path);
        return MLS_OK;
}

/** Optional object member; *op is NULL when absent. Borrowed. */
static enum mls_err opt_object(struct dec *d, json_object *obj,
                               const char *name, const char *path,
                               json_object **op)
{
        json_object *v = member(obj, name);

        *op = NULL;
        if (!v)
                return MLS_OK;
        if (!json_object_is_type(v, json_type_object))
                return bad(d, "%s is not an object", path);
        *op = v;
        return MLS_OK;
}

/**
 * Optional label (audience id, name or key, user id): trimmed; empty
 * counts as absent; control characters are refused because labels end
 * up in Marketo list names and in log fields.
 * @param outp  Set to a copy the caller owns, or NULL when absent.
 */
static enum mls_err opt_label(struct dec *d, json_object *obj,
                              const char *name, const char *path,
                              char **outp)
{
        const char *s;
        size_t len;
        enum mls_err err;

        *outp = NULL;
        err = opt_string(d, obj, name, path, &s, &len);
        if (err || !s)
                return err;
        trim(&s, &len);
        if (len == 0)
                return MLS_OK;
        if (has_control(s, len))
                return bad(d, "%s contains control characters", path);
        *outp = strndup(s, len);
        return *outp ? MLS_OK : nomem(d);
}

static uint32_t hash_str(const char *s)
{
        uint32_t h = 2166136261u;

        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 16777619u;
        }
        return h;
}

/* Find s in the index: its slot, holding either s or 0 (free). */
static size_t set_slot(const struct email_set *es, const char *s)
{
        size_t mask = es->slot_cnt - 1;
        size_t i = hash_str(s) & mask;

        while (es->slots[i] && strcmp(es->v[es->slots[i] - 1], s) != 0)
                i = (i + 1) & mask;
        return i;
}

static int set_grow(struct email_set *es)
{
        size_t ncap = es->cap ? es->cap * 2 : 8;
        size_t nslots = ncap * 4;
        char **nv = realloc(es->v, ncap * sizeof(*nv));
        uint32_t *ns;

        if (!nv)
                return -1;
        es->v = nv;
        ns = calloc(nslots, sizeof(*ns));
        if (!ns)
                return -1;
        free(es->slots);
        es->slots = ns;
        es->slot_cnt = nslots;
        es->cap = ncap;
        for (size_t k = 0; k < es->cnt; k++)
                es->slots[set_slot(es, es->v[k])] = (uint32_t)(k + 1);
        return 0;
}

/**
 * Normalise one email (trim, ASCII lower-case) and append it unless it
 * is empty or already present. Syntax is Marketo's to judge.
 */
static enum mls_err email_add(struct dec *d, const char *s, size_t len)
{
        struct email_set *es = &d->emails;
        size_t slot;
        char *e;

        trim(&s, &len);
        if (len == 0)
                return MLS_OK;
        if (es->cnt == es->cap && set_grow(es) < 0)
                return nomem(d);
        e = strndup(s, len);
        if (!e)
                return nomem(d);
        for (char *p = e; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        slot = set_slot(es, e);
        if (es->slots[slot]) {
                free(e);
                return MLS_OK;
        }
        es->v[es->cnt++] = e;
        es->slots[slot] = (uint32_t)es->cnt;
        return MLS_OK;
}

static enum mls_err email_member(struct dec *d, json_object *obj,
                                 const char *name, const char *path)
{
        const char *s;
        size_t len;
        enum mls_err err;

        err = opt_string(d, obj, name, path, &s, &len);
        if (err || !s)
                return err;
        return email_add(d, s, len);
}

/** One array entry as an email; path names the array for messages. */
static enum mls_err email_entry(struct dec *d, json_object *v,
                                const char *path, size_t i,
                                const char *suffix)
{
        const char *s;
        size_t len;

        if (!json_object_is_type(v, json_type_string))
                return bad(d, "%s[%zu]%s is not a string", path, i, suffix);
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (memchr(s, '\0', len))
                return bad(d, "%s[%zu]%s contains a NUL character", path, i,
                           suffix);
        return email_add(d, s, len);
}

/** Native "emails": absent, null or an array of strings. */
static enum mls_err emails_native(struct dec *d, json_object *root)
{
        json_object *arr = member(root, "emails");
        enum mls_err err;
        size_t n;

        if (!arr)
                return MLS_OK;
        if (!json_object_is_type(arr, json_type_array))
                return bad(d, "emails is not an array");
        n = json_object_array_length(arr);
        for (size_t i = 0; i < n; i++) {
                err = email_entry(d, json_object_array_get_idx(arr, i),
                                  "emails", i, "");
                if (err)
                        return err;
        }
        return MLS_OK;
}

/**
 * Segment identity lists: [{"id": ..., "type": "email"}, ...]. Entries
 * of other types (user_id, anonymous_id, ios.idfa, ...) are skipped; the
 * type is matched case-insensitively.
 */
static enum mls_err emails_external_ids(struct dec *d, json_object *arr,
                                        const char *path)
{
        enum mls_err err;
        size_t n;

        if (!arr)
                return MLS_OK;
        if (!json_object_is_type(arr, json_type_array))
                return bad(d, "%s is not an array", path);
        n = json_object_array_length(arr);
        for (size_t i = 0; i < n; i++) {
                json_object *ent = json_object_array_get_idx(arr, i);
                json_object *type, *id;

                if (!ent || !json_object_is_type(ent, json_type_object))
                        return bad(d, "%s[%zu] is not an object", path, i);
                type = member(ent, "type");
                if (!type)
                        continue;
                if (!json_object_is_type(type, json_type_string))
                        return bad(d, "%s[%zu].type is not a string", path,
                                   i);
                if (strcasecmp(json_object_get_string(type), "email") != 0)
                        continue;
                id = member(ent, "id");
                if (!id)
                        continue;
                err = email_entry(d, id, path, i, ".id");
                if (err)
                        return err;
        }
        return MLS_OK;
}

/* A munchkin id is short printable ASCII without spaces; its exact shape
 * (NNN-AAA-NNN) is left to the instance lookup in the config. */
static bool munchkin_ok(const char *s, size_t len)
{
        if (len == 0 || len > EVENT_MUNCHKIN_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                        return false;
        return true;
}

static enum mls_err munchkin_from_key(struct dec *d, const void *key,
                                      size_t key_len)
{
        if (!key || key_len == 0)
                return MLS_OK;
        if (!munchkin_ok(key, key_len))
                return bad(d, "message key is not a valid munchkin id");
        d->ev->munchkin_id = strndup(key, key_len);
        if (!d->ev->munchkin_id)
                return nomem(d);
        d->key_given = true;
        return MLS_OK;
}

/**
 * A munchkin id named in the body: it must agree (case-insensitively)
 * with the key and with any id named earlier; the first one stands in
 * for a missing key.
 */
static enum mls_err munchkin_from_body(struct dec *d, json_object *obj,
                                       const char *name, const char *path)
{
        const char *s;
        size_t len;
        enum mls_err err;

        err = opt_string(d, obj, name, path, &s, &len);
        if (err || !s)
                return err;
        if (!munchkin_ok(s, len))
                return bad(d, "%s is not a valid munchkin id", path);
        if (d->ev->munchkin_id) {
                if (strcasecmp(d->ev->munchkin_id, s) == 0)
                        return MLS_OK;
                return bad(d, "%s disagrees with %s", path,
                           d->key_given ? "the message key" :
                                          "another munchkin_id in the body");
        }
        d->ev->munchkin_id = strndup(s, len);
        return d->ev->munchkin_id ? MLS_OK : nomem(d);
}

static enum mls_err munchkin_require(struct dec *d)
{
        if (d->ev->munchkin_id)
                return MLS_OK;
        return bad(d, "no munchkin id: the message key is empty and the body names none");
}

static enum mls_err native_action(struct dec *d, json_object *root)
{
        json_object *v = member(root, "action");
        const char *s;

        if (!v)
                return bad(d, "action is missing");
        if (!json_object_is_type(v, json_type_string))
                return bad(d, "action is not a string");
        s = json_object_get_string(v);
        if (strcasecmp(s, "add") == 0)
                d->ev->action = MLS_EVENT_ADD;
        else if (strcasecmp(s, "remove") == 0)
                d->ev->action = MLS_EVENT_REMOVE;
        else
                return bad(d, "action must be \"add\" or \"remove\"");
        return MLS_OK;
}

static enum mls_err native_audience(struct dec *d, json_object *root)
{
        json_object *aud = member(root, "audience");
        enum mls_err err;

        if (!aud)
                return bad(d, "audience is missing");
        if (!json_object_is_type(aud, json_type_object))
                return bad(d, "audience is not an object");
        err = opt_label(d, aud, "id", "audience.id", &d->ev->audience_id);
        if (err)
                return err;
        err = opt_label(d, aud, "name", "audience.name", &d->ev->list_name);
        if (err)
                return err;
        if (d->ev->list_name)
                return MLS_OK;
        if (!d->ev->audience_id)
                return bad(d, "audience has neither id nor name");
        d->ev->list_name = strdup(d->ev->audience_id);
        return d->ev->list_name ? MLS_OK : nomem(d);
}

static enum mls_err decode_native(struct dec *d, json_object *root)
{
        const char *ts;
        size_t ts_len;
        enum mls_err err;

        d->ev->format = MLS_EVENT_NATIVE;
        err = native_action(d, root);
        if (!err)
                err = native_audience(d, root);
        if (!err)
                err = munchkin_from_body(d, root, "munchkin_id",
                                         "munchkin_id");
        if (!err)
                err = munchkin_require(d);
        if (!err)
                err = opt_label(d, root, "user_id", "user_id",
                                &d->ev->user_id);
        if (!err)
                err = opt_string(d, root, "ts", "ts", &ts, &ts_len);
        if (!err)
                err = emails_native(d, root);
        return err;
}

/* The parts of a Segment event the decoder looks at. All borrowed. */
struct seg {
        json_object *root, *context, *personas, *traits, *ctx_traits,
                *props;
        bool is_track;
        const char *key; /* the audience key */
};

static enum mls_err seg_parts(struct dec *d, struct seg *sg)
{
        enum mls_err err;

        err = opt_object(d, sg->root, "context", "context", &sg->context);
        if (!err)
                err = opt_object(d, sg->context, "personas",
                                 "context.personas", &sg->personas);
        if (!err)
                err = opt_object(d, sg->root, "traits", "traits",
                                 &sg->traits);
        if (!err)
                err = opt_object(d, sg->context, "traits", "context.traits",
                                 &sg->ctx_traits);
        if (!err)
                err = opt_object(d, sg->root, "properties", "properties",
                                 &sg->props);
        return err;
}

static enum mls_err seg_type(struct dec *d, struct seg *sg)
{
        json_object *v = member(sg->root, "type");
        const char *s;

        if (!v || !json_object_is_type(v, json_type_string))
                return bad(d, "type is not a string");
        s = json_object_get_string(v);
        if (strcasecmp(s, "identify") == 0)
                sg->is_track = false;
        else if (strcasecmp(s, "track") == 0)
                sg->is_track = true;
        else
                return bad(d, "Segment event type must be identify or track");
        return MLS_OK;
}

/**
 * computation_class must say "audience" when present. Identify events
 * need it (nothing else marks them as audience events); a track event's
 * name already does.
 */
static enum mls_err seg_class(struct dec *d, struct seg *sg)
{
        const char *cls;
        size_t len;
        enum mls_err err;

        if (!sg->personas && !sg->is_track)
                return bad(d, "context.personas is missing: not an Engage audience event");
        err = opt_string(d, sg->personas, "computation_class",
                         "context.personas.computation_class", &cls, &len);
        if (err)
                return err;
        if (!cls && !sg->is_track)
                return bad(d, "context.personas.computation_class is missing");
        if (cls && strcmp(cls, "audience") != 0)
                return bad(d, "context.personas.computation_class is not \"audience\"");
        return MLS_OK;
}

/**
 * The audience key: context.personas.computation_key, or for a track
 * event properties.audience_key; both, when given, must match.
 */
static enum mls_err seg_key(struct dec *d, struct seg *sg)
{
        const char *ck = NULL, *ak = NULL;
        size_t ck_len = 0, ak_len = 0;
        enum mls_err err;

        err = opt_string(d, sg->personas, "computation_key",
                         "context.personas.computation_key", &ck, &ck_len);
        if (!err && sg->is_track)
                err = opt_string(d, sg->props, "audience_key",
                                 "properties.audience_key", &ak, &ak_len);
        if (err)
                return err;
        if (ck && ak && strcmp(ck, ak) != 0)
                return bad(d, "properties.audience_key disagrees with context.personas.computation_key");
        sg->key = ck ? ck : ak;
        if ((!sg->key || !*sg->key) && sg->is_track)
                return bad(d, "audience key is missing: no context.personas.computation_key or properties.audience_key");
        if (!sg->key || !*sg->key)
                return bad(d, "context.personas.computation_key is missing");
        if (has_control(sg->key, strlen(sg->key)))
                return bad(d, "context.personas.computation_key contains control characters");
        return MLS_OK;
}

/* traits[key] or properties[key] as a membership flag; -1 when absent. */
static enum mls_err seg_flag(struct dec *d, json_object *obj,
                             const char *path, const char *key, int *flagp)
{
        json_object *v = member(obj, key);

        *flagp = -1;
        if (!v)
                return MLS_OK;
        if (!json_object_is_type(v, json_type_boolean))
                return bad(d, "%s[computation_key] is not a boolean", path);
        *flagp = json_object_get_boolean(v) ? 1 : 0;
        return MLS_OK;
}

/**
 * Identify: traits[key] true adds, false removes. Track: the event name
 * decides, and properties[key], when present, must not contradict it.
 */
static enum mls_err seg_action(struct dec *d, struct seg *sg)
{
        const char *name;
        size_t len;
        int flag;
        enum mls_err err;

        if (!sg->is_track) {
                err = seg_flag(d, sg->traits, "traits", sg->key, &flag);
                if (err)
                        return err;
                if (flag < 0)
                        return bad(d, "traits[computation_key] is missing");
                d->ev->action = flag ? MLS_EVENT_ADD : MLS_EVENT_REMOVE;
                return MLS_OK;
        }
        err = opt_string(d, sg->root, "event", "event", &name, &len);
        if (err)
                return err;
        if (name && strcasecmp(name, "Audience Entered") == 0)
                d->ev->action = MLS_EVENT_ADD;
        else if (name && strcasecmp(name, "Audience Exited") == 0)
                d->ev->action = MLS_EVENT_REMOVE;
        else
                return bad(d, "track event must be \"Audience Entered\" or \"Audience Exited\"");
        err = seg_flag(d, sg->props, "properties", sg->key, &flag);
        if (err)
                return err;
        if (flag >= 0 && flag != (d->ev->action == MLS_EVENT_ADD))
                return bad(d, "properties[computation_key] contradicts the event name");
        return MLS_OK;
}

static enum mls_err seg_names(struct dec *d, struct seg *sg)
{
        enum mls_err err;

        err = opt_label(d, sg->personas, "computation_id",
                        "context.personas.computation_id",
                        &d->ev->audience_id);
        if (!err)
                err = opt_label(d, sg->personas, "audience_name",
                                "context.personas.audience_name",
                                &d->ev->list_name);
        if (!err)
                err = opt_label(d, sg->root, "userId", "userId",
                                &d->ev->user_id);
        if (err || d->ev->list_name)
                return err;
        d->ev->list_name = strdup(sg->key);
        return d->ev->list_name ? MLS_OK : nomem(d);
}

static enum mls_err seg_emails(struct dec *d, struct seg *sg)
{
        enum mls_err err;

        err = email_member(d, sg->traits, "email", "traits.email");
        if (!err)
                err = email_member(d, sg->ctx_traits, "email",
                                   "context.traits.email");
        if (!err && sg->is_track)
                err = email_member(d, sg->props, "email", "properties.email");
        if (!err)
                err = emails_external_ids(d, member(sg->context,
                                                    "externalIds"),
                                          "context.externalIds");
        if (!err)
                err = emails_external_ids(d, member(sg->personas,
                                                    "external_ids"),
                                          "context.personas.external_ids");
        return err;
}

static enum mls_err decode_segment(struct dec *d, json_object *root)
{
        struct seg sg = { .root = root };
        enum mls_err err;

        d->ev->format = MLS_EVENT_SEGMENT;
        err = seg_type(d, &sg);
        if (!err)
                err = seg_parts(d, &sg);
        if (!err)
                err = seg_class(d, &sg);
        if (!err)
                err = seg_key(d, &sg);
        if (!err)
                err = seg_action(d, &sg);
        if (!err)
                err = munchkin_from_body(d, sg.personas, "munchkin_id",
                                         "context.personas.munchkin_id");
        if (!err)
                err = munchkin_from_body(d, sg.props, "munchkin_id",
                                         "properties.munchkin_id");
        if (!err)
                err = munchkin_require(d);
        if (!err)
                err = seg_names(d, &sg);
        if (!err)
                err = seg_emails(d, &sg);
        return err;
}

/**
 * Parse the payload as one strict JSON object.
 * @param rootp  Set on MLS_OK; the caller puts it with json_object_put.
 */
static enum mls_err parse_payload(struct dec *d, const void *payload,
                                  size_t len, json_object **rootp)
{
        struct json_tokener *tok;
        json_object *root;
        enum json_tokener_error jerr;
        size_t end;

        if (!payload || len == 0)
                return bad(d, "payload is empty");
        if (len > EVENT_PAYLOAD_MAX)
                return bad(d, "payload is larger than 1 MiB");
        tok = json_tokener_new();
        if (!tok)
                return nomem(d);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                            JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, payload, (int)len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (jerr == json_tokener_continue) {
                /* The input ended inside a value; a NUL tells json-c no
                 * more is coming, so a bare number completes here. */
                root = json_tokener_parse_ex(tok, "", 1);
                jerr = json_tokener_get_error(tok);
                end = len;
        }
        json_tokener_free(tok);

        if (jerr == json_tokener_error_parse_utf8_string)
                return bad(d, "payload is not valid UTF-8");
        if (jerr != json_tokener_success)
                return bad(d, "payload is not valid JSON: %s",
                           jerr == json_tokener_continue ?
                                   "unexpected end of data" :
                                   json_tokener_error_desc(jerr));
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return bad(d, "payload is not a JSON object");
        }
        /* Strict mode stops at a NUL byte without complaint. */
        if (end < len) {
                json_object_put(root);
                return bad(d, "payload is not valid JSON: data after the object");
        }
        *rootp = root;
        return MLS_OK;
}

static void email_set_take(struct email_set *es, struct mls_event *ev)
{
        free(es->slots);
        ev->emails = es->v;
        ev->email_cnt = es->cnt;
        memset(es, 0, sizeof(*es));
}

static void email_set_fini(struct email_set *es)
{
        for (size_t i = 0; i < es->cnt; i++)
                free(es->v[i]);
        free(es->v);
        free(es->slots);
        memset(es, 0, sizeof(*es));
}

enum mls_err mls_event_decode(const void *key, size_t key_len,
                              const void *payload, size_t len,
                              struct mls_event *ev, char *errstr,
                              size_t errstr_size)
{
        struct dec d = { .ev = ev, .errstr = errstr,
                         .errstr_size = errstr_size };
        json_object *root = NULL;
        enum mls_err err;

        memset(ev, 0, sizeof(*ev));
        if (errstr && errstr_size)
                errstr[0] = '\0';
        err = parse_payload(&d, payload, len, &root);
        if (err)
                goto out;
        err = munchkin_from_key(&d, key, key_len);
        if (err)
                goto out;
        /* Segment events always carry "type"; native events never do. */
        if (json_object_object_get_ex(root, "type", NULL))
                err = decode_segment(&d, root);
        else
                err = decode_native(&d, root);
        if (err)
                goto out;
        email_set_take(&d.emails, ev);
out:
        json_object_put(root);
        if (err) {
                email_set_fini(&d.emails);
                mls_event_fini(ev);
        }
        return err;
}

void mls_event_fini(struct mls_event *ev)
{
        if (!ev)
                return;
        free(ev->munchkin_id);
        free(ev->audience_id);
        free(ev->list_name);
        free(ev->user_id);
        for (size_t i = 0; i < ev->email_cnt; i++)
                free(ev->emails[i]);
        free(ev->emails);
        memset(ev, 0, sizeof(*ev));
}
