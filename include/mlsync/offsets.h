/* SPDX-License-Identifier: Apache-2.0
 *
 * offsets.h - per-partition record of which consumed offsets are done, and
 * the offset that may be committed: the lowest one not yet done.
 *
 * Offsets are added in the order the consumer delivers them (increasing,
 * possibly with gaps from compaction or transaction markers) and finished
 * in any order. A handle is a sequence number, valid until the tracker is
 * destroyed; finishing one twice is a bug.
 *
 * @thread one owner thread.
 */
#ifndef MLS_OFFSETS_H
#define MLS_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "mlsync/err.h"

struct mls_ptrack;

struct mls_ptrack *mls_ptrack_new(void);
void mls_ptrack_destroy(struct mls_ptrack *pt);

/**
 * Record a consumed offset as pending.
 * @param seqp  Set to the handle for mls_ptrack_done.
 * @returns MLS_OK; MLS_ERR_NOMEM; MLS_ERR_BAD_MESSAGE when offset does not
 *          increase (a re-delivery after a seek: the caller skips it).
 */
enum mls_err mls_ptrack_add(struct mls_ptrack *pt, int64_t offset,
                            uint64_t *seqp);

/** Mark the offset behind seq done. */
void mls_ptrack_done(struct mls_ptrack *pt, uint64_t seq);

/**
 * The offset to commit: every consumed offset below it is done. -1 when
 * nothing was consumed yet.
 */
int64_t mls_ptrack_committable(const struct mls_ptrack *pt);

/** Offsets consumed but not yet done. */
size_t mls_ptrack_pending(const struct mls_ptrack *pt);

/** The offset behind a pending handle. */
int64_t mls_ptrack_offset(const struct mls_ptrack *pt, uint64_t seq);

#endif
