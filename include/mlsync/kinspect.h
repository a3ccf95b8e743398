/* SPDX-License-Identifier: Apache-2.0
 *
 * kinspect.h - look at Kafka from the outside: a group's per-partition lag,
 * and a bounded read of a whole topic (used by `mlsync lag`, tests, demo).
 */
#ifndef MLS_KINSPECT_H
#define MLS_KINSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlsync/err.h"

/** Committed offset value meaning "the group has no commit here". */
#define MLS_KINSPECT_NO_OFFSET (-1)

/** How to reach the cluster. Everything is borrowed for the call. */
struct mls_kinspect_conn {
        const char *brokers; /* bootstrap.servers */
        /* Extra librdkafka properties (security.protocol, sasl.*, ...) as
         * key, value, key, value, ..., NULL; NULL for none. */
        const char *const *props;
        int timeout_ms; /* bound on the whole call; <= 0 means 10000 */
};

struct mls_kinspect_part {
        char *topic;       /* owned by the enclosing mls_kinspect_lag */
        int32_t partition;
        int64_t committed; /* MLS_KINSPECT_NO_OFFSET when none */
        int64_t low;       /* log-start offset */
        int64_t high;      /* high watermark: next offset to be written */
        int64_t lag;       /* see mls_kinspect_part_lag */
};

struct mls_kinspect_lag {
        struct mls_kinspect_part *parts; /* sorted by topic, partition */
        size_t part_cnt;
        int64_t total; /* sum of lag over parts */
};

/**
 * Lag of one partition: high - committed; with no commit (or a commit
 * below the log start, which the group would reset to the start),
 * high - low; never negative.
 */
int64_t mls_kinspect_part_lag(int64_t committed, int64_t low, int64_t high);

/**
 * Committed offsets, watermarks and lag of a consumer group on topics.
 * Uses OffsetFetch and ListOffsets only: the group is neither joined nor
 * committed to, so a running group is not disturbed.
 *
 * @param conn    Where and how to connect. Borrowed.
 * @param group   The consumer group (group.id). Borrowed.
 * @param topics  topic_cnt topic names (>= 1). Borrowed.
 * @param lag     Filled on MLS_OK; release with mls_kinspect_lag_fini.
 *                Zeroed on error.
 * @returns MLS_OK; MLS_ERR_CONFIG for bad arguments or a topic the
 *          cluster does not have; MLS_ERR_TRANSIENT when the cluster did
 *          not answer in time; MLS_ERR_NOMEM. errstr is set on error.
 * @thread  any; each call uses its own client.
 */
enum mls_err mls_kinspect_lag_get(const struct mls_kinspect_conn *conn,
                                  const char *group,
                                  const char *const *topics, size_t topic_cnt,
                                  struct mls_kinspect_lag *lag, char *errstr,
                                  size_t errstr_size);

/** Free what mls_kinspect_lag_get put in lag; safe on a zeroed struct. */
void mls_kinspect_lag_fini(struct mls_kinspect_lag *lag);

struct mls_kinspect_hdr {
        const char *name;
        const void *value; /* NULL for a null header value */
        size_t size;
};

/** One message, valid only during the callback (all borrowed). */
struct mls_kinspect_msg {
        const char *topic;
        int32_t partition;
        int64_t offset;
        const void *key; /* NULL when the message has no key */
        size_t key_len;
        const void *value; /* NULL when the message has no value */
        size_t value_len;
        const struct mls_kinspect_hdr *hdrs;
        size_t hdr_cnt;
};

/**
 * Called for every message read.
 * @returns 0 to go on, non-zero to stop reading.
 */
typedef int mls_kinspect_msg_cb(const struct mls_kinspect_msg *m,
                                void *opaque);

/**
 * First header called name, or NULL. Borrowed from m.
 */
const struct mls_kinspect_hdr *
mls_kinspect_msg_header(const struct mls_kinspect_msg *m, const char *name);

/**
 * Read every message of topic from the log start up to the high
 * watermarks taken when the call starts, in offset order per partition,
 * and hand each to cb. Messages written later are not read. The reader
 * assigns partitions itself under a throwaway group id
 * (mlsync-inspect-<pid>) that never joins or commits.
 *
 * @param conn     Where and how to connect. Borrowed.
 * @param topic    The topic. Borrowed.
 * @param cb       Called on the calling thread for each message.
 * @param opaque   Passed to cb.
 * @param read_cnt Set to the number of messages handed to cb (may be
 *                 NULL); also set on error.
 * @returns MLS_OK once every partition was read to its mark;
 *          MLS_ERR_CANCELLED when cb asked to stop; MLS_ERR_CONFIG for bad
 *          arguments or an unknown topic; MLS_ERR_TRANSIENT on a timeout
 *          (errstr says how far it got); MLS_ERR_NOMEM.
 * @thread  any; each call uses its own client.
 */
enum mls_err mls_kinspect_topic_read(const struct mls_kinspect_conn *conn,
                                     const char *topic,
                                     mls_kinspect_msg_cb *cb, void *opaque,
                                     size_t *read_cnt, char *errstr,
                                     size_t errstr_size);

#endif
