/* SPDX-License-Identifier: Apache-2.0
 *
 * rig_oracle.c - what every list must hold, worked out by replaying the
 * input topic in offset order, and the comparison with the emulator.
 *
 * Each instance's messages share one partition (the key is the instance),
 * so offset order per partition is the order the changes were made in.
 */
#include "rig.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlsync/event.h"
#include "mlsync/kinspect.h"
#include "mlsync/util.h"

struct fact {
        char *key;      /* "instance\x1flist\x1femail", instance lower-case */
        bool add;
        bool valid;     /* Marketo accepts the email */
        bool seen;      /* found in the emulator */
        int32_t partition;
        int64_t offset; /* of the last change */
};

struct facts {
        struct fact *tab;
        size_t cap; /* power of two */
        size_t cnt;
};

static uint32_t hash_key(const char *s)
{
        uint32_t h = 2166136261u;

        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 16777619u;
        }
        return h;
}

static struct fact *facts_get(struct facts *f, const char *key, bool create)
{
        size_t i;

        if (create && (f->cnt + 1) * 2 > f->cap) {
                struct facts g = { calloc(f->cap ? f->cap * 2 : 1024,
                                          sizeof(struct fact)),
                                   f->cap ? f->cap * 2 : 1024, 0 };

                for (size_t k = 0; k < f->cap; k++) {
                        if (!f->tab[k].key)
                                continue;
                        i = hash_key(f->tab[k].key) & (g.cap - 1);
                        while (g.tab[i].key)
                                i = (i + 1) & (g.cap - 1);
                        g.tab[i] = f->tab[k];
                        g.cnt++;
                }
                free(f->tab);
                *f = g;
        }
        if (!f->cap)
                return NULL;
        i = hash_key(key) & (f->cap - 1);
        while (f->tab[i].key) {
                if (!strcmp(f->tab[i].key, key))
                        return &f->tab[i];
                i = (i + 1) & (f->cap - 1);
        }
        if (!create)
                return NULL;
        f->tab[i].key = strdup(key);
        f->cnt++;
        return &f->tab[i];
}

static void facts_free(struct facts *f)
{
        for (size_t i = 0; i < f->cap; i++)
                free(f->tab[i].key);
        free(f->tab);
}

/* The emulator's rule for an email Marketo would take. */
static bool email_valid(const char *email)
{
        const char *at = NULL;
        size_t len = strlen(email);

        if (len == 0 || len > 255)
                return false;
        for (const char *p = email; *p; p++) {
                unsigned char ch = (unsigned char)*p;

                if (ch <= 0x20 || ch >= 0x7f)
                        return false;
                if (ch == '@') {
                        if (at)
                                return false;
                        at = p;
                }
        }
        return at && at != email && at[1] != '\0';
}

static void make_key(char *out, size_t size, const char *inst,
                     const char *list, const char *email)
{
        char lc[64];
        size_t i;

        for (i = 0; inst[i] && i < sizeof(lc) - 1; i++)
                lc[i] = (char)tolower((unsigned char)inst[i]);
        lc[i] = '\0';
        snprintf(out, size, "%s\x1f%s\x1f%s", lc, list, email);
}

static bool known_instance(const char *id)
{
        for (int i = 0; i < 3; i++)
                if (!strcasecmp(id, mls_rig_instances[i]))
                        return true;
        return false;
}

static int on_input(const struct mls_kinspect_msg *m, void *opaque)
{
        struct facts *f = opaque;
        struct mls_event ev;
        char errstr[256];
        char key[1024];

        if (mls_event_decode(m->key, m->key_len, m->value, m->value_len, &ev,
                             errstr, sizeof(errstr)) != MLS_OK)
                return 0;
        if (known_instance(ev.munchkin_id)) {
                for (size_t i = 0; i < ev.email_cnt; i++) {
                        struct fact *x;

                        make_key(key, sizeof(key), ev.munchkin_id,
                                 ev.list_name, ev.emails[i]);
                        x = facts_get(f, key, true);
                        x->add = ev.action == MLS_EVENT_ADD;
                        x->valid = email_valid(ev.emails[i]);
                        x->partition = m->partition;
                        x->offset = m->offset;
                }
        }
        mls_event_fini(&ev);
        return 0;
}

/* Walk the emulator's state: {"instances": {"<id>": {"lists": [{"name":
 * .., "members": [emails]}]}}}; members not in facts are extras. */
static int mark_state(struct facts *f, const char *state, int *extras,
                      int max_print, const char *only)
{
        json_object *root = json_tokener_parse(state);
        json_object *insts;
        int printed = 0;

        if (!root || !json_object_object_get_ex(root, "instances", &insts)) {
                fprintf(stderr, "oracle: emulator state not understood\n");
                json_object_put(root);
                return -1;
        }
        json_object_object_foreach(insts, id, inst)
        {
                json_object *lists;

                if (only && strcasecmp(id, only))
                        continue;
                if (!json_object_object_get_ex(inst, "lists", &lists))
                        continue;
                for (size_t i = 0; i < json_object_array_length(lists); i++) {
                        json_object *l = json_object_array_get_idx(lists, i);
                        json_object *name, *members;
                        char key[1024];

                        if (!json_object_object_get_ex(l, "name", &name) ||
                            !json_object_object_get_ex(l, "members", &members))
                                continue;
                        for (size_t k = 0;
                             k < json_object_array_length(members); k++) {
                                const char *email = json_object_get_string(
                                        json_object_array_get_idx(members, k));
                                struct fact *x;

                                make_key(key, sizeof(key), id,
                                         json_object_get_string(name), email);
                                x = facts_get(f, key, false);
                                if (x) {
                                        x->seen = true;
                                        continue;
                                }
                                (*extras)++;
                                if (printed++ < max_print)
                                        printf("oracle: unexpected member "
                                               "%s/%s/%s\n", id,
                                               json_object_get_string(name),
                                               email);
                        }
                }
        }
        json_object_put(root);
        return 0;
}

static int check_lists(struct mls_rig *r, const int64_t *committed,
                       const char *only);

int mls_rig_check_lists(struct mls_rig *r, const int64_t *committed)
{
        return check_lists(r, committed, NULL);
}

int mls_rig_check_instance(struct mls_rig *r, const char *instance)
{
        return check_lists(r, NULL, instance);
}

/* A fact's key starts with its instance id in lower case. */
static bool of_instance(const char *key, const char *only)
{
        size_t n = strlen(only);

        return !strncasecmp(key, only, n) && key[n] == '\x1f';
}

static int check_lists(struct mls_rig *r, const int64_t *committed,
                       const char *only)
{
        struct mls_kinspect_conn c = { .brokers = r->bootstrap,
                                       .timeout_ms = 30000 };
        struct facts f = { 0 };
        char errstr[256];
        size_t read_cnt = 0;
        char *state;
        int diffs = 0, extras = 0, checked = 0;

        if (mls_kinspect_topic_read(&c, MLS_RIG_TOPIC, on_input, &f,
                                    &read_cnt, errstr,
                                    sizeof(errstr)) != MLS_OK) {
                fprintf(stderr, "oracle: reading input: %s\n", errstr);
                facts_free(&f);
                return 1;
        }
        state = mls_rig_admin(r, "state");
        if (!state || mark_state(&f, state, &extras, 10, only) < 0) {
                free(state);
                facts_free(&f);
                return 1;
        }
        for (size_t i = 0; i < f.cap; i++) {
                struct fact *x = &f.tab[i];
                bool want;

                if (!x->key || (only && !of_instance(x->key, only)))
                        continue;
                if (committed && x->offset >= committed[x->partition])
                        continue; /* not committed yet: no claim */
                checked++;
                want = x->add && x->valid;
                if (want == x->seen)
                        continue;
                if (diffs++ < 10)
                        printf("oracle: %s is %s, want %s (p%d@%lld)\n",
                               x->key, x->seen ? "member" : "absent",
                               want ? "member" : "absent", x->partition,
                               (long long)x->offset);
        }
        /* An extra member only counts when every change is claimed. */
        if (!committed)
                diffs += extras;
        printf("oracle: %zu messages replayed, %d emails checked, "
               "%d differences\n", read_cnt, checked, diffs);
        free(state);
        facts_free(&f);
        return diffs;
}

static int on_dlq(const struct mls_kinspect_msg *m, void *opaque)
{
        struct mls_rig_dlq *d = opaque;
        const struct mls_kinspect_hdr *stage, *reason, *topic, *off, *part;
        char src[64];
        struct fact *x;

        d->total++;
        stage = mls_kinspect_msg_header(m, "mlsync.error.stage");
        reason = mls_kinspect_msg_header(m, "mlsync.error.reason");
        topic = mls_kinspect_msg_header(m, "mlsync.source.topic");
        off = mls_kinspect_msg_header(m, "mlsync.source.offset");
        part = mls_kinspect_msg_header(m, "mlsync.source.partition");
        if (!stage || !reason || !topic || !off || !part || !reason->size) {
                d->missing_headers++;
                return 0;
        }
        /* A record written twice (a worker died before committing) is
         * counted once: the source position identifies it. */
        snprintf(src, sizeof(src), "%.*s:%.*s", (int)part->size,
                 (const char *)part->value, (int)off->size,
                 (const char *)off->value);
        x = facts_get(d->seen, src, true);
        if (x->add)
                return 0;
        x->add = true;
        if (stage->size == 6 && !memcmp(stage->value, "decode", 6))
                d->decode++;
        else if (stage->size == 5 && !memcmp(stage->value, "route", 5))
                d->route++;
        else if (stage->size == 7 && !memcmp(stage->value, "marketo", 7))
                d->marketo++;
        else
                d->other++;
        return 0;
}

int mls_rig_read_dlq(struct mls_rig *r, struct mls_rig_dlq *d)
{
        struct mls_kinspect_conn c = { .brokers = r->bootstrap,
                                       .timeout_ms = 30000 };
        char errstr[256];

        struct facts seen = { 0 };
        enum mls_err err;

        memset(d, 0, sizeof(*d));
        d->seen = &seen;
        err = mls_kinspect_topic_read(&c, MLS_RIG_DLQ, on_dlq, d, NULL,
                                      errstr, sizeof(errstr));
        d->seen = NULL;
        facts_free(&seen);
        if (err != MLS_OK) {
                fprintf(stderr, "oracle: reading dead letters: %s\n", errstr);
                return -1;
        }
        return 0;
}
