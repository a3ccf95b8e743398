/* SPDX-License-Identifier: Apache-2.0
 *
 * offsets.c - a ring of pending offsets per partition; its head is what
 * may be committed.
 */
#include "mlsync/offsets.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>

struct slot {
        int64_t offset;
        bool done;
};

struct mls_ptrack {
        struct slot *ring;
        size_t cap;       /* power of two */
        uint64_t head;    /* sequence number of the oldest pending slot */
        uint64_t tail;    /* next sequence number to hand out */
        size_t pending;   /* slots between head and tail not done */
        int64_t next;     /* last added offset + 1; -1 before the first */
};

struct mls_ptrack *mls_ptrack_new(void)
{
        struct mls_ptrack *pt = calloc(1, sizeof(*pt));

        if (!pt)
                return NULL;
        pt->cap = 64;
        pt->ring = calloc(pt->cap, sizeof(*pt->ring));
        if (!pt->ring) {
                free(pt);
                return NULL;
        }
        pt->next = -1;
        return pt;
}

void mls_ptrack_destroy(struct mls_ptrack *pt)
{
        if (!pt)
                return;
        free(pt->ring);
        free(pt);
}

static struct slot *slot_at(const struct mls_ptrack *pt, uint64_t seq)
{
        return &pt->ring[seq & (pt->cap - 1)];
}

static enum mls_err grow(struct mls_ptrack *pt)
{
        size_t cap = pt->cap * 2;
        struct slot *ring = malloc(cap * sizeof(*ring));

        if (!ring)
                return MLS_ERR_NOMEM;
        for (uint64_t s = pt->head; s < pt->tail; s++)
                ring[s & (cap - 1)] = *slot_at(pt, s);
        free(pt->ring);
        pt->ring = ring;
        pt->cap = cap;
        return MLS_OK;
}

enum mls_err mls_ptrack_add(struct mls_ptrack *pt, int64_t offset,
                            uint64_t *seqp)
{
        struct slot *s;

        if (offset < 0 || (pt->next >= 0 && offset < pt->next))
                return MLS_ERR_BAD_MESSAGE;
        if (pt->tail - pt->head == pt->cap && grow(pt) != MLS_OK)
                return MLS_ERR_NOMEM;
        s = slot_at(pt, pt->tail);
        s->offset = offset;
        s->done = false;
        *seqp = pt->tail++;
        pt->pending++;
        pt->next = offset + 1;
        return MLS_OK;
}

void mls_ptrack_done(struct mls_ptrack *pt, uint64_t seq)
{
        struct slot *s;

        assert(seq >= pt->head && seq < pt->tail);
        s = slot_at(pt, seq);
        assert(!s->done);
        s->done = true;
        pt->pending--;
        while (pt->head < pt->tail && slot_at(pt, pt->head)->done)
                pt->head++;
}

int64_t mls_ptrack_committable(const struct mls_ptrack *pt)
{
        if (pt->head < pt->tail)
                return slot_at(pt, pt->head)->offset;
        return pt->next;
}

size_t mls_ptrack_pending(const struct mls_ptrack *pt)
{
        return pt->pending;
}

int64_t mls_ptrack_offset(const struct mls_ptrack *pt, uint64_t seq)
{
        assert(seq >= pt->head && seq < pt->tail);
        return slot_at(pt, seq)->offset;
}
