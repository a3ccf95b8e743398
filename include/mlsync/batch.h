/* SPDX-License-Identifier: Apache-2.0
 *
 * batch.h - the pending membership changes of one list: one entry per
 * email, where the last change for an email wins.
 *
 * An add followed by a remove of the same email leaves only the remove, so
 * Marketo never sees a change that a later one undoes within the batch.
 * Each entry remembers the origin (an opaque pointer: the Kafka message)
 * that set its final action, so a rejection can be traced back.
 *
 * @thread one owner thread.
 */
#ifndef MLS_BATCH_H
#define MLS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "mlsync/err.h"

enum mls_batch_action {
        MLS_BATCH_ADD = 0,
        MLS_BATCH_REMOVE,
};

struct mls_batch;

struct mls_batch *mls_batch_new(void);
void mls_batch_destroy(struct mls_batch *b);

/**
 * Record the latest change for email (already lower-cased; copied).
 * @returns MLS_OK or MLS_ERR_NOMEM.
 */
enum mls_err mls_batch_put(struct mls_batch *b, const char *email,
                           enum mls_batch_action action, void *origin);

/** Distinct emails in the batch. */
size_t mls_batch_size(const struct mls_batch *b);

/** Distinct emails whose final action is action. */
size_t mls_batch_count(const struct mls_batch *b, enum mls_batch_action action);

/**
 * Fill emails[] and origins[] (each room for max) with the entries whose
 * final action is action, in first-insertion order. Pointers are borrowed
 * until the batch is changed or destroyed.
 * @returns the number written.
 */
size_t mls_batch_collect(const struct mls_batch *b,
                         enum mls_batch_action action, const char **emails,
                         void **origins, size_t max);

#endif
