/* SPDX-License-Identifier: Apache-2.0
 *
 * batch.c - last-change-wins set of email changes, in insertion order,
 * indexed by an open-addressing hash table.
 */
#include "mlsync/batch.h"

#include <stdlib.h>
#include <string.h>

struct entry {
        char *email;
        enum mls_batch_action action;
        void *origin;
};

struct mls_batch {
        struct entry *entries; /* insertion order */
        size_t cnt;
        size_t cap;
        size_t counts[2];      /* entries per action */
        uint32_t *index;       /* 0 = empty, else entry position + 1 */
        size_t index_cap;      /* power of two, at least 2 * cnt */
};

static uint32_t hash_str(const char *s)
{
        uint32_t h = 2166136261u;

        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 16777619u;
        }
        return h;
}

struct mls_batch *mls_batch_new(void)
{
        return calloc(1, sizeof(struct mls_batch));
}

void mls_batch_destroy(struct mls_batch *b)
{
        if (!b)
                return;
        for (size_t i = 0; i < b->cnt; i++)
                free(b->entries[i].email);
        free(b->entries);
        free(b->index);
        free(b);
}

static size_t *find_slot(const struct mls_batch *b, const char *email,
                         size_t *slotp)
{
        size_t mask = b->index_cap - 1;
        size_t i = hash_str(email) & mask;

        for (;;) {
                uint32_t v = b->index[i];

                if (!v || !strcmp(b->entries[v - 1].email, email)) {
                        *slotp = i;
                        return slotp;
                }
                i = (i + 1) & mask;
        }
}

static enum mls_err rehash(struct mls_batch *b, size_t cap)
{
        uint32_t *index = calloc(cap, sizeof(*index));
        size_t slot;

        if (!index)
                return MLS_ERR_NOMEM;
        free(b->index);
        b->index = index;
        b->index_cap = cap;
        for (size_t i = 0; i < b->cnt; i++) {
                find_slot(b, b->entries[i].email, &slot);
                b->index[slot] = (uint32_t)(i + 1);
        }
        return MLS_OK;
}

enum mls_err mls_batch_put(struct mls_batch *b, const char *email,
                           enum mls_batch_action action, void *origin)
{
        struct entry *e;
        size_t slot;

        if ((b->cnt + 1) * 2 > b->index_cap &&
            rehash(b, b->index_cap ? b->index_cap * 2 : 64) != MLS_OK)
                return MLS_ERR_NOMEM;
        find_slot(b, email, &slot);
        if (b->index[slot]) {
                e = &b->entries[b->index[slot] - 1];
                b->counts[e->action]--;
                b->counts[action]++;
                e->action = action;
                e->origin = origin;
                return MLS_OK;
        }
        if (b->cnt == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 32;
                struct entry *ne = realloc(b->entries, cap * sizeof(*ne));

                if (!ne)
                        return MLS_ERR_NOMEM;
                b->entries = ne;
                b->cap = cap;
        }
        e = &b->entries[b->cnt];
        e->email = strdup(email);
        if (!e->email)
                return MLS_ERR_NOMEM;
        e->action = action;
        e->origin = origin;
        b->index[slot] = (uint32_t)(++b->cnt);
        b->counts[action]++;
        return MLS_OK;
}

size_t mls_batch_size(const struct mls_batch *b)
{
        return b->cnt;
}

size_t mls_batch_count(const struct mls_batch *b, enum mls_batch_action action)
{
        return b->counts[action];
}

size_t mls_batch_collect(const struct mls_batch *b,
                         enum mls_batch_action action, const char **emails,
                         void **origins, size_t max)
{
        size_t n = 0;

        for (size_t i = 0; i < b->cnt && n < max; i++) {
                if (b->entries[i].action != action)
                        continue;
                emails[n] = b->entries[i].email;
                origins[n] = b->entries[i].origin;
                n++;
        }
        return n;
}
